#!/usr/bin/env bash
# Issue 10: each child played compromised by keyway-impostor, which takes its place on the real
# links (same start-up, same sandbox) and sends every request that child may send, with hostile
# values: SAs for unconfigured policies, a generated 0.0.0.0/0 at the top priority, lifetimes of
# 2^64-1, route requests for /0 and for the host's own network, firewall rules that would drop
# SSH, signing requests of a DigestInfo. Each must be refused and audited, counted in `keyway
# status`, and the host's routes, rules and nftables state must be byte-for-byte the same after.
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/lib.sh"

two_routers c
ip -n "$R1" addr add 10.1.0.1/32 dev lo

# A tunnel to 192.0.2.2 authenticated by certificate (so that signing is configured), and a
# road-warrior range allowed to generate policies.
pki=$TMP/pki; mkdir -p "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -subj "/CN=router1" -days 2 \
  -keyout "$pki/router1.key" -out "$pki/router1.pem" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -subj "/CN=router2" -days 2 \
  -keyout "$pki/router2.key" -out "$pki/router2.pem" 2>/dev/null
cat >"$TMP/r1.rsc" <<'CONF'
/ip ipsec proposal set default enc-algorithms=aes-128 auth-algorithms=sha1
/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes \
    sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2
/ip ipsec peer add address=192.0.2.2 auth-method=rsa-signature certificate=router1 remote-certificate=router2
/ip ipsec peer add address=192.0.2.3 exchange-mode=ike2 auth-method=rsa-signature certificate=router1 \
    remote-certificate=router2
/ip ipsec peer add address=198.51.100.0/24 secret="road warriors" generate-policy=yes
CONF

# The host's routes (every table), rules and firewall, without counters.
host_state() { ip -n "$R1" route show table all; ip -n "$R1" rule; ip netns exec "$R1" nft -s list ruleset; }
# The pid keyway status shows for a process.
pid_of() { kw "$R1" r1 status | awk -v p="$1" '$0 ~ p { for (i = 1; i <= NF; i++) if ($i == p) print $(i + 1) }'; }
refused_of() { kw "$R1" r1 status | awk -v p="$1" '$0 ~ p { print $NF }'; }
# Status shows a child's pid once its hello reached the monitor, its refusals with the next report.
pids_known() { local p; for p in "$@"; do [[ "$(pid_of "$p")" =~ ^[0-9]+$ ]] || return 1; done; }
refusals_at_least() { local n; n=$(refused_of "$1"); [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge "$2" ]; }

