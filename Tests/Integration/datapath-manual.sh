#!/usr/bin/env bash
# Issue 5 (manual keying): two Keyway appliances joined by veth, each protecting its own subnet.
# For each case: ping and a TCP transfer across; the capture of the link holds only ESP/AH; scapy
# decrypts the ESP with the configured keys; replayed and wrong-key packets are dropped and counted.
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/lib.sh"
CHECK=$(cd "$(dirname "$0")" && pwd)/esp_check.py

R1=$(new_netns r1) R2=$(new_netns r2)
ip link add "kwv$$a" netns "$R1" type veth peer name "kwv$$b" netns "$R2"
ip -n "$R1" addr add 192.0.2.1/24 dev "kwv$$a"; ip -n "$R1" link set "kwv$$a" up
ip -n "$R2" addr add 192.0.2.2/24 dev "kwv$$b"; ip -n "$R2" link set "kwv$$b" up
# IPv6 link-local chatter would only muddy the capture: this link is IPv4.
ip netns exec "$R1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; ip netns exec "$R2" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
# No dummy driver here: each site's "LAN" host is a /32 on lo.
ip -n "$R1" addr add 10.1.0.1/32 dev lo
ip -n "$R2" addr add 10.2.0.1/32 dev lo

EK16=0123456789abcdef0123456789abcdef
EK24=0123456789abcdef0123456789abcdef0123456789abcdef
AK=00112233445566778899aabbccddeeff00112233

start() {  # start NS NAME: keywayd with $TMP/NAME.rsc
  local ns=$1 name=$2
  rm -rf "$TMP/$name"
  ip netns exec "$ns" "$BIN/keywayd" --foreground --config "$TMP/$name.rsc" --run-dir "$TMP/$name/run" \
    --state-dir "$TMP/$name/state" --syslog "$TMP/nolog" --tun kwtun0 >"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$name=$!"
  wait_until 10 ip -n "$ns" route show table 19287 dev kwtun0
}
stop() { local p; eval "p=\$PID_$1"; kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; }
counter() {  # counter NS NAME COUNTER -> value (0 when absent)
  ip netns exec "$1" "$BIN/keyway" --socket "$TMP/$2/run/control.sock" counters | awk -F= -v k="$3" '$1 == k { v = $2 } END { print v + 0 }'
}
policy_counter() {  # sum of datapath.policy-*-NAME
  ip netns exec "$1" "$BIN/keyway" --socket "$TMP/$2/run/control.sock" counters | awk -F= -v k="$3" '$1 ~ "^datapath.policy-.*-" k "$" { v += $2 } END { print v + 0 }'
}

