#!/usr/bin/env bash
# Issue 6, Keyway to Keyway: the manual's "IPsec between two masquerading MikroTik routers".
# Each router masquerades its LAN towards its public interface (nftables, step 1 of the manual:
# an accept rule for the protected traffic, then masquerade), and keys the tunnel between the
# LANs with aggressive mode. Traffic between the LANs goes through the tunnel unchanged; other
# traffic from a LAN leaves masqueraded.
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/lib.sh"

two_routers p
ip -n "$R1" addr add 10.1.0.1/32 dev lo
ip -n "$R2" addr add 10.2.0.1/32 dev lo

# Step 1, as nftables: accept (no NAT) what goes to the other LAN, masquerade the rest.
masquerade() {  # masquerade NS PUBLIC-IF OWN-LAN OTHER-LAN
  ip netns exec "$1" nft -f - <<NFT
table ip nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr $3 ip daddr $4 accept
    oifname "$2" ip saddr $3 masquerade
  }
}
NFT
}
check "router 1 masquerades its LAN on its public interface" masquerade "$R1" "$V1" 10.1.0.0/24 10.2.0.0/24
check "router 2 masquerades its LAN on its public interface" masquerade "$R2" "$V2" 10.2.0.0/24 10.1.0.0/24

# Step 2, the manual's configuration verbatim but for the addresses (1.0.0.x -> 192.0.2.x).
cat >"$TMP/router1.rsc" <<'CONF'
ip ipsec policy add src-address=10.1.0.0/24 \
    dst-address=10.2.0.0/24 action=encrypt tunnel=yes \
    sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2
ip ipsec peer add address=192.0.2.2 \
    exchange-mode=aggressive secret="gvejimezyfopmekun"
CONF
cat >"$TMP/router2.rsc" <<'CONF'
ip ipsec policy add src-address=10.2.0.0/24 \
    dst-address=10.1.0.0/24 action=encrypt tunnel=yes \
    sa-src-address=192.0.2.2 sa-dst-address=192.0.2.1
ip ipsec peer add address=192.0.2.1 \
    exchange-mode=aggressive secret="gvejimezyfopmekun"
CONF

start() { start_keywayd "$@"; }

check "router 1 starts" start "$R1" router1
check "router 2 starts" start "$R2" router2
ip netns exec "$R2" timeout 60 tcpdump -ni "$V2" -w "$TMP/cap.pcap" -U 2>/dev/null &
cap=$!
sleep 1
check "LAN to LAN ping (aggressive mode negotiated on the first packet)" wait_until 15 ip netns exec "$R1" ping -c 1 -W 1 -I 10.1.0.1 10.2.0.1
check "ten more pings, none lost" ip netns exec "$R1" ping -q -c 10 -i 0.2 -W 1 -I 10.1.0.1 10.2.0.1
check "a 300 kB TCP transfer between the LANs arrives intact" tcp_transfer "$R1" "$R2" 10.1.0.1 10.2.0.1
# Not protected: from router 1's LAN to router 2's public address, which must arrive masqueraded.
ip netns exec "$R2" timeout 5 tcpdump -ni "$V2" -c 1 'icmp and dst host 192.0.2.2' >"$TMP/masq.txt" 2>/dev/null &
probe=$!
sleep 0.5
ip netns exec "$R1" ping -c 1 -W 1 -I 10.1.0.1 192.0.2.2 >/dev/null 2>&1
wait "$probe"
check "traffic outside the policy leaves masqueraded (source 192.0.2.1, not 10.1.0.1)" grep -q "192.0.2.1 > 192.0.2.2: ICMP echo request" "$TMP/masq.txt"
sleep 0.5; kill "$cap" 2>/dev/null; wait "$cap" 2>/dev/null
check "the link carried aggressive mode" bash -c "tcpdump -nr '$TMP/cap.pcap' 'udp port 500' 2>/dev/null | grep -q 'phase 1 I agg'"
check "the link carried ESP between the routers" test "$(tcpdump -nr "$TMP/cap.pcap" 'esp and host 192.0.2.1 and host 192.0.2.2' 2>/dev/null | wc -l)" -gt 20
check "nothing between the LANs in the clear" test "$(tcpdump -nr "$TMP/cap.pcap" 'net 10.0.0.0/8' 2>/dev/null | wc -l)" = 0
sleep 1.2
check "both routers show the same SA pair" bash -c "[ -n \"\$1\" ] && [ \"\$1\" = \"\$2\" ]" _ \
  "$(kw "$R1" router1 /ip ipsec installed-sa print | grep -o 'spi=[0-9A-F]*' | sort | tr '\n' ' ')" \
  "$(kw "$R2" router2 /ip ipsec installed-sa print | grep -o 'spi=[0-9A-F]*' | sort | tr '\n' ' ')"
check "router 2: remote-peers print shows the responder side" bash -c "$(declare -f kw); BIN='$BIN' TMP='$TMP'; kw '$R2' router2 /ip ipsec remote-peers print | grep -q 'side=responder'"
summary
