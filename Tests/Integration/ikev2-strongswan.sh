#!/usr/bin/env bash
# Issue 12: Keyway against strongSwan 5.9.8 (Debian, kernel-libipsec, kdf plugin) over IKEv2, with
# each side initiating. Keyway in one namespace, strongSwan in another, joined by veth; each
# protects a subnet (10.1.0.0/24 behind Keyway, 10.2.0.0/24 behind strongSwan). Debian's 5.9.8
# with libipsec fakes a NAT, floats to UDP 4500 and wants ESP in UDP, so Keyway runs
# nat-traversal=yes. Each case shows a ping across and the same SPIs on both sides.
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/ikev2-strongswan-setup.bash"

for who in keyway strongswan; do
  interop "PSK aes-128/sha256/modp2048, aes-128/sha1 child, $who initiates" $who \
    "hash-algorithm=sha256 enc-algorithm=aes-128 dh-group=modp2048" "auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=none" \
    aes128-sha256-modp2048 aes128-sha1
  interop "PSK aes-256/sha384/ecp384, aes-256-gcm child, $who initiates" $who \
    "hash-algorithm=sha384 enc-algorithm=aes-256 dh-group=ecp384" "enc-algorithms=aes-256-gcm pfs-group=none" \
    aes256-sha384-ecp384 aes256gcm16
  interop "AES-GCM and curve25519 for the IKE SA (RFC 5282, RFC 8031), $who initiates" $who \
    "hash-algorithm=sha256 enc-algorithm=aes-128-gcm dh-group=curve25519" "auth-algorithms=sha256 enc-algorithms=aes-128 pfs-group=none" \
    aes128gcm16-prfsha256-curve25519 aes128-sha256
done

# PFS on CREATE_CHILD_SA: a second policy is keyed by CREATE_CHILD_SA with a KE payload (the first
# child, in IKE_AUTH, takes its keys from the IKE SA's exchange).
ip -n "$KW" addr add 10.1.1.1/32 dev lo
ip -n "$SW" addr add 10.2.1.1/32 dev lo
SW_MORE_CHILDREN='net2 {
        local_ts = 10.2.1.0/24
        remote_ts = 10.1.1.0/24
        esp_proposals = aes128-sha1-modp2048
      }'
for who in keyway strongswan; do
  label="PFS (modp2048) on CREATE_CHILD_SA, $who initiates"
  echo "-- $label"
  failed_before=$FAILED
  write_kw "hash-algorithm=sha256 enc-algorithm=aes-128 dh-group=modp2048" \
    "auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=modp2048"
  echo "/ip ipsec policy add src-address=10.1.1.0/24 dst-address=10.2.1.0/24 tunnel=yes sa-src-address=192.0.2.1 \\
    sa-dst-address=192.0.2.2" >>"$TMP/kw.rsc"
  check "$label: strongSwan starts" start_strongswan aes128-sha256-modp2048 aes128-sha1-modp2048
  check "$label: Keyway starts" start_keyway
  if [ "$who" = strongswan ]; then
    check "$label: strongSwan initiates the first child" initiate
    check "$label: and the second (CREATE_CHILD_SA)" \
      bash -c "timeout 30 '$PEER' swanctl '$TMP/sw' --initiate --child net2 --timeout 20 >/dev/null 2>&1"
  fi
  check "$label: ping across the first policy" wait_until 15 ping_across
  check "$label: ping across the second policy" wait_until 15 ip netns exec "$KW" ping -c 1 -W 1 -I 10.1.1.1 10.2.1.1
  check "$label: the CREATE_CHILD_SA carried a KE payload" \
    grep -qE "(parsed|generating) CREATE_CHILD_SA request [0-9]+ \[.*KE" "$TMP/sw/charon.log"
  sleep 1.2
  check "$label: both sides show the same two SA pairs" wait_until 10 spis_match
  check "$label: installed-sa print flags the CREATE_CHILD_SA pair P (pfs)" \
    test "$(kw /ip ipsec installed-sa print | grep -c ' EP \| PE ')" -ge 2
  [ "$FAILED" -gt "$failed_before" ] && show_logs
  stop_keyway; stop_strongswan
done
SW_MORE_CHILDREN=""

