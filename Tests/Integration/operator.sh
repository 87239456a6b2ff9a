#!/usr/bin/env bash
# Issue 13: the operator's side. One-argument commands and -c give what the split form gives;
# --help needs no keywayd; group membership counts from the next connection; /log print, where,
# --json and follow; the console on a pseudo-terminal (editing keys, completion, history, ?).
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/lib.sh"

NS=$(new_netns op)
RUN=$TMP/run STATE=$TMP/state SOCK=$TMP/run/control.sock
kw() { ip netns exec "$NS" "$BIN/keyway" --socket "$SOCK" "$@"; }

out=$("$BIN/keyway" --socket "$TMP/none.sock" --help 2>&1); rc=$?
check "keyway --help prints usage without a running keywayd" \
  bash -c "[ $rc = 0 ] && grep -q 'USAGE:' <<<\"\$1\" && grep -q -- '-c' <<<\"\$1\" && ! grep -q 'cannot reach' <<<\"\$1\"" _ "$out"
out=$("$BIN/keyway" --socket "$TMP/none.sock" -h 2>&1); rc=$?
check "keyway -h too" bash -c "[ $rc = 0 ] && grep -q 'USAGE:' <<<\"\$1\"" _ "$out"
check "bash completion asks the console's completion, without keywayd" \
  bash -c "[ \"\$('$BIN/keyway' --complete '/ip ipsec pol')\" = policy ]"

ip netns exec "$NS" "$BIN/keywayd" --foreground --config /nonexistent --run-dir "$RUN" --state-dir "$STATE" \
  --syslog "$TMP/nolog" --tun kwop0 >"$TMP/keywayd.out" 2>&1 &
KPID=$!
PIDS+=($KPID)
check "keywayd starts" wait_until 10 kw ping
kw /ip ipsec proposal add name=first lifetime=1h pfs-group=modp2048
kw /ip ipsec proposal add name=second lifetime=2h pfs-group=ecp256
kw /ip ipsec peer add address=192.0.2.2 secret="kw-op-secret-$$" dh-group=modp2048 hash-algorithm=sha256
kw /ip ipsec peer add address=198.51.100.2 secret="kw-op-secret-$$" dh-group=modp2048 hash-algorithm=sha256

# One argument holding a whole line, -c, and the split form: the same output.
split=$(kw /ip ipsec proposal print where name=first or name=second)
one=$(kw '/ip ipsec proposal print where name=first or name=second')
dashc=$(kw -c '/ip ipsec proposal print where name=first or name=second')
check "the split form prints both proposals" bash -c "grep -q name=first <<<\"\$1\" && grep -q name=second <<<\"\$1\"" _ "$split"
check "keyway '/ip ipsec proposal print ...' (one argument) gives the same output" test "$one" = "$split"
check "keyway -c '...' gives the same output" test "$dashc" = "$split"
check "a quoted value inside one argument keeps its quotes" \
  bash -c "[ \"\$('$BIN/keyway' --socket '$SOCK' '/ip ipsec peer print count-only where secret=\"kw-op-secret-$$\"' 2>&1)\" = 2 ]"
check "keyway -c status is keyway's own status" bash -c "ip netns exec '$NS' '$BIN/keyway' --socket '$SOCK' -c status | grep -q keyway-monitor"

# Groups are read from each connection (SO_PEERGROUPS): no signal needed either way.
getent group keyway-read >/dev/null || groupadd --system keyway-read
id kwtest-op >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin kwtest-op
as_op() {
  ip netns exec "$NS" setpriv --reuid="$(id -u kwtest-op)" --regid="$(id -g kwtest-op)" --init-groups \
    "$BIN/keyway" --socket "$SOCK" "$@"
}
out=$(as_op /ip ipsec peer print count-only 2>&1); rc=$?
check "a user in neither group is refused" bash -c "[ $rc = 1 ] && grep -q 'permission denied' <<<\"\$1\"" _ "$out"
usermod -aG keyway-read kwtest-op
out=$(as_op /ip ipsec peer print count-only 2>&1); rc=$?
check "added to keyway-read while keywayd runs, the user can print at once" test "$rc/$out" = "0/2"
check "and may read /log, where no secret appears" \
  bash -c "$(declare -f as_op); NS='$NS' BIN='$BIN' SOCK='$SOCK'; out=\$(as_op /log print); \
    grep -q config-change <<<\"\$out\" || grep -q 'configuration changed' <<<\"\$out\"; ! grep -q 'kw-op-secret' <<<\"\$out\""
