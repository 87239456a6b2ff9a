#!/usr/bin/env bash
# Issue 12: IKEv2 rekeys and liveness against strongSwan 5.9.8 (Debian, kernel-libipsec): child
# and IKE SA rekeys under traffic with short lifetimes, each side rekeying, and liveness checks with
# a SIGKILLed peer. Same setup as ikev2-strongswan.sh.
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/ikev2-strongswan-setup.bash"

# The initiator SPI of strongSwan's IKE SA (swanctl prints "kw: #1, ESTABLISHED, IKEv2, 0123..._i 4567..._r*").
sw_ike_spi() { sw --list-sas 2>/dev/null | grep -o '[0-9a-f]\{16\}_i' | head -1; }

# rekey_case LABEL KW_PEER KW_PROPOSAL SW_CONN_EXTRA SW_CHILD_OPTIONS EVIDENCE_FILE EVIDENCE_PATTERN
# 400 pings at 0.1 s (40 s) across the rekey; at most 5 lost; the SPIs change and still match.
rekey_case() {
  local label=$1 peer=$2 proposal=$3 conn=$4 child=$5 file=$6 pattern=$7
  echo "-- $label"
  local failed_before=$FAILED
  write_kw "hash-algorithm=sha256 enc-algorithm=aes-128 dh-group=modp2048 $peer" \
    "auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=modp2048 $proposal"
  SW_CONN_EXTRA=$conn check "$label: strongSwan starts" start_strongswan aes128-sha256-modp2048 aes128-sha1-modp2048 "$child"
  check "$label: Keyway starts" start_keyway
  check "$label: ping across" wait_until 15 ping_across
  wait_until 10 spis_match   # the datapath reports its SAs once a second
  local first ike_first
  first=$(kw_spis)
  ike_first=$(sw_ike_spi)
  ip netns exec "$KW" ping -q -c 400 -i 0.1 -W 1 -I 10.1.0.1 10.2.0.1 >"$TMP/rekey-ping.txt" 2>&1
  local received
  received=$(grep -o '[0-9]* received' "$TMP/rekey-ping.txt" | cut -d' ' -f1)
  echo "  $label: ${received:-0} of 400 pings answered"
  check "$label: no more than 5 of 400 pings lost across the rekey" test "${received:-0}" -ge 395
  check "$label: the rekey happened ($pattern)" grep -qE "$pattern" "$file"
  sleep 1.2
  check "$label: both sides show the same SA pair" wait_until 10 spis_match
  spis_match || echo "  strongSwan: $(sw_spis) Keyway: $(kw_spis)"
  check "$label: one IKEv2 SA with one child, established" \
    bash -c "$(declare -f sw); PEER='$PEER' TMP='$TMP'; [ \"\$(sw --list-sas | grep -c 'IKEv2')\" = 1 ]"
  LAST_FIRST_SPIS=$first LAST_FIRST_IKE=$ike_first
  [ "$FAILED" -gt "$failed_before" ] && show_logs
}

# Keyway's proposal lives 40 s: Keyway rekeys the child (with a KE: pfs-group) at 70-80% (once in
# the 40 s of pings), deletes the old pair at once; strongSwan would rekey only after 25 minutes.
rekey_case "child rekey by Keyway (PFS) under traffic" "" "lifetime=40s" "" \
  "rekey_time = 1500s
        life_time = 1800s" "$TMP/sw/charon.log" "parsed CREATE_CHILD_SA request [0-9]+ \\[ N\\(REKEY_SA\\) SA No KE TSi TSr \\]"
check "child rekey by Keyway: a new SA pair replaced the first" test "$(kw_spis)" != "$LAST_FIRST_SPIS"
check "child rekey by Keyway: Keyway audited the rekey" grep -q "rekeying a child SA before its lifetime ends" "$TMP/kw.log"
stop_keyway; stop_strongswan

# strongSwan rekeys its child every 20 s (rand_time = 0); Keyway's lifetime is long.
rekey_case "child rekey by strongSwan (PFS) under traffic" "" "lifetime=30m" "" \
  "rekey_time = 20s
        life_time = 60s
        rand_time = 0s" "$TMP/sw/charon.log" "generating CREATE_CHILD_SA request [0-9]+ \\[ N\\(REKEY_SA\\) SA No KE TSi TSr \\]"
