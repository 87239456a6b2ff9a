#!/usr/bin/env bash
# Issue 3: configure keywayd through `keyway`, restart it, and find the same configuration;
# a read-only operator is refused changes and secrets; the audit log gets every change and no secret.
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/lib.sh"

NS=$(new_netns conf)
RUN=$TMP/run STATE=$TMP/state LOG=$TMP/syslog.txt SOCK=$TMP/run/control.sock
SECRET="kw-psk-$$-Xq7"
KEYHEX="00112233445566778899aabbccddeeff0011223344556677"
start_syslog "$TMP/log.sock" "$LOG" || fail "syslog listener did not start"
cp "$(dirname "$0")/../../Configs/tunnel-ah-manual-router1.rsc" "$TMP/seed.rsc"

start_keywayd() {  # start_keywayd [KEYWAYD OPTIONS...]
  ip netns exec "$NS" "$BIN/keywayd" --foreground --config "$TMP/seed.rsc" --run-dir "$RUN" --state-dir "$STATE" \
    --syslog "$TMP/log.sock" --tun kwconf0 "$@" >>"$TMP/keywayd.out" 2>&1 &
  KPID=$!
  PIDS+=($KPID)
  wait_until 10 ip netns exec "$NS" "$BIN/keyway" --socket "$SOCK" ping
}
stop_keywayd() { kill -TERM "$KPID"; wait "$KPID"; }
kw() { ip netns exec "$NS" "$BIN/keyway" --socket "$SOCK" "$@"; }

check "keywayd starts with the --config seed" start_keywayd
check "the seed script was applied" bash -c "$(declare -f kw); BIN='$BIN' NS='$NS' SOCK='$SOCK'; kw /ip ipsec policy print | grep -q manual-sa=ah-sa1"

warned=$(kw /ip ipsec peer add address=192.0.2.2/32 secret="$SECRET" exchange-mode=aggressive dh-group=modp2048 \
  enc-algorithm=aes-256 hash-algorithm=sha256 2>&1 >/dev/null)
check "aggressive mode with a pre-shared key is accepted with a warning" \
  bash -c "grep -q 'warning: .*exchange-mode=aggressive with a pre-shared key .*crack offline' <<<\"\$1\"" _ "$warned"
check "and the warning is audited" \
  wait_until 5 grep -q 'config-warning .*exchange-mode=aggressive with a pre-shared key' "$LOG"
out=$(kw /ip ipsec peer add address=192.0.2.3 2>&1); rc=$?
check "a pre-shared-key peer without a secret is refused with the reason" \
  bash -c "[ $rc = 1 ] && grep -q 'a pre-shared-key peer needs a secret' <<<\"\$1\"" _ "$out"
# Keys of the right length (salt included), so that only the cipher is what is refused.
for case in "aes-128-gcm feffe9928665731c6d6a8f9467308308cafebabe" "aes-256-ctr $KEYHEX${KEYHEX:0:24}"; do
  set -- $case
  out=$(kw /ip ipsec manual-sa add name=counter-sa esp-spi=0x300 esp-enc-algorithm=$1 esp-enc-key=$2 2>&1); rc=$?
  check "a manual-sa with $1 is refused with the reason" \
    bash -c "[ $rc = 1 ] && \
      grep -q 'esp-enc-algorithm=$1 is a counter-mode cipher, which manual keys cannot use: its IV is the sequence number.*RFC 8221' <<<\"\$1\"" _ "$out"
done
check "and none was added" \
  bash -c "[ \"\$(ip netns exec '$NS' '$BIN/keyway' --socket '$SOCK' \
    /ip ipsec manual-sa print count-only where name=counter-sa)\" = 0 ]"
