#!/usr/bin/env bash
# Issue 6: Keyway against strongSwan 5.9 (Debian, kernel-libipsec) — an independent IKEv1
# implementation. Keyway in one namespace, strongSwan in another, joined by veth; each protects
# its own subnet (10.1.0.0/24 behind Keyway, 10.2.0.0/24 behind strongSwan). Debian's 5.9.8
# with libipsec always floats to UDP 4500 and wants ESP in UDP, so Keyway runs nat-traversal=yes.
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/lib.sh"
PEER=$(cd "$(dirname "$0")/../../contrib" && pwd)/strongswan-peer.sh
TOOLS=$(cd "$(dirname "$0")" && pwd)/mtu_tools.py

KW=$(new_netns kw) SW=$(new_netns sw)
ip link add "kwv$$a" netns "$KW" type veth peer name "kwv$$b" netns "$SW"
ip -n "$KW" addr add 192.0.2.1/24 dev "kwv$$a"; ip -n "$KW" link set "kwv$$a" up
ip -n "$SW" addr add 192.0.2.2/24 dev "kwv$$b"; ip -n "$SW" link set "kwv$$b" up
for ns in "$KW" "$SW"; do ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
ip -n "$KW" addr add 10.1.0.1/32 dev lo
ip -n "$SW" addr add 10.2.0.1/32 dev lo
PSK=interop-secret-0123

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

