#!/usr/bin/env bash
# Datapath benchmark: in-process figures (keyway-bench datapath), then iperf3 TCP between two
# protected subnets through two Keyway appliances (an IKE-keyed ESP tunnel; counter-mode ciphers
# are never manually keyed), beside iperf3 over the bare
# veth, in the same run. Medians of RUNS runs of SECONDS each. Run as root; leaves nothing behind.
# Usage: contrib/bench-datapath.sh [RUNS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3} SECS=${2:-5}
command -v iperf3 >/dev/null || { apt-get install -y -qq iperf3 >/dev/null; }
swift build -c release 2>&1 | tail -1
BIN=$(swift build -c release --show-bin-path)
[ "${SKIP_INPROCESS:-0}" = 1 ] || "$BIN/keyway-bench" datapath

TMP=$(mktemp -d /tmp/keyway-bench.XXXXXX); chmod 755 "$TMP"
A=kwbench-a B=kwbench-b
cleanup() { pkill -f "$TMP" 2>/dev/null || true; for n in $A $B; do ip netns pids $n 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del $n 2>/dev/null; done; rm -rf "$TMP"; }
trap cleanup EXIT
for n in $A $B; do ip netns del $n 2>/dev/null || true; ip netns add $n; ip -n $n link set lo up; ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
ip link add kwba netns $A type veth peer name kwbb netns $B
ip -n $A addr add 192.0.2.1/24 dev kwba; ip -n $A link set kwba up; ip -n $A addr add 10.1.0.1/32 dev lo
ip -n $B addr add 192.0.2.2/24 dev kwbb; ip -n $B link set kwbb up; ip -n $B addr add 10.2.0.1/32 dev lo

iperf() {  # iperf SRC DST -> median Gbit/s over RUNS runs
  local src=$1 dst=$2 results=()
  ip netns exec $B iperf3 -s -B "$dst" -D -I "$TMP/iperf.pid" >/dev/null
  sleep 0.5
  for _ in $(seq "$RUNS"); do
    results+=("$(ip netns exec $A iperf3 -c "$dst" -B "$src" -t "$SECS" -J | python3 -c '
import json, sys
e = json.load(sys.stdin)["end"]
print(e["sum_received"]["bits_per_second"] / 1e9, file=sys.stdout)
print("  (retransmits %d)" % e["sum_sent"].get("retransmits", 0), file=sys.stderr)')")
  done
  kill "$(cat "$TMP/iperf.pid")" 2>/dev/null || true; sleep 0.3
  printf '%s\n' "${results[@]}" | sort -g | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR + 1) / 2)] }'
}

bare=$(iperf 192.0.2.1 192.0.2.2)
echo "iperf3 bare-veth $bare Gbit/s"
for variant in "aes-128-gcm sha1" "aes-128 sha1"; do
  set -- $variant
  enc=$1 auth=$2
  for s in a b; do
    here=192.0.2.1 there=192.0.2.2 mine=10.1.0.0/24 theirs=10.2.0.0/24
    [ $s = b ] && here=192.0.2.2 there=192.0.2.1 mine=10.2.0.0/24 theirs=10.1.0.0/24
    printf '%s\n' \
      "/ip ipsec proposal set default enc-algorithms=$enc auth-algorithms=$auth pfs-group=none lifetime=1h" \
      "/ip ipsec peer add address=$there secret=bench-secret-0123 hash-algorithm=sha256 enc-algorithm=aes-128 \
        dh-group=modp2048" \
      "/ip ipsec policy add src-address=$mine dst-address=$theirs tunnel=yes \
        sa-src-address=$here sa-dst-address=$there" >"$TMP/$s.rsc"
  done
  for s in a b; do
    ns=$A; [ $s = b ] && ns=$B
    rm -rf "$TMP/$s"
    ip netns exec $ns "$BIN/keywayd" --foreground --config "$TMP/$s.rsc" --run-dir "$TMP/$s/run" --state-dir "$TMP/$s/state" --syslog "$TMP/nolog" --tun kwtun0 >"$TMP/$s.log" 2>&1 &
  done
  for _ in $(seq 50); do ip -n $A route show table 19287 2>/dev/null | grep -q kwtun0 && ip -n $B route show table 19287 2>/dev/null | grep -q kwtun0 && break; sleep 0.2; done
  # The first packet starts the negotiation (and is dropped); the tunnel is up once a ping crosses.
  for _ in $(seq 30); do ip netns exec $A ping -c 1 -W 1 -I 10.1.0.1 10.2.0.1 >/dev/null 2>&1 && break; done
  through=$(iperf 10.1.0.1 10.2.0.1)
  echo "iperf3 keyway-$enc/$auth $through Gbit/s ratio $(python3 -c "print(f'{$through/$bare:.3f}')") of bare veth"
  pkill -TERM -f "$TMP/a/run" || true; pkill -TERM -f "$TMP/b/run" || true; sleep 1
done