kw /ip ipsec proposal add name=strong enc-algorithms=aes-256-gcm auth-algorithms=null pfs-group=ecp256 lifetime=1h
kw /ip ipsec manual-sa add name=esp-sa esp-spi=0x200/0x201 esp-enc-algorithm=3des esp-enc-key=$KEYHEX esp-auth-key=0x0102030405060708090a0b0c0d0e0f1011121314
kw -f /dev/stdin <<'RSC'
/ip ipsec policy
add src-address=10.3.0.0/24 dst-address=10.4.0.0/24 tunnel=yes sa-src-address=192.0.2.1 \
    sa-dst-address=192.0.2.2 proposal=strong priority=5
add src-address=10.5.0.0/24 dst-address=10.6.0.0/24 action=none
disable [find action=none]
RSC
check "a script runs as one transaction" test $? = 0
kw -f /dev/stdin >/dev/null 2>&1 <<'RSC'
/ip ipsec policy add src-address=10.7.0.0/24 dst-address=10.8.0.0/24 action=none
/ip ipsec policy add src-address=banana
RSC
check "a failing script is refused" test $? = 1
check "and nothing of it was applied" bash -c "! ip netns exec '$NS' '$BIN/keyway' --socket '$SOCK' /ip ipsec policy print | grep -q 10.7.0.0"
out=$(kw /ip ipsec policy add color=red 2>&1); rc=$?
check "a bad command exits 1 with line and column" bash -c "[ $rc = 1 ] && grep -q 'error: line 1, column 22: unknown property' <<<'$out'"

before=$(kw /export show-sensitive)
kw --json /ip ipsec policy print >"$TMP/policies.json"
check "--json gives the same data as JSON" python3 -c "import json; rows=json.load(open('$TMP/policies.json')); assert len(rows)==3 and rows[1]['proposal']=='strong', rows"

stop_keywayd
check "the store holds the configuration" test -s "$STATE/config.rsc"
check "keywayd starts again" start_keywayd
after=$(kw /export show-sensitive)
check "export after a restart shows the same configuration" test "$before" = "$after"
[ "$before" = "$after" ] || diff <(echo "$before") <(echo "$after")

# Operators: a member of keyway-read may look, not change, never see secrets; others are refused.
getent group keyway-read >/dev/null || groupadd --system keyway-read
id kwtest-reader >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin -G keyway-read kwtest-reader
id kwtest-nobody >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin kwtest-nobody
kill -HUP "$KPID"    # keywayd re-reads the groups
sleep 1
as() { local u=$1; shift; ip netns exec "$NS" setpriv --reuid="$(id -u $u)" --regid="$(id -g $u)" --init-groups "$BIN/keyway" --socket "$SOCK" "$@"; }
check "a keyway-read member may print" bash -c "$(declare -f as); BIN='$BIN' NS='$NS' SOCK='$SOCK'; as kwtest-reader /ip ipsec peer print | grep -q 'address=192.0.2.2/32:500'"
out=$(as kwtest-reader /ip ipsec peer add address=192.0.2.99 2>&1); rc=$?
check "a keyway-read member is refused changes" bash -c "[ $rc = 1 ] && grep -q 'permission denied' <<<'$out'"
out=$(as kwtest-reader /export show-sensitive 2>&1); rc=$?
check "a keyway-read member is refused secrets" bash -c "[ $rc = 1 ] && ! grep -q '$SECRET' <<<'$out'"
check "a keyway-read member's export hides secrets" bash -c "$(declare -f as); BIN='$BIN' NS='$NS' SOCK='$SOCK'; ! as kwtest-reader /export | grep -q -e '$SECRET' -e '$KEYHEX'"
right=$(as kwtest-reader /ip ipsec peer print count-only where secret="$SECRET" 2>&1); rc_right=$?
wrong=$(as kwtest-reader /ip ipsec peer print count-only where secret=wrong-guess 2>&1); rc_wrong=$?
check "a keyway-read member cannot test a secret: the right and a wrong guess give the same error" \
  bash -c "[ $rc_right = 1 ] && [ $rc_wrong = 1 ] && [ \"\$1\" = \"\$2\" ] && \
    grep -q 'permission denied: secret is sensitive' <<<\"\$1\"" _ "$right" "$wrong"
