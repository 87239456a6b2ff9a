#!/usr/bin/env bash
# Issue 11, offloads: two appliances whose TUN devices carry TSO super-packets (split by the
# sender's datapath, coalesced again by the receiver's) and whose ESP in UDP leaves segmented
# (UDP GSO) and arrives joined (UDP GRO). A transfer through the tunnel arrives with exactly the
# bytes sent, and scapy decrypts every ESP packet on the wire into a valid segment no longer than
# the TUN MTU. The same with raw ESP (manual keys), with ESP in UDP forced between the peers
# (IKE-keyed, force-udp-encapsulation=yes), and with offloads off.
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/lib.sh"
CHECK=$(cd "$(dirname "$0")" && pwd)/esp_check.py

two_routers o
ip -n "$R1" addr add 10.1.0.1/32 dev lo
ip -n "$R2" addr add 10.2.0.1/32 dev lo
EK=0123456789abcdef0123456789abcdef
AK=00112233445566778899aabbccddeeff00112233
SIZE=2000000

start() {  # start NS NAME [keywayd options...]
  local ns=$1 name=$2; shift 2
  rm -rf "${TMP:?}/$name"
  ip netns exec "$ns" "$BIN/keywayd" --foreground --config "$TMP/$name.rsc" --run-dir "$TMP/$name/run" \
    --state-dir "$TMP/$name/state" --syslog "$TMP/nolog" --tun kwtun0 "$@" >"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$name=$!"
  wait_until 10 ip -n "$ns" route show table 19287 dev kwtun0
}
stop() { local p; eval "p=\$PID_$1"; kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; }
# The datapath reports its state to the monitor once a second; the first report brings the offloads
# and the manual SAs. Until then status says "Offloads: none" whatever is on.
reported() { [ "$(kw "$1" "$2" /ip ipsec installed-sa print count-only)" -ge 1 ]; }
offloads_are() {  # offloads_are NS NAME LIST: after the datapath's first report, status names LIST
  reported "$1" "$2" && kw "$1" "$2" status | grep -qx "Offloads: $3"
}
counter() {  # counter NS NAME COUNTER -> value (0 when absent)
  kw "$1" "$2" counters | awk -F= -v k="$3" '$1 == k { v = $2 } END { print v + 0 }'
}

# transfer: $SIZE random bytes 10.1.0.1 -> 10.2.0.1:5001; true when the SHA-256 of what arrived
# is that of what was sent.
transfer() {
  rm -f "$TMP/rx" "$TMP/tx"
  ip netns exec "$R2" python3 -c "
import socket, hashlib
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('10.2.0.1', 5001))
s.listen(1); s.settimeout(30)
c, _ = s.accept(); c.settimeout(30); h = hashlib.sha256(); n = 0
while True:
    d = c.recv(262144)
    if not d: break
    h.update(d); n += len(d)
open('$TMP/rx', 'w').write(f'{n} {h.hexdigest()}')
" &
  local server=$!
  sleep 0.5
  ip netns exec "$R1" python3 -c "
import os, socket, hashlib
data = os.urandom($SIZE)
s = socket.create_connection(('10.2.0.1', 5001), timeout=30, source_address=('10.1.0.1', 0))
s.sendall(data); s.close()
print(len(data), hashlib.sha256(data).hexdigest())
" >"$TMP/tx"
  wait "$server"
  [ -s "$TMP/rx" ] && [ "$(cat "$TMP/tx")" = "$(cat "$TMP/rx")" ]
}

capture() { ip netns exec "$R2" timeout 60 tcpdump -B 32768 -s 0 -ni "$V2" -w "$TMP/$1.pcap" -U 2>/dev/null & CAP=$!; sleep 1; }
end_capture() { sleep 1.5; kill "$CAP" 2>/dev/null; wait "$CAP" 2>/dev/null; }

# verified LABEL PCAP SPI ENC ENCKEY AUTH AUTHKEY: scapy's count line for that SPI.
verify() {
  /usr/bin/python3 "$CHECK" verify "$2" "$3" "$4" "$5" "$6" "$7" 192.0.2.1 192.0.2.2 "$TUNMTU" >"$TMP/$1.verify" 2>&1
  cat "$TMP/$1.verify"
}

