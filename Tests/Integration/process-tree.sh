#!/usr/bin/env bash
# Issue 2: keywayd in a network namespace: three sandboxed children, restarted after SIGKILL
# with the same sandbox, bad control input refused, and nothing left behind after SIGTERM.
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/lib.sh"

NS=$(new_netns tree)
# The namespace's own address (for the binding test) and, there only, every port bindable by
# anyone: what keeps others off 500 and 4500 must be keywayd's sockets, not privilege.
ip -n "$NS" addr add 203.0.113.1/32 dev lo
ip netns exec "$NS" sysctl -qw net.ipv4.ip_unprivileged_port_start=0
RUN=$TMP/run STATE=$TMP/state LOG=$TMP/syslog.txt
start_syslog "$TMP/log.sock" "$LOG" || fail "syslog listener did not start"

ip netns exec "$NS" "$BIN/keywayd" --foreground --config "$TMP/none.rsc" --run-dir "$RUN" --state-dir "$STATE" \
  --syslog "$TMP/log.sock" --tun kwtest0 >"$TMP/keywayd.out" 2>&1 &
KPID=$!
PIDS+=($KPID)

child_pid() { pgrep -P "$KPID" -x "$1"; }
children_up() { [ -n "$(child_pid keyway-monitor)" ] && [ -n "$(child_pid keyway-ike)" ] && [ -n "$(child_pid keyway-datapath)" ]; }
status_field() { awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "/proc/$1/status"; }

# Sandboxed: real and effective uid not 0, no capabilities, no_new_privs, seccomp filter, chroot.
sandboxed() {
  local pid=$1 expected_root=$2
  local uids; uids=$(status_field "$pid" Uid)
  set -- $uids
  [ "$1" != 0 ] && [ "$2" != 0 ] || { echo "  pid $pid uid $uids"; return 1; }
  for cap in CapEff CapPrm CapBnd CapInh CapAmb; do
    [ "$(status_field "$pid" $cap)" = 0000000000000000 ] || { echo "  pid $pid $cap=$(status_field "$pid" $cap)"; return 1; }
  done
  [ "$(status_field "$pid" NoNewPrivs)" = 1 ] || { echo "  pid $pid NoNewPrivs"; return 1; }
  [ "$(status_field "$pid" Seccomp)" = 2 ] || { echo "  pid $pid Seccomp=$(status_field "$pid" Seccomp)"; return 1; }
  local root; root=$(readlink "/proc/$pid/root")
  [ "$root" != / ] && [ "$root" = "$expected_root" ] || { echo "  pid $pid root=$root"; return 1; }
}

hello_done() { ip netns exec "$NS" "$BIN/keyway" status --socket "$RUN/control.sock" --json 2>/dev/null | python3 -c '
import json, sys
rows = json.load(sys.stdin)
sys.exit(0 if len(rows) == 4 and all(r["connected"] and r["pid"] > 0 for r in rows) and all(r["sandboxed"] for r in rows[1:]) else 1)'; }

check "keywayd starts three children" wait_until 10 children_up
check "children finish their handshakes" wait_until 10 hello_done
# keywayd's UDP 500/4500 sockets carry no SO_REUSEADDR: no local user can bind beside them (and
# so read IKE or ESP in UDP meant for keywayd), however they set their own socket.
bind_as_nobody() {  # bind_as_nobody PORT: user nobody binds UDP PORT on 203.0.113.1 with SO_REUSEADDR
  ip netns exec "$NS" setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("203.0.113.1", int(sys.argv[1])))
except OSError as e:
    print(e)
    sys.exit(1)
print("bound")' "$1"
}
check "user nobody can bind a free UDP port on the namespace's address (the probe works)" bind_as_nobody 4501
out=$(bind_as_nobody 4500); echo "  nobody binding UDP 4500: $out"
check "user nobody cannot bind UDP 4500 beside keywayd (address in use)" \
  bash -c "grep -q 'Address already in use' <<<'$out'"
out=$(bind_as_nobody 500); echo "  nobody binding UDP 500: $out"
check "user nobody cannot bind UDP 500 beside keywayd, even with unprivileged ports" \
  bash -c "grep -q 'Address already in use' <<<'$out'"

