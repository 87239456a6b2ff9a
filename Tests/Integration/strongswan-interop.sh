#!/usr/bin/env bash
# Issue 6: Keyway against strongSwan 5.9 (Debian, kernel-libipsec) — an independent IKEv1
# implementation. Keyway in one namespace, strongSwan in another, joined by veth; each protects
# its own subnet (10.1.0.0/24 behind Keyway, 10.2.0.0/24 behind strongSwan). Debian's 5.9.8
# with libipsec always floats to UDP 4500 and wants ESP in UDP, so Keyway runs nat-traversal=yes.
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/lib.sh"
PEER=$(cd "$(dirname "$0")/../../contrib" && pwd)/strongswan-peer.sh

KW=$(new_netns kw) SW=$(new_netns sw)
ip link add "kwv$$a" netns "$KW" type veth peer name "kwv$$b" netns "$SW"
ip -n "$KW" addr add 192.0.2.1/24 dev "kwv$$a"; ip -n "$KW" link set "kwv$$a" up
ip -n "$SW" addr add 192.0.2.2/24 dev "kwv$$b"; ip -n "$SW" link set "kwv$$b" up
for ns in "$KW" "$SW"; do ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
ip -n "$KW" addr add 10.1.0.1/32 dev lo
ip -n "$SW" addr add 10.2.0.1/32 dev lo
PSK=interop-secret-0123

start_keyway() {  # start_keyway: keywayd with $TMP/kw.rsc
  rm -rf "$TMP/kw"
  ip netns exec "$KW" "$BIN/keywayd" --foreground --config "$TMP/kw.rsc" --run-dir "$TMP/kw/run" \
    --state-dir "$TMP/kw/state" --syslog "$TMP/kw.syslog" --tun kwtun0 >"$TMP/kw.log" 2>&1 &
  PIDS+=($!)
  KWPID=$!
  wait_until 10 ip -n "$KW" route show table 19287 dev kwtun0
}
stop_keyway() { kill -TERM "$KWPID" 2>/dev/null; wait "$KWPID" 2>/dev/null; }
kw() { ip netns exec "$KW" "$BIN/keyway" --socket "$TMP/kw/run/control.sock" "$@"; }

start_strongswan() {  # start_strongswan IKE_PROPOSAL ESP_PROPOSAL [EXTRA CHILD OPTIONS]
  rm -rf "$TMP/sw"; mkdir -p "$TMP/sw"
  cat >"$TMP/sw/swanctl.conf" <<CONF
connections {
  kw {
    version = 1
    local_addrs = 192.0.2.2
    remote_addrs = 192.0.2.1
    proposals = $1
    ${SW_CONN_EXTRA:-}
    local { auth = psk }
    remote { auth = psk }
    children {
      net {
        local_ts = 10.2.0.0/24
        remote_ts = 10.1.0.0/24
        esp_proposals = $2
        ${3:-rekey_time = 1500s
        life_time = 1800s}
      }
    }
  }
}
secrets { ike-kw { secret = "$PSK" } }
CONF
  "$PEER" start "$SW" "$TMP/sw"
}
stop_strongswan() { "$PEER" stop "$TMP/sw"; }
sw() { "$PEER" swanctl "$TMP/sw" "$@"; }

ping_across() { ip netns exec "$KW" ping -c 1 -W 1 -I 10.1.0.1 10.2.0.1; }

# The SPIs each side shows (both directions of the pair), lower case without leading zeros (as
# RouterOS prints them), sorted: the two lists must be equal.
sw_spis() { sw --list-sas 2>/dev/null | awk '$1 == "in" || $1 == "out" { gsub(",", "", $2); sub(/^0+/, "", $2); print tolower($2) }' | sort | tr '\n' ' '; }
kw_spis() { kw /ip ipsec installed-sa print | grep -o 'spi=[0-9A-F]*' | cut -d= -f2 | tr 'A-F' 'a-f' | sort | tr '\n' ' '; }
spis_match() { [ -n "$(sw_spis)" ] && [ "$(sw_spis)" = "$(kw_spis)" ]; }

