#!/usr/bin/env bash
# Issue 13: the Debian package. contrib/build-deb.sh builds it; lintian finds no error; its man
# pages render; it installs (users, state directory); keywayd runs from the installed paths under
# the unit's capability bounding set, and configuration.sh passes against the installed binaries;
# the unit's systemd-analyze exposure is printed; purging leaves nothing behind.
set -u
unset BIN    # this suite runs what the package installs, not the build products
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

if dpkg -s keyway >/dev/null 2>&1; then
  echo "  a keyway package is installed already; purging it first"
  dpkg --purge keyway >/dev/null 2>&1
fi
mkdir -p "$TMP/deb"
DEB=$(CONFIGURATION=${CONFIGURATION:-debug} "$ROOT/contrib/build-deb.sh" "$TMP/deb" | tail -1)
check "contrib/build-deb.sh builds keyway_VERSION_amd64.deb" bash -c "[[ '$DEB' == */keyway_*_amd64.deb ]] && test -s '$DEB'"

lintian --tag-display-limit 0 "$DEB" >"$TMP/lintian.txt" 2>&1
sed 's/^/  lintian: /' "$TMP/lintian.txt" | grep -v 'root privileges'
check "lintian reports no errors" not grep -q '^E:' "$TMP/lintian.txt"

dpkg-deb -x "$DEB" "$TMP/x"
for page in usr/share/man/man8/keywayd.8.gz usr/share/man/man8/keyway.8.gz usr/share/man/man5/keyway.rsc.5.gz; do
  check "$(basename "$page" .gz) reads with man -l, without warnings" \
    bash -c "out=\$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l '$TMP/x/$page' 2>&1 >/dev/null); [ -z \"\$out\" ] && \
      LC_ALL=C.UTF-8 man -l '$TMP/x/$page' 2>/dev/null | grep -q '^NAME'"
done

check "the package installs" dpkg -i "$DEB"
for f in /usr/sbin/keywayd /usr/bin/keyway /usr/libexec/keyway/keyway-ike /usr/libexec/keyway/keyway-datapath \
         /usr/libexec/keyway/keyway-monitor; do
  check "$f is root's, 0755" test "$(stat -c '%U:%G %a' "$f")" = "root:root 755"
done
check "the unit, sysusers.d and tmpfiles.d entries, bash completion are installed" \
  test -f /lib/systemd/system/keywayd.service -a -f /usr/lib/sysusers.d/keyway.conf \
    -a -f /usr/lib/tmpfiles.d/keyway.conf -a -f /usr/share/bash-completion/completions/keyway
check "/etc/keyway/keyway.rsc is a conffile" bash -c "dpkg-query -W -f='\${Conffiles}' keyway | grep -q '/etc/keyway/keyway.rsc'"
check "the children's users and the operator groups exist" \
  bash -c "for n in keyway-ike keyway-datapath keyway-monitor; do id \$n >/dev/null || exit 1; done; getent group keyway keyway-read >/dev/null"
