#!/usr/bin/env bash
# Issue 11, control-plane scale: one appliance with PEERS IKEv1 peers (main mode, PSK, modp2048;
# quick mode without PFS) and as many tunnel policies; the far appliance answers for all of them
# from secondary addresses of one interface (198.18.0.0/15), so every reply must leave from the
# address the peer used. Every tunnel is pinged within 60 s, and the memory keyway-ike and
# keyway-datapath gain per SA is printed (figure lines; the issue's goal is at most 2 KiB per SA
# beyond the base). Size: KEYWAY_PEERS (default 500).
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/lib.sh"
PEERS=${KEYWAY_PEERS:-500}
SAS=$((2 * PEERS))
echo "# $PEERS peers, $PEERS tunnel policies ($SAS SAs on each side)"

two_routers p
# Tunnel I: near LAN 10.250.0.1 <-> far LAN 10.201.X.Y, between 192.0.2.1 and 198.18.X.Y.
suffix() { echo "$(($1 / 250)).$(($1 % 250 + 1))"; }
ip -n "$R1" addr add 10.250.0.1/32 dev lo
ip -n "$R1" route add 198.18.0.0/15 dev "$V1"
{
  for ((i = 0; i < PEERS; i++)); do
    echo "addr add 198.18.$(suffix $i)/15 dev $V2"
    echo "addr add 10.201.$(suffix $i)/32 dev lo"
  done
} >"$TMP/far-addresses"
ip -n "$R2" -batch "$TMP/far-addresses"

secret='"peers500 test secret"'
{
  echo "/ip ipsec proposal set default pfs-group=none enc-algorithms=aes-128"
  echo "/ip ipsec peer"
  for ((i = 0; i < PEERS; i++)); do
    echo "add address=198.18.$(suffix $i)/32 secret=$secret dh-group=modp2048 exchange-mode=main hash-algorithm=sha1 enc-algorithm=aes-128"
  done
  echo "/ip ipsec policy"
  for ((i = 0; i < PEERS; i++)); do
    echo "add src-address=10.250.0.1/32 dst-address=10.201.$(suffix $i)/32 tunnel=yes" \
      "sa-src-address=192.0.2.1 sa-dst-address=198.18.$(suffix $i)"
  done
} >"$TMP/near.rsc"
{
  echo "/ip ipsec proposal set default pfs-group=none enc-algorithms=aes-128"
  echo "/ip ipsec peer add address=192.0.2.1/32 secret=$secret dh-group=modp2048 exchange-mode=main hash-algorithm=sha1 enc-algorithm=aes-128"
  echo "/ip ipsec policy"
  for ((i = 0; i < PEERS; i++)); do
    echo "add src-address=10.201.$(suffix $i)/32 dst-address=10.250.0.1/32 tunnel=yes" \
      "sa-src-address=198.18.$(suffix $i) sa-dst-address=192.0.2.1"
  done
} >"$TMP/far.rsc"

figure() { echo "  figure: $*"; }
# rss NS_PID COMM FIELD: FIELD of /proc/PID/status (VmRSS, RssAnon) in kB, for keywayd NS_PID's
# child named COMM. Per SA counts RssAnon, the process's own memory: VmRSS also counts the pages of
# code (keyway-ike, libswiftCore, libcrypto) that the first tunnels run for the first time, shared
# and read from the files, the same for one tunnel as for 500 (about 0.5 MB in the datapath, 1 MB
# in keyway-ike, measured from /proc/PID/smaps).
rss() {
  local p
  for p in $(pgrep -P "$1"); do
    [ "$(tr -d '\0' <"/proc/$p/comm")" = "$2" ] && { awk -v f="$3:" '$1 == f { print $2 }' "/proc/$p/status"; return; }
  done
  echo 0
}