out=$(as kwtest-reader /ip ipsec peer print count-only where sec!=x or not secret=x 2>&1); rc=$?
check "nor by a prefix, != or not" \
  bash -c "[ $rc = 1 ] && grep -q 'permission denied: secret is sensitive' <<<\"\$1\"" _ "$out"
out=$(as kwtest-reader /ip ipsec peer print "[find secret=$SECRET]" 2>&1); rc=$?
check "nor inside [find]" bash -c "[ $rc = 1 ] && grep -q 'permission denied: secret is sensitive' <<<\"\$1\"" _ "$out"
check "an administrator still may" \
  bash -c "[ \"\$(ip netns exec '$NS' '$BIN/keyway' --socket '$SOCK' \
    /ip ipsec peer print count-only where secret='$SECRET')\" = 1 ]"
out=$(as kwtest-nobody /ip ipsec peer print 2>&1); rc=$?
check "a user in neither group is refused" bash -c "[ $rc = 1 ] && grep -q 'permission denied' <<<'$out'"
check "the refused change is audited" wait_until 5 grep -q "config-denied .*uid=\"$(id -u kwtest-reader)\"" "$LOG"

# Local denial of service: 100 connections held open by a user with no access and 100 by a
# keyway-read member leave root's commands working. Refused connections get their reason at once
# (without sending anything) and are closed; a reader holds at most 8.
cat >"$TMP/hold.py" <<'PY'
import select, socket, sys, time
path, count = sys.argv[1], int(sys.argv[2])
socks = []
for _ in range(count):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    socks.append(s)
time.sleep(2)
held = closed = 0
reasons = set()
for s in socks:
    if select.select([s], [], [], 0)[0]:
        closed += 1
        try: data = s.recv(65536)
        except OSError: data = b""
        for r in (b"permission denied", b"too many control connections"):
            if r in data: reasons.add(r.decode())
    else:
        held += 1
print(f"held={held} closed={closed} reasons={','.join(sorted(reasons))}", flush=True)
time.sleep(120)
PY
chmod 644 "$TMP/hold.py"
ip netns exec "$NS" setpriv --reuid=nobody --regid=nogroup --clear-groups \
  /usr/bin/python3 "$TMP/hold.py" "$SOCK" 100 >"$TMP/hold-nobody.txt" &
PIDS+=($!); HOLD_NOBODY=$!
ip netns exec "$NS" setpriv --reuid="$(id -u kwtest-reader)" --regid="$(id -g kwtest-reader)" --init-groups \
  /usr/bin/python3 "$TMP/hold.py" "$SOCK" 100 >"$TMP/hold-reader.txt" &
PIDS+=($!); HOLD_READER=$!
check "100 connections by a user with no access: each refused at once with its reason, none held" \
  wait_until 20 grep -qx 'held=0 closed=100 reasons=permission denied' "$TMP/hold-nobody.txt"
check "100 connections by a keyway-read member: 8 held, the rest refused at once" \
  wait_until 20 grep -qx 'held=8 closed=92 reasons=too many control connections' "$TMP/hold-reader.txt"
cat "$TMP/hold-nobody.txt" "$TMP/hold-reader.txt" 2>/dev/null | sed 's/^/  /'
check "with them held, root's commands work" kw /ip ipsec proposal set default lifetime=45m
check "root's printouts work" \
  bash -c "$(declare -f kw); BIN='$BIN' NS='$NS' SOCK='$SOCK'; kw /ip ipsec proposal print | grep -q lifetime=45m"
check "keyway status answers" \
  bash -c "$(declare -f kw); BIN='$BIN' NS='$NS' SOCK='$SOCK'; kw status | grep -q keyway-monitor"
