#!/usr/bin/env bash
# Issue 12, Keyway to Keyway over IKEv2: the manual's automatic-keying examples with
# exchange-mode=ike2 (transport ESP, generate-policy, two masquerading routers behind nftables
# masquerade), one appliance with an IKEv1 peer and an IKEv2 peer at once, and a flood of forged
# IKE_SA_INITs that cannot keep the real peer out (COOKIE, RFC 7296 2.6).
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/lib.sh"

two_routers k
start() { start_keywayd "$@"; }
spis() { kw "$@" /ip ipsec installed-sa print | grep -o 'spi=[0-9A-F]*' | sort | tr '\n' ' '; }
same_spis() { [ -n "$(spis "$1" "$2")" ] && [ "$(spis "$1" "$2")" = "$(spis "$3" "$4")" ]; }
shows() { local ns=$1 name=$2 pattern=$3; shift 3; kw "$ns" "$name" "$@" | grep -q -- "$pattern"; }  # shows NS NAME PATTERN CMD...
stop_all() { kill -TERM "${PIDS[@]}" 2>/dev/null; sleep 1; PIDS=(); }

# --- The manual's transport mode example using ESP with automatic keying, with exchange-mode=ike2.
echo "-- transport ESP, automatic keying, exchange-mode=ike2"
cat >"$TMP/t1.rsc" <<'CONF'
ip ipsec policy add sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2 \
    action=encrypt
ip ipsec peer add address=192.0.2.2 \
    secret="gvejimezyfopmekun" exchange-mode=ike2
CONF
cat >"$TMP/t2.rsc" <<'CONF'
ip ipsec policy add sa-src-address=192.0.2.2 sa-dst-address=192.0.2.1 \
    action=encrypt
ip ipsec peer add address=192.0.2.1 \
    secret="gvejimezyfopmekun" exchange-mode=ike2
CONF
check "transport: router 1 starts" start "$R1" t1
check "transport: router 2 starts" start "$R2" t2
ip netns exec "$R2" timeout 60 tcpdump -ni "$V2" -w "$TMP/t.pcap" -U 2>/dev/null &
cap=$!
sleep 1
check "transport: ping from router 1 to router 2 (router 1 negotiates on the first packet)" \
  wait_until 15 ip netns exec "$R1" ping -c 1 -W 1 192.0.2.2
check "transport: ten more pings, none lost" ip netns exec "$R1" ping -q -c 10 -i 0.2 -W 1 192.0.2.2
check "transport: a 300 kB TCP transfer between the routers arrives intact" tcp_transfer "$R1" "$R2" 192.0.2.1 192.0.2.2
sleep 0.5; kill "$cap" 2>/dev/null; wait "$cap" 2>/dev/null
check "transport: the link carried IKEv2 (IKE_SA_INIT and IKE_AUTH on UDP 500)" \
  bash -c "tcpdump -nr '$TMP/t.pcap' 'udp port 500' 2>/dev/null | grep -q 'parent_sa ikev2_init' \
    && tcpdump -nr '$TMP/t.pcap' 'udp port 500' 2>/dev/null | grep -q 'ikev2_auth'"
check "transport: the link carried ESP" test "$(tcpdump -nr "$TMP/t.pcap" esp 2>/dev/null | wc -l)" -gt 20
check "transport: not one plaintext ICMP or TCP packet between the routers" \
  test "$(tcpdump -nr "$TMP/t.pcap" 'icmp or tcp' 2>/dev/null | wc -l)" = 0
sleep 1.2
check "transport: both routers show the same SA pair" same_spis "$R1" t1 "$R2" t2
check "transport: router 1 shows its IKEv2 SA as initiator" shows "$R1" t1 "side=initiator ike-version=2" /ip ipsec remote-peers print
check "transport: router 2 the responder side" shows "$R2" t2 "side=responder ike-version=2" /ip ipsec remote-peers print
check "transport: installed-sa print shows transport-mode ESP SAs" \
  bash -c "$(declare -f kw); BIN='$BIN' TMP='$TMP'; [ \$(kw '$R1' t1 /ip ipsec installed-sa print | grep -c 'spi=') = 2 ]"
stop_all

# --- The manual's generate-policy example, with exchange-mode=ike2 on both sides.
echo "-- generate-policy, exchange-mode=ike2"
cat >"$TMP/g1.rsc" <<'CONF'
ip ipsec peer add address=192.0.2.0/24 \
    secret="gvejimezyfopmekun" generate-policy=yes exchange-mode=ike2
CONF
cat >"$TMP/g2.rsc" <<'CONF'
ip ipsec policy add sa-src-address=192.0.2.2 sa-dst-address=192.0.2.1 \
    action=encrypt