check "near appliance starts with $PEERS peers" start_keywayd "$R1" near
NEAR=${PIDS[${#PIDS[@]}-1]}
check "far appliance starts" start_keywayd "$R2" far
FAR=${PIDS[${#PIDS[@]}-1]}
check "near: all $PEERS policies configured" \
  wait_until 30 bash -c "[ \"\$(ip netns exec '$R1' '$BIN/keyway' --socket '$TMP/near/run/control.sock' /ip ipsec policy print count-only)\" = $PEERS ]"
check "near: keywayd routes every tunnel's far side into the TUN device" \
  wait_until 30 bash -c "[ \$(ip -n '$R1' route show table 19287 | grep -c 'dev kwtun0') -ge $PEERS ]"
sleep 1
declare -A before
for side in near far; do
  pid=$NEAR; [ $side = far ] && pid=$FAR
  for comm in keyway-ike keyway-datapath; do
    before[$side.$comm]=$(rss "$pid" "$comm" VmRSS)
    before[$side.$comm.anon]=$(rss "$pid" "$comm" RssAnon)
  done
done

# Every tunnel pinged at once: one echo request per unanswered tunnel each second, for at most
# 60 s; prints how many answered and when the last one did.
t0=$(date +%s%N)
ip netns exec "$R1" python3 - "$PEERS" >"$TMP/pings.out" 2>&1 <<'PY'
import os, select, socket, struct, sys, time
n = int(sys.argv[1])
targets = {f"10.201.{i // 250}.{i % 250 + 1}" for i in range(n)}
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.bind(("10.250.0.1", 0))
def checksum(b):
    total = sum(struct.unpack(f"!{len(b) // 2}H", b))
    total = (total >> 16) + (total & 0xffff)
    return ~(total + (total >> 16)) & 0xffff
ident, answered, start, seq = os.getpid() & 0xffff, set(), time.monotonic(), 0
last = None
while time.monotonic() - start < 60 and answered != targets:
    seq += 1
    for t in sorted(targets - answered):
        body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"peers500"
        s.sendto(body[:2] + struct.pack("!H", checksum(body)) + body[4:], (t, 0))
    round_end = time.monotonic() + 1
    while time.monotonic() < round_end:
        if not select.select([s], [], [], max(0, round_end - time.monotonic()))[0]:
            continue
        data, (src, _) = s.recvfrom(2048)
        icmp = data[(data[0] & 15) * 4:]
        if icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == ident and src in targets:
            if src not in answered:
                answered.add(src)
                last = time.monotonic() - start
print(f"answered {len(answered)} of {n} last {last if last is not None else -1:.1f}")
PY
figure "$(cat "$TMP/pings.out") s (all tunnels pinged at once; wall $(( ($(date +%s%N) - t0) / 1000000 )) ms)"
check "every one of the $PEERS tunnels answered a ping within 60 s" grep -q "^answered $PEERS of $PEERS " "$TMP/pings.out"
sleep 2
installed() { kw "$R1" near /ip ipsec installed-sa print count-only; }
check "near: the datapath holds $SAS SAs" wait_until 10 bash -c "[ \"\$($(declare -f kw installed); BIN='$BIN' TMP='$TMP' R1='$R1' installed)\" = $SAS ]"
[ "$(installed)" = "$SAS" ] || echo "# installed-sa print count-only: $(installed)"
check "near: $PEERS phase 1 SAs established" \
  bash -c "[ \$(ip netns exec '$R1' '$BIN/keyway' --socket '$TMP/near/run/control.sock' /ip ipsec remote-peers print | grep -c 'state=established') = $PEERS ]"

for side in near far; do
  pid=$NEAR; [ $side = far ] && pid=$FAR
  for comm in keyway-ike keyway-datapath; do
    after=$(rss "$pid" "$comm" VmRSS)
    b=${before[$side.$comm]}
    anon_after=$(rss "$pid" "$comm" RssAnon)
    anon_before=${before[$side.$comm.anon]}
    figure "$side $comm RssAnon $anon_before kB before, $anon_after kB after:" \
      "$(( (anon_after - anon_before) * 1024 / SAS )) bytes per SA ($SAS SAs; VmRSS $b -> $after kB," \
      "$(( (after - b) * 1024 / SAS )) bytes per SA with code pages)"
  done
done
check "no child was restarted or refused a message" \
  not grep -E 'child-unresponsive|child-exit|wire-reject|truncated-datagram' "$TMP/near.log" "$TMP/far.log"
check "no child was killed by its seccomp filter" not grep -F SIGSYS "$TMP/near.log" "$TMP/far.log"
summary
