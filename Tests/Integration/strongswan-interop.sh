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
        ${3:-}
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

# Scratch: one case while the harness is built.
cat >"$TMP/kw.rsc" <<CONF
/ip ipsec peer add address=192.0.2.2/32 secret="$PSK" hash-algorithm=sha1 enc-algorithm=aes-128 dh-group=modp1024 nat-traversal=yes
/ip ipsec proposal set default auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=modp1024
/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2
CONF
check "strongSwan starts" start_strongswan aes128-sha1-modp1024 aes128-sha1-modp1024
check "keyway starts" start_keyway
check "ping across (Keyway initiates)" wait_until 15 ping_across
sw --list-sas
kw /ip ipsec installed-sa print
kw /ip ipsec remote-peers print
cat "$TMP/sw/charon.log" | tail -40
grep -h "ike\|acquire" "$TMP/kw.log" | tail -30
stop_keyway; stop_strongswan
summary