ip ipsec peer add address=192.0.2.1 \
    secret="gvejimezyfopmekun" exchange-mode=ike2
CONF
dynamic_policies_are() { [ "$(kw "$R1" g1 /ip ipsec policy print | grep -cE '^ *[0-9]+ +D ')" = "$1" ]; }
check "generate-policy: router 1 starts (a peer, no policy)" start "$R1" g1
check "generate-policy: router 2 starts" start "$R2" g2
sleep 1
check "generate-policy: router 1 has no policy before anyone negotiates" \
  test "$(kw "$R1" g1 /ip ipsec policy print count-only)" = 0
check "generate-policy: ping from router 2 to router 1 (router 2 negotiates)" \
  wait_until 15 ip netns exec "$R2" ping -c 1 -W 1 192.0.2.1
check "generate-policy: router 1 generated a dynamic policy (flag D)" wait_until 10 dynamic_policies_are 1
check "generate-policy: the generated policy mirrors router 2's" \
  shows "$R1" g1 "src-address=192.0.2.1/32.*dst-address=192.0.2.2/32" /ip ipsec policy print
check "generate-policy: router 1 answers through it" ip netns exec "$R1" ping -q -c 3 -i 0.2 -W 1 192.0.2.2
check "generate-policy: a 300 kB TCP transfer arrives intact" tcp_transfer "$R2" "$R1" 192.0.2.2 192.0.2.1
kw "$R2" g2 /ip ipsec policy disable [find] >/dev/null
check "generate-policy: when router 2's policy goes, its Delete takes the generated policy away" \
  wait_until 10 dynamic_policies_are 0
stop_all

# --- The manual's two masquerading routers, keyed with exchange-mode=ike2 instead of aggressive.
echo "-- two masquerading routers, exchange-mode=ike2"
ip -n "$R1" addr add 10.1.0.1/32 dev lo
ip -n "$R2" addr add 10.2.0.1/32 dev lo
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
check "masquerade: router 1 masquerades its LAN" masquerade "$R1" "$V1" 10.1.0.0/24 10.2.0.0/24
check "masquerade: router 2 masquerades its LAN" masquerade "$R2" "$V2" 10.2.0.0/24 10.1.0.0/24
cat >"$TMP/m1.rsc" <<'CONF'
ip ipsec policy add src-address=10.1.0.0/24 \
    dst-address=10.2.0.0/24 action=encrypt tunnel=yes \
    sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2
ip ipsec peer add address=192.0.2.2 \
    exchange-mode=ike2 secret="gvejimezyfopmekun"
CONF
cat >"$TMP/m2.rsc" <<'CONF'
ip ipsec policy add src-address=10.2.0.0/24 \
    dst-address=10.1.0.0/24 action=encrypt tunnel=yes \
    sa-src-address=192.0.2.2 sa-dst-address=192.0.2.1
ip ipsec peer add address=192.0.2.1 \
    exchange-mode=ike2 secret="gvejimezyfopmekun"
CONF
check "masquerade: router 1 starts" start "$R1" m1
check "masquerade: router 2 starts" start "$R2" m2
ip netns exec "$R2" timeout 60 tcpdump -ni "$V2" -w "$TMP/m.pcap" -U 2>/dev/null &
cap=$!
sleep 1
check "masquerade: LAN to LAN ping" wait_until 15 ip netns exec "$R1" ping -c 1 -W 1 -I 10.1.0.1 10.2.0.1
check "masquerade: a 300 kB TCP transfer between the LANs arrives intact" tcp_transfer "$R1" "$R2" 10.1.0.1 10.2.0.1
ip netns exec "$R2" timeout 5 tcpdump -ni "$V2" -c 1 'icmp and dst host 192.0.2.2' >"$TMP/masq.txt" 2>/dev/null &
probe=$!
sleep 0.5
ip netns exec "$R1" ping -c 1 -W 1 -I 10.1.0.1 192.0.2.2 >/dev/null 2>&1
wait "$probe"
check "masquerade: traffic outside the policy leaves masqueraded" grep -q "192.0.2.1 > 192.0.2.2: ICMP echo request" "$TMP/masq.txt"
sleep 0.5; kill "$cap" 2>/dev/null; wait "$cap" 2>/dev/null
check "masquerade: nothing between the LANs in the clear" test "$(tcpdump -nr "$TMP/m.pcap" 'net 10.0.0.0/8' 2>/dev/null | wc -l)" = 0
sleep 1.2
check "masquerade: both routers show the same SA pair" same_spis "$R1" m1 "$R2" m2
stop_all
ip netns exec "$R1" nft flush ruleset; ip netns exec "$R2" nft flush ruleset