check "the state directory is keyway-monitor's, 0700" test "$(stat -c '%U %a' /var/lib/keyway)" = "keyway-monitor 700"
check "bash completion asks the installed console" bash -c '. /usr/share/bash-completion/completions/keyway
  COMP_LINE="keyway /ip ipsec pol"; COMP_POINT=${#COMP_LINE}; COMP_WORDS=(keyway /ip ipsec pol); COMP_CWORD=3
  _keyway; [ "${COMPREPLY[*]}" = policy ]'

exposure=$(systemd-analyze security --offline=true /lib/systemd/system/keywayd.service 2>&1 | grep 'Overall exposure')
echo "  systemd-analyze security --offline=true keywayd.service: ${exposure#*: }"
check "the unit's exposure is 3.0 or below" \
  bash -c "awk '{ for (i = 1; i <= NF; i++) if (\$i ~ /^[0-9]+\\.[0-9]+\$/) { exit !(\$i <= 3.0) } exit 1 }' <<<'$exposure'"

# keywayd from the installed paths, with the default state, run and config paths, under the unit's
# capability bounding set and no_new_privs: it finds its children in /usr/libexec/keyway.
caps=$(sed -n 's/^CapabilityBoundingSet=//p' /lib/systemd/system/keywayd.service | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
NS=$(new_netns pkg)
start_syslog "$TMP/log.sock" "$TMP/syslog.txt"
# Traced, to compare every system call keywayd and its children make with the unit's filter.
ip netns exec "$NS" strace -f -qq -o "$TMP/strace.txt" \
  setpriv --bounding-set=-all,"$caps" --no-new-privs /usr/sbin/keywayd --foreground \
  --syslog "$TMP/log.sock" >"$TMP/keywayd.out" 2>&1 &
TRACER=$!; PIDS+=($TRACER)
check "installed keywayd starts under the unit's capability bounding set ($caps)" \
  wait_until 30 ip netns exec "$NS" /usr/bin/keyway ping
KPID=$(pgrep -P "$TRACER" -x keywayd)
# The monitor answers before its peers' hellos have all arrived, and strace slows their start: wait for them.
sandboxed_children() {
  [ "$(ip netns exec "$NS" /usr/bin/keyway status | grep -cE '^ *[0-9]+ S +keyway-(ike|datapath|monitor) ')" = 3 ]
}
wait_until 30 sandboxed_children || ip netns exec "$NS" /usr/bin/keyway status | sed 's/^/  status: /'
check "its three children run sandboxed, from /usr/libexec/keyway" bash -c "
  [ \"\$(ip netns exec '$NS' /usr/bin/keyway status | grep -cE '^ *[0-9]+ S +keyway-(ike|datapath|monitor) ')\" = 3 ] &&
  for c in keyway-ike keyway-datapath keyway-monitor; do
    [ \"\$(readlink /proc/\$(pgrep -P $KPID -x \$c)/exe)\" = /usr/libexec/keyway/\$c ] || exit 1; done"
check "a change is stored in /var/lib/keyway and audited" bash -c "
  ip netns exec '$NS' /usr/bin/keyway /ip ipsec proposal add name=packaged pfs-group=modp2048 &&
  grep -q packaged /var/lib/keyway/config.rsc"
check "the audit reached syslog" wait_until 30 grep -q 'keyway-monitor\[[0-9]*\]: config-change .*name=packaged' "$TMP/syslog.txt"
ip netns exec "$NS" /usr/bin/keyway /log print >/dev/null
kill -TERM "$KPID"; wait "$TRACER"
check "it stops cleanly" not grep -q SIGSYS "$TMP/keywayd.out"
check "its last audit line, keywayd stopped, reached syslog" wait_until 10 grep -q 'keywayd stopped' "$TMP/syslog.txt"
systemd-analyze syscall-filter >"$TMP/sets.txt" 2>/dev/null
check "every system call keywayd and its children made is one the unit's SystemCallFilter allows" python3 - \
  "$TMP/sets.txt" /lib/systemd/system/keywayd.service "$TMP/strace.txt" <<'PY'
import re, sys
sets, unit, trace = sys.argv[1:4]
groups, current = {}, None
for line in open(sets):
    if line.startswith("@"): current = line.split()[0]; groups[current] = []
    elif current and line.strip() and not line.strip().startswith("#"): groups[current].append(line.split()[0])
def expand(name, seen=()):
    if not name.startswith("@"): return {name}
    return set().union(*[expand(n, seen + (name,)) for n in groups.get(name, []) if n not in seen]) if name not in seen else set()
allowed = None
for line in open(unit):
    if not line.startswith("SystemCallFilter="): continue
    value = line.split("=", 1)[1].strip()
    deny = value.startswith("~")
    names = set().union(*[expand(n) for n in value.lstrip("~").split()])
    if allowed is None: allowed = names if not deny else None
    elif deny: allowed -= names
    else: allowed |= names
used = {m.group(1) for m in (re.match(r"^\d+\s+([a-z0-9_]+)\(", l) for l in open(trace)) if m}
missing = sorted(used - allowed)
print(f"  {len(used)} distinct system calls made; not allowed by the unit: {missing or 'none'}")
sys.exit(1 if missing or not used else 0)
PY

# One namespace suite against the installed binaries.
KEYWAY_INSTALLED=1 BIN=/usr timeout 900 bash "$ROOT/Tests/Integration/configuration.sh" >"$TMP/configuration.txt" 2>&1
line=$(grep -E '^configuration: [0-9]+ passed, [0-9]+ failed$' "$TMP/configuration.txt")
echo "  from the installed paths: $line"
check "configuration.sh passes from the installed paths" bash -c "[[ '$line' == *' 0 failed' ]] && [[ '$line' != *': 0 passed'* ]]"
[[ "$line" == *" 0 failed" ]] || grep -E '^FAIL|^  \| ' "$TMP/configuration.txt" | sed 's/^/  /'

files=$(dpkg -L keyway | while read -r f; do [ -f "$f" ] && echo "$f"; done)
check "the package purges" dpkg --purge keyway
check "nothing of it is left: files, /etc/keyway, /var/lib/keyway, /run/keyway, /usr/libexec/keyway" bash -c "
  for f in $(echo $files) /etc/keyway /var/lib/keyway /run/keyway /usr/libexec/keyway; do
    [ ! -e \"\$f\" ] || { echo \"left: \$f\"; exit 1; }; done; ! dpkg -s keyway >/dev/null 2>&1"
summary
