#!/usr/bin/env bash
# Issue 6, Keyway to Keyway: the manual's "transport mode example using ESP with automatic keying
# and automatic policy generating on Router 1 and static policy on Router 2", verbatim but for
# the addresses. Router 1 has no policy at all: the one it needs appears when router 2
# negotiates (flag D in `policy print`), carries the traffic, and goes with its SAs.
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/lib.sh"

two_routers g

cat >"$TMP/router1.rsc" <<'CONF'
ip ipsec peer add address=192.0.2.0/24 \
    secret="gvejimezyfopmekun" generate-policy=yes
CONF
cat >"$TMP/router2.rsc" <<'CONF'
ip ipsec policy add sa-src-address=192.0.2.2 sa-dst-address=192.0.2.1 \
    action=encrypt
ip ipsec peer add address=192.0.2.1 \
    secret="gvejimezyfopmekun"
CONF

start() { start_keywayd "$@"; }
dynamic_policies() { kw "$R1" router1 /ip ipsec policy print | grep -cE '^ *[0-9]+ +D '; }
# dynamic_policies_are N: for wait_until, which must run the count again on every try.
dynamic_policies_are() { [ "$(dynamic_policies)" = "$1" ]; }

check "router 1 starts (a peer, no policy)" start "$R1" router1
check "router 2 starts" start "$R2" router2
sleep 1
check "router 1 has no policy before anyone negotiates" test "$(kw "$R1" router1 /ip ipsec policy print count-only)" = 0
ip netns exec "$R1" timeout 60 tcpdump -ni "$V1" -w "$TMP/cap.pcap" -U 2>/dev/null &
cap=$!
sleep 1
check "ping from router 2 to router 1 (router 2 negotiates on the first packet)" wait_until 15 ip netns exec "$R2" ping -c 1 -W 1 192.0.2.1
check "router 1 generated a dynamic policy (flag D)" wait_until 10 dynamic_policies_are 1
check "the generated policy mirrors router 2's" bash -c "$(declare -f kw); BIN='$BIN' TMP='$TMP'; kw '$R1' router1 /ip ipsec policy print | grep -q 'src-address=192.0.2.1/32.*dst-address=192.0.2.2/32'"
check "ten more pings, none lost" ip netns exec "$R2" ping -q -c 10 -i 0.2 -W 1 192.0.2.1
check "router 1 answers too: a ping from router 1 goes through the generated policy" ip netns exec "$R1" ping -q -c 3 -i 0.2 -W 1 192.0.2.2
check "a 300 kB TCP transfer arrives intact" tcp_transfer "$R2" "$R1" 192.0.2.2 192.0.2.1
sleep 0.5; kill "$cap" 2>/dev/null; wait "$cap" 2>/dev/null
check "the link carried ESP" test "$(tcpdump -nr "$TMP/cap.pcap" esp 2>/dev/null | wc -l)" -gt 20
check "not one plaintext ICMP or TCP packet between the routers" test "$(tcpdump -nr "$TMP/cap.pcap" 'icmp or tcp' 2>/dev/null | wc -l)" = 0
sleep 1.2
check "router 1: policy print stats shows the generated policy established" bash -c "$(declare -f kw); BIN='$BIN' TMP='$TMP'; kw '$R1' router1 /ip ipsec policy print stats | grep -q 'ph2-state=established'"
# The SAs go (flushed on router 1, deleted by IKE): the generated policy goes with them.
kw "$R2" router2 /ip ipsec policy disable 0 >/dev/null 2>&1 || kw "$R2" router2 /ip ipsec policy disable [find] >/dev/null
check "when router 2's policy goes, its Delete takes the generated policy away" wait_until 10 dynamic_policies_are 0
summary