# --- One appliance, an IKEv1 peer and an IKEv2 peer at once: router 1 talks main mode to router 2
# and IKEv2 to router 3 (on a second link, 198.51.100.0/24).
echo "-- an IKEv1 peer and an IKEv2 peer on one appliance"
R3=$(new_netns r3)
ip link add "kwk$$c" netns "$R1" type veth peer name "kwk$$d" netns "$R3"
ip -n "$R1" addr add 198.51.100.1/24 dev "kwk$$c"; ip -n "$R1" link set "kwk$$c" up
ip -n "$R3" addr add 198.51.100.2/24 dev "kwk$$d"; ip -n "$R3" link set "kwk$$d" up
ip netns exec "$R3" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip -n "$R3" addr add 10.3.0.1/32 dev lo
cat >"$TMP/x1.rsc" <<'CONF'
/ip ipsec peer add address=192.0.2.2 secret="one for main mode" exchange-mode=main
/ip ipsec peer add address=198.51.100.2 secret="one for ike2" exchange-mode=ike2 enc-algorithm=aes-256-gcm \
    hash-algorithm=sha256 dh-group=curve25519
/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2
/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.3.0.0/24 tunnel=yes sa-src-address=198.51.100.1 sa-dst-address=198.51.100.2
CONF
cat >"$TMP/x2.rsc" <<'CONF'
/ip ipsec peer add address=192.0.2.1 secret="one for main mode" exchange-mode=main
/ip ipsec policy add src-address=10.2.0.0/24 dst-address=10.1.0.0/24 tunnel=yes sa-src-address=192.0.2.2 sa-dst-address=192.0.2.1
CONF
cat >"$TMP/x3.rsc" <<'CONF'
/ip ipsec peer add address=198.51.100.1 secret="one for ike2" exchange-mode=ike2 enc-algorithm=aes-256-gcm \
    hash-algorithm=sha256 dh-group=curve25519
/ip ipsec policy add src-address=10.3.0.0/24 dst-address=10.1.0.0/24 tunnel=yes sa-src-address=198.51.100.2 sa-dst-address=198.51.100.1
CONF
check "mixed: router 1 starts" start "$R1" x1
check "mixed: router 2 (IKEv1) starts" start "$R2" x2
check "mixed: router 3 (IKEv2) starts" start "$R3" x3
sleep 1
check "mixed: router 1 reaches router 2's LAN over IKEv1" wait_until 15 ip netns exec "$R1" ping -c 1 -W 1 -I 10.1.0.1 10.2.0.1
check "mixed: router 1 reaches router 3's LAN over IKEv2" wait_until 15 ip netns exec "$R1" ping -c 1 -W 1 -I 10.1.0.1 10.3.0.1
check "mixed: router 3 starts a negotiation of its own too (its SAs exist already)" \
  ip netns exec "$R3" ping -q -c 3 -i 0.2 -W 1 -I 10.3.0.1 10.1.0.1
sleep 1.2
check "mixed: remote-peers print on router 1 shows an IKEv1 and an IKEv2 SA" \
  bash -c "$(declare -f kw shows); BIN='$BIN' TMP='$TMP'; \
    shows '$R1' x1 '\"remote-address\":\"192.0.2.2\"[^}]*\"ike-version\":\"1\"' --json /ip ipsec remote-peers print && \
    shows '$R1' x1 '\"remote-address\":\"198.51.100.2\"[^}]*\"ike-version\":\"2\"' --json /ip ipsec remote-peers print"
check "mixed: router 1 holds four SAs (two pairs)" \
  bash -c "$(declare -f kw); BIN='$BIN' TMP='$TMP'; [ \$(kw '$R1' x1 /ip ipsec installed-sa print | grep -c 'spi=') = 4 ]"
check "mixed: the IKEv2 SA is AES-GCM with curve25519, the IKEv1 one 3DES" \
  bash -c "grep -q 'ike-established .*peer=\"198.51.100.2:500\".*proposal=\"aes-256-gcm/prf-sha256/curve25519\"' '$TMP/x1.log' \
    && grep -q 'ike-established .*peer=\"192.0.2.2:500\".*proposal=\"3des/md5/modp1024\"' '$TMP/x1.log'"
stop_all

# --- A flood of forged IKE_SA_INITs with the real peer's own address and port, while the real
# peer (router 2) negotiates: past ten half-open SAs every IKE_SA_INIT gets a COOKIE and no state,
# so the flood fills nothing, and the real peer returns its cookie.
echo "-- IKE_SA_INIT flood"
for r in 1 2; do
  cat >"$TMP/f$r.rsc" <<CONF
