#!/usr/bin/env bash
# Issue 11, "Found at scale": state that grows with the configuration outgrew one message (the
# datapath's report was dropped every second at 300 tunnels, print stats failed in the client).
# Site 1 is configured through the console with POLICIES tunnel policies, MANUAL of them keyed by
# manual SAs (2 x MANUAL SAs), the others by IKE with a peer that never needs to negotiate them,
# in one script run as one transaction (it travels in pages). Then: every count in print,
# print stats, --json and export, the SAs reported by the datapath, keywayd's routes and its
# incoming-check sets, plaintext covered by a policy dropped, traffic through one tunnel to site 2,
# and not one message dropped between the processes. Sizes: KEYWAY_SCALE_POLICIES (default
# 100000) and KEYWAY_SCALE_MANUAL (default 10000); the README has the figures of a run.
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
CHECK=$HERE/esp_check.py
POLICIES=${KEYWAY_SCALE_POLICIES:-100000}
MANUAL=${KEYWAY_SCALE_MANUAL:-10000}
SAS=$((2 * MANUAL))
echo "# $POLICIES policies, $MANUAL manual SAs ($SAS SAs)"

two_routers s
# Each site's "LAN" host is a /32 on lo: site 1 is 10.250.0.0/16, site 2 the first policy's /30.
ip -n "$R1" addr add 10.250.0.1/32 dev lo
ip -n "$R2" addr add 10.0.0.1/32 dev lo

python3 "$HERE/scale_config.py" 1 "$POLICIES" "$MANUAL" >"$TMP/big.rsc"
python3 "$HERE/scale_config.py" 2 1 1 >"$TMP/site2.rsc"
: >"$TMP/site1.rsc"
k1() { kw "$R1" site1 --timeout 600 "$@"; }
elapsed() { echo "$(( $(date +%s%N) / 1000000 - $1 ))"; }
ms() { echo "$(( $(date +%s%N) / 1000000 ))"; }
figure() { echo "  figure: $*"; }

