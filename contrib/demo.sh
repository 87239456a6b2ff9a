#!/usr/bin/env bash
# The demo: installs what is missing, builds, and joins two sites with an ESP tunnel keyed by
# IKE (the manual's router-to-router setup, with a pre-shared key), each site a Keyway appliance
# in its own network namespace, configured like a MikroTik router; and site 1 to a third site
# over IKEv2 (exchange-mode=ike2, AES-GCM and curve25519). Shows the sandboxed process tree, the
# configuration, pings across (site 1 negotiates on the first packet), the link carrying only IKE
# and ESP, and the printouts. Stops and cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: keywayd opens a TUN device, raw sockets and port 500" >&2; exit 1; }
contrib/install-deps.sh
contrib/create-user.sh >/dev/null
echo "== building (release)"
swift build -c release 2>&1 | tail -1
BIN=$(swift build -c release --show-bin-path)

TMP=$(mktemp -d /tmp/keyway-demo.XXXXXX); chmod 755 "$TMP"
A=keyway-site1 B=keyway-site2 C=keyway-site3
cleanup() {
  pkill -TERM -f "$TMP/" 2>/dev/null || true; sleep 1
  for n in $A $B $C; do ip netns pids $n 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del $n 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT
for n in $A $B $C; do
  ip netns del $n 2>/dev/null || true; ip netns add $n; ip -n $n link set lo up
  ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
ip link add kwdemo1 netns $A type veth peer name kwdemo2 netns $B
ip -n $A addr add 192.0.2.1/24 dev kwdemo1; ip -n $A link set kwdemo1 up; ip -n $A addr add 10.1.0.1/32 dev lo
ip -n $B addr add 192.0.2.2/24 dev kwdemo2; ip -n $B link set kwdemo2 up; ip -n $B addr add 10.2.0.1/32 dev lo
ip link add kwdemo3 netns $A type veth peer name kwdemo4 netns $C
ip -n $A addr add 198.51.100.1/24 dev kwdemo3; ip -n $A link set kwdemo3 up
ip -n $C addr add 198.51.100.2/24 dev kwdemo4; ip -n $C link set kwdemo4 up; ip -n $C addr add 10.3.0.1/32 dev lo

cat >"$TMP/site1.rsc" <<'RSC'
/ip ipsec peer add address=192.0.2.2/32 secret="correct-horse-battery-staple" \
    hash-algorithm=sha1 enc-algorithm=aes-128 dh-group=modp2048
/ip ipsec proposal set default auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=modp2048
/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes \
    sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2
# Site 3 speaks IKEv2: AES-GCM and curve25519 for the IKE SA, its own identity, an AES-GCM child.
/ip ipsec proposal add name=gcm enc-algorithms=aes-128-gcm pfs-group=curve25519
/ip ipsec peer add address=198.51.100.2/32 exchange-mode=ike2 secret="another-long-secret-for-site3" \
    enc-algorithm=aes-256-gcm hash-algorithm=sha256 dh-group=curve25519 my-id=fqdn:site1.example
/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.3.0.0/24 tunnel=yes proposal=gcm \
    sa-src-address=198.51.100.1 sa-dst-address=198.51.100.2
RSC
cat >"$TMP/site3.rsc" <<'RSC'
/ip ipsec proposal add name=gcm enc-algorithms=aes-128-gcm pfs-group=curve25519
/ip ipsec peer add address=198.51.100.1/32 exchange-mode=ike2 secret="another-long-secret-for-site3" \
    enc-algorithm=aes-256-gcm hash-algorithm=sha256 dh-group=curve25519 remote-id=fqdn:site1.example
/ip ipsec policy add src-address=10.3.0.0/24 dst-address=10.1.0.0/24 tunnel=yes proposal=gcm \
    sa-src-address=198.51.100.2 sa-dst-address=198.51.100.1
RSC
cat >"$TMP/site2.rsc" <<'RSC'
/ip ipsec peer add address=192.0.2.1/32 secret="correct-horse-battery-staple" \
    hash-algorithm=sha1 enc-algorithm=aes-128 dh-group=modp2048
/ip ipsec proposal set default auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=modp2048
/ip ipsec policy add src-address=10.2.0.0/24 dst-address=10.1.0.0/24 tunnel=yes \
    sa-src-address=192.0.2.2 sa-dst-address=192.0.2.1
RSC
for s in site1 site2 site3; do
  ns=$A; [ $s = site2 ] && ns=$B; [ $s = site3 ] && ns=$C
  ip netns exec $ns "$BIN/keywayd" --foreground --config "$TMP/$s.rsc" --run-dir "$TMP/$s/run" --state-dir "$TMP/$s/state" \
    --syslog "$TMP/no-syslog" --tun kwtun0 >"$TMP/$s.log" 2>&1 &
done
for _ in $(seq 50); do
  ip -n $A route show table 19287 2>/dev/null | grep -q kwtun0 && ip -n $B route show table 19287 2>/dev/null | grep -q kwtun0 \
    && ip -n $C route show table 19287 2>/dev/null | grep -q kwtun0 && break
  sleep 0.2
done
K1="ip netns exec $A $BIN/keyway --socket $TMP/site1/run/control.sock"

echo; echo "== site 1: the process tree, each child sandboxed"
echo "\$ keyway status"; $K1 status
KPID=$(pgrep -f "keywayd --foreground --config $TMP/site1.rsc" | head -1)
printf '\n%-16s %7s %-6s %-18s %-18s %-4s %-8s %s\n' PROCESS PID UID CapEff CapBnd NNP SECCOMP ROOT
for pid in $KPID $(pgrep -P "$KPID"); do
  f() { awk -v k="$1:" '$1 == k { print $2; exit }' "/proc/$pid/status"; }
  printf '%-16s %7s %-6s %-18s %-18s %-4s %-8s %s\n' "$(cat /proc/$pid/comm)" "$pid" "$(f Uid)" "$(f CapEff)" "$(f CapBnd)" \
    "$(f NoNewPrivs)" "$(f Seccomp)" "$(readlink /proc/$pid/root)"
done

echo; echo "== site 1's configuration"
echo "\$ keyway /export"; $K1 /export

echo; echo "== ping from site 1's LAN (10.1.0.1) to site 2's (10.2.0.1), capturing the link"
ip netns exec $B timeout 8 tcpdump -ni kwdemo2 -c 16 2>/dev/null &
sleep 0.5
ip netns exec $A ping -c 4 -i 0.5 -I 10.1.0.1 10.2.0.1 || true
sleep 2
echo; echo "== IKEv2: ping from site 1's LAN to site 3's (10.3.0.1), capturing that link"
ip netns exec $C timeout 8 tcpdump -ni kwdemo4 -c 12 2>/dev/null &
sleep 0.5
ip netns exec $A ping -c 4 -i 0.5 -I 10.1.0.1 10.3.0.1 || true
sleep 2
echo; echo "\$ keyway /ip ipsec remote-peers print    # ike-version: 1 towards site 2, 2 towards site 3"
$K1 /ip ipsec remote-peers print
echo "\$ keyway /ip ipsec installed-sa print"; $K1 /ip ipsec installed-sa print
echo "\$ keyway /ip ipsec policy print stats"; $K1 /ip ipsec policy print stats

echo; echo "== kill -9 keyway-datapath on site 1; keywayd restarts it, IKE renegotiates, the tunnel carries on"
kill -KILL "$(pgrep -P "$KPID" -x keyway-datapath)"; sleep 1.5
# Renegotiation with PFS can take a few seconds on a busy machine: wait for it (20 s at most).
for _ in $(seq 1 40); do ip netns exec $A ping -c 1 -W 1 -I 10.1.0.1 10.2.0.1 >/dev/null 2>&1 && break; sleep 0.5; done
ip netns exec $A ping -c 4 -i 0.5 -I 10.1.0.1 10.2.0.1 | tail -2