/ip ipsec peer add address=192.0.2.$((3 - r)) secret="flood-test-secret" exchange-mode=ike2 \
    hash-algorithm=sha256 enc-algorithm=aes-128 dh-group=modp2048
/ip ipsec policy add sa-src-address=192.0.2.$r sa-dst-address=192.0.2.$((3 - r)) action=encrypt
CONF
done
check "flood: router 1 (the appliance) starts" start "$R1" f1
n1=$((${#PIDS[@]} - 1))
check "flood: router 2 (the real peer) starts" start "$R2" f2
sleep 1
IKEPID=$(pgrep -P "${PIDS[$n1]}" -x keyway-ike)
cat >"$TMP/flood.py" <<'PY'
import os, socket, struct, sys, time
count, rate = int(sys.argv[1]), int(sys.argv[2])
src, dst = socket.inet_aton("192.0.2.2"), socket.inet_aton("192.0.2.1")
def payload(next_type, data): return struct.pack("!BBH", next_type, 0, len(data) + 4) + data
def transform(last, ttype, tid, attr=b""): return struct.pack("!BBHBBH", 0 if last else 3, 0, 8 + len(attr), ttype, 0, tid) + attr
ts = transform(0, 1, 12, struct.pack("!HH", 0x800e, 128)) + transform(0, 2, 5) + transform(0, 3, 12) + transform(1, 4, 14)
proposal = payload(0, struct.pack("!BBBB", 1, 1, 0, 4) + ts)[0:0] + struct.pack("!BBHBBBB", 0, 0, 8 + len(ts), 1, 1, 0, 4) + ts
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.SOL_SOCKET, 36, 0x4B57)   # SO_MARK: Keyway's bypass mark
deadline, sent, start = time.time() + 60, 0, time.time()
while sent < count and time.time() < deadline:
    ke = struct.pack("!HH", 14, 0) + bytes([0x7f]) + os.urandom(255)
    body = payload(34, proposal) + payload(40, ke) + payload(0, os.urandom(32))
    ike = os.urandom(8) + b"\0" * 8 + struct.pack("!BBBBII", 33, 0x20, 34, 0x08, 0, 28 + len(body)) + body
    udp = struct.pack("!HHHH", 500, 500, 8 + len(ike), 0) + ike
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, dst)
    s.sendto(ip + udp, ("192.0.2.1", 0))
    sent += 1
    ahead = sent / rate - (time.time() - start)
    if ahead > 0.005: time.sleep(ahead)
print(sent)
PY
ip netns exec "$R1" timeout 60 tcpdump -ni "$V1" -w "$TMP/flood.pcap" -U 'udp port 500' 2>/dev/null &
cap=$!
sleep 1
ip netns exec "$R2" python3 "$TMP/flood.py" 10000 2000 >"$TMP/flood.out" 2>&1 &
flooder=$!
PIDS+=($flooder)
sleep 1.5
check "flood: the flood is still running when the real peer starts" kill -0 "$flooder"
check "flood: the real peer establishes and pings across within 10 s, during the flood" \
  wait_until 10 ip netns exec "$R2" ping -c 1 -W 1 192.0.2.1
check "flood: ... while the flood was still running" kill -0 "$flooder"
wait "$flooder"
check "flood: at least 5,000 forged IKE_SA_INITs were sent" test "$(cat "$TMP/flood.out")" -ge 5000
sleep 1.2
kill "$cap" 2>/dev/null; wait "$cap" 2>/dev/null
answered=$(tcpdump -nr "$TMP/flood.pcap" 'src host 192.0.2.1 and src port 500' 2>/dev/null | wc -l)
echo "  keyway-ike answered $answered IKE_SA_INITs (cookies, statelessly)"
check "flood: keyway-ike answered at least 5,000 of them (with cookies)" test "$answered" -ge 5000
check "flood: the appliance audited that it answered with cookies" grep -q "ike-cookie" "$TMP/f1.log"
check "flood: both routers show the same SA pair" same_spis "$R1" f1 "$R2" f2
check "flood: keyway-ike on the appliance kept its pid" test "$(pgrep -P "${PIDS[$n1]}" -x keyway-ike)" = "$IKEPID"
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$IKEPID/status")
echo "  keyway-ike resident memory after the flood: ${rss:-?} kB"
check "flood: keyway-ike's memory stayed bounded (under 128 MB)" test "${rss:-999999}" -lt 131072
check "flood: the flood did not turn into one audit line per datagram" \
  test "$(grep -c "keyway-ike" "$TMP/f1.log")" -lt 1000
check "no child was killed by its seccomp filter" not grep -F SIGSYS "$TMP"/*.log
summary
