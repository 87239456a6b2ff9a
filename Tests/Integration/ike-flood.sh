#!/usr/bin/env bash
# Half-open phase 1 negotiations cannot keep a real peer out. Router 1 is the appliance; router 2
# is a real peer (a second Keyway). From router 2's namespace, a raw socket sends thousands of
# spoofed main mode first messages carrying router 2's own address and port 500, with fresh
# cookies each and a transform the appliance accepts. While they arrive, router 2 negotiates for
# real and must have its tunnel within a few seconds. (Before: 256 half-open slots held for 60 s
# were full after a fraction of a second, and the peer stayed out for over a minute.)
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/lib.sh"

FLOOD=${FLOOD:-10000}   # spoofed first messages (at least 5,000)
RATE=${RATE:-2000}      # per second

two_routers f
for r in 1 2; do
  cat >"$TMP/router$r.rsc" <<CONF
/ip ipsec peer add address=192.0.2.$((3 - r)) secret="flood-test-secret" \
    hash-algorithm=sha1 enc-algorithm=aes-128 dh-group=modp1024
/ip ipsec policy add sa-src-address=192.0.2.$r sa-dst-address=192.0.2.$((3 - r)) action=encrypt
CONF
done

check "router 1 (the appliance) starts" start_keywayd "$R1" router1
check "router 2 (the real peer) starts" start_keywayd "$R2" router2
sleep 1
IKEPID=$(pgrep -P "${PIDS[0]}" -x keyway-ike)
DPPID=$(pgrep -P "${PIDS[0]}" -x keyway-datapath)

# The flood: IPv4+UDP built by hand on a raw socket, marked with Keyway's bypass mark so router
# 2's own Keyway does not route it into its tunnel device. Bounded in count and time.
cat >"$TMP/flood.py" <<'PY'
import os, socket, struct, sys, time
count, rate = int(sys.argv[1]), int(sys.argv[2])
src, dst = socket.inet_aton("192.0.2.2"), socket.inet_aton("192.0.2.1")
def attr(t, v): return struct.pack("!HH", 0x8000 | t, v)
# aes-128 (7, key length 128), sha1 (2), pre-shared key (1), modp1024 (2), seconds, 28800 s
attrs = attr(1, 7) + attr(14, 128) + attr(2, 2) + attr(3, 1) + attr(4, 2) + attr(11, 1) + attr(12, 28800)
transform = struct.pack("!BBHBBH", 0, 0, 8 + len(attrs), 1, 1, 0) + attrs
proposal = struct.pack("!BBHBBBB", 0, 0, 8 + len(transform), 1, 1, 0, 1) + transform
sa = struct.pack("!BBHII", 0, 0, 12 + len(proposal), 1, 1) + proposal
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.SOL_SOCKET, 36, 0x4B57)   # SO_MARK: Keyway's bypass mark
deadline = time.time() + 60
sent = 0
start = time.time()
while sent < count and time.time() < deadline:
    isakmp = os.urandom(8) + b"\0" * 8 + struct.pack("!BBBBII", 1, 0x10, 2, 0, 0, 28 + len(sa)) + sa
    udp = struct.pack("!HHHH", 500, 500, 8 + len(isakmp), 0) + isakmp
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, dst)
    s.sendto(ip + udp, ("192.0.2.1", 0))
    sent += 1
    ahead = sent / rate - (time.time() - start)
    if ahead > 0.005: time.sleep(ahead)
print(sent)
PY
# The appliance's side of the link: what arrived and what keyway-ike answered.
ip netns exec "$R1" timeout 60 tcpdump -ni "$V1" -w "$TMP/cap.pcap" -U 'udp port 500' 2>/dev/null &
CAP=$!
sleep 1
ip netns exec "$R2" python3 "$TMP/flood.py" "$FLOOD" "$RATE" >"$TMP/flood.out" 2>&1 &
FLOODER=$!
PIDS+=($FLOODER)
sleep 1.5   # well past the old 256 slots: the flood is under way
check "the flood is still running when the real peer starts" kill -0 "$FLOODER"
started=$SECONDS
check "the real peer establishes and pings across within 10 s, during the flood" \
  wait_until 10 ip netns exec "$R2" ping -c 1 -W 1 192.0.2.1
echo "  established after $((SECONDS - started)) s"
check "... while the flood was still running" kill -0 "$FLOODER"
wait "$FLOODER"
check "at least 5,000 spoofed first messages were sent" test "$(cat "$TMP/flood.out")" -ge 5000
check "ten more pings, none lost" ip netns exec "$R2" ping -q -c 10 -i 0.2 -W 1 192.0.2.1
sleep 1.2
kill "$CAP" 2>/dev/null; wait "$CAP" 2>/dev/null
arrived=$(tcpdump -nr "$TMP/cap.pcap" 'src host 192.0.2.2 and dst port 500' 2>/dev/null | wc -l)
answered=$(tcpdump -nr "$TMP/cap.pcap" 'src host 192.0.2.1 and src port 500' 2>/dev/null | wc -l)
echo "  on the appliance's link: $arrived IKE datagrams from 192.0.2.2, $answered answers from keyway-ike"
check "at least 5,000 spoofed first messages reached the appliance" test "$arrived" -ge 5000
check "and keyway-ike answered at least 5,000 of them (it was not simply deaf)" test "$answered" -ge 5000
check "the appliance audited unverified negotiations giving way (its table was full)" \
  grep -q "ike-busy.*gave way" "$TMP/router1.log"
check "both routers show the same SA pair" bash -c "\
  a=\$($(declare -f kw); BIN='$BIN' TMP='$TMP'; \
    kw '$R1' router1 /ip ipsec installed-sa print | grep -o 'spi=[0-9A-F]*' | sort | tr '\n' ' '); \
  b=\$($(declare -f kw); BIN='$BIN' TMP='$TMP'; \
    kw '$R2' router2 /ip ipsec installed-sa print | grep -o 'spi=[0-9A-F]*' | sort | tr '\n' ' '); \
  [ -n \"\$a\" ] && [ \"\$a\" = \"\$b\" ]"
check "keyway-ike and keyway-datapath on the appliance kept their pids" \
  test "$(pgrep -P "${PIDS[0]}" -x keyway-ike) $(pgrep -P "${PIDS[0]}" -x keyway-datapath)" = "$IKEPID $DPPID"
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$IKEPID/status")
echo "  keyway-ike resident memory after the flood: ${rss:-?} kB"
check "keyway-ike's memory stayed bounded (under 128 MB)" test "${rss:-999999}" -lt 131072
audit_lines=$(grep -c "keyway-ike" "$TMP/router1.log")
echo "  audit lines from the appliance's keyway-ike: $audit_lines"
check "the flood did not turn into one audit line per datagram" test "$audit_lines" -lt 1000
summary