check "child rekey by strongSwan: a new SA pair replaced the first" test "$(kw_spis)" != "$LAST_FIRST_SPIS"
check "child rekey by strongSwan: Keyway removed the old pair on strongSwan's delete" grep -q "peer deleted a child SA" "$TMP/kw.log"
stop_keyway; stop_strongswan

# Keyway's IKE SA lives 40 s: Keyway rekeys it (CREATE_CHILD_SA with an IKE proposal and a KE),
# moves the child to the new SA and deletes the old one.
rekey_case "IKE SA rekey by Keyway under traffic" "lifetime=40s" "lifetime=30m" "" "" \
  "$TMP/sw/charon.log" "parsed CREATE_CHILD_SA request [0-9]+ \\[ SA No KE \\]"
check "IKE SA rekey by Keyway: the child SA was not renegotiated" test "$(kw_spis)" = "$LAST_FIRST_SPIS"
check "IKE SA rekey by Keyway: Keyway audited the move" grep -q "IKE SA rekeyed: its children moved to the new SA" "$TMP/kw.log"
check "IKE SA rekey by Keyway: strongSwan lists new IKE SPIs" \
  bash -c "$(declare -f sw sw_ike_spi); PEER='$PEER' TMP='$TMP'; [ -n '$LAST_FIRST_IKE' ] && [ \"\$(sw_ike_spi)\" != '$LAST_FIRST_IKE' ]"
stop_keyway; stop_strongswan

# strongSwan rekeys its IKE SA every 20 s.
rekey_case "IKE SA rekey by strongSwan under traffic" "" "lifetime=30m" "rekey_time = 20s
    rand_time = 0s" "" "$TMP/kw.log" "IKE SA rekeyed by the peer"
check "IKE SA rekey by strongSwan: the child SA was not renegotiated" test "$(kw_spis)" = "$LAST_FIRST_SPIS"
check "IKE SA rekey by strongSwan: strongSwan deleted the old IKE SA" \
  grep -qE "generating INFORMATIONAL request [0-9]+ \[ D \]" "$TMP/sw/charon.log"
check "IKE SA rekey by strongSwan: Keyway shows one established IKE SA" \
  bash -c "$(declare -f kw); KW='$KW' BIN='$BIN' TMP='$TMP'; [ \"\$(kw /ip ipsec remote-peers print | grep -c 'state=established')\" = 1 ]"
stop_keyway; stop_strongswan

# Liveness checks (RFC 7296 2.4) with RouterOS's dpd-interval and dpd-maximum-failures: strongSwan
# answers the empty INFORMATIONAL requests and the SAs stay; SIGKILLed (no Delete), it is declared
# dead after two unanswered checks and its SAs go.
echo "-- liveness checks"
write_kw "hash-algorithm=sha256 enc-algorithm=aes-128 dh-group=modp2048 dpd-interval=2s dpd-maximum-failures=2" \
  "auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=none"
check "dpd: strongSwan starts" start_strongswan aes128-sha256-modp2048 aes128-sha1
check "dpd: Keyway starts" start_keyway
check "dpd: ping across" wait_until 15 ping_across
sleep 7
check "dpd: strongSwan answered Keyway's liveness checks (the SAs are still there)" \
  bash -c "! grep -q 'ike-dpd' '$TMP/kw.log' && grep -qE 'parsed INFORMATIONAL request [0-9]+ \[ \]' '$TMP/sw/charon.log'"
check "dpd: traffic still flows" ping_across
kill -KILL "$(cat "$TMP/sw/charon.pid")"; stop_strongswan
check "dpd: with strongSwan dead, Keyway declares the peer dead" wait_until 15 grep -q "ike-dpd" "$TMP/kw.log"
no_sa() { [ "$(kw /ip ipsec installed-sa print | grep -c 'spi=')" = 0 ]; }
no_remote_peer() { [ "$(kw /ip ipsec remote-peers print | grep -c 'remote-address')" = 0 ]; }
check "dpd: and its SAs are gone from installed-sa print" wait_until 10 no_sa
check "dpd: and from remote-peers print" wait_until 10 no_remote_peer
stop_keyway

summary
