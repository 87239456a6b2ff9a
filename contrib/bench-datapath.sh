#!/usr/bin/env bash
# Datapath benchmark: iperf3 TCP between two protected "LAN" hosts (10.1.0.1 and 10.2.0.1 on lo) in two
# namespaces joined by a veth (192.0.2.1/.2), through each of these paths, in ONE run:
#   bare veth; wireguard-go (userspace, TUN); strongSwan 5.9.8 kernel-libipsec (ESP in UDP, as it always is
#   with libipsec) with aes128gcm16 and aes128-sha1; Keyway <-> Keyway (IKE-keyed) with aes-128-gcm and
#   aes-128/sha1, each with raw ESP and with ESP in UDP; Keyway aes-128-gcm raw ESP with --offloads off.
# Every path gets its own pair of namespaces and its appliances are started once; the runs are interleaved
# (round 1 of every path, then round 2, ...) so that a noisy neighbour on the machine hits all paths alike.
# Prints per path the median Gbit/s of RUNS runs of SECONDS each, its ratio to wireguard-go, the median
# retransmits and, for appliance paths, the appliance processes' CPU time per 100 MB transferred (less noisy
# than Gbit/s on a shared machine); then the in-process figures (keyway-bench datapath).
# Run as root; leaves nothing behind, also on Ctrl-C.
# Usage: contrib/bench-datapath.sh [RUNS] [SECONDS]       (or RUNS=, SECONDS= in the environment)
#   PATHS="veth wg kw-gcm ..." runs a subset (ids below); SKIP_INPROCESS=1 skips keyway-bench;
#   CPUS=LIST (taskset's list, e.g. CPUS=0) pins every appliance and iperf3 end to those cores, to see what
#   another core gives.
set -uo pipefail
cd "$(dirname "$0")/.."

