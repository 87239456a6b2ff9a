#!/usr/bin/env bash
# Issue 14: paths with a smaller MTU. Host H1 (10.1.0.2) behind appliance A, host H2 (10.2.0.2)
# behind appliance B, an IKE-keyed ESP tunnel (aes-128/sha1) between A (192.0.2.1) and B
# (198.51.100.2) through router M, whose link toward B has the MTU under test (1500, 1400, 1280;
# B's side of it too). A's own link stays at 1500: what A learns of the path beyond, it learns
# from ICMP (path MTU discovery) or not at all (then B's MSS clamping carries TCP). The LAN hosts
# keep 1500. Each MTU runs on freshly started appliances (nothing learned before).
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/lib.sh"
TOOLS=$(cd "$(dirname "$0")" && pwd)/mtu_tools.py
PSK=path-mtu-secret-0123

H1=$(new_netns h1) A=$(new_netns a) M=$(new_netns m) B=$(new_netns b) H2=$(new_netns h2)
link() {  # link NS1 IF1 ADDR1 NS2 IF2 ADDR2
  ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
  ip -n "$1" addr add "$3" dev "$2"; ip -n "$1" link set "$2" up
  ip -n "$4" addr add "$6" dev "$5"; ip -n "$4" link set "$5" up
}
link "$H1" "kwh$$" 10.1.0.2/24 "$A" "kwal$$" 10.1.0.1/24
link "$A" "kwaw$$" 192.0.2.1/24 "$M" "kwma$$" 192.0.2.254/24
link "$M" "kwmb$$" 198.51.100.254/24 "$B" "kwbw$$" 198.51.100.2/24
link "$B" "kwbl$$" 10.2.0.1/24 "$H2" "kwh2$$" 10.2.0.2/24
for ns in "$H1" "$A" "$M" "$B" "$H2"; do ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
for ns in "$A" "$M" "$B"; do ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1; done
ip -n "$H1" route add default via 10.1.0.1; ip -n "$H2" route add default via 10.2.0.1
ip -n "$A" route add default via 192.0.2.254; ip -n "$B" route add default via 198.51.100.254

# aes-128/sha1 ESP tunnel: 62 bytes of overhead at 1500 (1438 fit), 58 at 1400 (1342), 66 at 1280 (1214).
fits() { python3 -c "m=$1; r=m-20-8-16-12; print(r//16*16-2)"; }

configure() {  # configure DONT_FRAGMENT TCP_MSS
  cat >"$TMP/a.rsc" <<CONF
/ip ipsec proposal set default enc-algorithms=aes-128 auth-algorithms=sha1 pfs-group=none
/ip ipsec peer add address=198.51.100.2 secret="$PSK"
/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes sa-src-address=192.0.2.1 \\
    sa-dst-address=198.51.100.2 dont-fragment=$1 tcp-mss=$2
CONF
  cat >"$TMP/b.rsc" <<CONF
/ip ipsec proposal set default enc-algorithms=aes-128 auth-algorithms=sha1 pfs-group=none
/ip ipsec peer add address=192.0.2.1 secret="$PSK"
/ip ipsec policy add src-address=10.2.0.0/24 dst-address=10.1.0.0/24 tunnel=yes sa-src-address=198.51.100.2 \\
    sa-dst-address=192.0.2.1 dont-fragment=$1 tcp-mss=$2
CONF
}