start_strongswan() {  # start_strongswan IKE_PROPOSAL ESP_PROPOSAL [EXTRA CHILD OPTIONS]
  rm -rf "$TMP/sw"; mkdir -p "$TMP/sw"
  local auth=${SW_AUTH:-}
  [ -n "$auth" ] || auth='local { auth = psk }
    remote { auth = psk }'
  cat >"$TMP/sw/swanctl.conf" <<CONF
connections {
  kw {
    version = 1
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
  check "$label: both sides show the same SA pair (SPIs)" wait_until 10 spis_match
  check "$label: Keyway shows the phase 1 in remote-peers print" wait_until 10 bash -c "$(declare -f kw); KW='$KW' BIN='$BIN' TMP='$TMP'; kw /ip ipsec remote-peers print | grep -q 'state=established'"
  check "$label: policy print stats says ph2-state=established" wait_until 10 bash -c "$(declare -f kw); KW='$KW' BIN='$BIN' TMP='$TMP'; kw /ip ipsec policy print stats | grep -q 'ph2-state=established'"
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
SW_CONN_EXTRA="aggressive = yes"
interop "aggressive mode, Keyway initiates" keyway \
  "exchange-mode=aggressive hash-algorithm=sha1 enc-algorithm=aes-128 dh-group=modp1024" "auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=modp1024" \
  aes128-sha1-modp1024 aes128-sha1-modp1024
interop "aggressive mode, strongSwan initiates" strongswan \
  "exchange-mode=aggressive hash-algorithm=sha1 enc-algorithm=aes-128 dh-group=modp1024" "auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=modp1024" \
  aes128-sha1-modp1024 aes128-sha1-modp1024
SW_CONN_EXTRA=""

# RSA signatures: a CA signs both sides' certificates (each with its address as subjectAltName,
# which strongSwan matches the ID against); Keyway pins strongSwan's certificate and signs with
# its own key, which only keyway-monitor reads.
rsa_certificates() {
  local d=$TMP/pki; mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -subj "/CN=Keyway test CA" -days 2 -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  for side in kw:192.0.2.1 sw:192.0.2.2; do
    local n=${side%%:*} ip=${side#*:}
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$n" -keyout "$d/$n.key" -out "$d/$n.csr" 2>/dev/null
    printf 'subjectAltName=IP:%s\n' "$ip" >"$d/$n.ext"
    openssl x509 -req -in "$d/$n.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 -extfile "$d/$n.ext" -out "$d/$n.pem" 2>/dev/null
  done
  mkdir -p "$TMP/kwcerts"; cp "$d/kw.pem" "$d/kw.key" "$d/sw.pem" "$TMP/kwcerts/"
  [ -s "$d/kw.pem" ] && [ -s "$d/sw.pem" ]
}
check "rsa: test certificates made (openssl)" rsa_certificates
sw_rsa_files() { mkdir -p "$TMP/sw/x509ca" "$TMP/sw/x509" "$TMP/sw/private"; cp "$TMP/pki/ca.pem" "$TMP/sw/x509ca/"; cp "$TMP/pki/sw.pem" "$TMP/sw/x509/"; cp "$TMP/pki/sw.key" "$TMP/sw/private/"; }
KW_CERTS=$TMP/kwcerts
SW_AUTH="local { auth = pubkey
      certs = sw.pem
      id = 192.0.2.2 }
    remote { auth = pubkey
      id = 192.0.2.1 }"
for initiator in keyway strongswan; do
  echo "-- main mode with RSA signatures, $initiator initiates"
  cat >"$TMP/kw.rsc" <<CONF
/ip ipsec peer add address=192.0.2.2/32 auth-method=rsa-signature certificate=kw remote-certificate=sw nat-traversal=yes hash-algorithm=sha1 enc-algorithm=aes-128
/ip ipsec proposal set default auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=modp1024
/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2
CONF
  STRONGSWAN_PREPARE=sw_rsa_files check "rsa, $initiator initiates: strongSwan starts" start_strongswan aes128-sha1-modp1024 aes128-sha1-modp1024
  check "rsa, $initiator initiates: Keyway starts" start_keyway
  [ "$initiator" = strongswan ] && check "rsa: strongSwan initiates and Keyway answers" timeout 30 "$PEER" swanctl "$TMP/sw" --initiate --child net --timeout 20
  check "rsa, $initiator initiates: ping across" wait_until 15 ping_across
  sleep 1.2
  check "rsa, $initiator initiates: both sides show the same SA pair" wait_until 10 spis_match
  check "rsa, $initiator initiates: strongSwan authenticated Keyway by its certificate" grep -q "authentication of '192.0.2.1'.*successful\|authentication of '192.0.2.1' with RSA" "$TMP/sw/charon.log"
  check "rsa, $initiator initiates: keyway-monitor signed for keyway-ike (which never reads the key)" grep -q "keyway-monitor\[[0-9]*\]: ike-signed .*certificate=\"kw\"" "$TMP/kw.log"
  stop_keyway; stop_strongswan
done
KW_CERTS=""; SW_AUTH=""

# A rekey under traffic: Keyway's proposal lives 30 s, so Keyway rekeys at 24 s (80%) and the old
# pair dies at 30 s. Pings every 0.1 s for 40 s across both moments lose no more than a handful.
echo "-- rekey under traffic"
cat >"$TMP/kw.rsc" <<CONF
/ip ipsec peer add address=192.0.2.2/32 secret="$PSK" nat-traversal=yes hash-algorithm=sha1 enc-algorithm=aes-128
/ip ipsec proposal set default auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=modp1024 lifetime=30s
/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2
CONF
check "rekey: strongSwan starts" start_strongswan aes128-sha1-modp1024 aes128-sha1-modp1024
check "rekey: Keyway starts" start_keyway
check "rekey: ping across" wait_until 15 ping_across
wait_until 10 spis_match   # the datapath reports its SAs once a second
first=$(kw_spis)
ip netns exec "$KW" ping -q -c 400 -i 0.1 -W 1 -I 10.1.0.1 10.2.0.1 >"$TMP/rekey-ping.txt" 2>&1
received=$(grep -o '[0-9]* received' "$TMP/rekey-ping.txt" | cut -d' ' -f1)
echo "  rekey: ${received:-0} of 400 pings answered"
check "rekey: no more than 5 of 400 pings lost across the rekey and the old SA's end" test "${received:-0}" -ge 395
sleep 1.2
check "rekey: a new SA pair replaced the first" bash -c "[ -n '$first' ] && [ \"$first\" != \"\$($(declare -f kw kw_spis); KW='$KW' BIN='$BIN' TMP='$TMP'; kw_spis)\" ]"
check "rekey: both sides show the same (new) SA pair" wait_until 10 spis_match
check "rekey: Keyway audited the rekey" grep -q "rekeying phase 2" "$TMP/kw.log"
stop_keyway; stop_strongswan

# Dead peer detection (RouterOS v6's dpd-interval and dpd-maximum-failures): strongSwan answers
# R-U-THERE, so the SAs stay; once it is dead, Keyway removes them after two silent intervals.
echo "-- dead peer detection"
cat >"$TMP/kw.rsc" <<CONF
/ip ipsec peer add address=192.0.2.2/32 secret="$PSK" nat-traversal=yes hash-algorithm=sha1 enc-algorithm=aes-128 dpd-interval=2s dpd-maximum-failures=2
/ip ipsec proposal set default auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=modp1024
/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2
CONF
check "dpd: strongSwan starts" start_strongswan aes128-sha1-modp1024 aes128-sha1-modp1024
check "dpd: Keyway starts" start_keyway
check "dpd: ping across" wait_until 15 ping_across
sleep 7
check "dpd: strongSwan received the probes and answered (the SAs are still there)" bash -c "! grep -q 'ike-dpd' '$TMP/kw.log' && grep -q 'parsed INFORMATIONAL_V1 request .*N(DPD)' '$TMP/sw/charon.log'"
check "dpd: traffic still flows" ping_across
# SIGKILL: a peer that dies sends no Delete.
kill -KILL "$(cat "$TMP/sw/charon.pid")"; stop_strongswan
check "dpd: with strongSwan dead, Keyway declares the peer dead" wait_until 12 grep -q "ike-dpd" "$TMP/kw.log"
no_sa() { [ "$(kw /ip ipsec installed-sa print | grep -c 'spi=')" = 0 ]; }
check "dpd: and its SAs are gone from installed-sa print" wait_until 10 no_sa
stop_keyway

# Refusals, all answered by one running Keyway, which then still serves a correct peer.
echo "-- refusals"
cat >"$TMP/kw.rsc" <<CONF
/ip ipsec peer add address=192.0.2.2/32 secret="$PSK" nat-traversal=yes hash-algorithm=sha1 enc-algorithm=aes-128
/ip ipsec proposal set default auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=modp1024
/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2
CONF
start_syslog "$TMP/kw.syslog" "$TMP/audit.log"
sleep 0.3
check "refusals: Keyway starts" start_keyway
IKEPID=$(pgrep -P "$KWPID" -x keyway-ike)
initiate() { timeout 30 "$PEER" swanctl "$TMP/sw" --initiate --child net --timeout 15 >"$TMP/initiate.out" 2>&1; }
audited() { wait_until 10 grep -q "$1" "$TMP/audit.log"; }

PSK_SAVED=$PSK; PSK=not-the-same-secret
start_strongswan aes128-sha1-modp1024 aes128-sha1-modp1024
check "wrong PSK: the negotiation fails" not initiate
check "wrong PSK: audit names the reason" audited "ike-failed.*pre-shared keys differ"
check "wrong PSK: strongSwan received AUTHENTICATION-FAILED" grep -q "parsed INFORMATIONAL_V1 request .*N(AUTH_FAILED)" "$TMP/sw/charon.log"
stop_strongswan; PSK=$PSK_SAVED

start_strongswan aes256-sha256-modp2048 aes128-sha1-modp1024
check "phase 1 proposal mismatch: the negotiation fails" not initiate
check "phase 1 proposal mismatch: audit names both proposals" audited "peer offered aes-256/sha256/modp2048; peer 192.0.2.2/32 has aes-128/sha1/modp1024"
check "phase 1 proposal mismatch: strongSwan received NO-PROPOSAL-CHOSEN" grep -q "NO_PROPOSAL_CHOSEN" "$TMP/sw/charon.log"
stop_strongswan

start_strongswan aes128-sha1-modp1024 3des-md5-modp1024
check "phase 2 proposal mismatch: the negotiation fails" not initiate
check "phase 2 proposal mismatch: audit names both proposals" audited "peer offered esp 3des/md5/modp1024; policy [0-9]* has aes-128/sha1/modp1024"
check "phase 2 proposal mismatch: strongSwan received NO-PROPOSAL-CHOSEN" grep -q "received NO_PROPOSAL_CHOSEN" "$TMP/sw/charon.log"
stop_strongswan

# strongSwan proposes 3960 s (its default life_time); Keyway's proposal says 1800 s.
for check_mode in strict exact obey claim; do
  kw /ip ipsec peer set 0 proposal-check=$check_mode >/dev/null
  sleep 0.5
  start_strongswan aes128-sha1-modp1024 aes128-sha1-modp1024 "life_time = 3960s"
  case $check_mode in
    strict|exact)
      check "lifetime mismatch, proposal-check=$check_mode: refused" not initiate
      check "lifetime mismatch, proposal-check=$check_mode: audit names the reason" audited "lifetime mismatch.*proposal-check=$check_mode"
      check "lifetime mismatch, proposal-check=$check_mode: strongSwan received NO-PROPOSAL-CHOSEN" grep -q "received NO_PROPOSAL_CHOSEN" "$TMP/sw/charon.log" ;;
    obey)
      check "lifetime mismatch, proposal-check=obey: accepted" initiate
      check "lifetime mismatch, proposal-check=obey: Keyway took the proposed 3960 s" audited "phase2-established.*lifetime=\"3960s\"" ;;
    claim)
      check "lifetime mismatch, proposal-check=claim: accepted" initiate
      check "lifetime mismatch, proposal-check=claim: Keyway kept its 1800 s" audited "phase2-established.*lifetime=\"1800s\""
      check "lifetime mismatch, proposal-check=claim: Keyway's answer carried RESPONDER-LIFETIME" grep -q "parsed QUICK_MODE response.*N((24576))" "$TMP/sw/charon.log" ;;
  esac
  stop_strongswan