# The monitor closes a refused connection at once, often with the client's request unread: the
# client must still read the reason behind the reset, every time.
denied=0
for _ in $(seq 20); do
  as kwtest-nobody /ip ipsec peer print 2>&1 | grep -q 'permission denied: uid' && denied=$((denied + 1))
done
check "the refused user still sees permission denied (20 of 20 tries)" test "$denied" = 20
out=$(as kwtest-reader /ip ipsec peer print 2>&1); rc=$?
check "the reader's next connection is refused with the reason" \
  bash -c "[ $rc = 1 ] && grep -q 'too many control connections from uid' <<<\"\$1\"" _ "$out"
kill "$HOLD_NOBODY" "$HOLD_READER"; wait "$HOLD_NOBODY" "$HOLD_READER" 2>/dev/null
check "once the reader's connections close, it may print again" \
  wait_until 5 bash -c \
    "$(declare -f as); BIN='$BIN' NS='$NS' SOCK='$SOCK'; as kwtest-reader /ip ipsec peer print count-only"
kw /ip ipsec proposal set default lifetime=30m

# The interactive console reconnects once, saying so, when the monitor closed its connection
# (here: the monitor is killed and restarted), and keeps its menu.
cat >"$TMP/console.py" <<'PY'
import os, pty, re, select, signal, subprocess, sys, time
keyway, sock, keywayd = sys.argv[1:4]
def monitor():
    return subprocess.run(["pgrep", "-P", keywayd, "-x", "keyway-monitor"],
                          capture_output=True, text=True).stdout.strip()
pid, fd = pty.fork()
if pid == 0:
    os.execv(keyway, [keyway, "--socket", sock])
seen = b""
def expect(pattern, timeout=10):
    global seen
    end = time.time() + timeout
    while time.time() < end:
        if re.search(pattern, seen): return True
        if select.select([fd], [], [], 0.2)[0]:
            try: seen += os.read(fd, 4096)
            except OSError: break
    sys.stdout.write(seen.decode(errors="replace")); return False
ok = expect(rb"/> $")
os.write(fd, b"/ip ipsec proposal\r"); ok = ok and expect(rb"/ip ipsec proposal> $")
os.write(fd, b"print count-only where default\r"); ok = ok and expect(rb"\n1\r?\n.*proposal> $")
old = monitor(); os.kill(int(old), signal.SIGKILL)
end = time.time() + 10
while time.time() < end and monitor() in ("", old): time.sleep(0.1)
time.sleep(1)
seen = b""
os.write(fd, b"print count-only where default\r")
ok = ok and expect(rb"reconnected") and expect(rb"\n1\r?\n.*proposal> $")
os.write(fd, b"quit\r"); os.waitpid(pid, 0)
print(seen.decode(errors="replace"))
print("console-ok" if ok else "console-failed")
PY
out=$(timeout 40 python3 "$TMP/console.py" "$BIN/keyway" "$SOCK" "$KPID" 2>&1)
check "the console reconnects once after the monitor closed its connection, says so, keeps its menu" \
  bash -c "grep -q console-ok <<<\"\$1\" && \
    grep -q 'keyway: the connection to keywayd had been closed (idle, or the monitor restarted); reconnected' <<<\"\$1\"" _ "$out"
grep -q console-ok <<<"$out" || echo "$out" | sed 's/^/  /'

# The store is written before a change runs: a store that cannot be written refuses the change.
before=$(kw /export show-sensitive)
chmod 0500 "$STATE"
out=$(kw /ip ipsec peer add address=192.0.2.77 secret=not-saved 2>&1); rc=$?
check "with the state directory unwritable a change fails with the reason" \
  bash -c "[ $rc = 1 ] && \
    grep -q 'error: the configuration could not be saved to config.rsc in the state directory (.*Permission denied.*); nothing was changed' <<<\"\$1\"" _ "$out"
check "and nothing changed: export is the same" test "$(kw /export show-sensitive)" = "$before"
check "nor the store" bash -c "! grep -q 192.0.2.77 '$STATE/config.rsc'"
check "the failed save is audited" \
  wait_until 5 grep -q 'config-save .*could not save the configuration; the change was refused' "$LOG"