# keywayd keeps only dac_read_search, kill, setgid, setuid, setpcap, net_admin and sys_chroot
# (bits 2, 5-8, 12, 18).
check "keywayd holds only the capabilities it still needs (bounding, permitted, effective)" bash -c "
  for cap in CapBnd CapPrm CapEff; do [ \"\$(awk -v k=\$cap: '\$1 == k { print \$2 }' /proc/$KPID/status)\" = 00000000000411e4 ] || exit 1; done
  [ \"\$(awk '\$1 == \"CapInh:\" { print \$2 }' /proc/$KPID/status)\" = 0000000000000000 ]"
declare -A ROOT=([keyway-monitor]=$STATE [keyway-ike]=$RUN/empty [keyway-datapath]=$RUN/empty)
for role in keyway-monitor keyway-ike keyway-datapath; do
  check "$role is sandboxed (uid, caps, no_new_privs, seccomp, chroot)" sandboxed "$(child_pid $role)" "${ROOT[$role]}"
done

# One user per child (keywayd's default --user keyway: keyway-ike, keyway-datapath,
# keyway-monitor): real, effective, saved and filesystem uid are all that user's.
own_user() {  # own_user PID USER
  local want; want=$(id -u "$2") || return 1
  [ "$(status_field "$1" Uid)" = "$want $want $want $want" ] || {
    echo "  pid $1 Uid $(status_field "$1" Uid), want $2 ($want)"; return 1; }
}
for role in keyway-monitor keyway-ike keyway-datapath; do
  check "$role runs as its own user $role" own_user "$(child_pid $role)" $role
done
uids() {
  for r in keyway-monitor keyway-ike keyway-datapath; do status_field "$(child_pid $r)" Uid | cut -d' ' -f1; done
}
check "the three children have three different uids" test "$(uids | sort -u | wc -l)" = 3
# The kernel lets a process signal only its own uid's processes: keyway-ike can reach itself,
# not the datapath.
as_ike() { setpriv --reuid=keyway-ike --regid=keyway-ike --clear-groups "$@"; }
check "as keyway-ike, kill -0 of keyway-ike's pid succeeds" as_ike kill -0 "$(child_pid keyway-ike)"
denied=$(as_ike kill -0 "$(child_pid keyway-datapath)" 2>&1); rc=$?
echo "  as keyway-ike: kill -0 $(child_pid keyway-datapath): $denied"
check "as keyway-ike, kill -0 of the datapath's pid fails (Operation not permitted)" \
  bash -c "[ $rc != 0 ] && grep -q 'Operation not permitted' <<<'$denied'"

status_json=$(ip netns exec "$NS" "$BIN/keyway" status --socket "$RUN/control.sock" --json)
echo "  status: $status_json"
pids_match() {
  python3 - "$status_json" "$KPID" "$(child_pid keyway-monitor)" "$(child_pid keyway-ike)" "$(child_pid keyway-datapath)" <<'PY'
import json, sys
rows = {r["process"]: r for r in json.loads(sys.argv[1])}
want = dict(zip(["keywayd", "keyway-monitor", "keyway-ike", "keyway-datapath"], map(int, sys.argv[2:])))
sys.exit(0 if all(rows[k]["pid"] == v and rows[k]["uptime-ms"] >= 0 for k, v in want.items()) else 1)
PY
}
check "status lists each process with its pid and uptime" pids_match
ip netns exec "$NS" "$BIN/keyway" status --socket "$RUN/control.sock"

for role in keyway-ike keyway-datapath keyway-monitor; do
  old=$(child_pid $role)
  kill -KILL "$old"
  restarted() { local p; p=$(child_pid $role); [ -n "$p" ] && [ "$p" != "$old" ] && sandboxed "$p" "${ROOT[$role]}" >/dev/null; }
  check "$role is back within 5 s after SIGKILL" wait_until 5 restarted
  check "restarted $role has the same sandbox" sandboxed "$(child_pid $role)" "${ROOT[$role]}"
done
check "restarted children handshake again" wait_until 10 hello_done
restart_counts() { ip netns exec "$NS" "$BIN/keyway" status --socket "$RUN/control.sock" --json | python3 -c '
import json, sys
rows = {r["process"]: r for r in json.load(sys.stdin)}
sys.exit(0 if all(rows[k]["restarts"] == 1 for k in ["keyway-monitor", "keyway-ike", "keyway-datapath"]) else 1)'; }
check "status counts one restart per child" restart_counts
check "child restarts are audited" grep -q 'child-exit .*keyway-ike.*killed by signal 9' "$LOG"

# The binary check is repeated before every start: a child binary that turned group-writable is
# not started again (audited, with back-off) until it is safe once more.
old=$(child_pid keyway-ike)
chmod g+w "$BIN/keyway-ike"
kill -KILL "$old"
check "a child binary made group-writable is refused at restart, with the reason audited" wait_until 5 grep -q \
  "could not start keyway-ike: refusing to execute $BIN/keyway-ike: it is writable by its group (mode 0775)" "$LOG"
check "the refused child stays down" test -z "$(child_pid keyway-ike)"
chmod g-w "$BIN/keyway-ike"
ike_back() { local p; p=$(child_pid keyway-ike); [ -n "$p" ] && sandboxed "$p" "$RUN/empty" >/dev/null; }
check "once the binary is safe again keyway-ike is started again" wait_until 10 ike_back

# Liveness: keywayd pings every child every 3 s; one silent for 3 intervals (here: stopped) is
# killed and restarted like any child that died.
old=$(child_pid keyway-datapath)
kill -STOP "$old"
stopped_at=$SECONDS
replaced() {
  local p; p=$(child_pid keyway-datapath)
  [ -n "$p" ] && [ "$p" != "$old" ] && sandboxed "$p" "$RUN/empty" >/dev/null
}
check "a stopped keyway-datapath is replaced by a new pid within 20 s" wait_until 20 replaced
echo "  replaced after $((SECONDS - stopped_at)) s"
same_sandbox_and_user() {
  local p; p=$(child_pid keyway-datapath)
  sandboxed "$p" "$RUN/empty" && own_user "$p" keyway-datapath
}
check "the replacement has the same sandbox and user" same_sandbox_and_user
check "keywayd's audit says the stopped child stopped answering" \
  grep -q "child-unresponsive .*keyway-datapath (pid $old) stopped answering: no reply to pings for" "$LOG"
check "the stopped process is gone" not kill -0 "$old"

# Bad input on the control socket: refused and counted; the monitor keeps serving.
python3 - "$RUN/control.sock" <<'PY'
import socket, struct, sys
bad = [b"\x00\x02\x00", struct.pack(">HHII", 2, 999, 0, 0), struct.pack(">HHII", 2, 9, 0, 0) + b"\xee",
       struct.pack(">HHII", 2, 3, 4, 0) + b"\x00\x00\x00\x01", struct.pack(">HHII", 2, 7, 8, 0) + b"\x00\x01"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
for b in bad: s.send(b)
s.close()
PY
# The monitor reads the closed connection's messages in its own time: counters and audit are waited for.
rejections_counted() { python3 -c '
import json, sys
c = json.loads(sys.argv[1])
sys.exit(0 if all(c.get("wire-rejected-" + k, 0) >= 1
                  for k in ["truncated-header", "unknown-type", "trailing-bytes", "not-allowed", "short-body"]) else 1)' \
  "$(ip netns exec "$NS" "$BIN/keyway" counters --socket "$RUN/control.sock" --json)"; }
check "bad control messages are counted per reason" wait_until 10 rejections_counted
echo "  counters: $(ip netns exec "$NS" "$BIN/keyway" counters --socket "$RUN/control.sock" --json)"
check "the monitor still answers after bad input" ip netns exec "$NS" "$BIN/keyway" ping --socket "$RUN/control.sock"
check "bad control messages are audited" wait_until 10 grep -q 'keyway-monitor\[[0-9]*\]: wire-reject .*reason="not-allowed"' "$LOG"

kill -HUP "$KPID"
check "SIGHUP reaches keyway-monitor as a reload" wait_until 5 grep -q 'keyway-monitor\[[0-9]*\]: reload ' "$LOG"

kill -TERM "$KPID"
stopped() { ! kill -0 "$KPID" 2>/dev/null; }
check "keywayd exits after SIGTERM" wait_until 10 stopped
wait "$KPID"; rc=$?
check "keywayd exits 0 on SIGTERM" test "$rc" = 0
check "no process left in the namespace" test -z "$(ip netns pids "$NS")"
check "control socket removed" test ! -e "$RUN/control.sock"
# Without SO_REUSEADDR nothing stops a clean restart: the sockets went with the old processes.
ip netns exec "$NS" "$BIN/keywayd" --foreground --config "$TMP/none.rsc" --run-dir "$RUN" --state-dir "$STATE" \
  --syslog "$TMP/log.sock" --tun kwtest0 >>"$TMP/keywayd.out" 2>&1 &
KPID=$!
PIDS+=($KPID)
check "keywayd starts again in the same namespace (ports 500 and 4500 free again)" wait_until 10 children_up
check "the restarted children finish their handshakes" wait_until 10 hello_done
kill -TERM "$KPID"
wait "$KPID"; rc=$?
check "the restarted keywayd exits 0 on SIGTERM" test "$rc" = 0
check "no child was killed by its seccomp filter" not grep -F SIGSYS "$LOG" "$TMP/keywayd.out"
check "every process's audit lines reached syslog in syslog(3)'s format, through keywayd" bash -c "for a in keywayd keyway-monitor keyway-ike keyway-datapath; do grep -qE \"^<[0-9]+>[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} \$a\\[[0-9]+\\]: \" '$LOG' || exit 1; done"

# Command line: bad arguments exit 2; a missing user says how to create it.
"$BIN/keywayd" --bogus >/dev/null 2>&1; check "unknown option exits 2" test $? = 2
"$BIN/keywayd" --tun 'bad name' >/dev/null 2>&1; check "invalid --tun exits 2" test $? = 2
"$BIN/keywayd" --state-dir relative >/dev/null 2>&1; check "relative --state-dir exits 2" test $? = 2
out=$("$BIN/keywayd" --user keyway-no-such-user --run-dir "$TMP/r2" 2>&1); rc=$?
missing_users_named() {
  [ "$rc" = 1 ] && grep -q useradd <<<"$out" &&
    grep -qF \
      "users 'keyway-no-such-user-ike', 'keyway-no-such-user-datapath', 'keyway-no-such-user-monitor' do not exist" \
      <<<"$out"
}
check "missing users fail with their names and how to create them" missing_users_named
"$BIN/keywayd" --help >/dev/null 2>&1; check "--help exits 0" test $? = 0

# Child binaries must be root's and writable by no one else, and so must every directory above
# them: otherwise keywayd refuses before it changes anything or starts any child.
refused_start() {  # refused_start DIR MESSAGE: keywayd from DIR exits 1 saying MESSAGE, no child started
  local out rc
  out=$(ip netns exec "$NS" "$1/keywayd" --foreground --config "$TMP/none.rsc" --run-dir "$TMP/r3" \
        --state-dir "$TMP/s3" --syslog "$TMP/nolog" --tun kwtest1 2>&1); rc=$?
  grep refusing <<<"$out" | sed 's/^/  /'
  [ "$rc" = 1 ] && grep -qF "$2" <<<"$out" && ! grep -q child-start <<<"$out"
}
install_products "$TMP/gw"; chmod g+w "$TMP/gw/keyway-datapath"
check "a group-writable child binary: keywayd exits 1 naming it, before any child runs" refused_start "$TMP/gw" \
  "keywayd: refusing to execute $TMP/gw/keyway-datapath: it is writable by its group (mode 0775)"
install_products "$TMP/ow/bin"; chmod 0757 "$TMP/ow"
check "a child binary under a directory writable by others: keywayd exits 1 naming the directory" \
  refused_start "$TMP/ow/bin" "directory $TMP/ow is writable by others (mode 0757)"

summary