# Every ESP packet scapy counted decrypted into a valid TCP segment that fits the TUN MTU, none
# of the SA's sequence numbers is missing from the capture, and (raw ESP) they are as many as
# tcpdump saw for the SPI.
all_segments_valid() {  # all_segments_valid LABEL [WIRE_COUNT]
  local line; line=$(cat "$TMP/$1.verify")
  [[ "$line" =~ ^esp\ ([0-9]+)\ in-udp\ [0-9]+\ tcp\ ([0-9]+)\ bad\ 0\ longer-than-mtu\ 0\ sequence-gaps\ 0$ ]] \
    || return 1
  [ -z "${2:-}" ] || [ "${BASH_REMATCH[1]}" -eq "$2" ] || return 1
  [ "${BASH_REMATCH[2]}" -ge $((SIZE / TUNMTU)) ]
}

# The TUN MTU keywayd set: the link's 1500 less the largest overhead of the configured transforms.
tun_mtu() { ip -n "$1" -o link show kwtun0 | grep -o 'mtu [0-9]*' | cut -d' ' -f2; }

echo "-- raw ESP, manual keys, offloads on"
printf '%s\n%s\n' "/ip ipsec manual-sa add name=m esp-spi=0x201/0x200 esp-enc-algorithm=aes-128 esp-auth-algorithm=sha1 esp-enc-key=$EK esp-auth-key=$AK" \
  "/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2 manual-sa=m" >"$TMP/site1.rsc"
printf '%s\n%s\n' "/ip ipsec manual-sa add name=m esp-spi=0x200/0x201 esp-enc-algorithm=aes-128 esp-auth-algorithm=sha1 esp-enc-key=$EK esp-auth-key=$AK" \
  "/ip ipsec policy add src-address=10.2.0.0/24 dst-address=10.1.0.0/24 tunnel=yes sa-src-address=192.0.2.2 sa-dst-address=192.0.2.1 manual-sa=m" >"$TMP/site2.rsc"
check "raw: site 1 starts" start "$R1" site1
check "raw: site 2 starts" start "$R2" site2
check "raw: keyway status names the offloads in use" \
  wait_until 10 offloads_are "$R1" site1 'tun-csum tun-tso4 tun-gro udp-gro udp-gso'
check "raw: the TUN device carries virtio-net headers" bash -c "ip -n '$R1' -d link show kwtun0 | grep -q 'vnet_hdr on'"
TUNMTU=$(tun_mtu "$R1")
check "raw: the TUN MTU ($TUNMTU) is the link's 1500 less aes-128/sha1's overhead in tunnel mode" test "$TUNMTU" = 1438
capture raw
check "raw: a 2 MB transfer through the tunnel arrives with exactly the bytes sent" transfer
end_capture
check "raw: site 1's datapath split TSO super-packets into segments" test "$(counter "$R1" site1 datapath.tso-split-segments)" -gt 100
check "raw: site 2's datapath coalesced segments into super-packets" test "$(counter "$R2" site2 datapath.coalesced-segments)" -gt 100
wire=$(tcpdump -nr "$TMP/raw.pcap" 'esp and dst host 192.0.2.2' 2>/dev/null | wc -l)
verify raw "$TMP/raw.pcap" 0x200 aes-128 "$EK" sha1 "$AK"
check "raw: scapy decrypts every one of the $wire ESP packets into a valid segment of at most $TUNMTU bytes" \
  all_segments_valid raw "$wire"
check "raw: no ESP in UDP on the link" test "$(tcpdump -nr "$TMP/raw.pcap" 'udp port 4500' 2>/dev/null | wc -l)" = 0
stop site1; stop site2

echo "-- raw ESP, manual keys, offloads off"
check "off: site 1 starts with --offloads off" start "$R1" site1 --offloads off
check "off: site 2 starts with --offloads off" start "$R2" site2 --offloads off
check "off: keyway status says none are in use" wait_until 10 offloads_are "$R1" site1 none
check "off: the transfer arrives intact" transfer
check "off: nothing was split" test "$(counter "$R1" site1 datapath.tso-split-segments)" = 0
stop site1; stop site2

