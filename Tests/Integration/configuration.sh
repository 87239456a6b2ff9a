#!/usr/bin/env bash
# Issue 3: configure keywayd through `keyway`, restart it, and find the same configuration;
# a read-only operator is refused changes and secrets; the audit log gets every change and no secret.
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/lib.sh"

NS=$(new_netns conf)
RUN=$TMP/run STATE=$TMP/state LOG=$TMP/syslog.txt SOCK=$TMP/run/control.sock
SECRET="kw-psk-$$-Xq7"
KEYHEX="00112233445566778899aabbccddeeff0011223344556677"
start_syslog "$TMP/log.sock" "$LOG" || fail "syslog listener did not start"
cp "$(dirname "$0")/../../Configs/tunnel-ah-manual-router1.rsc" "$TMP/seed.rsc"

start_keywayd() {
  ip netns exec "$NS" "$BIN/keywayd" --foreground --config "$TMP/seed.rsc" --run-dir "$RUN" --state-dir "$STATE" \
    --syslog "$TMP/log.sock" --tun kwconf0 >>"$TMP/keywayd.out" 2>&1 &
  KPID=$!
  PIDS+=($KPID)
  wait_until 10 ip netns exec "$NS" "$BIN/keyway" --socket "$SOCK" ping
}
stop_keywayd() { kill -TERM "$KPID"; wait "$KPID"; }
kw() { ip netns exec "$NS" "$BIN/keyway" --socket "$SOCK" "$@"; }

check "keywayd starts with the --config seed" start_keywayd
check "the seed script was applied" bash -c "$(declare -f kw); BIN='$BIN' NS='$NS' SOCK='$SOCK'; kw /ip ipsec policy print | grep -q manual-sa=ah-sa1"

kw /ip ipsec peer add address=192.0.2.2/32 secret="$SECRET" exchange-mode=aggressive dh-group=modp2048 enc-algorithm=aes-256 hash-algorithm=sha256 >/dev/null 2>&1
kw /ip ipsec proposal add name=strong enc-algorithms=aes-256-gcm auth-algorithms=null pfs-group=ecp256 lifetime=1h
kw /ip ipsec manual-sa add name=esp-sa esp-spi=0x200/0x201 esp-enc-algorithm=3des esp-enc-key=$KEYHEX esp-auth-key=0x0102030405060708090a0b0c0d0e0f1011121314
kw -f /dev/stdin <<'RSC'
/ip ipsec policy
add src-address=10.3.0.0/24 dst-address=10.4.0.0/24 tunnel=yes sa-src-address=192.0.2.1 \
    sa-dst-address=192.0.2.2 proposal=strong priority=5
add src-address=10.5.0.0/24 dst-address=10.6.0.0/24 action=none
disable [find action=none]
RSC
check "a script runs as one transaction" test $? = 0
kw -f /dev/stdin >/dev/null 2>&1 <<'RSC'
/ip ipsec policy add src-address=10.7.0.0/24 dst-address=10.8.0.0/24 action=none
/ip ipsec policy add src-address=banana
RSC
check "a failing script is refused" test $? = 1
check "and nothing of it was applied" bash -c "! ip netns exec '$NS' '$BIN/keyway' --socket '$SOCK' /ip ipsec policy print | grep -q 10.7.0.0"
out=$(kw /ip ipsec policy add color=red 2>&1); rc=$?
check "a bad command exits 1 with line and column" bash -c "[ $rc = 1 ] && grep -q 'error: line 1, column 22: unknown property' <<<'$out'"

before=$(kw /export show-sensitive)
kw --json /ip ipsec policy print >"$TMP/policies.json"
check "--json gives the same data as JSON" python3 -c "import json; rows=json.load(open('$TMP/policies.json')); assert len(rows)==3 and rows[1]['proposal']=='strong', rows"

stop_keywayd
check "the store holds the configuration" test -s "$STATE/config.rsc"
check "keywayd starts again" start_keywayd
after=$(kw /export show-sensitive)
check "export after a restart shows the same configuration" test "$before" = "$after"
[ "$before" = "$after" ] || diff <(echo "$before") <(echo "$after")

# Operators: a member of keyway-read may look, not change, never see secrets; others are refused.
getent group keyway-read >/dev/null || groupadd --system keyway-read
id kwtest-reader >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin -G keyway-read kwtest-reader
id kwtest-nobody >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin kwtest-nobody
kill -HUP "$KPID"    # keywayd re-reads the groups
sleep 1
as() { local u=$1; shift; ip netns exec "$NS" setpriv --reuid="$(id -u $u)" --regid="$(id -g $u)" --init-groups "$BIN/keyway" --socket "$SOCK" "$@"; }
check "a keyway-read member may print" bash -c "$(declare -f as); BIN='$BIN' NS='$NS' SOCK='$SOCK'; as kwtest-reader /ip ipsec peer print | grep -q 'address=192.0.2.2/32:500'"
out=$(as kwtest-reader /ip ipsec peer add address=192.0.2.99 2>&1); rc=$?
check "a keyway-read member is refused changes" bash -c "[ $rc = 1 ] && grep -q 'permission denied' <<<'$out'"
out=$(as kwtest-reader /export show-sensitive 2>&1); rc=$?
check "a keyway-read member is refused secrets" bash -c "[ $rc = 1 ] && ! grep -q '$SECRET' <<<'$out'"
check "a keyway-read member's export hides secrets" bash -c "$(declare -f as); BIN='$BIN' NS='$NS' SOCK='$SOCK'; ! as kwtest-reader /export | grep -q -e '$SECRET' -e '$KEYHEX'"
out=$(as kwtest-nobody /ip ipsec peer print 2>&1); rc=$?
check "a user in neither group is refused" bash -c "[ $rc = 1 ] && grep -q 'permission denied' <<<'$out'"
check "the refused change is audited" wait_until 5 grep -q "config-denied .*uid=\"$(id -u kwtest-reader)\"" "$LOG"

# A corrupt store: the last good copy is used, and said so loudly.
stop_keywayd
echo '/ip ipsec policy add src-address=garbage' >"$STATE/config.rsc"
check "keywayd starts with a corrupt store" start_keywayd
check "it falls back to the last good copy" bash -c "$(declare -f kw); BIN='$BIN' NS='$NS' SOCK='$SOCK'; kw /ip ipsec policy print | grep -q manual-sa=ah-sa1"
check "and says so loudly (critical)" grep -qE '^<82>1 .* keyway-monitor [0-9]+ config-load .*last good copy' "$LOG"
stop_keywayd

check "every change is audited with the caller's uid" bash -c "grep -c 'config-change .*uid=\"0\"' '$LOG' | awk '{ exit !(\$1 >= 6) }'"
check "audit lines mask secrets" grep -q 'secret=\*\*\*' "$LOG"
check "no secret or key anywhere in the audit log" bash -c "! grep -q -e '$SECRET' -e '$KEYHEX' -e '0102030405060708090a' '$LOG'"
check "the store is private to the keyway-monitor user" bash -c "[ \"\$(stat -c '%U %a' '$STATE/config.rsc')\" = 'keyway-monitor 600' ] && [ \"\$(stat -c '%U %a' '$STATE')\" = 'keyway-monitor 700' ]"

userdel kwtest-reader 2>/dev/null; userdel kwtest-nobody 2>/dev/null
check "no child was killed by its seccomp filter" not grep -F SIGSYS "$TMP/keywayd.out" "$LOG"
summary