chmod 0700 "$STATE"
check "with permissions restored changes work again" \
  kw /ip ipsec peer add address=192.0.2.77 secret=now-saved dh-group=modp2048 hash-algorithm=sha256
check "and are stored" grep -q 192.0.2.77 "$STATE/config.rsc"
check "and can be undone" kw /ip ipsec peer remove "[find address=192.0.2.77]"

# A corrupt or unreadable store: by default keywayd refuses to run, saying why and what to do.
stop_keywayd
cp "$STATE/config.rsc" "$TMP/good.rsc"
echo '/ip ipsec policy add src-address=garbage' >"$STATE/config.rsc"
: >"$TMP/keywayd.out"
refused_run() {  # refused_run [OPTIONS]: keywayd exits 1 on its own, and leaves nothing running
  ip netns exec "$NS" timeout 20 "$BIN/keywayd" --foreground --config "$TMP/seed.rsc" --run-dir "$RUN" \
    --state-dir "$STATE" --syslog "$TMP/log.sock" --tun kwconf0 "$@" >"$TMP/refused.out" 2>&1
  local rc=$?
  cat "$TMP/refused.out" >>"$TMP/keywayd.out"
  [ "$rc" = 1 ] && [ -z "$(ip netns pids "$NS")" ]
}
check "a corrupt store: keywayd stops everything and exits 1" refused_run
check "its error names STATE/config.rsc and the options" \
  bash -c "grep -q 'the configuration store $STATE/config.rsc cannot be read or parsed' '$TMP/refused.out' && \
    grep -q -- '--on-bad-store=last-good' '$TMP/refused.out' && grep -q -- '--on-bad-store=empty' '$TMP/refused.out'"
check "the monitor said why (the line and column)" \
  grep -q "keyway-monitor: config.rsc in the state directory cannot be used: line 1, column 22: invalid value 'garbage'" \
  "$TMP/refused.out"
check "the refusal is audited" wait_until 5 grep -qE 'keyway-monitor\[[0-9]+\]: config-load .*refusing to start' "$LOG"
if ! grep -qE 'keyway-monitor\[[0-9]+\]: config-load .*refusing to start' "$LOG"; then
  # A line that never came: what syslog got from the refused run, and what keywayd said.
  echo "  | syslog, last lines:"; tail -16 "$LOG" | cut -c1-200 | sed 's/^/  | /'
  echo "  | keywayd:"; sed 's/^/  | /' "$TMP/refused.out" | tail -12
fi
check "the corrupt store is left as it was" grep -q garbage "$STATE/config.rsc"
cp "$TMP/good.rsc" "$STATE/config.rsc"; chmod 000 "$STATE/config.rsc"
check "an unreadable store is refused the same way" refused_run
check "naming why" grep -q 'cannot be used: .*Permission denied' "$TMP/refused.out"
chmod 600 "$STATE/config.rsc"
echo '/ip ipsec policy add src-address=garbage' >"$STATE/config.rsc"
check "an unknown --on-bad-store value exits 2" \
  bash -c "'$BIN/keywayd' --on-bad-store=maybe >/dev/null 2>&1; [ \$? = 2 ]"

# --on-bad-store=last-good: the last good copy runs, said loudly; the corrupt file is kept.
check "with --on-bad-store=last-good keywayd starts" start_keywayd --on-bad-store=last-good
check "it runs the last good copy" \
  bash -c "$(declare -f kw); BIN='$BIN' NS='$NS' SOCK='$SOCK'; kw /ip ipsec policy print | grep -q manual-sa=ah-sa1"
check "and says so loudly (critical)" \
  wait_until 10 grep -qE '^<82>[A-Z].* keyway-monitor\[[0-9]+\]: config-load .*running the last good copy' "$LOG"