echo "-- ESP in UDP forced between the peers (IKE-keyed, aes-128-gcm)"
for s in site1 site2; do
  here=192.0.2.1 there=192.0.2.2 mine=10.1.0.0/24 theirs=10.2.0.0/24 force="force-udp-encapsulation=yes"
  [ $s = site2 ] && here=192.0.2.2 there=192.0.2.1 mine=10.2.0.0/24 theirs=10.1.0.0/24 force=""
  printf '%s\n' "/ip ipsec proposal set default enc-algorithms=aes-128-gcm auth-algorithms=sha1 pfs-group=none" \
    "/ip ipsec peer add address=$there secret=offload-test-secret hash-algorithm=sha256 enc-algorithm=aes-128 dh-group=modp2048 nat-traversal=yes $force" \
    "/ip ipsec policy add src-address=$mine dst-address=$theirs tunnel=yes sa-src-address=$here sa-dst-address=$there" \
    >"$TMP/$s.rsc"
done
check "udp: site 1 starts" start "$R1" site1
check "udp: site 2 starts" start "$R2" site2
check "udp: force-udp-encapsulation without nat-traversal is refused with the reason" \
  bash -c "$(declare -f kw); BIN='$BIN' TMP='$TMP'; kw '$R1' site1 /ip ipsec peer add address=192.0.2.9 \
    secret=another-long-secret force-udp-encapsulation=yes 2>&1 | grep -q 'needs nat-traversal=yes'"
capture udp
check "udp: the tunnel comes up" wait_until 20 ip netns exec "$R1" ping -c 1 -W 1 -I 10.1.0.1 10.2.0.1
check "udp: a 2 MB transfer through the tunnel arrives with exactly the bytes sent" transfer
end_capture
check "udp: no raw ESP on the link: ESP travels in UDP 4500 though no NAT is between the peers" \
  test "$(tcpdump -nr "$TMP/udp.pcap" 'ip proto 50' 2>/dev/null | wc -l)" = 0
check "udp: site 2 sees site 1 behind a NAT (remote port 4500)" \
  bash -c "$(declare -f kw); BIN='$BIN' TMP='$TMP'; kw '$R2' site2 /ip ipsec remote-peers print | grep -q 'nat-traversal=yes'"
check "udp: site 1 sent its ESP in fewer UDP messages than packets (UDP GSO)" \
  bash -c "[ $(counter "$R1" site1 datapath.udp-sent-messages) -gt 0 ] && \
    [ $(counter "$R1" site1 datapath.udp-sent-messages) -lt $(( $(counter "$R1" site1 datapath.udp-sent-packets) / 2 )) ]"
check "udp: site 2 read datagrams the kernel had joined (UDP GRO)" test "$(counter "$R2" site2 datapath.udp-joined-datagrams)" -gt 10
check "udp: site 2's datapath coalesced segments into super-packets" test "$(counter "$R2" site2 datapath.coalesced-segments)" -gt 100
sleep 1.2
kw "$R1" site1 /ip ipsec installed-sa print >"$TMP/sa.txt"
spi=0x$(grep -B0 'dst-address=192.0.2.2' "$TMP/sa.txt" | grep -o 'spi=[0-9A-F]*' | cut -d= -f2)
# IKE's keys never leave keyway-datapath, so scapy parses rather than decrypts here; that each
# packet opened is shown by the transfer's checksum (the receiver checks every ICV).
/usr/bin/python3 "$CHECK" parse "$TMP/udp.pcap" "$spi" >"$TMP/udp.parse" 2>&1
cat "$TMP/udp.parse"
# A segment of at most the TUN MTU and ESP's overhead: no datagram longer than the link's 1500 less
# the outer IP and UDP headers.
TUNMTU=$(tun_mtu "$R1")
check "udp: scapy decodes every ESP-in-UDP packet, none missing, none longer than the link carries" \
  bash -c "grep -Eq '^esp ([0-9]+) in-udp \\1 largest [0-9]+ sequence-gaps 0$' '$TMP/udp.parse' \
    && [ \$(cut -d' ' -f4 '$TMP/udp.parse') -le 1472 ] && [ \$(cut -d' ' -f2 '$TMP/udp.parse') -ge $((SIZE / TUNMTU)) ]"
stop site1; stop site2

summary
