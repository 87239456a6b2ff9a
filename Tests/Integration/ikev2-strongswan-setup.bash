# Sourced by ikev2-strongswan.sh and ikev2-strongswan-rekey.sh (not a suite): Keyway in one namespace,
# strongSwan 5.9.8 in another, joined by veth, each protecting a subnet (10.1.0.0/24 behind Keyway,
# 10.2.0.0/24 behind strongSwan); starting and stopping each side, and the checks both suites use.
. "$(dirname "$0")/lib.sh"
PEER=$(cd "$(dirname "$0")/../../contrib" && pwd)/strongswan-peer.sh

KW=$(new_netns kw) SW=$(new_netns sw)
ip link add "kwv$$a" netns "$KW" type veth peer name "kwv$$b" netns "$SW"
ip -n "$KW" addr add 192.0.2.1/24 dev "kwv$$a"; ip -n "$KW" link set "kwv$$a" up
ip -n "$SW" addr add 192.0.2.2/24 dev "kwv$$b"; ip -n "$SW" link set "kwv$$b" up
for ns in "$KW" "$SW"; do ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
ip -n "$KW" addr add 10.1.0.1/32 dev lo
ip -n "$SW" addr add 10.2.0.1/32 dev lo
PSK=ikev2-interop-secret-0123

start_keyway() {  # start_keyway: keywayd with $TMP/kw.rsc (and the certificates in $KW_CERTS, if set)
  rm -rf "$TMP/kw"
  if [ -n "${KW_CERTS:-}" ]; then
    mkdir -p "$TMP/kw/state/certificates"; cp "$KW_CERTS"/* "$TMP/kw/state/certificates/"
    chown -R keyway-monitor "$TMP/kw/state"; chmod 700 "$TMP/kw/state"
  fi
  ip netns exec "$KW" "$BIN/keywayd" --foreground --config "$TMP/kw.rsc" --run-dir "$TMP/kw/run" \
    --state-dir "$TMP/kw/state" --syslog "$TMP/kw.syslog" --tun kwtun0 >"$TMP/kw.log" 2>&1 &
  PIDS+=($!)
  KWPID=$!
  wait_until 10 ip -n "$KW" route show table 19287 dev kwtun0
}
stop_keyway() { kill -TERM "$KWPID" 2>/dev/null; wait "$KWPID" 2>/dev/null; }
kw() { ip netns exec "$KW" "$BIN/keyway" --socket "$TMP/kw/run/control.sock" "$@"; }

# start_strongswan IKE_PROPOSALS ESP_PROPOSALS [EXTRA CHILD OPTIONS]; SW_CONN_EXTRA adds connection
# options, SW_AUTH replaces the PSK authentication, SW_LOCAL_TS strongSwan's side.
start_strongswan() {
  rm -rf "$TMP/sw"; mkdir -p "$TMP/sw"
  local auth=${SW_AUTH:-}
  [ -n "$auth" ] || auth='local { auth = psk }
    remote { auth = psk }'
  cat >"$TMP/sw/swanctl.conf" <<CONF
connections {
  kw {
    version = 2
    local_addrs = 192.0.2.2
    remote_addrs = 192.0.2.1
    proposals = $1
    ${SW_CONN_EXTRA:-}
    $auth
    children {
      net {
        local_ts = ${SW_LOCAL_TS:-10.2.0.0/24}
        remote_ts = 10.1.0.0/24
        esp_proposals = $2
        ${3:-rekey_time = 1500s
        life_time = 1800s}
      }
      ${SW_MORE_CHILDREN:-}
    }
  }
}
secrets { ike-kw { secret = "$PSK" } }
CONF
  [ -n "${STRONGSWAN_PREPARE:-}" ] && "$STRONGSWAN_PREPARE"
  "$PEER" start "$SW" "$TMP/sw"
}
stop_strongswan() { "$PEER" stop "$TMP/sw"; }
sw() { "$PEER" swanctl "$TMP/sw" "$@"; }
initiate() { timeout 30 "$PEER" swanctl "$TMP/sw" --initiate --child net --timeout 20 >"$TMP/initiate.out" 2>&1; }

ping_across() { ip netns exec "$KW" ping -c 1 -W 1 -I 10.1.0.1 10.2.0.1; }

# The SPIs each side shows (both directions of each pair), lower case without leading zeros, sorted.
sw_spis() {
  sw --list-sas 2>/dev/null | awk '$1 == "in" || $1 == "out" { gsub(",", "", $2); sub(/^0+/, "", $2); print tolower($2) }' \
    | sort | tr '\n' ' '
}
kw_spis() { kw /ip ipsec installed-sa print | grep -o 'spi=[0-9A-F]*' | cut -d= -f2 | tr 'A-F' 'a-f' | sort | tr '\n' ' '; }
spis_match() { [ -n "$(sw_spis)" ] && [ "$(sw_spis)" = "$(kw_spis)" ]; }
sw_ikev2() { sw --list-sas 2>/dev/null | grep -q "IKEv2"; }
kw_shows() { bash -c "$(declare -f kw); KW='$KW' BIN='$BIN' TMP='$TMP'; kw $1 | grep -q -- '$2'"; }

write_kw() {  # write_kw PEER_OPTIONS PROPOSAL_OPTIONS
  cat >"$TMP/kw.rsc" <<CONF
/ip ipsec peer add address=192.0.2.2/32 exchange-mode=ike2 secret="$PSK" nat-traversal=yes $1
/ip ipsec proposal set default $2
/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2
CONF
}

show_logs() {
  echo "  strongSwan log:"; tail -30 "$TMP/sw/charon.log"; echo "  Keyway log:"; grep -v acquire "$TMP/kw.log" | tail -30
}

# interop LABEL INITIATOR(keyway|strongswan) KW_PEER KW_PROPOSAL SW_IKE SW_ESP [SW_CHILD_EXTRA]
interop() {
  local label=$1 initiator=$2 peer=$3 proposal=$4 swike=$5 swesp=$6 extra=${7:-}
  echo "-- $label"
  local failed_before=$FAILED
  write_kw "$peer" "$proposal"
  check "$label: strongSwan starts" start_strongswan "$swike" "$swesp" "$extra"
  check "$label: Keyway starts" start_keyway
  if [ "$initiator" = strongswan ]; then
    check "$label: strongSwan initiates and Keyway answers" initiate
  fi
  check "$label: ping across" wait_until 15 ping_across
  check "$label: five more pings, none lost" ip netns exec "$KW" ping -q -c 5 -i 0.2 -W 1 -I 10.1.0.1 10.2.0.1
  sleep 1.2   # the datapath reports its SAs once a second
  check "$label: both sides show the same SA pair (SPIs)" wait_until 10 spis_match
  check "$label: strongSwan lists an IKEv2 SA" sw_ikev2
  check "$label: remote-peers print shows an established IKEv2 SA" kw_shows "/ip ipsec remote-peers print" "ike-version=2"
  check "$label: policy print stats says ph2-state=established" kw_shows "/ip ipsec policy print stats" "ph2-state=established"
  [ "$FAILED" -gt "$failed_before" ] && show_logs
  stop_keyway; stop_strongswan
}
