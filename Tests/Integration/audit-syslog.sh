#!/usr/bin/env bash
# Issue 13: audit that stock syslog parses and never loses. A real rsyslogd with a stock imuxsock
# input on a socket of its own: every process's lines arrive with its program name and pid, a
# configuration change with the caller's uid; rsyslogd is restarted and a change made meanwhile
# still arrives. Then RFC 5424 into the rsyslog snippet contrib/ documents.
set -u
BIN=${BIN:?set BIN to the build products directory}
. "$(dirname "$0")/lib.sh"

command -v rsyslogd >/dev/null || { fail "rsyslogd is not installed (contrib/install-deps.sh)"; summary; exit 1; }
NS=$(new_netns audit)
RUN=$TMP/run STATE=$TMP/state SOCK=$TMP/run/control.sock OUT=$TMP/received.txt
mkdir -p "$TMP/rs"

# A stock imuxsock input (its default parser, as /dev/log has on Debian), on a socket of its own;
# the template shows what rsyslog parsed: program name, pid, message.
cat >"$TMP/rsyslog.conf" <<CONF
global(workDirectory="$TMP/rs")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="$TMP/log.sock")
template(name="parsed" type="string" string="%programname%|%procid%|%msg%\n")
*.* action(type="omfile" file="$OUT" template="parsed")
CONF
start_rsyslog() {
  rsyslogd -n -f "$TMP/rsyslog.conf" -i "$TMP/rs/rsyslogd.pid" >>"$TMP/rsyslogd.out" 2>&1 &
  RSPID=$!
  PIDS+=($RSPID)
  wait_until 10 test -S "$TMP/log.sock"
}
stop_rsyslog() { kill -TERM "$RSPID"; wait "$RSPID" 2>/dev/null; ! test -S "$TMP/log.sock" || rm -f "$TMP/log.sock"; }
check "rsyslogd starts with a stock imuxsock input" start_rsyslog

ip netns exec "$NS" "$BIN/keywayd" --foreground --config /nonexistent --run-dir "$RUN" --state-dir "$STATE" \
  --syslog "$TMP/log.sock" --tun kwaud0 >"$TMP/keywayd.out" 2>&1 &
KPID=$!
PIDS+=($KPID)
check "keywayd starts" wait_until 10 ip netns exec "$NS" "$BIN/keyway" --socket "$SOCK" ping
child() { pgrep -P "$KPID" -x "$1"; }
wait_until 10 bash -c "[ -n \"\$(pgrep -P $KPID -x keyway-datapath)\" ]"

arrived() {  # arrived PROGRAM PID: a line rsyslog parsed as that program with that pid
  grep -q "^$1|$2|" "$OUT"
}
check "keywayd's lines arrive with program name keywayd and its pid" wait_until 10 arrived keywayd "$KPID"
for role in keyway-monitor keyway-ike keyway-datapath; do
  pid=$(child "$role")
  check "$role's lines arrive with program name $role and its pid ($pid)" wait_until 10 arrived "$role" "$pid"
done
check "no line arrives with the RFC 5424 header in its message (program name '1')" not grep -q '^1|' "$OUT"

# A configuration change by an administrator who is not root: the line names their uid.
getent group keyway >/dev/null || groupadd --system keyway
id kwtest-admin >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin -G keyway kwtest-admin
ADMIN=$(id -u kwtest-admin)
as_admin() {
  ip netns exec "$NS" setpriv --reuid="$ADMIN" --regid="$(id -g kwtest-admin)" --init-groups \
    "$BIN/keyway" --socket "$SOCK" "$@"
}
check "a member of keyway changes the configuration" \
  as_admin /ip ipsec proposal add name=audited lifetime=1h pfs-group=modp2048
MON=$(child keyway-monitor)
check "the change arrives from keyway-monitor with its pid and the caller's uid" \
  wait_until 10 grep -q "^keyway-monitor|$MON|.*config-change .*uid=\"$ADMIN\" command=\"/ip ipsec proposal add name=audited" "$OUT"

# rsyslogd restarts: a change made while it is down arrives once it is back.
check "rsyslogd stops" stop_rsyslog
ip netns exec "$NS" "$BIN/keyway" --socket "$SOCK" /ip ipsec proposal set audited lifetime=2h
check "a change made while rsyslogd is down is accepted" test $? = 0
check "keywayd says syslog is unreachable, on its stderr" wait_until 5 grep -q "syslog at $TMP/log.sock is unreachable" "$TMP/keywayd.out"
check "rsyslogd starts again" start_rsyslog
check "the change made meanwhile arrives, from keyway-monitor with its pid" \
  wait_until 15 grep -q "^keyway-monitor|$MON|.*config-change .*command=\"/ip ipsec proposal set audited lifetime=2h" "$OUT"
ip netns exec "$NS" "$BIN/keyway" --socket "$SOCK" /ip ipsec proposal set audited lifetime=3h
check "and so do later ones" wait_until 10 grep -q "command=\"/ip ipsec proposal set audited lifetime=3h" "$OUT"
check "nothing was lost in the outage (no audit-lost line)" not grep -q "audit-lost" "$OUT"
kill -TERM "$KPID"; wait "$KPID"
check "keywayd stopped cleanly" test $? = 0

# RFC 5424, for a listener that parses it: the documented rsyslog snippet, on a socket of its own.
stop_rsyslog
sed -e "s|/run/keyway-syslog.sock|$TMP/5424.sock|" "$(dirname "$0")/../../contrib/rsyslog/keyway-rfc5424.conf" \
  >"$TMP/snippet.conf"
cat >"$TMP/rsyslog.conf" <<CONF
global(workDirectory="$TMP/rs")
module(load="imuxsock" SysSock.Use="off")
\$IncludeConfig $TMP/snippet.conf
template(name="parsed" type="string" string="%programname%|%procid%|%msgid%|%structured-data%|%msg%\n")
*.* action(type="omfile" file="$TMP/5424.txt" template="parsed")
CONF
rsyslogd -n -f "$TMP/rsyslog.conf" -i "$TMP/rs/rsyslogd.pid" >>"$TMP/rsyslogd.out" 2>&1 &
RSPID=$!; PIDS+=($RSPID)
wait_until 10 test -S "$TMP/5424.sock"
ip netns exec "$NS" "$BIN/keywayd" --foreground --config /nonexistent --run-dir "$RUN" --state-dir "$STATE" \
  --syslog "$TMP/5424.sock" --syslog-format rfc5424 --tun kwaud0 >>"$TMP/keywayd.out" 2>&1 &
KPID=$!; PIDS+=($KPID)
wait_until 10 ip netns exec "$NS" "$BIN/keyway" --socket "$SOCK" ping
ip netns exec "$NS" "$BIN/keyway" --socket "$SOCK" /ip ipsec proposal set audited lifetime=4h
MON=$(pgrep -P "$KPID" -x keyway-monitor)
check "--syslog-format rfc5424 into the contrib snippet: program, pid, MSGID and structured data as fields" \
  wait_until 10 grep -q "^keyway-monitor|$MON|config-change|\[keyway@32473 uid=\"0\" command=\"/ip ipsec proposal set audited lifetime=4h\"\]|configuration changed" "$TMP/5424.txt"
kill -TERM "$KPID"; wait "$KPID"
userdel kwtest-admin 2>/dev/null
check "no child was killed by its seccomp filter" not grep -F SIGSYS "$TMP/keywayd.out" "$OUT"
[ "$FAILED" = 0 ] || { echo "  received:"; tail -20 "$OUT" "$TMP/5424.txt" 2>/dev/null | sed 's/^/    /'; }
summary