# impostor ROLE: keywayd from a directory where keyway-ROLE is the impostor; waits until it acted.
impostor() {
  local role=$1 dir=$TMP/bin-$1
  rm -rf "$dir" "$TMP/r1"; mkdir -p "$dir"; chmod 755 "$dir"
  for b in keywayd keyway keyway-ike keyway-datapath keyway-monitor; do cp -p "$BIN/$b" "$dir/"; done
  cp -p "$BIN/keyway-impostor" "$dir/keyway-$role"
  mkdir -p "$TMP/r1/state/certificates"; cp "$pki"/* "$TMP/r1/state/certificates/"
  chown -R keyway-monitor "$TMP/r1/state"; chmod 700 "$TMP/r1/state"
  local saved=$BIN; BIN=$dir
  start_keywayd "$R1" r1
  BIN=$saved
  # The configured state first (routes, then the incoming-check table), so that "before" is complete.
  if [ "$role" != monitor ]; then
    wait_until 10 ip -n "$R1" route show table 19287 dev kwtun0 &&
      wait_until 10 ip netns exec "$R1" nft list table ip keyway_kwtun0
  fi
}

for role in ike datapath monitor; do
  echo "-- keyway-$role compromised"
  impostor "$role"
  check "$role: keywayd starts with the impostor in keyway-$role's place" \
    wait_until 10 grep -q "keyway-impostor (keyway-$role): started" "$TMP/r1.log"
  before=$(host_state)
  if [ "$role" != monitor ]; then
    wait_until 10 pids_known keyway-ike keyway-datapath keyway-monitor
    ike_pid=$(pid_of keyway-ike); dp_pid=$(pid_of keyway-datapath); mon_pid=$(pid_of keyway-monitor)
  fi
  check "$role: the impostor sent its hostile requests" \
    wait_until 20 grep -q "keyway-impostor (keyway-$role): done" "$TMP/r1.log"
  sleep 2.5  # the receivers' state reaches the monitor once a second
  after=$(host_state)
  check "$role: the host's routes, rules and nftables state are byte-for-byte the same" test "$before" = "$after"
  [ "$before" = "$after" ] || diff <(echo "$before") <(echo "$after")
  case $role in
  ike)
    check "ike: SA installs refused and audited by keyway-datapath" \
      grep -q "SA install from keyway-ike refused" "$TMP/r1.log"
    check "ike: the DigestInfo signing request refused and audited by keyway-monitor" \
      grep -q "signing request from keyway-ike refused: 51 bytes to sign" "$TMP/r1.log"
    check "ike: the unannounced signing request refused" \
      grep -q "signing request from keyway-ike refused: signature for an exchange that was not announced" \
        "$TMP/r1.log"
    check "ike: an IKEv2 exchange announced for an IKEv1 peer refused" \
      grep -q "signing announcement from keyway-ike refused: an IKEv2 exchange announced for an IKEv1 peer" \
        "$TMP/r1.log"
    check "ike: a DigestInfo where IKEv2's IKE_SA_INIT message belongs refused" \
      grep -q "IKEv2 signing request from keyway-ike refused: the message names another initiator SPI" \
        "$TMP/r1.log"
    check "ike: a raw IKEv1 hash for an IKEv2 exchange refused" \
      grep -q "signing request from keyway-ike refused: an IKEv1 signing request for an IKEv2 exchange" "$TMP/r1.log"
    check "ike: the monitor never signed" not grep -q "ike-signed" "$TMP/r1.log"
    check "ike: nothing installed" test "$(kw "$R1" r1 /ip ipsec installed-sa print count-only)" = 0
    check "ike: no dynamic policy appeared" not bash -c \
      "$(declare -f kw); BIN='$BIN' TMP='$TMP'; kw '$R1' r1 /ip ipsec policy print | grep -qE '^ *[0-9]+ +D'"
    check "ike: a flush sent as if by the monitor was dropped by the datapath" \
      grep -q "dropped message from keyway-ike: .*FlushSAs" "$TMP/r1.log"
    check \
      "ike: keyway status counts 11 refusals from keyway-ike (4 SA installs, 5 signing requests, 2 off the channel)" \
      wait_until 10 refusals_at_least keyway-ike 11
    check "ike: the datapath and the monitor are the same processes" \
      test "$(pid_of keyway-datapath)/$(pid_of keyway-monitor)" = "$dp_pid/$mon_pid" ;;
  datapath)
    check "datapath: generated policies refused and audited by keywayd" \
      grep -q "generated policies from keyway-datapath refused" "$TMP/r1.log"
    check "datapath: its firewall rules (a policy authority) dropped unread" \
      grep -q "dropped message from keyway-datapath: .*PolicyAuthority" "$TMP/r1.log"
    check "datapath: a /33 prefix dropped as malformed" \
      grep -q "dropped message from keyway-datapath: .*invalid" "$TMP/r1.log"
    check "datapath: keyway status counts at least 6 refusals from keyway-datapath" \
      wait_until 10 refusals_at_least keyway-datapath 6
    check "datapath: no route but the configured one" \
      test "$(ip -n "$R1" route show table 19287 | xargs)" = "10.2.0.0/24 dev kwtun0 scope link"
    check "datapath: keyway-ike and keyway-monitor are the same processes" \
      test "$(pid_of keyway-ike)/$(pid_of keyway-monitor)" = "$ike_pid/$mon_pid" ;;
  monitor)
    check "monitor: keywayd dropped what the monitor may not send it" \
      grep -q "dropped message from keyway-monitor: .*GeneratedPolicySet" "$TMP/r1.log"
    check "monitor: the datapath dropped an SA install from the monitor" \
      grep -q "dropped message from keyway-monitor: .*SAInstall" "$TMP/r1.log"
    check "monitor: no route appeared" test -z "$(ip -n "$R1" route show table 19287 2>/dev/null)" ;;
  esac
  check "$role: keywayd keeps running" kill -0 "${PIDS[-1]}"
  kill -TERM "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null
  # What a child says while it stops is still relayed (keywayd reads its last words), but as that
  # child's, whatever it claims.
  check "$role: its last words at shutdown are relayed as keyway-$role's, not as keywayd's" \
    grep -qE "keyway-$role\[[0-9]+\]: stop keywayd: every child stopped cleanly" "$TMP/r1.log"
  check "$role: no other process is named as the source of those words" \
    not grep -qE "keywayd\[[0-9]+\]: stop keywayd: every child stopped cleanly" "$TMP/r1.log"
done
summary