# INVALID_KE_PAYLOAD: the initiator's KE is for a group the responder does not want; the
# responder names its group and the initiator repeats IKE_SA_INIT with it.
echo "-- INVALID_KE_PAYLOAD, strongSwan initiates"
write_kw "hash-algorithm=sha256 enc-algorithm=aes-128 dh-group=ecp256" "auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=none"
check "invalid KE, strongSwan initiates: strongSwan starts" start_strongswan aes128-sha256-modp2048-ecp256 aes128-sha1
check "invalid KE, strongSwan initiates: Keyway starts" start_keyway
check "invalid KE, strongSwan initiates: strongSwan initiates and succeeds" initiate
check "invalid KE, strongSwan initiates: Keyway asked for ecp256" \
  grep -q "peer didn't accept DH group MODP_2048, it requested ECP_256" "$TMP/sw/charon.log"
check "invalid KE, strongSwan initiates: ping across" wait_until 15 ping_across
sleep 1.2
check "invalid KE, strongSwan initiates: the same SA pair on both" wait_until 10 spis_match
stop_keyway; stop_strongswan
echo "-- INVALID_KE_PAYLOAD, Keyway initiates"
write_kw "hash-algorithm=sha256 enc-algorithm=aes-128 dh-group=ecp256,modp2048" "auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=none"
check "invalid KE, Keyway initiates: strongSwan starts" start_strongswan aes128-sha256-modp2048 aes128-sha1
check "invalid KE, Keyway initiates: Keyway starts" start_keyway
check "invalid KE, Keyway initiates: ping across" wait_until 15 ping_across
check "invalid KE, Keyway initiates: strongSwan asked for modp2048" \
  grep -q "DH group ECP_256 unacceptable, requesting MODP_2048" "$TMP/sw/charon.log"
check "invalid KE, Keyway initiates: Keyway audited the retry" grep -q "ike-invalid-ke.*wants group modp2048" "$TMP/kw.log"
sleep 1.2
check "invalid KE, Keyway initiates: the same SA pair on both" wait_until 10 spis_match
stop_keyway; stop_strongswan

# RSA certificates: a throwaway CA signs both sides' certificates (each with its address as
# subjectAltName); Keyway pins strongSwan's certificate, and keyway-monitor signs for keyway-ike.
rsa_certificates() {
  local d=$TMP/pki; mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -subj "/CN=Keyway test CA" -days 2 -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  for side in kw:192.0.2.1 sw:192.0.2.2; do
    local n=${side%%:*} ip=${side#*:}
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$n" -keyout "$d/$n.key" -out "$d/$n.csr" 2>/dev/null
    printf 'subjectAltName=IP:%s\n' "$ip" >"$d/$n.ext"
    openssl x509 -req -in "$d/$n.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 -extfile "$d/$n.ext" \
      -out "$d/$n.pem" 2>/dev/null
  done
  mkdir -p "$TMP/kwcerts"; cp "$d/kw.pem" "$d/kw.key" "$d/sw.pem" "$TMP/kwcerts/"
  [ -s "$d/kw.pem" ] && [ -s "$d/sw.pem" ]
}
check "rsa: test certificates made (openssl)" rsa_certificates
sw_rsa_files() {
  mkdir -p "$TMP/sw/x509ca" "$TMP/sw/x509" "$TMP/sw/private"
  cp "$TMP/pki/ca.pem" "$TMP/sw/x509ca/"; cp "$TMP/pki/sw.pem" "$TMP/sw/x509/"; cp "$TMP/pki/sw.key" "$TMP/sw/private/"
}
KW_CERTS=$TMP/kwcerts
SW_AUTH="local { auth = pubkey
      certs = sw.pem
      id = 192.0.2.2 }
    remote { auth = pubkey
      id = 192.0.2.1 }"
rsa_case() {  # rsa_case LABEL INITIATOR
  local label=$1 initiator=$2
  echo "-- $label"
  local failed_before=$FAILED
  cat >"$TMP/kw.rsc" <<CONF
/ip ipsec peer add address=192.0.2.2/32 exchange-mode=ike2 auth-method=rsa-signature certificate=kw \\
    remote-certificate=sw nat-traversal=yes hash-algorithm=sha256 enc-algorithm=aes-128 dh-group=modp2048
/ip ipsec proposal set default auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=none
/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2
CONF
  SW_CONN_EXTRA="send_cert = always" STRONGSWAN_PREPARE=sw_rsa_files \
    check "$label: strongSwan starts" start_strongswan aes128-sha256-modp2048 aes128-sha1
  check "$label: Keyway starts" start_keyway
  [ "$initiator" = strongswan ] && check "$label: strongSwan initiates and Keyway answers" initiate
  check "$label: ping across" wait_until 15 ping_across
  sleep 1.2
  check "$label: both sides show the same SA pair" wait_until 10 spis_match
  check "$label: strongSwan verified Keyway's RFC 7427 signature (RSA-PSS) and certificate" \
    grep -q "authentication of '192.0.2.1' with RSA_EMSA_PSS_SHA2_256_SALT_32 successful" "$TMP/sw/charon.log"
  check "$label: keyway-monitor signed for keyway-ike (which never reads the key)" \
    grep -q "keyway-monitor\[[0-9]*\]: ike-signed .*certificate=\"kw\".*scheme=\"rsa-pss-sha256\"" "$TMP/kw.log"
  [ "$FAILED" -gt "$failed_before" ] && show_logs
  stop_keyway; stop_strongswan
}
rsa_case "RSA certificates, Keyway initiates" keyway
rsa_case "RSA certificates, strongSwan initiates" strongswan

