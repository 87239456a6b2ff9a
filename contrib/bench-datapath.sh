#!/usr/bin/env bash
# Datapath benchmark: in-process figures (keyway-bench datapath), then iperf3 TCP between two
# protected subnets through two Keyway appliances (manual keys), beside iperf3 over the bare
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
for variant in "aes-128-gcm null feffe9928665731c6d6a8f9467308308cafebabe" "aes-128 sha1 0123456789abcdef0123456789abcdef"; do
  set -- $variant
  enc=$1 auth=$2 ek=$3 ak=00112233445566778899aabbccddeeff00112233
  keys="esp-enc-algorithm=$enc esp-auth-algorithm=$auth esp-enc-key=$ek"; [ "$auth" != null ] && keys="$keys esp-auth-key=$ak"
  printf '/ip ipsec manual-sa add name=s esp-spi=0x201/0x200 %s\n/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2 manual-sa=s\n' "$keys" >"$TMP/a.rsc"
  printf '/ip ipsec manual-sa add name=s esp-spi=0x200/0x201 %s\n/ip ipsec policy add src-address=10.2.0.0/24 dst-address=10.1.0.0/24 tunnel=yes sa-src-address=192.0.2.2 sa-dst-address=192.0.2.1 manual-sa=s\n' "$keys" >"$TMP/b.rsc"
  for s in a b; do
    ns=$A; [ $s = b ] && ns=$B
    rm -rf "$TMP/$s"
    ip netns exec $ns "$BIN/keywayd" --foreground --config "$TMP/$s.rsc" --run-dir "$TMP/$s/run" --state-dir "$TMP/$s/state" --syslog "$TMP/nolog" --tun kwtun0 >"$TMP/$s.log" 2>&1 &
  done
  for _ in $(seq 50); do ip -n $A route show table 19287 2>/dev/null | grep -q kwtun0 && ip -n $B route show table 19287 2>/dev/null | grep -q kwtun0 && break; sleep 0.2; done
  through=$(iperf 10.1.0.1 10.2.0.1)
  echo "iperf3 keyway-$enc/$auth $through Gbit/s ratio $(python3 -c "print(f'{$through/$bare:.3f}')") of bare veth"
  pkill -TERM -f "$TMP/a/run" || true; pkill -TERM -f "$TMP/b/run" || true; sleep 1
done