gpasswd -d kwtest-op keyway-read >/dev/null
out=$(as_op /ip ipsec peer print count-only 2>&1); rc=$?
check "removed from keyway-read, the user is refused at once" \
  bash -c "[ $rc = 1 ] && grep -q 'permission denied' <<<\"\$1\"" _ "$out"
check "keywayd was never sent SIGHUP (no reload in the log)" not bash -c "kw() { ip netns exec '$NS' '$BIN/keyway' --socket '$SOCK' \"\$@\"; }; kw /log print | grep -q 'SIGHUP'"

# /log: every process, where, --json, follow.
log=$(kw /log print)
for p in keywayd keyway-monitor keyway-ike keyway-datapath; do
  check "/log print shows $p's events" grep -q " $p: " <<<"$log"
done
check "each line has a time and RouterOS topics" grep -qE '^[a-z]{3}/[0-9]{2}/[0-9]{4} [0-9:]{8} system,info +keywayd: ' <<<"$log"
check "where topics~ipsec shows only IKE and the datapath" \
  bash -c "out=\$(ip netns exec '$NS' '$BIN/keyway' --socket '$SOCK' /log print where topics~ipsec); [ -n \"\$out\" ] && \
    ! grep -vE ' keyway-(ike|datapath): ' <<<\"\$out\""
kw --json /log print where process=keyway-monitor and message~"configuration changed" >"$TMP/log.json"
check "--json: an array of events, each with time, topics, process, pid and message" python3 -c "
import json; rows = json.load(open('$TMP/log.json'))
assert len(rows) >= 4, rows
assert all(r['process'] == 'keyway-monitor' and 'configuration changed' in r['message'] and r['pid'] > 0 for r in rows), rows
assert all(set(r) >= {'time', 'topics', 'message', '.id', 'msg-id'} for r in rows), rows"
ip netns exec "$NS" "$BIN/keyway" --socket "$SOCK" /log print follow where message~kwfollow >"$TMP/follow.txt" 2>&1 &
FOLLOW=$!
PIDS+=($FOLLOW)
sleep 1
check "follow has shown nothing yet" test ! -s "$TMP/follow.txt"
kw /ip ipsec proposal add name=kwfollow lifetime=3h
check "follow shows an event that happens while it runs" \
  wait_until 10 grep -q "keyway-monitor: configuration changed uid=0 command=\"/ip ipsec proposal add name=kwfollow" "$TMP/follow.txt"
check "and it is still following" kill -0 "$FOLLOW"
kill -TERM "$FOLLOW"; wait "$FOLLOW" 2>/dev/null
ip netns exec "$NS" "$BIN/keyway" --socket "$SOCK" --json /log print follow-only where message~kwjson >"$TMP/follow.json" 2>&1 &
FOLLOW=$!; PIDS+=($FOLLOW)
sleep 1
kw /ip ipsec proposal set kwfollow name=kwjson
check "follow --json: one JSON object a line as events come" wait_until 10 python3 -c "
import json; rows = [json.loads(l) for l in open('$TMP/follow.json') if l.strip()]
assert rows and all('kwjson' in r['message'] for r in rows), rows"
kill -TERM "$FOLLOW"; wait "$FOLLOW" 2>/dev/null

# The console on a pseudo-terminal. Counts tell the commands apart: proposals 4, peers 2, policies 0.
cat >"$TMP/console.py" <<'PY'
import os, pty, re, select, subprocess, sys, time
keyway, sock, ns = sys.argv[1:4]
pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "xterm"
    os.execv(keyway, [keyway, "--socket", sock])