# RFC 7383: strongSwan fragments everything above 500 bytes, so its IKE_AUTH with a certificate
# arrives in pieces; Keyway's own IKE_AUTH with its certificate exceeds 1280 bytes and goes in
# fragments too.
CHARON_EXTRA="fragment_size = 500" rsa_case "fragmentation forced by strongSwan, strongSwan initiates" strongswan
check "fragmentation: strongSwan sent its IKE_AUTH in fragments" \
  grep -q "splitting IKE message .* into [0-9]* fragments" "$TMP/sw/charon.log"
check "fragmentation: Keyway reassembled them" grep -q "ike-fragments.*reassembled an IKEv2 message" "$TMP/kw.log"
check "fragmentation: strongSwan reassembled Keyway's fragmented answer" \
  grep -q "IKE_AUTH response 1 \[ EF(1/[0-9]*) \]" "$TMP/sw/charon.log"
KW_CERTS=""; SW_AUTH=""

# Refusals, all answered by one running Keyway, which then still serves a correct peer; a COOKIE
# under load; malformed IKEv2 at both ports.
echo "-- refusals, COOKIE and malformed datagrams"
write_kw "hash-algorithm=sha256 enc-algorithm=aes-128 dh-group=modp2048" "auth-algorithms=sha1 enc-algorithms=aes-128 pfs-group=none"
start_syslog "$TMP/kw.syslog" "$TMP/audit.log"
sleep 0.3
check "refusals: Keyway starts" start_keyway
IKEPID=$(pgrep -P "$KWPID" -x keyway-ike)
audited() { wait_until 10 grep -q "$1" "$TMP/audit.log"; }
sw_got() { wait_until 10 grep -q "$1" "$TMP/sw/charon.log"; }

PSK_SAVED=$PSK; PSK=not-the-same-secret
start_strongswan aes128-sha256-modp2048 aes128-sha1
check "wrong PSK: the negotiation fails" not initiate
check "wrong PSK: audit names the reason" audited "ike-failed.*AUTH does not match: the pre-shared keys differ"
check "wrong PSK: strongSwan received AUTHENTICATION_FAILED" sw_got "received AUTHENTICATION_FAILED notify error"
stop_strongswan; PSK=$PSK_SAVED

start_strongswan aes256-sha512-modp4096 aes128-sha1
check "IKE proposal mismatch: the negotiation fails" not initiate
check "IKE proposal mismatch: audit names both proposals" \
  audited "peer offered aes-256/prf-sha512/sha512/modp4096; peer 192.0.2.2/32 has aes-128/sha256/modp2048"
check "IKE proposal mismatch: strongSwan received NO_PROPOSAL_CHOSEN" sw_got "received NO_PROPOSAL_CHOSEN notify error"
stop_strongswan

start_strongswan aes128-sha256-modp2048 3des-md5
check "child proposal mismatch: no child SA" not initiate
check "child proposal mismatch: audit names both proposals" \
  audited "child SA negotiation failed: peer offered esp 3des/md5; policy [0-9]* has aes-128/sha1/no pfs"
check "child proposal mismatch: strongSwan received NO_PROPOSAL_CHOSEN" sw_got "received NO_PROPOSAL_CHOSEN notify"
stop_strongswan

SW_LOCAL_TS=10.9.0.0/24 start_strongswan aes128-sha256-modp2048 aes128-sha1
check "traffic selectors outside the policy: no child SA" not initiate
check "traffic selectors outside the policy: audit names them" \
  audited "child SA negotiation failed: peer proposed 10.1.0.0/24 <=> 10.9.0.0/24; policy [0-9]* 10.1.0.0/24 <=> 10.2.0.0/24"
check "traffic selectors outside the policy: strongSwan received TS_UNACCEPTABLE" sw_got "received TS_UNACCEPTABLE notify"
stop_strongswan