done
# The largest lifetime strongSwan 5.9 can propose: its IKEv1 SA payload carries 32 bits
# (4294967295 s, some 136 years). Under obey Keyway takes it only up to one week, says so with
# RESPONDER-LIFETIME, and neither keyway-ike nor keyway-datapath trips over it.
kw /ip ipsec peer set 0 proposal-check=obey >/dev/null
sleep 0.5
DPPID=$(pgrep -P "$KWPID" -x keyway-datapath)
start_strongswan aes128-sha1-modp1024 aes128-sha1-modp1024 "life_time = 4294967295s"
check "huge lifetime, proposal-check=obey: accepted" initiate
check "huge lifetime: Keyway took one week, not 136 years" audited "phase2-established.*lifetime=\"604800s\""
sleep 1.2
check "huge lifetime: installed-sa print shows the bounded lifetime" \
  wait_until 10 bash -c "$(declare -f kw); KW='$KW' BIN='$BIN' TMP='$TMP'; \
    kw /ip ipsec installed-sa print | grep -q 'add-lifetime=5d14h24m/1w'"
check "huge lifetime: Keyway's answer carried RESPONDER-LIFETIME" \
  grep -q "parsed QUICK_MODE response.*N((24576))" "$TMP/sw/charon.log"
check "huge lifetime: traffic flows" wait_until 10 ping_across
check "huge lifetime: keyway-ike and keyway-datapath kept their pids" \
  test "$(pgrep -P "$KWPID" -x keyway-ike) $(pgrep -P "$KWPID" -x keyway-datapath)" = "$IKEPID $DPPID"