start_pair() {  # start_pair [EXTRA KEYWAYD ARGUMENTS FOR A]: both appliances afresh, the tunnel up
  stop_pair
  local name ns
  for name in a b; do
    rm -rf "${TMP:?}/$name"
    ns=$A; [ "$name" = b ] && ns=$B
    local extra=(); [ "$name" = a ] && extra=("$@")
    ip netns exec "$ns" "$BIN/keywayd" --foreground --config "$TMP/$name.rsc" --run-dir "$TMP/$name/run" \
      --state-dir "$TMP/$name/state" --syslog "$TMP/nolog" --tun kwtun0 "${extra[@]}" >>"$TMP/$name.log" 2>&1 &
    PIDS+=($!)
    eval "PID_$name=$!"
  done
  wait_until 10 ip -n "$A" route show table 19287 dev kwtun0 && wait_until 10 ip -n "$B" route show table 19287 dev kwtun0 \
    && wait_until 20 ip netns exec "$H1" ping -c 1 -W 1 10.2.0.2
}
stop_pair() {
  local p
  for p in "${PID_a:-}" "${PID_b:-}"; do [ -n "$p" ] && { kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; }; done
  PID_a="" PID_b=""
  ip netns exec "$H1" ip route flush cache; ip netns exec "$H2" ip route flush cache
}
kwa() { ip netns exec "$A" "$BIN/keyway" --socket "$TMP/a/run/control.sock" "$@"; }
kwb() { ip netns exec "$B" "$BIN/keyway" --socket "$TMP/b/run/control.sock" "$@"; }
counter() {  # counter a|b NAME: the datapath's counter
  local ns=$A; [ "$1" = b ] && ns=$B
  ip netns exec "$ns" "$BIN/keyway" --socket "$TMP/$1/run/control.sock" counters \
    | awk -F= -v k="datapath.$2" '$1 == k { v = $2 } END { print v + 0 }'
}
tun_mtu() { ip -n "$1" -o link show kwtun0 | grep -o 'mtu [0-9]*' | cut -d' ' -f2; }
tun_is() { [ "$(tun_mtu "$1")" = "$2" ]; }
set_path() {  # set_path MTU: M's link toward B and B's side of it
  ip -n "$M" link set "kwmb$$" mtu "$1"; ip -n "$B" link set "kwbw$$" mtu "$1"
}
# M's own ICMP errors (it is the router that cannot forward) and any it forwards.
block_icmp() { ip netns exec "$M" nft -f - <<'NFT'
table ip kwtest {
  chain output {
    type filter hook output priority 0;
    ip protocol icmp counter drop
  }
  chain forward {
    type filter hook forward priority 0;
    ip protocol icmp counter drop
  }
}
NFT
}
icmp_blocked() {
  ip netns exec "$M" nft list table ip kwtest \
    | awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") n += $(i + 1) } END { print n + 0 }'
}
allow_icmp() { ip netns exec "$M" nft delete table ip kwtest 2>/dev/null; true; }