# COOKIE (RFC 7296 2.6): IKE_SA_INITs from the peer's address that never go on fill Keyway's
# half-open table up to its threshold (10); from then on an IKE_SA_INIT gets a COOKIE and no state.
start_strongswan aes128-sha256-modp2048 aes128-sha1
ip netns exec "$SW" /usr/bin/python3 - <<'PY'
import os, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.0.2.2", 0))
def payload(next_type, data): return struct.pack("!BBH", next_type, 0, len(data) + 4) + data
def transform(last, ttype, tid, attr=b""): return struct.pack("!BBHBBH", 0 if last else 3, 0, 8 + len(attr), ttype, 0, tid) + attr
ts = transform(0, 1, 12, struct.pack("!HH", 0x800e, 128)) + transform(0, 2, 5) + transform(0, 3, 12) + transform(1, 4, 14)
proposal = struct.pack("!BBHBBBB", 0, 0, 8 + len(ts), 1, 1, 0, 4) + ts
for i in range(12):
    ke = struct.pack("!HH", 14, 0) + bytes([0x7f]) + os.urandom(255)
    body = payload(34, proposal) + payload(40, ke) + payload(0, os.urandom(32))
    header = os.urandom(8) + b"\0" * 8 + struct.pack("!BBBBII", 33, 0x20, 34, 0x08, 0, 28 + len(body))
    s.sendto(header + body, ("192.0.2.1", 500))
PY
check "cookie: the half-open IKE SAs reached the threshold" \
  wait_until 5 bash -c "$(declare -f kw); KW='$KW' BIN='$BIN' TMP='$TMP'; \
    kw /ip ipsec remote-peers print | grep -c sa-init-answered | grep -q 10"
check "cookie: strongSwan initiates and succeeds" initiate
check "cookie: Keyway answered with a COOKIE" sw_got "parsed IKE_SA_INIT response 0 \[ N(COOKIE) \]"
check "cookie: strongSwan repeated IKE_SA_INIT with it" sw_got "generating IKE_SA_INIT request 0 \[ N(COOKIE) SA KE No"
check "cookie: Keyway audited the cookie" audited "ike-cookie"
check "cookie: ping across" wait_until 15 ping_across
stop_strongswan

# Malformed IKEv2 at UDP 500 and 4500 (after the non-ESP marker): truncated, lying lengths, broken
# chains, critical unknown payloads, garbage in SK, random bytes.
ip netns exec "$SW" /usr/bin/python3 - <<'PY'
import os, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def hdr(next_payload, exch, length, flags=0x08, spir=b"\0" * 8, mid=0):
    return os.urandom(8) + spir + struct.pack("!BBBBII", next_payload, 0x20, exch, flags, mid, length)
bad = [b"", b"\x01", os.urandom(27), hdr(33, 34, 1000), hdr(33, 34, 28)[:-1]]
bad.append(hdr(33, 34, 28 + 4) + struct.pack("!BBH", 0, 0, 200))            # payload longer than the message
bad.append(hdr(99, 34, 28 + 8) + struct.pack("!BBHI", 0, 0x80, 8, 0))       # critical unknown payload
bad.append(hdr(33, 34, 28 + 8) + struct.pack("!BBHBBBB", 0, 0, 8, 0, 0, 0, 200))  # proposal claims 200 transforms
bad.append(hdr(46, 35, 28 + 60, spir=os.urandom(8), mid=1) + struct.pack("!BBH", 35, 0, 60) + os.urandom(56))
bad.append(hdr(53, 35, 28 + 64, spir=os.urandom(8), mid=1) + struct.pack("!BBHHH", 35, 0, 64, 9, 2) + os.urandom(56))
bad.append(hdr(44, 34, 28 + 8) + struct.pack("!BBHBBBB", 0, 0, 8, 255, 0, 0, 0))  # 255 selectors announced
bad += [os.urandom(n) for n in (28, 60, 300, 1400)]
for b in bad * 5:
    s.sendto(b, ("192.0.2.1", 500))
    s.sendto(b"\0\0\0\0" + b, ("192.0.2.1", 4500))
print("sent", len(bad) * 10)
PY
sleep 1
check "malformed IKEv2: keyway-ike is still the same process" test "$(pgrep -P "$KWPID" -x keyway-ike)" = "$IKEPID"
check "malformed IKEv2: drops are audited" audited "ike-malformed.*IKEv2 message dropped"

start_strongswan aes128-sha256-modp2048 aes128-sha1
check "after every refusal and the garbage, the appliance still serves a correct peer" initiate
check "and traffic flows" wait_until 10 ping_across
stop_strongswan
stop_keyway

summary