check "site 1 starts (empty)" start_keywayd "$R1" site1
SITE1=${PIDS[${#PIDS[@]}-1]}
check "site 2 starts" start_keywayd "$R2" site2
children() { pgrep -P "$SITE1" | sort | tr '\n' ' '; }
wait_until 10 bash -c "[ \$(pgrep -P $SITE1 | wc -l) = 3 ]"
pids_before=$(children)

t=$(ms)
check "a script of $POLICIES policies and $MANUAL manual SAs runs as one transaction" k1 -f "$TMP/big.rsc"
figure "script ($(wc -c <"$TMP/big.rsc") bytes) applied in $(elapsed "$t") ms"

t=$(ms)
check "policy print count-only: $POLICIES" test "$(k1 /ip ipsec policy print count-only)" = "$POLICIES"
figure "policy print count-only in $(elapsed "$t") ms"
check "manual-sa print count-only: $MANUAL" test "$(k1 /ip ipsec manual-sa print count-only)" = "$MANUAL"

t=$(ms)
check "the datapath reports all $SAS SAs (installed-sa print count-only)" \
  wait_until 120 bash -c "[ \"\$(ip netns exec '$R1' '$BIN/keyway' --socket '$TMP/site1/run/control.sock' --timeout 600 /ip ipsec installed-sa print count-only)\" = '$SAS' ]"
figure "all SAs reported $(elapsed "$t") ms after the script"

t=$(ms)
k1 /ip ipsec policy print >"$TMP/print.txt"
figure "policy print: $(wc -c <"$TMP/print.txt") bytes in $(elapsed "$t") ms"
check "policy print lists every policy" test "$(grep -cE '(^| )dst-address=' "$TMP/print.txt")" = "$POLICIES"
t=$(ms)
k1 /ip ipsec policy print stats >"$TMP/stats.txt"
figure "policy print stats: $(wc -c <"$TMP/stats.txt") bytes in $(elapsed "$t") ms"
check "print stats: every manual tunnel established, every other not" \
  bash -c "[ \$(grep -c 'ph2-state=established' '$TMP/stats.txt') = $MANUAL ] && [ \$(grep -c 'ph2-state=no-phase2' '$TMP/stats.txt') = $((POLICIES - MANUAL)) ]"
t=$(ms)
k1 --json /ip ipsec policy print >"$TMP/policies.json"
figure "policy print --json: $(wc -c <"$TMP/policies.json") bytes in $(elapsed "$t") ms"
check "--json policy print: $POLICIES objects, the last one the last policy" python3 -c "
import json, sys
p = json.load(open('$TMP/policies.json'))
sys.exit(0 if len(p) == $POLICIES and p[-1]['dst-address'].split(':')[0] == '$(tail -1 "$TMP/big.rsc" | grep -o ' dst-address=[^ ]*' | cut -d= -f2)' else 1)"
k1 --json /ip ipsec installed-sa print >"$TMP/sas.json"
check "--json installed-sa print: $SAS SAs" python3 -c "
import json, sys; sys.exit(0 if len(json.load(open('$TMP/sas.json'))) == $SAS else 1)"
t=$(ms)
k1 /export >"$TMP/export.rsc"
figure "export: $(wc -c <"$TMP/export.rsc") bytes in $(elapsed "$t") ms"
check "export holds every policy and manual SA" \
  bash -c "[ \$(grep -c '^add .*dst-address=' '$TMP/export.rsc') = $POLICIES ] && [ \$(grep -c '^add name=m' '$TMP/export.rsc') = $MANUAL ]"
check "counters answer (the datapath's too)" bash -c "ip netns exec '$R1' '$BIN/keyway' --socket '$TMP/site1/run/control.sock' counters | grep -q '^datapath.installed-sas=$SAS$'"

# keywayd: a route per tunnel's far side, and the incoming check as sets.
check "keywayd routes every policy's far side into the TUN device" \
  wait_until 60 bash -c "[ \$(ip -n '$R1' route show table 19287 | grep -c 'dev kwtun0') = $POLICIES ]"
check "the incoming check holds every policy (as set elements)" \
  wait_until 120 bash -c "[ \$(ip netns exec '$R1' nft list table ip keyway_kwtun0 | grep -c '\. 10\.250\.0\.0/16 \. 0-255') = $POLICIES ]"
figure "$(grep incoming-check "$TMP/site1.log" | tail -1 | cut -c1-300)"

# Traffic through the first tunnel, and plaintext that a policy far down the list covers, dropped.
check "ping from site 1 to site 2 through the first manual tunnel" \
  wait_until 20 ip netns exec "$R1" ping -c 1 -W 1 -I 10.250.0.1 10.0.0.1
spoof_delivered() {  # spoof_delivered SRC: 20 plaintext UDP packets SRC -> 10.250.0.1 onto site 1's link
  local mac; mac=$(ip -n "$R1" -o link show "$V1" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
  ip netns exec "$R1" /usr/bin/python3 "$CHECK" listen 10.250.0.1 7777 2 >"$TMP/listen.out" 2>&1 &
  local l=$!
  sleep 0.5
  ip netns exec "$R2" /usr/bin/python3 "$CHECK" plain "$V2" "$mac" "$1" 10.250.0.1 7777 20 >/dev/null 2>&1
  wait "$l"
  grep -q 'received [1-9]' "$TMP/listen.out"
}
last=$(tail -1 "$TMP/big.rsc" | grep -o ' dst-address=[^ /]*' | cut -d= -f2)
covered=$(python3 -c "import ipaddress; print(ipaddress.ip_address('$last') + 1)")
check "plaintext from the last policy's far side ($covered) is dropped" not spoof_delivered "$covered"
check "plaintext no policy covers is delivered" spoof_delivered 192.0.2.2

check "no child of site 1 was restarted" test "$pids_before" = "$(children)"
check "no message between the processes was refused" \
  not grep -E 'wire-reject|truncated-datagram|over-long|overlong' "$TMP/site1.log"
check "no child was killed by its seccomp filter" not grep -F SIGSYS "$TMP/site1.log" "$TMP/site2.log"
for pid in $SITE1 $(children); do
  figure "$(tr -d '\0' <"/proc/$pid/comm") RSS $(awk '/VmRSS/ { print $2 " " $3 }' "/proc/$pid/status")"
done

summary