check "the corrupt store is kept as config.unusable.rsc" grep -q garbage "$STATE/config.unusable.rsc"
check "and config.rsc is usable again" bash -c "! grep -q garbage '$STATE/config.rsc'"
stop_keywayd

# --on-bad-store=empty: nothing runs, said loudly.
echo '/ip ipsec policy add src-address=garbage' >"$STATE/config.rsc"
check "with --on-bad-store=empty keywayd starts" start_keywayd --on-bad-store=empty
check "with no configuration" \
  bash -c "[ \"\$(ip netns exec '$NS' '$BIN/keyway' --socket '$SOCK' /ip ipsec policy print count-only)\" = 0 ]"
check "said loudly (critical, and on keywayd's stderr)" \
  wait_until 10 bash -c "grep -qE '^<82>[A-Z].* keyway-monitor\\[[0-9]+\\]: config-load .*STARTING EMPTY' '$LOG' && \
    grep -q 'keyway-monitor: .*STARTING EMPTY' '$TMP/keywayd.out'"
stop_keywayd

# A store written before today's rules still loads: each offending item clamped or marked, and audited.
cat >"$STATE/config.rsc" <<RSC
/ip ipsec proposal
set [ find default=yes ] lifetime=2w
/ip ipsec manual-sa
add name=old-gcm esp-enc-algorithm=aes-128-gcm esp-enc-key="feffe9928665731c6d6a8f9467308308cafebabe" \
    esp-spi=0x200/0x201
/ip ipsec peer
add address=192.0.2.5/32:500
/ip ipsec policy
add src-address=10.1.0.0/24:any dst-address=10.2.0.0/24:any tunnel=yes \
    sa-src-address=192.0.2.1 sa-dst-address=192.0.2.5 manual-sa=old-gcm
RSC
check "a store from before the rules starts" start_keywayd
check "its GCM manual-sa makes the policy inactive, saying why" \
  bash -c "ip netns exec '$NS' '$BIN/keyway' --socket '$SOCK' /ip ipsec policy print detail | \
    grep -q 'inactive-reason=\"manual-sa old-gcm: esp-enc-algorithm=aes-128-gcm is a counter-mode cipher'"
check "its empty-secret peer is flagged I" \
  bash -c "ip netns exec '$NS' '$BIN/keyway' --socket '$SOCK' /ip ipsec peer print | grep -qE '^ *0 I '"
check "its two-week lifetime is clamped to a week" \
  bash -c "ip netns exec '$NS' '$BIN/keyway' --socket '$SOCK' /ip ipsec proposal print | grep -q 'lifetime=1w'"
check "each is audited at load" \
  wait_until 10 bash -c "grep -q 'config-load .*lifetime=2w is out of range' '$LOG' && \
    grep -q 'config-load .*manual-sa old-gcm: esp-enc-algorithm=aes-128-gcm' '$LOG' && \
    grep -q 'config-load .*peer 192.0.2.5/32:500: auth-method=pre-shared-key with an empty secret' '$LOG'"
stop_keywayd

check "every change is audited with the caller's uid" bash -c "grep -c 'config-change .*uid=\"0\"' '$LOG' | awk '{ exit !(\$1 >= 6) }'"
check "audit lines mask secrets" grep -q 'secret=\*\*\*' "$LOG"
check "no secret or key anywhere in the audit log" bash -c "! grep -q -e '$SECRET' -e '$KEYHEX' -e '0102030405060708090a' '$LOG'"
check "the store is private to the keyway-monitor user" \
  bash -c "[ \"\$(stat -c '%U %a' '$STATE/config.rsc')\" = 'keyway-monitor 600' ] && \
    [ \"\$(stat -c '%U %a' '$STATE')\" = 'keyway-monitor 700' ]"

userdel kwtest-reader 2>/dev/null; userdel kwtest-nobody 2>/dev/null
check "no child was killed by its seccomp filter" not grep -F SIGSYS "$TMP/keywayd.out" "$LOG"
summary