# interop LABEL INITIATOR(keyway|strongswan) KW_PEER KW_PROPOSAL SW_IKE SW_ESP [SW_CHILD_EXTRA]
interop() {
  local label=$1 initiator=$2 peer=$3 proposal=$4 swike=$5 swesp=$6 extra=${7:-}
  echo "-- $label"
  local failed_before=$FAILED
  cat >"$TMP/kw.rsc" <<CONF
/ip ipsec peer add address=192.0.2.2/32 secret="$PSK" nat-traversal=yes $peer
/ip ipsec proposal set default $proposal
/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2
CONF
  check "$label: strongSwan starts" start_strongswan "$swike" "$swesp" "$extra"
  check "$label: Keyway starts" start_keyway
  if [ "$initiator" = strongswan ]; then
    check "$label: strongSwan initiates and Keyway answers" timeout 30 "$PEER" swanctl "$TMP/sw" --initiate --child net --timeout 20
  fi
  check "$label: ping across" wait_until 15 ping_across
  check "$label: five more pings, none lost" ip netns exec "$KW" ping -q -c 5 -i 0.2 -W 1 -I 10.1.0.1 10.2.0.1
  sleep 1.2   # the datapath reports its SAs once a second
  check "$label: both sides show the same SA pair (SPIs)" wait_until 3 spis_match
  check "$label: Keyway shows the phase 1 in remote-peers print" bash -c "$(declare -f kw); KW='$KW' BIN='$BIN' TMP='$TMP'; kw /ip ipsec remote-peers print | grep -q 'state=established'"
  check "$label: policy print stats says ph2-state=established" bash -c "$(declare -f kw); KW='$KW' BIN='$BIN' TMP='$TMP'; kw /ip ipsec policy print stats | grep -q 'ph2-state=established'"
  if [ "$FAILED" -gt "$failed_before" ]; then
    echo "  strongSwan log:"; tail -25 "$TMP/sw/charon.log"; echo "  Keyway log:"; grep -v acquire "$TMP/kw.log" | tail -25
  fi
  stop_keyway; stop_strongswan
}

interop "main mode aes-128/sha1/modp1024, Keyway initiates" keyway \
  "hash-algorithm=sha1 enc-algorithm=aes-128 dh-group=modp1024" "auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=modp1024" \
  aes128-sha1-modp1024 aes128-sha1-modp1024
interop "main mode aes-128/sha1/modp1024, strongSwan initiates" strongswan \
  "hash-algorithm=sha1 enc-algorithm=aes-128 dh-group=modp1024" "auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=modp1024" \
  aes128-sha1-modp1024 aes128-sha1-modp1024
interop "main mode 3des/md5/modp1024, Keyway initiates" keyway \
  "hash-algorithm=md5 enc-algorithm=3des dh-group=modp1024" "auth-algorithms=md5 enc-algorithms=3des pfs-group=modp1024" \
  3des-md5-modp1024 3des-md5-modp1024
interop "main mode 3des/md5/modp1024, strongSwan initiates" strongswan \
  "hash-algorithm=md5 enc-algorithm=3des dh-group=modp1024" "auth-algorithms=md5 enc-algorithms=3des pfs-group=modp1024" \
  3des-md5-modp1024 3des-md5-modp1024
interop "PFS off (pfs-group=none), Keyway initiates" keyway \
  "hash-algorithm=sha1 enc-algorithm=aes-128 dh-group=modp2048" "auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=none" \
  aes128-sha1-modp2048 aes128-sha1
interop "PFS on with modp2048, strongSwan initiates" strongswan \
  "hash-algorithm=sha256 enc-algorithm=aes-256 dh-group=modp2048" "auth-algorithms=sha256 enc-algorithms=aes-256 pfs-group=modp2048" \
  aes256-sha256-modp2048 aes256-sha256-modp2048
interop "aes-128-gcm ESP, Keyway initiates" keyway \
  "hash-algorithm=sha1 enc-algorithm=aes-128 dh-group=modp1024" "enc-algorithms=aes-128-gcm pfs-group=modp1024" \
  aes128-sha1-modp1024 aes128gcm16-modp1024

summary