stop_strongswan
kw /ip ipsec peer set 0 proposal-check=strict >/dev/null

# Malformed ISAKMP at UDP 500: truncated, bad lengths, broken chains, huge attributes.
ip netns exec "$SW" /usr/bin/python3 - <<'PY'
import os, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def hdr(next_payload, exch, length, flags=0, rc=b"\0" * 8):
    return os.urandom(8) + rc + struct.pack("!BBBBII", next_payload, 0x10, exch, flags, 0, length)
bad = [b"", b"\x01", os.urandom(27), hdr(1, 2, 1000), hdr(1, 2, 28)[:-1]]
sa = struct.pack("!BBHII", 0, 0, 12, 1, 1)
bad.append(hdr(1, 2, 28 + len(sa)) + sa)                                   # SA without proposals
bad.append(hdr(1, 2, 28 + 8) + struct.pack("!BBHI", 99, 0, 8, 0))            # chain to an unknown payload
bad.append(hdr(1, 2, 28 + 4) + struct.pack("!BBH", 0, 0, 200))                # payload longer than the message
attr = struct.pack("!HH", 1, 60000) + b"\0" * 8
t = struct.pack("!BBHBBH", 0, 0, 8 + len(attr), 1, 1, 0) + attr
p = struct.pack("!BBHBBBB", 0, 0, 8 + len(t), 1, 1, 0, 1) + t
sa = struct.pack("!BBHII", 0, 0, 12 + len(p), 1, 1) + p
bad.append(hdr(1, 2, 28 + len(sa)) + sa)                                   # a 60000-byte attribute
bad.append(hdr(8, 32, 28 + 8, flags=1) + os.urandom(8))                       # quick mode for no SA
bad += [os.urandom(n) for n in (28, 60, 300, 1400)]
for b in bad * 5:
    s.sendto(b, ("192.0.2.1", 500))
print("sent", len(bad) * 5)
PY
sleep 1
check "malformed ISAKMP: keyway-ike is still the same process" test "$(pgrep -P "$KWPID" -x keyway-ike)" = "$IKEPID"
check "malformed ISAKMP: drops are audited" audited "ike-malformed"

start_strongswan aes128-sha1-modp1024 aes128-sha1-modp1024
check "after every refusal and the garbage, the appliance still serves a correct peer" initiate
check "and traffic flows" wait_until 10 ping_across
stop_strongswan
stop_keyway

# generate-policy=yes within bounds: a peer whose traffic selectors claim 0.0.0.0/0 gets
# INVALID-ID-INFORMATION and no policy; the same peer claiming its own LAN gets its `D` policy.
echo "-- generate-policy bounds"
cat >"$TMP/kw.rsc" <<CONF
/ip ipsec peer add address=192.0.2.2/32 secret="$PSK" nat-traversal=yes \
    hash-algorithm=sha1 enc-algorithm=aes-128 generate-policy=yes
