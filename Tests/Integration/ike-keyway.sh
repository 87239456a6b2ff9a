#!/usr/bin/env bash
# Issue 6, Keyway to Keyway: the manual's "transport mode example using ESP with automatic
# keying", verbatim but for the addresses (192.0.2.1 and .2 for 1.0.0.1 and .2). Router 1
# initiates on traffic; ping and a TCP transfer between the routers succeed; the capture holds
# IKE and ESP only; both appliances show the phase 1 and the same SAs.
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/lib.sh"

two_routers v
# A second address on router 1: the route into the TUN device must still leave local traffic
# with the policy's sa-src-address (without a preferred source the kernel picked this one).
ip -n "$R1" addr add 10.9.9.1/32 dev lo

cat >"$TMP/router1.rsc" <<'CONF'
ip ipsec policy add sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2 \
    action=encrypt
ip ipsec peer add address=192.0.2.2 \
    secret="gvejimezyfopmekun"
CONF
cat >"$TMP/router2.rsc" <<'CONF'
ip ipsec policy add sa-src-address=192.0.2.2 sa-dst-address=192.0.2.1 \
    action=encrypt
ip ipsec peer add address=192.0.2.1 \
    secret="gvejimezyfopmekun"
CONF

start() { start_keywayd "$@"; }
spis() { kw "$@" /ip ipsec installed-sa print | grep -o 'spi=[0-9A-F]*' | sort | tr '\n' ' '; }

check "router 1 starts" start "$R1" router1
check "router 2 starts" start "$R2" router2
check "the route into the TUN device prefers the policy's source address" wait_until 5 bash -c "ip -n '$R1' route show table 19287 | grep -q '192.0.2.2 dev kwtun0 .*src 192.0.2.1'"
ip netns exec "$R2" timeout 60 tcpdump -ni "$V2" -w "$TMP/cap.pcap" -U 2>/dev/null &
cap=$!
sleep 1
check "ping from router 1 to router 2 (router 1 negotiates on the first packet)" wait_until 15 ip netns exec "$R1" ping -c 1 -W 1 192.0.2.2
check "ten more pings, none lost" ip netns exec "$R1" ping -q -c 10 -i 0.2 -W 1 192.0.2.2
check "a 300 kB TCP transfer between the routers arrives intact" tcp_transfer "$R1" "$R2" 192.0.2.1 192.0.2.2
sleep 0.5; kill "$cap" 2>/dev/null; wait "$cap" 2>/dev/null
check "the link carried IKE (UDP 500)" test "$(tcpdump -nr "$TMP/cap.pcap" 'udp port 500' 2>/dev/null | wc -l)" -ge 9
check "the link carried ESP" test "$(tcpdump -nr "$TMP/cap.pcap" esp 2>/dev/null | wc -l)" -gt 20
check "not one plaintext ICMP or TCP packet between the routers" test "$(tcpdump -nr "$TMP/cap.pcap" 'icmp or tcp' 2>/dev/null | wc -l)" = 0
sleep 1.2
check "both routers show the same SA pair" bash -c "[ -n \"\$1\" ] && [ \"\$1\" = \"\$2\" ]" _ "$(spis "$R1" router1)" "$(spis "$R2" router2)"
check "router 1: remote-peers print shows the phase 1 it initiated" bash -c "$(declare -f kw); BIN='$BIN' TMP='$TMP'; kw '$R1' router1 /ip ipsec remote-peers print | grep -q 'remote-address=192.0.2.2 state=established' && kw '$R1' router1 /ip ipsec remote-peers print | grep -q 'side=initiator'"
check "router 2: remote-peers print shows the responder side" bash -c "$(declare -f kw); BIN='$BIN' TMP='$TMP'; kw '$R2' router2 /ip ipsec remote-peers print | grep -q 'side=responder'"
check "policy print stats: established with rising counters" bash -c "$(declare -f kw); BIN='$BIN' TMP='$TMP'; kw '$R1' router1 /ip ipsec policy print stats | grep -q 'ph2-state=established' && kw '$R1' router1 /ip ipsec policy print stats | grep -qE 'out-transformed=[1-9]'"

# ipsec-protocols=ah,esp with automatic keying: one quick mode keys both, and every packet
# between the LANs leaves as AH around ESP.
kill -TERM "${PIDS[@]}" 2>/dev/null; sleep 1
ip -n "$R1" addr add 10.1.0.1/32 dev lo; ip -n "$R2" addr add 10.2.0.1/32 dev lo
cat >"$TMP/bundle1.rsc" <<'CONF'
/ip ipsec peer add address=192.0.2.2 secret="gvejimezyfopmekun"
/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes ipsec-protocols=ah,esp sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2
CONF
cat >"$TMP/bundle2.rsc" <<'CONF'
/ip ipsec peer add address=192.0.2.1 secret="gvejimezyfopmekun"
/ip ipsec policy add src-address=10.2.0.0/24 dst-address=10.1.0.0/24 tunnel=yes ipsec-protocols=ah,esp sa-src-address=192.0.2.2 sa-dst-address=192.0.2.1
CONF
check "AH+ESP: router 1 starts" start "$R1" bundle1
check "AH+ESP: router 2 starts" start "$R2" bundle2
ip netns exec "$R2" timeout 30 tcpdump -ni "$V2" -w "$TMP/bundle.pcap" -U 2>/dev/null &
cap=$!
sleep 1
check "AH+ESP: ping between the LANs" wait_until 15 ip netns exec "$R1" ping -c 1 -W 1 -I 10.1.0.1 10.2.0.1
check "AH+ESP: ten more pings, none lost" ip netns exec "$R1" ping -q -c 10 -i 0.2 -W 1 -I 10.1.0.1 10.2.0.1
sleep 0.5; kill "$cap" 2>/dev/null; wait "$cap" 2>/dev/null
check "AH+ESP: the packets between the routers are AH around ESP" bash -c "tcpdump -nr '$TMP/bundle.pcap' ah 2>/dev/null | grep -c 'AH(.*ESP(' | grep -qv '^0$'"
check "AH+ESP: nothing between the LANs in the clear" test "$(tcpdump -nr "$TMP/bundle.pcap" 'net 10.0.0.0/8' 2>/dev/null | wc -l)" = 0
sleep 1.2
check "AH+ESP: installed-sa print shows two AH and two ESP SAs" bash -c "$(declare -f kw); BIN='$BIN' TMP='$TMP'; out=\$(kw '$R1' bundle1 /ip ipsec installed-sa print); [ \$(grep -cE '^ *[0-9]+ +AP? ' <<<\"\$out\") = 2 ] && [ \$(grep -cE '^ *[0-9]+ +EP? ' <<<\"\$out\") = 2 ]"
check "no child was killed by its seccomp filter" \
  not grep -F SIGSYS "$TMP/router1.log" "$TMP/router2.log" "$TMP/bundle1.log" "$TMP/bundle2.log"
summary