# spoof_delivered [SRC]: 20 plaintext UDP packets SRC -> 10.2.0.1 put straight on R2's link: did any arrive?
spoof_delivered() {
  local src=${1:-10.1.0.1} mac
  mac=$(ip -n "$R2" -o link show "kwv$$b" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
  ip netns exec "$R2" /usr/bin/python3 "$CHECK" listen 10.2.0.1 7777 2 >"$TMP/listen.out" 2>&1 &
  local l=$!
  sleep 0.5
  ip netns exec "$R1" /usr/bin/python3 "$CHECK" plain "kwv$$a" "$mac" "$src" 10.2.0.1 7777 20 >/dev/null 2>&1
  wait "$l"
  grep -q 'received [1-9]' "$TMP/listen.out"
}
spoof() {  # spoof DST PORT: one plaintext UDP packet 10.1.0.1 -> DST:PORT straight onto R2's link
  local mac; mac=$(ip -n "$R2" -o link show "kwv$$b" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
  ip netns exec "$R1" /usr/bin/python3 "$CHECK" plain "kwv$$a" "$mac" 10.1.0.1 "$1" "$2" >/dev/null 2>&1
}
drops_above() { [ "$(filter_drops)" -gt "$1" ]; }
filter_drops() {  # packets the incoming-check table dropped on R2
  ip netns exec "$R2" nft list table ip keyway_kwtun0 2>/dev/null | awk '/counter packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") n += $(i + 1) } END { print n + 0 }'
}

# The incoming policy check, and installed-sa flush, on the running tunnel. The check fails
# closed: plaintext that a require policy covers is dropped with an SA, after a flush and across a
# datapath restart, while plaintext no policy covers passes.
incoming_and_flush() {
  local label=$1 kw2="ip netns exec $R2 $BIN/keyway --socket $TMP/site2/run/control.sock"
  ip netns exec "$R2" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    "net.ipv4.conf.kwv$$b.rp_filter=0"
  check "$label: incoming check: none of 20 plaintext packets from the protected subnet is delivered" \
    not spoof_delivered
  check "$label: incoming check: the firewall counted the drops" test "$(filter_drops)" -ge 20
  check "$label: incoming check: plaintext from outside the protected subnet is delivered" spoof_delivered 192.0.2.1
  # ESP, AH and IKE are exempt only when addressed to the appliance itself (fib daddr type local).
  local drops; drops=$(filter_drops)
  spoof 10.2.0.7 500
  check "$label: incoming check: plaintext UDP 500 to a protected host behind the appliance is dropped" \
    wait_until 10 drops_above "$drops"
  drops=$(filter_drops)
  spoof 10.2.0.1 500
  sleep 1
  check "$label: incoming check: UDP 500 to the appliance's own address is exempt" test "$(filter_drops)" = "$drops"
  check "$label: before flush installed-sa print shows two SAs" test "$($kw2 /ip ipsec installed-sa print | grep -cE '^ *[0-9]+ +E ')" = 2
  check "$label: installed-sa flush succeeds" $kw2 /ip ipsec installed-sa flush sa-type=esp
  check "$label: after flush installed-sa print shows no SA at once" test "$($kw2 /ip ipsec installed-sa print | grep -cE '^ *[0-9]+ +E ')" = 0
  sleep 1.2
  check "$label: nor does the datapath's next report" test "$($kw2 /ip ipsec installed-sa print | grep -cE '^ *[0-9]+ +E ')" = 0
  check "$label: after flush the tunnel no longer carries traffic" not ip netns exec "$R1" ping -q -c 2 -i 0.2 -W 1 -I 10.1.0.1 10.2.0.1
  check "$label: after flush (no SA at all) covered plaintext is still dropped" not spoof_delivered
  $kw2 /ip ipsec policy disable [find]; $kw2 /ip ipsec policy enable [find]
  check "$label: re-enabling the policy re-installs the manual SAs and traffic flows" wait_until 8 ip netns exec "$R1" ping -c 1 -W 1 -I 10.1.0.1 10.2.0.1
  local dp; dp=$(pgrep -P "$PID_site2" -x keyway-datapath)
  kill -STOP "$dp"; kill -KILL "$dp"
  check "$label: while site 2's datapath restarts, covered plaintext is still dropped" not spoof_delivered
  check "$label: site 2's restarted datapath carries the tunnel again" \
    wait_until 8 ip netns exec "$R1" ping -c 1 -W 1 -I 10.1.0.1 10.2.0.1
  check "$label: and covered plaintext is still dropped" not spoof_delivered
}

# Site 2 alone, its peer silent: an IKE-keyed require policy that never got SAs still keeps the
# peer's subnet from sending plaintext; the same policy with level=use lets it through.
no_sa_yet() {
  printf '%s\n%s\n' \
    "/ip ipsec policy add src-address=10.2.0.0/24 dst-address=10.1.0.0/24 tunnel=yes \
      sa-src-address=192.0.2.2 sa-dst-address=192.0.2.1" \
    "/ip ipsec peer add address=192.0.2.1 secret=nobody-answers" >"$TMP/site2.rsc"
  echo "-- incoming check before any SA"
  check "no SA: site 2 starts (site 1 does not run Keyway)" start "$R2" site2
  ip netns exec "$R2" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    "net.ipv4.conf.kwv$$b.rp_filter=0"
  check "no SA: the firewall table is in place before any negotiation" \
    ip netns exec "$R2" nft list table ip keyway_kwtun0
  check "no SA: none of 20 plaintext packets from the protected subnet is delivered" not spoof_delivered
  check "no SA: plaintext from outside it is delivered" spoof_delivered 192.0.2.1
  local kw2="ip netns exec $R2 $BIN/keyway --socket $TMP/site2/run/control.sock"
  $kw2 /ip ipsec policy set 0 level=use >/dev/null 2>&1 || $kw2 /ip ipsec policy set [find] level=use
  check "no SA: with level=use the same plaintext is delivered (use stays permissive)" wait_until 5 spoof_delivered
  stop site2
}

run_case() {  # run_case LABEL PROTO(esp|ah) ENC AUTH MODE(tunnel|transport)
  local label=$1 proto=$2 enc=$3 auth=$4 mode=$5
  local ek=$EK16
  [ "$enc" = 3des ] && ek=$EK24
  local sa1 sa2 pol1 pol2 src=10.1.0.1 dst=10.2.0.1
  if [ "$proto" = ah ]; then
    # The manual's "tunnel mode example using AH with manual keying", verbatim but for the addresses.
    sa1="/ip ipsec manual-sa add name=ah-sa1 ah-spi=0x101/0x100 ah-key=abcfed"
    sa2="/ip ipsec manual-sa add name=ah-sa1 ah-spi=0x100/0x101 ah-key=abcfed"
    pol1="/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 action=encrypt ipsec-protocols=ah tunnel=yes sa-src=192.0.2.1 sa-dst=192.0.2.2 manual-sa=ah-sa1"
    pol2="/ip ipsec policy add src-address=10.2.0.0/24 dst-address=10.1.0.0/24 action=encrypt ipsec-protocols=ah tunnel=yes sa-src=192.0.2.2 sa-dst=192.0.2.1 manual-sa=ah-sa1"
  else
    local keys="esp-enc-algorithm=$enc esp-auth-algorithm=$auth esp-enc-key=$ek"
    [ "$auth" != null ] && keys="$keys esp-auth-key=$AK"
    sa1="/ip ipsec manual-sa add name=esp-sa1 esp-spi=0x201/0x200 $keys"
    sa2="/ip ipsec manual-sa add name=esp-sa1 esp-spi=0x200/0x201 $keys"
    if [ "$mode" = tunnel ]; then
      pol1="/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2 manual-sa=esp-sa1"
      pol2="/ip ipsec policy add src-address=10.2.0.0/24 dst-address=10.1.0.0/24 tunnel=yes sa-src-address=192.0.2.2 sa-dst-address=192.0.2.1 manual-sa=esp-sa1"
    else
      pol1="/ip ipsec policy add sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2 manual-sa=esp-sa1"
      pol2="/ip ipsec policy add sa-src-address=192.0.2.2 sa-dst-address=192.0.2.1 manual-sa=esp-sa1"
      src=192.0.2.1 dst=192.0.2.2
    fi
  fi
  printf '%s\n%s\n' "$sa1" "$pol1" >"$TMP/site1.rsc"
  printf '%s\n%s\n' "$sa2" "$pol2" >"$TMP/site2.rsc"
  echo "-- $label"
  check "$label: site 1 starts and installs its routes" start "$R1" site1
  check "$label: site 2 starts and installs its routes" start "$R2" site2
  ip netns exec "$R2" timeout 30 tcpdump -ni "kwv$$b" -w "$TMP/cap.pcap" -U 2>/dev/null &
  local cap=$!
  sleep 1
  check "$label: ping across" ip netns exec "$R1" ping -c 5 -i 0.2 -W 2 -I "$src" "$dst"
  check "$label: a 300 kB TCP transfer arrives intact" tcp_transfer "$R1" "$R2" "$src" "$dst"
  sleep 0.5; kill "$cap" 2>/dev/null; wait "$cap" 2>/dev/null
  local proto_filter="esp"; [ "$proto" = ah ] && proto_filter="ah"
  check "$label: the link carried $proto_filter" test "$(tcpdump -nr "$TMP/cap.pcap" "$proto_filter" 2>/dev/null | wc -l)" -gt 20
  check "$label: not one plaintext packet on the link" test "$(tcpdump -nr "$TMP/cap.pcap" "not esp and not ah and not arp" 2>/dev/null | wc -l)" = 0
  check "$label: nothing between the protected hosts in the clear" test "$(tcpdump -nr "$TMP/cap.pcap" "(icmp or tcp or udp) and host $dst" 2>/dev/null | wc -l)" = 0
  check "$label: counters rise on both sides" bash -c "[ $(policy_counter "$R1" site1 out-transformed) -ge 5 ] && [ $(policy_counter "$R2" site2 in-transformed) -ge 5 ]"
  local kw1="ip netns exec $R1 $BIN/keyway --socket $TMP/site1/run/control.sock"
  sleep 1.2   # the datapath reports its state once a second
  $kw1 /ip ipsec installed-sa print show-sensitive >"$TMP/sa.txt"
  $kw1 /ip ipsec policy print stats >"$TMP/stats.txt"
  local flag=E; [ "$proto" = ah ] && flag=A
  check "$label: installed-sa print shows both SAs" bash -c "[ \$(grep -c '^ *[0-9]* $flag ' '$TMP/sa.txt') = 2 ]"
  check "$label: installed-sa print shows bytes processed" bash -c "grep -qE 'current-bytes=[1-9]' '$TMP/sa.txt'"
  check "$label: policy print stats shows the SAs and rising counters" bash -c "grep -q 'ph2-state=established' '$TMP/stats.txt' && grep -qE 'out-transformed=([5-9]|[1-9][0-9]+)' '$TMP/stats.txt'"
  check "$label: installed-sa print hides keys without show-sensitive" bash -c "! $kw1 /ip ipsec installed-sa print | grep -q '$AK'"
  if [ "$proto" = esp ]; then
    local tunnel_ends="192.0.2.1 192.0.2.2"; [ "$mode" = transport ] && tunnel_ends="- -"
    # The keys come from the appliance's own printout, as an operator would take them.
    local shown_ek shown_ak
    shown_ek=$(python3 -c "import re,sys; t=open('$TMP/sa.txt').read(); r=[b for b in re.split(r'\n\s*\n', t) if 'spi=200 ' in b][0]; print(re.search(r'enc-key=\"([0-9a-f]*)\"', r).group(1))")
    shown_ak=$(python3 -c "import re,sys; t=open('$TMP/sa.txt').read(); r=[b for b in re.split(r'\n\s*\n', t) if 'spi=200 ' in b][0]; print(re.search(r'auth-key=\"([0-9a-f]*)\"', r).group(1))")
    check "$label: installed-sa print show-sensitive shows the configured keys" test "$shown_ek" = "$ek"
    /usr/bin/python3 "$CHECK" decrypt "$TMP/cap.pcap" 0x200 "$enc" "$shown_ek" "$auth" "$shown_ak" $tunnel_ends >"$TMP/scapy.out" 2>&1
    check "$label: scapy decrypts the captured ESP with the configured keys" bash -c "grep -q 'decrypted [1-9]' '$TMP/scapy.out' && grep -q '$src > $dst' '$TMP/scapy.out'"
    local before; before=$(counter "$R2" site2 datapath.in-state-protocol-errors)
    ip netns exec "$R1" /usr/bin/python3 "$CHECK" forge 0x200 192.0.2.1 192.0.2.2 "$enc" "$auth" 100000 10.1.0.1 10.2.0.1 >/dev/null 2>&1
    [ "$mode" = transport ] || check "$label: a packet under the wrong key is dropped and counted" wait_until 10 bash -c "[ \$(ip netns exec '$R2' '$BIN/keyway' --socket '$TMP/site2/run/control.sock' counters | awk -F= '\$1 == \"datapath.in-state-protocol-errors\" { print \$2 }') -gt ${before:-0} ]"
  fi
  local spi=0x200; [ "$proto" = ah ] && spi=0x100
  local replayed; replayed=$(counter "$R2" site2 datapath.in-state-sequence-errors)
  if [ "$proto" = esp ]; then
    ip netns exec "$R1" /usr/bin/python3 "$CHECK" replay "$TMP/cap.pcap" "$spi" 192.0.2.2 >/dev/null 2>&1
    check "$label: replayed packets are dropped and counted" wait_until 10 bash -c "[ \$(ip netns exec '$R2' '$BIN/keyway' --socket '$TMP/site2/run/control.sock' counters | awk -F= '\$1 == \"datapath.in-state-sequence-errors\" { print \$2 }') -gt ${replayed:-0} ]"
    sleep 1.2
    check "$label: /ip ipsec statistics print counts them too" wait_until 10 bash -c "ip netns exec '$R2' '$BIN/keyway' --socket '$TMP/site2/run/control.sock' /ip ipsec statistics print | grep -qE 'in-state-sequence-errors: [1-9]'"
  fi
  # keywayd restarts a killed datapath; the monitor re-installs the SAs, with sequence numbers
  # beyond those the peer has seen, so its replay window keeps accepting.
  local dp; dp=$(pgrep -P "$PID_site1" -x keyway-datapath)
  kill -KILL "$dp"
  restarted_dp() { local p; p=$(pgrep -P "$PID_site1" -x keyway-datapath); [ -n "$p" ] && [ "$p" != "$dp" ]; }
  check "$label: the datapath is restarted" wait_until 5 restarted_dp
  check "$label: the tunnel carries traffic again after the restart" wait_until 8 ip netns exec "$R1" ping -c 1 -W 1 -I "$src" "$dst"
  [ "$label" = "ESP tunnel aes-128/sha1" ] && incoming_and_flush "$label"
  stop site1; stop site2
  check "$label: routes and the rule are gone after shutdown" bash -c "! ip -n '$R1' rule | grep -q 0x4b57 && [ -z \"\$(ip -n '$R1' route show table 19287 2>/dev/null)\" ]"
  check "$label: the incoming-check firewall table is gone after shutdown" not ip netns exec "$R2" nft list table ip keyway_kwtun0
  # Routes, rule and table go through netlink and libnftables: nothing like `ip`'s or `nft`'s complaints.
  check "$label: keywayd's log holds no ip or nft messages" \
    not grep -E 'RTNETLINK|^Error:|FIB table' "$TMP/site1.log" "$TMP/site2.log"
  check "$label: keywayd's log has no route or firewall failure" \
    not grep -E 'could not|NOT enforced' "$TMP/site1.log" "$TMP/site2.log"
  check "$label: no child was killed by its seccomp filter" not grep -F SIGSYS "$TMP/site1.log" "$TMP/site2.log"
}

run_case "AH tunnel, manual example" ah null sha1 tunnel
run_case "ESP tunnel aes-128/sha1" esp aes-128 sha1 tunnel
run_case "ESP tunnel 3des/sha1" esp 3des sha1 tunnel
# Manual keys refuse counter-mode ciphers (aes-ctr, aes-gcm: RFC 8221); configuration.sh shows the refusal.
run_case "ESP tunnel aes-128/sha256" esp aes-128 sha256 tunnel
run_case "ESP transport aes-128/sha1" esp aes-128 sha1 transport
no_sa_yet

summary