/ip ipsec proposal set default auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=modp1024
CONF
dynamic_policies() { kw /ip ipsec policy print | grep -cE '^ *[0-9]+ +D '; }
check "generate-policy: Keyway starts (a generate-policy peer, no policy)" start_keyway
SW_LOCAL_TS=0.0.0.0/0 start_strongswan aes128-sha1-modp1024 aes128-sha1-modp1024
check "generate-policy claiming 0.0.0.0/0: refused" not initiate
check "generate-policy claiming 0.0.0.0/0: Keyway audits the reason" \
  audited "ike-failed.*generate-policy refused: 0.0.0.0/0 is never generated"
check "generate-policy claiming 0.0.0.0/0: strongSwan received INVALID-ID-INFORMATION" \
  grep -q "received INVALID_ID_INFORMATION" "$TMP/sw/charon.log"
sleep 1.2
check "generate-policy claiming 0.0.0.0/0: no D policy in policy print" test "$(dynamic_policies)" = 0
stop_strongswan
start_strongswan aes128-sha1-modp1024 aes128-sha1-modp1024
check "generate-policy for the peer's own LAN: accepted" initiate
check "generate-policy for the peer's own LAN: traffic flows" wait_until 10 ping_across
one_dynamic_policy() { [ "$(dynamic_policies)" = 1 ]; }
check "generate-policy for the peer's own LAN: a D policy in policy print" wait_until 10 one_dynamic_policy
stop_strongswan
stop_keyway

# Issue 14: the link at MTU 1280. Keyway's TUN MTU follows it (ESP in UDP with aes-128/sha1: 1214
# fit); strongSwan's libipsec keeps its TUN at 1400 and its kernel fragments the outer UDP, which
# Keyway's kernel reassembles; a SYN from strongSwan's side is clamped on the way in.
echo "-- outer MTU 1280"
ip -n "$KW" link set "kwv$$a" mtu 1280; ip -n "$SW" link set "kwv$$b" mtu 1280
cat >"$TMP/kw.rsc" <<CONF
/ip ipsec peer add address=192.0.2.2/32 secret="$PSK" nat-traversal=yes hash-algorithm=sha1 enc-algorithm=aes-128
/ip ipsec proposal set default auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=modp1024
/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2
CONF
mtu_transfer() {  # mtu_transfer CLIENT_NS SERVER_NS SRC DST: 1 MB, SHA-256 on both ends
  rm -f "$TMP/tcp.out" "$TMP/tcp.in"
  ip netns exec "$2" /usr/bin/python3 "$TOOLS" serve "$4" 5001 1000000 "$TMP/tcp.out" 30 2>/dev/null &
  local server=$!
  sleep 0.3
  ip netns exec "$1" timeout 30 /usr/bin/python3 "$TOOLS" send "$3" "$4" 5001 1000000 >"$TMP/tcp.in" 2>/dev/null
  wait "$server"
  [ -s "$TMP/tcp.out" ] && [ "$(cat "$TMP/tcp.in")" = "$(cat "$TMP/tcp.out")" ]
}
kw_tun_is() { ip -n "$KW" -o link show kwtun0 | grep -q "mtu $1 "; }
check "mtu 1280: strongSwan starts" start_strongswan aes128-sha1-modp1024 aes128-sha1-modp1024
check "mtu 1280: Keyway starts" start_keyway
check "mtu 1280: ping across" wait_until 15 ping_across
check "mtu 1280: Keyway's TUN MTU follows the link (1214)" wait_until 8 kw_tun_is 1214
check "mtu 1280: 1 MB from Keyway's side to strongSwan's arrives intact" mtu_transfer "$KW" "$SW" 10.1.0.1 10.2.0.1
check "mtu 1280: 1 MB from strongSwan's side to Keyway's arrives intact" mtu_transfer "$SW" "$KW" 10.2.0.1 10.1.0.1
check "mtu 1280: Keyway clamped the SYN that came through the tunnel" \
  bash -c "ip netns exec '$KW' '$BIN/keyway' --socket '$TMP/kw/run/control.sock' counters | grep -qE '^datapath.mss-clamped=[1-9]'"
check "mtu 1280: pings of every size from 64 to 3000 bytes cross" \
  ip netns exec "$KW" /usr/bin/python3 "$TOOLS" sweep 10.2.0.1 64 3000 10.1.0.1
stop_strongswan
stop_keyway

summary