seen = b""
def expect(pattern, timeout=10):
    global seen
    end = time.time() + timeout
    while time.time() < end:
        if re.search(pattern, seen): return True
        if select.select([fd], [], [], 0.1)[0]:
            try: seen += os.read(fd, 4096)
            except OSError: break
    return False
results = []
def case(name, keys, pattern):
    global seen
    expect(rb"> $", 5)
    seen = b""
    for k in keys:
        os.write(fd, k); time.sleep(0.15)
    ok = expect(pattern)
    results.append((name, ok, seen))
ok = expect(rb"\] /> $")
results.append(("the console starts with its prompt", ok, seen))
case("Tab completes a menu", [b"/ip ipsec propo", b"\t", b"print count-only\r"], rb"\n4\r\n")
case("Ctrl-U clears the line", [b"garbage words here", b"\x15", b"/ip ipsec peer print count-only\r"], rb"\n2\r\n")
case("Ctrl-A and Ctrl-E: start and end of the line", [b"print count-only", b"\x01", b"/ip ipsec peer ", b"\x05", b"\r"], rb"\n2\r\n")
case("Alt-B and Ctrl-K: a word back, delete to the end",
     [b"/ip ipsec proposal print count-only junk", b"\x1bb", b"\x0b", b"\r"], rb"\n4\r\n")
case("Ctrl-W deletes the word before the cursor", [b"/ip ipsec peer print count-only junk", b"\x17", b"\r"], rb"\n2\r\n")
case("Alt-F and Ctrl-U: a word forward, delete to the start",
     [b"ZZZ /ip ipsec policy print count-only", b"\x01", b"\x1bf", b"\x15", b"\r"], rb"\n0\r\n")
case("Up recalls the last line", [b"\x1b[A", b"\r"], rb"policy print count-only[^\n]*\r\n0\r\n")
case("Ctrl-R finds an older line by its text", [b"\x12", b"proposal", b"\r"], rb"\n4\r\n")
case("? says what a property takes", [b"/ip ipsec peer add exchange-mode=", b"?"],
     rb"exchange-mode: one of main, aggressive, base")
case("Tab lists the candidates", [b"\x15", b"/ip ipsec p", b"\t"], rb"policy  peer  proposal")
case("Ctrl-C drops the line and the console goes on", [b"\x03", b"/ip ipsec policy print count-only\r"],
     rb"\^C[\s\S]*\n0\r\n")
case("an empty print shows RouterOS's legend", [b"/ip ipsec manual-sa print\r"], rb"Flags: X - disabled\r\n")
expect(rb"> $", 5)
seen = b""
os.write(fd, b"/log print follow-only where message~kwpty\r")
time.sleep(1)
subprocess.run(["ip", "netns", "exec", ns, keyway, "--socket", sock, "/ip ipsec proposal add name=kwpty"], check=True)
ok = expect(rb"configuration changed uid=0 command=\"/ip ipsec proposal add name=kwpty")
results.append(("shows an event while it runs", ok, seen))
case("Ctrl-C ends the follow, not the console", [b"\x03", b"/ip ipsec proposal print count-only\r"], rb"\n5\r\n")
os.write(fd, b"quit\r")
os.waitpid(pid, 0)
for name, ok, text in results:
    print(("ok " if ok else "FAIL ") + name)
    if not ok: print("   saw: " + repr(text[-400:]))
PY
ip netns exec "$NS" true
timeout 120 python3 "$TMP/console.py" "$BIN/keyway" "$SOCK" "$NS" >"$TMP/console.txt" 2>&1
while read -r status name; do
  case "$status" in ok) ok "console: $name" ;; FAIL) fail "console: $name" ;; *) echo "  $status $name" ;; esac
done <"$TMP/console.txt"
grep -q '^ok ' "$TMP/console.txt" || { fail "console: the pty test ran"; cat "$TMP/console.txt"; }

kill -TERM "$KPID"; wait "$KPID"
userdel kwtest-op 2>/dev/null
check "no child was killed by its seccomp filter" not grep -F SIGSYS "$TMP/keywayd.out"
summary