# transfer BYTES SECONDS [CHUNK PAUSE]: BYTES from H1 to H2, checked by SHA-256 on both ends.
transfer() {
  rm -f "$TMP/tcp.out" "$TMP/tcp.in"
  ip netns exec "$H2" /usr/bin/python3 "$TOOLS" serve 10.2.0.2 5001 "$1" "$TMP/tcp.out" "$2" 2>/dev/null &
  local server=$!
  sleep 0.3
  local pace=(); [ $# -ge 4 ] && pace=("$3" "$4")
  ip netns exec "$H1" timeout "$2" /usr/bin/python3 "$TOOLS" send 10.1.0.2 10.2.0.2 5001 "$1" "${pace[@]}" \
    >"$TMP/tcp.in" 2>"$TMP/tcp.err"
  wait "$server"
  [ -s "$TMP/tcp.out" ] && [ -s "$TMP/tcp.in" ] && [ "$(cat "$TMP/tcp.in")" = "$(cat "$TMP/tcp.out")" ]
}

# df_ping SIZE: one DF ping of SIZE payload bytes from H1 (three tries); its output in $TMP/ping.out
df_ping() { ip netns exec "$H1" ping -M do -c 3 -i 0.3 -W 1 -s "$1" 10.2.0.2 >"$TMP/ping.out" 2>&1; }
# frag_needed MTU: the pings were refused with "fragmentation needed" naming MTU (from the network
# or, once learned, H1's own kernel) and none crossed
frag_needed() {
  grep -qE "mtu ?= ?$1\b" "$TMP/ping.out" && grep -q ' 0 received' "$TMP/ping.out"
}

# a_path_is MTU [OVERHEAD]: A's installed-sa print detail shows them for its outbound SA
a_path_is() {
  local row; row=$(kwa /ip ipsec installed-sa print detail | tr -s ' \n' '\n' | grep -A30 'dst-address=198.51.100.2')
  grep -q "^path-mtu=$1\$" <<<"$row" && { [ -z "${2:-}" ] || grep -q "^overhead=$2\$" <<<"$row"; }
}

phase() { [ -z "${PHASES:-}" ] || [[ " $PHASES " == *" $1 "* ]]; }

if phase sizes; then
for X in ${MTUS:-1500 1400 1280}; do
  echo "-- path MTU $X beyond router M"
  FIT=$(fits "$X")
  set_path "$X"
  configure clear clamp-to-pmtu
  check "$X: both appliances start and the tunnel carries a ping" start_pair
  check "$X: B's TUN MTU follows its link: $FIT" wait_until 8 tun_is "$B" "$FIT"
  check "$X: A's TUN MTU follows its own 1500 link: 1438" test "$(tun_mtu "$A")" = 1438
  check "$X: dont-fragment=clear: pings of every size from 64 to 8000 bytes cross" \
    ip netns exec "$H1" /usr/bin/python3 "$TOOLS" sweep 10.2.0.2 64 8000

  # ICMP blocked at M: A never learns the path; only B, whose own link is small, knows it.
  configure set clamp-to-pmtu
  block_icmp
  if [ "$X" = 1280 ]; then
    configure set off
    start_pair >/dev/null
    check "$X: ICMP blocked, tcp-mss=off on both: the 1 MB transfer stalls (DF packets vanish at M)" \
      not transfer 1000000 10
    check "$X: ... M's fragmentation-needed were dropped" test "$(icmp_blocked)" -ge 1
    configure set clamp-to-pmtu
  fi
  check "$X: ICMP blocked, dont-fragment=set: the tunnel comes up afresh" start_pair
  check "$X: ICMP blocked: a 1 MB TCP transfer arrives intact (MSS clamped to the path)" transfer 1000000 30
  [ "$X" -lt 1500 ] && check "$X: ... B clamped the SYNs" test "$(counter b mss-clamped)" -ge 1
  check "$X: ... and A learned nothing (no ICMP reached it)" test "$(counter a pmtu-lowered)" = 0
  allow_icmp

  # ICMP allowed, no clamping: path MTU discovery alone.
  configure set off
  check "$X: ICMP allowed, tcp-mss=off: the tunnel comes up afresh" start_pair
  check "$X: ICMP allowed: a 1 MB TCP transfer arrives intact (path MTU discovery)" transfer 1000000 30
  if [ "$X" -lt 1500 ]; then
    check "$X: A learned the path from M's ICMP (pmtu-lowered)" test "$(counter a pmtu-lowered)" -ge 1
    check "$X: installed-sa print detail shows path-mtu=$X for A's outbound SA" wait_until 10 a_path_is "$X"
    check "$X: ... and told H1 (fragmentation-needed sent)" test "$(counter a icmp-frag-needed-sent)" -ge 1
  else
    check "$X: installed-sa print detail shows overhead=62 path-mtu=1500 for A's outbound SA" \
      wait_until 10 a_path_is 1500 62
  fi
  # DF pings at the boundary: what fits crosses; one byte more gets fragmentation-needed naming the size that fits.
  ip netns exec "$H1" ip route flush cache
  check "$X: dont-fragment=set: a DF ping of $((FIT - 28)) bytes (inner $FIT) crosses" df_ping $((FIT - 28))
  check "$X: a DF ping of $((FIT - 27)) bytes gets fragmentation-needed with mtu $FIT" \
    bash -c "ip netns exec '$H1' ping -M do -c 3 -i 0.3 -W 1 -s $((FIT - 27)) 10.2.0.2 >'$TMP/ping.out' 2>&1; \
      grep -qE 'mtu ?= ?$FIT\b' '$TMP/ping.out' && grep -q ' 0 received' '$TMP/ping.out'"
  grep -m2 -E 'mtu' "$TMP/ping.out" | sed 's/^/   /'
  check "$X: the DF ping of $((FIT - 28)) bytes still crosses" df_ping $((FIT - 28))
done
fi

if phase midway; then
  echo "-- router M lowers its MTU mid-transfer"
  set_path 1500
  configure set clamp-to-pmtu
  check "midway: the tunnel comes up afresh, the whole path at 1500" start_pair
  ( sleep 1.5; ip -n "$M" link set "kwmb$$" mtu 1280 ) &
  lowerer=$!
  check "midway: 3 MB paced over about 4 s arrive intact although M's link drops to 1280 after 1.5 s" \
    transfer 3000000 60 65536 0.08
  wait "$lowerer"
  check "midway: M's link was at 1280 before the transfer ended" \
    bash -c "ip -n '$M' -o link show 'kwmb$$' | grep -q 'mtu 1280 '"
  check "midway: A learned 1280 from M's ICMP (installed-sa print detail)" wait_until 10 a_path_is 1280
  check "midway: ... and told H1 with fragmentation-needed" test "$(counter a icmp-frag-needed-sent)" -ge 1
  check "midway: the lowering was audited" grep -q 'path MTU lowered by ICMP' "$TMP/a.log"
fi

if phase forged; then
  echo "-- forged fragmentation-needed"
  set_path 1500
  configure set clamp-to-pmtu
  check "forged: the tunnel comes up afresh" start_pair
  ip netns exec "$M" timeout 20 tcpdump -ni "kwma$$" -w "$TMP/forge.pcap" -U esp 2>/dev/null &
  cap=$!
  sleep 1
  ip netns exec "$H1" ping -q -M do -c 3 -i 0.2 -s 1000 10.2.0.2 >/dev/null 2>&1
  sleep 0.5; kill "$cap" 2>/dev/null; wait "$cap" 2>/dev/null
  forge() { ip netns exec "$M" /usr/bin/python3 "$TOOLS" forge "$TMP/forge.pcap" 192.0.2.1 198.51.100.2 192.0.2.254 \
    192.0.2.1 "$1" "$2"; }
  refused_before=$(counter a pmtu-icmp-refused)
  check "forged: one naming an SPI A never used, sent from M" forge 600 spi
  check "forged: one quoting a sequence number A never sent" forge 600 sequence
  check "forged: both refused and counted (pmtu-icmp-refused)" \
    wait_until 10 bash -c "[ \$(ip netns exec '$A' '$BIN/keyway' --socket '$TMP/a/run/control.sock' counters \
      | awk -F= '\$1 == \"datapath.pmtu-icmp-refused\" { print \$2 }') -ge $((refused_before + 2)) ]"
  check "forged: ... and audited" wait_until 10 grep -q 'fragmentation-needed refused' "$TMP/a.log"
  sleep 1.2
  check "forged: A's path is still 1500" a_path_is 1500
  check "forged: nothing lowered" test "$(counter a pmtu-lowered)" = 0
  check "forged: A's kernel took no path MTU from them either" \
    not bash -c "ip -n '$A' route get 198.51.100.2 mark 0x4b57 | grep -q mtu"
  check "forged: a DF ping of 1410 bytes (inner 1438) still crosses" df_ping 1410
  # The control: the real packet quoted, as a router would, naming 300: taken, but never below 576.
  check "forged: a quote of a packet A did send is taken" forge 300 none
  check "forged: ... the path drops to the floor, 576, not 300" wait_until 10 a_path_is 576
  ip netns exec "$H1" ip route flush cache
  check "forged: ... and a DF ping of 1000 bytes gets fragmentation-needed with mtu $(fits 576)" \
    bash -c "ip netns exec '$H1' ping -M do -c 3 -i 0.3 -W 1 -s 1000 10.2.0.2 >'$TMP/ping.out' 2>&1; \
      grep -qE 'mtu ?= ?$(fits 576)\b' '$TMP/ping.out'"
fi

if phase fixed; then
  echo "-- a TUN MTU larger than the link (--tun-mtu 1400 on A, every link at 1280: the issue's setup)"
  set_path 1280
  ip -n "$A" link set "kwaw$$" mtu 1280; ip -n "$M" link set "kwma$$" mtu 1280
  configure clear clamp-to-pmtu
  check "fixed: the tunnel comes up with A's TUN MTU fixed at 1400" start_pair --tun-mtu 1400
  check "fixed: A's TUN MTU stays 1400" tun_is "$A" 1400
  check "fixed: dont-fragment=clear: pings of every size from 1100 to 3000 bytes cross" \
    ip netns exec "$H1" /usr/bin/python3 "$TOOLS" sweep 10.2.0.2 1100 3000
  check "fixed: ... Keyway fragmented the outer packets itself (out-fragmented)" \
    test "$(counter a out-fragmented)" -ge 1
  check "fixed: ... none failed to send (EMSGSIZE)" test "$(counter a send-failures)" = 0
  configure set clamp-to-pmtu
  check "fixed: dont-fragment=set: the tunnel comes up afresh" start_pair --tun-mtu 1400
  check "fixed: a DF ping of 1372 bytes (inner 1400) gets fragmentation-needed with mtu 1214 at once" \
    bash -c "ip netns exec '$H1' ping -M do -c 2 -i 0.3 -W 1 -s 1372 10.2.0.2 >'$TMP/ping.out' 2>&1; \
      grep -qE 'icmp_seq=1 Frag needed and DF set \(mtu = 1214\)' '$TMP/ping.out'"
  check "fixed: a DF ping of 1186 bytes crosses" df_ping 1186
  check "fixed: /ip ipsec statistics print counts the drop (out-frag-needed)" \
    wait_until 10 bash -c "$(declare -f kwa); A='$A' BIN='$BIN' TMP='$TMP'; kwa /ip ipsec statistics print | grep -qE 'out-frag-needed: [1-9]'"
  check "fixed: ... and it was audited" grep -q 'packet-too-big' "$TMP/a.log"
  ip -n "$A" link set "kwaw$$" mtu 1500; ip -n "$M" link set "kwma$$" mtu 1500
fi

stop_pair
check "no child was killed by its seccomp filter" not grep -F SIGSYS "$TMP/a.log" "$TMP/b.log"
summary