# bash turns $SECONDS into its own clock; read the value it was started with from the environment.
env_seconds=$(tr '\0' '\n' </proc/$$/environ | sed -n 's/^SECONDS=//p')
RUNS=${1:-${RUNS:-3}}
SECS=${2:-${env_seconds:-8}}
[[ "$RUNS" =~ ^[1-9][0-9]*$ && "$SECS" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [RUNS] [SECONDS]" >&2; exit 2; }
ALL_PATHS="veth wg sw-gcm sw-sha1 kw-gcm kw-sha1 kw-gcm-udp kw-sha1-udp kw-gcm-nooffload"
PATHS=${PATHS:-$ALL_PATHS}
PSK=bench-secret-0123456789
PIN=()
[ -z "${CPUS:-}" ] || PIN=(taskset -c "$CPUS")

need() {  # need COMMAND PACKAGE...: installs the packages if COMMAND is missing
  local cmd=$1; shift
  command -v "$cmd" >/dev/null && return
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
# The benchmark's own tools (CI does not run it, so they are not in install-deps.sh).
need iperf3 iperf3
need wireguard-go wireguard-go
need wg wireguard-tools
need swanctl strongswan-swanctl strongswan-charon libcharon-extra-plugins libstrongswan-extra-plugins \
  libstrongswan-standard-plugins
swift build -c release 2>&1 | tail -1
BIN=$(swift build -c release --show-bin-path)

TMP=$(mktemp -d /tmp/keyway-bench.XXXXXX); chmod 755 "$TMP"
NSPREFIX=kwb$$
declare -A SRC DST PROCS FAILED KEYWAYD WGPID CHARONDIR
CLEANED=0

cleanup() {
  [ "$CLEANED" = 1 ] && return; CLEANED=1
  local p ns d
  for p in "$TMP"/*.iperf.pid; do [ -s "$p" ] && kill -TERM "$(cat "$p")" 2>/dev/null; done
  for p in "${KEYWAYD[@]}" "${WGPID[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for d in "${CHARONDIR[@]}"; do contrib/strongswan-peer.sh stop "$d" 2>/dev/null; done
  for _ in $(seq 50); do
    local alive=0
    for p in "${KEYWAYD[@]}" "${WGPID[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.1
  done
  # Whatever is still alive in our namespaces was started by this run.
  for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep "^$NSPREFIX-"); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

# The children must be root's and in root-owned directories nobody else may write: run copies.
mkdir -p "$TMP/bin"
for f in keywayd keyway-ike keyway-datapath keyway-monitor keyway; do install -m 0755 "$BIN/$f" "$TMP/bin/$f"; done

ns_a() { echo "$NSPREFIX-$1-a"; }
ns_b() { echo "$NSPREFIX-$1-b"; }

new_pair() {  # new_pair ID: namespaces A and B joined by a veth, the LAN hosts as /32 on lo
  local a b ns; a=$(ns_a "$1") b=$(ns_b "$1")
  for ns in "$a" "$b"; do
    ip netns add "$ns" && ip -n "$ns" link set lo up || return 1
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 || return 1
  done
  ip link add kwba netns "$a" type veth peer name kwbb netns "$b" || return 1
  ip -n "$a" addr add 192.0.2.1/24 dev kwba && ip -n "$a" link set kwba up || return 1
  ip -n "$b" addr add 192.0.2.2/24 dev kwbb && ip -n "$b" link set kwbb up || return 1
  ip -n "$a" addr add 10.1.0.1/32 dev lo && ip -n "$b" addr add 10.2.0.1/32 dev lo
}

ping_across() {  # ping_across ID: true once a ping from 10.1.0.1 reaches 10.2.0.1 (at most 30 s)
  for _ in $(seq 30); do
    ip netns exec "$(ns_a "$1")" ping -c 1 -W 1 -I 10.1.0.1 10.2.0.1 >/dev/null 2>&1 && return 0
  done
  return 1
}

start_veth() {  # start_veth ID
  new_pair "$1" || return 1
  SRC[$1]=192.0.2.1 DST[$1]=192.0.2.2 PROCS[$1]=""
}

start_wireguard() {  # start_wireguard ID: wireguard-go on each side, 10.x/24 routed into its TUN
  local id=$1 s ns dev peer here there theirs
  new_pair "$id" || return 1
  for s in a b; do
    (umask 077; wg genkey >"$TMP/$id.$s.key") && wg pubkey <"$TMP/$id.$s.key" >"$TMP/$id.$s.pub" || return 1
  done
  for s in a b; do
    # The UAPI socket (/var/run/wireguard/DEV.sock) is not per namespace: the device name carries our pid.
    ns=$(ns_a "$id") dev=wg$$a peer=b there=192.0.2.2 theirs=10.2.0.0/24 here=10.1.0.1
    [ $s = b ] && ns=$(ns_b "$id") dev=wg$$b peer=a there=192.0.2.1 theirs=10.1.0.0/24 here=10.2.0.1
    ip netns exec "$ns" "${PIN[@]}" env LOG_LEVEL=error wireguard-go -f "$dev" >"$TMP/$id.$s.wg.log" 2>&1 &
    WGPID[$id.$s]=$!
    for _ in $(seq 50); do [ -S "/var/run/wireguard/$dev.sock" ] && break; sleep 0.1; done
    ip netns exec "$ns" wg set "$dev" private-key "$TMP/$id.$s.key" listen-port 51820 \
      peer "$(cat "$TMP/$id.$peer.pub")" allowed-ips "$theirs" endpoint "$there:51820" || return 1
    ip -n "$ns" link set "$dev" up && ip -n "$ns" route add "$theirs" dev "$dev" src "$here" || return 1
  done
  SRC[$id]=10.1.0.1 DST[$id]=10.2.0.1 PROCS[$id]=wireguard-go
  ping_across "$id"
}

start_strongswan() {  # start_strongswan ID ESP_PROPOSAL: charon with kernel-libipsec on each side, IKEv1
  local id=$1 esp=$2 s ns dir here there mine theirs
  new_pair "$id" || return 1
  for s in a b; do
    ns=$(ns_a "$id") here=192.0.2.1 there=192.0.2.2 mine=10.1.0.0/24 theirs=10.2.0.0/24
    [ $s = b ] && ns=$(ns_b "$id") here=192.0.2.2 there=192.0.2.1 mine=10.2.0.0/24 theirs=10.1.0.0/24
    dir=$TMP/$id.$s.sw; mkdir -p "$dir"
    cat >"$dir/swanctl.conf" <<CONF
connections {
  bench {
    version = 1
    local_addrs = $here
    remote_addrs = $there
    proposals = aes128-sha256-modp2048
    local { auth = psk }
    remote { auth = psk }
    children {
      net {
        local_ts = $mine
        remote_ts = $theirs
        esp_proposals = $esp
      }
    }
  }
}
secrets { ike-bench { secret = "$PSK" } }
CONF
    CHARONDIR[$id.$s]=$dir
    "${PIN[@]}" contrib/strongswan-peer.sh start "$ns" "$dir" || return 1
  done
  # libipsec does not start a tunnel on traffic.
  timeout --foreground 30 contrib/strongswan-peer.sh swanctl "$TMP/$id.a.sw" --initiate --child net --timeout 20 \
    >"$TMP/$id.initiate.log" 2>&1 || return 1
  SRC[$id]=10.1.0.1 DST[$id]=10.2.0.1 PROCS[$id]=charon
  ping_across "$id"
}

start_keyway() {  # start_keyway ID ENC AUTH esp|udp on|off: keywayd on each side, IKE-keyed tunnel
  local id=$1 enc=$2 auth=$3 encap=$4 offloads=$5 s ns here there mine theirs extra
  new_pair "$id" || return 1
  for s in a b; do
    ns=$(ns_a "$id") here=192.0.2.1 there=192.0.2.2 mine=10.1.0.0/24 theirs=10.2.0.0/24 extra=""
    [ $s = b ] && ns=$(ns_b "$id") here=192.0.2.2 there=192.0.2.1 mine=10.2.0.0/24 theirs=10.1.0.0/24
    # ESP in UDP between peers with no NAT between them: both allow NAT traversal, A forces it.
    [ "$encap" = udp ] && extra="nat-traversal=yes" && [ $s = a ] && extra="$extra force-udp-encapsulation=yes"
    printf '%s\n' \
      "/ip ipsec proposal set default enc-algorithms=$enc auth-algorithms=$auth pfs-group=none lifetime=1h" \
      "/ip ipsec peer add address=$there secret=$PSK hash-algorithm=sha256 enc-algorithm=aes-128 \
        dh-group=modp2048 $extra" \
      "/ip ipsec policy add src-address=$mine dst-address=$theirs tunnel=yes sa-src-address=$here \
        sa-dst-address=$there" >"$TMP/$id.$s.rsc"
    ip netns exec "$ns" "${PIN[@]}" "$TMP/bin/keywayd" --foreground --config "$TMP/$id.$s.rsc" --run-dir "$TMP/$id.$s/run" \
      --state-dir "$TMP/$id.$s/state" --syslog "$TMP/nolog" --tun kwtun0 --offloads "$offloads" \
      >"$TMP/$id.$s.log" 2>&1 &
    KEYWAYD[$id.$s]=$!
  done
  for s in a b; do
    ns=$(ns_a "$id"); [ $s = b ] && ns=$(ns_b "$id")
    for _ in $(seq 50); do ip -n "$ns" route show table 19287 2>/dev/null | grep -q kwtun0 && break; sleep 0.2; done
  done
  SRC[$id]=10.1.0.1 DST[$id]=10.2.0.1 PROCS[$id]=keyway-datapath
  # The first packet starts the negotiation (and is dropped); the tunnel is up once a ping crosses.
  ping_across "$id"
}

start_path() {  # start_path ID
  case $1 in
    veth) start_veth "$1" ;;
    wg) start_wireguard "$1" ;;
    sw-gcm) start_strongswan "$1" aes128gcm16 ;;
    sw-sha1) start_strongswan "$1" aes128-sha1 ;;
    kw-gcm) start_keyway "$1" aes-128-gcm sha1 esp on ;;
    kw-sha1) start_keyway "$1" aes-128 sha1 esp on ;;
    kw-gcm-udp) start_keyway "$1" aes-128-gcm sha1 udp on ;;
    kw-sha1-udp) start_keyway "$1" aes-128 sha1 udp on ;;
    kw-gcm-nooffload) start_keyway "$1" aes-128-gcm sha1 esp off ;;
    *) echo "unknown path $1 (known: $ALL_PATHS)" >&2; return 1 ;;
  esac
}

label() {  # label ID: what the output line calls the path
  case $1 in
    veth) echo "bare-veth" ;;
    wg) echo "wireguard-go" ;;
    sw-gcm) echo "strongswan-aes128gcm16-udp" ;;
    sw-sha1) echo "strongswan-aes128-sha1-udp" ;;
    kw-gcm) echo "keyway-aes-128-gcm-esp" ;;
    kw-sha1) echo "keyway-aes-128-sha1-esp" ;;
    kw-gcm-udp) echo "keyway-aes-128-gcm-udp" ;;
    kw-sha1-udp) echo "keyway-aes-128-sha1-udp" ;;
    kw-gcm-nooffload) echo "keyway-aes-128-gcm-esp-offloads-off" ;;
  esac
}

cpu_ticks() {  # cpu_ticks ID: utime+stime (clock ticks) of the path's appliance processes on both sides
  local id=$1 total=0 ns pid f
  [ -n "${PROCS[$id]}" ] || { echo 0; return; }
  for ns in "$(ns_a "$id")" "$(ns_b "$id")"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "${PROCS[$id]}" ] || continue
      # Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
      f=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
      set -- $f
      total=$((total + ${12} + ${13}))
    done
  done
  echo $total
}

start_server() {  # start_server ID: an iperf3 server on the B side's host, kept for every round
  local id=$1
  ip netns exec "$(ns_b "$id")" "${PIN[@]}" iperf3 -s -B "${DST[$id]}" -D -I "$TMP/$id.iperf.pid" >/dev/null 2>&1 || return 1
  for _ in $(seq 20); do [ -s "$TMP/$id.iperf.pid" ] && return 0; sleep 0.1; done
  return 1
}

run_once() {  # run_once ID ROUND: one iperf3 run; appends "ID ROUND Gbit/s retransmits bytes cpu_ms" to results
  local id=$1 round=$2 before after
  before=$(cpu_ticks "$id")
  # --foreground: timeout stays in our process group, so Ctrl-C stops iperf3 at once.
  timeout --foreground $((SECS + 30)) ip netns exec "$(ns_a "$id")" \
    "${PIN[@]}" iperf3 -c "${DST[$id]}" -B "${SRC[$id]}" -t "$SECS" -J >"$TMP/$id.$round.json" 2>/dev/null
  after=$(cpu_ticks "$id")
  python3 - "$TMP/$id.$round.json" "$id" "$round" $((after - before)) "$(getconf CLK_TCK)" >>"$TMP/results" <<'PY'
import json, sys
path, pid, rnd, ticks, hz = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
try:
    end = json.load(open(path))["end"]
    rx, tx = end["sum_received"], end["sum_sent"]
    if rx["bytes"] <= 0:
        raise ValueError("nothing received")
    print(pid, rnd, rx["bits_per_second"] / 1e9, tx.get("retransmits", 0), rx["bytes"], ticks * 1000 / hz)
except (OSError, ValueError, KeyError, TypeError):
    print(pid, rnd, "failed")
PY
  sleep 1
}

echo "# bench-datapath $(date '+%F %T') runs=$RUNS seconds=$SECS cpus=${CPUS:-all} interleaved;" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# wireguard-go $(wireguard-go --version | awk 'NR == 1 { print $2 }') (Debian; no TUN offloads);" \
  "strongSwan $(dpkg-query -W -f '${Version}' strongswan-charon) kernel-libipsec (always ESP in UDP)"
ACTIVE=()
for id in $PATHS; do
  if start_path "$id" && start_server "$id"; then
    ACTIVE+=("$id")
  else
    FAILED[$id]=1
    echo "# $(label "$id"): setup failed; last lines of its logs:" >&2
    tail -n 5 "$TMP/$id".*log "$TMP/$id".*.sw/charon.log 2>/dev/null | sed 's/^/#   /' >&2
  fi
done
: >"$TMP/results"
for round in $(seq "$RUNS"); do
  for id in "${ACTIVE[@]}"; do run_once "$id" "$round"; done
done

# One line per path, in the order asked for.
for id in $PATHS; do
  printf '%s %s %s\n' "$id" "$(label "$id")" "${PROCS[$id]:-}"
done >"$TMP/order"
python3 - "$TMP/order" "$TMP/results" "$RUNS" <<'PY'
import statistics, sys
order = [line.split() for line in open(sys.argv[1])]
runs = {}
for line in open(sys.argv[2]):
    f = line.split()
    runs.setdefault(f[0], []).append(None if f[2] == "failed" else (float(f[2]), int(f[3]), int(f[4]), float(f[5])))
def median_gbps(pid):
    ok = [r for r in runs.get(pid, []) if r]
    return statistics.median(r[0] for r in ok) if ok else None
wg = median_gbps("wg")
width = max(len(o[1]) for o in order)
for o in order:
    pid, label, procs = o[0], o[1], (o[2] if len(o) > 2 else "")
    ok = [r for r in runs.get(pid, []) if r]
    if not ok:
        print(f"{label:<{width}}  failed (no run produced a figure)")
        continue
    gbps = statistics.median(r[0] for r in ok)
    ratio = f"{gbps / wg:.2f}" if wg else "n/a"
    each = " ".join("x" if r is None else f"{r[0]:.2f}" for r in runs[pid])
    retr = statistics.median(r[1] for r in ok)
    line = (f"{label:<{width}}  {gbps:6.2f} Gbit/s  ratio-to-wireguard-go {ratio:>5}"
            f"  (runs: {each}; retransmits median {retr:g})")
    if procs:
        cpu = statistics.median(r[3] / (r[2] / 1e8) for r in ok)
        line += f"  CPU {cpu:.0f} ms/100MB ({procs} x2)"
    print(line)
PY
echo "# load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
cleanup
[ "${SKIP_INPROCESS:-0}" = 1 ] || "$BIN/keyway-bench" datapath
