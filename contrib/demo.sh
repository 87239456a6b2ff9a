#!/usr/bin/env bash
# The demo: installs what is missing, builds, and starts keywayd in a network namespace, then
# shows the process tree and each child's sandbox as the kernel reports it. Stops and cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: keywayd opens a TUN device and port 500" >&2; exit 1; }
contrib/install-deps.sh
contrib/create-user.sh >/dev/null
echo "== building (release)"
swift build -c release 2>&1 | tail -1
BIN=$(swift build -c release --show-bin-path)

NS=keyway-demo
TMP=$(mktemp -d /tmp/keyway-demo.XXXXXX); chmod 755 "$TMP"
cleanup() { [ -n "${KPID:-}" ] && kill -TERM "$KPID" 2>/dev/null; sleep 0.5; ip netns del "$NS" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"; ip -n "$NS" link set lo up

echo "== starting keywayd in namespace $NS"
ip netns exec "$NS" "$BIN/keywayd" --foreground --run-dir "$TMP/run" --state-dir "$TMP/state" --syslog "$TMP/no-syslog" \
  >"$TMP/keywayd.log" 2>&1 &
KPID=$!
for _ in $(seq 50); do [ -S "$TMP/run/control.sock" ] && [ "$(pgrep -c -P $KPID)" = 3 ] && break; sleep 0.1; done
sleep 0.5

echo; echo "\$ keyway status"
ip netns exec "$NS" "$BIN/keyway" status --socket "$TMP/run/control.sock"
echo; echo "== sandbox of each process, from /proc"
printf '%-16s %7s %-12s %-18s %-18s %-4s %-8s %s\n' PROCESS PID UID CapEff CapBnd NNP SECCOMP ROOT
for pid in $KPID $(pgrep -P $KPID); do
  s=/proc/$pid/status
  f() { awk -v k="$1:" '$1 == k { print $2; exit }' "$s"; }
  printf '%-16s %7s %-12s %-18s %-18s %-4s %-8s %s\n' "$(cat /proc/$pid/comm)" "$pid" "$(f Uid)" "$(f CapEff)" "$(f CapBnd)" \
    "$(f NoNewPrivs)" "$(f Seccomp)" "$(readlink /proc/$pid/root)"
done
echo; echo "== kill -9 keyway-ike; keywayd restarts it"
kill -KILL "$(pgrep -P $KPID -x keyway-ike)"; sleep 1
ip netns exec "$NS" "$BIN/keyway" status --socket "$TMP/run/control.sock"
echo; echo "== configure it like a MikroTik router (the manual's AH tunnel example, Router1)"
K="ip netns exec $NS $BIN/keyway --socket $TMP/run/control.sock"
echo "\$ keyway -f Configs/tunnel-ah-manual-router1.rsc"; $K -f Configs/tunnel-ah-manual-router1.rsc
echo "\$ keyway /ip ipsec policy print"; $K /ip ipsec policy print
echo "\$ keyway /ip ipsec manual-sa print"; $K /ip ipsec manual-sa print
echo "\$ keyway /export"; $K /export
echo; echo "== audit log (stderr, as no syslog listens in the demo)"
tail -n 6 "$TMP/keywayd.log"
