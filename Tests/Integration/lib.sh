# Shared helpers for the namespace tests. Source it; set BIN to the build products.
# Every test creates its own namespaces and temp dir, removes them on exit, bounds every wait,
# and only ever sends traffic to addresses inside namespaces it created.
set -u
PASSED=0
FAILED=0
ok()   { PASSED=$((PASSED + 1)); echo "ok - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }
# not COMMAND...: succeeds when COMMAND fails (its output is not wanted).
not() { ! "$@" >/dev/null 2>&1; }

TMP=$(mktemp -d /tmp/keyway-it.XXXXXX)
chmod 755 "$TMP"
PIDS=()

# keywayd executes only children that are root's and writable by no one else, as is every
# directory above them: run copies from a root-owned 0755 directory (/tmp above it is root's and
# sticky), so that where the checkout lives and who owns it never matter.
PRODUCTS="keywayd keyway-ike keyway-datapath keyway-monitor keyway keyway-sandbox-check keyway-impostor"
install_products() {  # install_products DIR: the build products in DIR (created root-owned 0755)
  mkdir -p "$1" && chown root:root "$1" && chmod 0755 "$1" || return 1
  local f
  for f in $PRODUCTS; do
    [ -e "$BIN/$f" ] && { install -o root -g root -m 0755 "$BIN/$f" "$1/$f" || return 1; }
  done
}
if [ -n "${KEYWAY_INSTALLED:-}" ]; then
  # The installed package instead (package.sh): keywayd in /usr/sbin finds its children in
  # /usr/libexec/keyway; links keep the suites' $BIN/keywayd and $BIN/keyway working.
  mkdir -p "$TMP/bin" && ln -s /usr/sbin/keywayd "$TMP/bin/keywayd" && ln -s /usr/bin/keyway "$TMP/bin/keyway"
  BIN=$TMP/bin
elif [ -n "${BIN:-}" ]; then
  install_products "$TMP/bin" || { echo "FAIL - could not copy the build products to $TMP/bin"; exit 1; }
  BIN=$TMP/bin
fi

# Namespaces are named kw<pid>-NAME; cleanup removes every one with this run's prefix (new_netns
# runs inside $(...), a subshell, so it cannot record them in a variable).
new_netns() {
  local ns="kw$$-$1"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  echo "$ns"
}

cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; done
  sleep 0.3
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null; done
  for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep "^kw$$-"); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

# two_routers TAG: namespaces $R1 and $R2 joined by veth $V1/$V2 (192.0.2.1/24 and .2/24),
# IPv6 off (its link-local chatter would only muddy captures).
two_routers() {
  R1=$(new_netns r1) R2=$(new_netns r2) V1="kw$1$$a" V2="kw$1$$b"
  ip link add "$V1" netns "$R1" type veth peer name "$V2" netns "$R2"
  ip -n "$R1" addr add 192.0.2.1/24 dev "$V1"; ip -n "$R1" link set "$V1" up
  ip -n "$R2" addr add 192.0.2.2/24 dev "$V2"; ip -n "$R2" link set "$V2" up
  for ns in "$R1" "$R2"; do ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
}

# start_keywayd NS NAME: keywayd in NS with $TMP/NAME.rsc, its files under $TMP/NAME.
start_keywayd() {
  ip netns exec "$1" "$BIN/keywayd" --foreground --config "$TMP/$2.rsc" --run-dir "$TMP/$2/run" \
    --state-dir "$TMP/$2/state" --syslog "$TMP/nolog" --tun kwtun0 >"$TMP/$2.log" 2>&1 &
  PIDS+=($!)
  wait_until 10 test -S "$TMP/$2/run/control.sock"
}

# kw NS NAME ARGS...: the keyway client against that appliance.
kw() { local ns=$1 name=$2; shift 2; ip netns exec "$ns" "$BIN/keyway" --socket "$TMP/$name/run/control.sock" "$@"; }

# tcp_transfer CLIENT_NS SERVER_NS SRC DST: 300 kB from SRC to DST:5001, checked by SHA-256 on both ends.
tcp_transfer() {
  local cns=$1 sns=$2 src=$3 dst=$4
  rm -f "$TMP/tcp.out" "$TMP/tcp.in"
  ip netns exec "$sns" python3 -c "
import socket, hashlib
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('$dst', 5001)); s.listen(1); s.settimeout(20)
c, _ = s.accept(); c.settimeout(20); h = hashlib.sha256(); n = 0
while n < 300000:
    d = c.recv(65536)
    if not d: break
    h.update(d); n += len(d)
open('$TMP/tcp.out', 'w').write(f'{n} {h.hexdigest()}')
" &
  local server=$!
  sleep 0.5
  ip netns exec "$cns" python3 -c "
import socket, hashlib
data = bytes(i * 7 % 251 for i in range(300000))
s = socket.create_connection(('$dst', 5001), timeout=20, source_address=('$src', 0)); s.sendall(data); s.close()
print(len(data), hashlib.sha256(data).hexdigest())
" >"$TMP/tcp.in"
  wait "$server"
  [ -s "$TMP/tcp.out" ] && [ "$(cat "$TMP/tcp.in")" = "$(cat "$TMP/tcp.out")" ]
}

# wait_until SECONDS COMMAND...: polls every 0.1 s until COMMAND succeeds, at most SECONDS of
# wall time (however long each try takes).
wait_until() {
  local limit=$1; shift
  local end=$((SECONDS + limit))
  while :; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.1
  done
}

# A Unix datagram syslog listener writing one line per message to FILE; stops after 600 s.
start_syslog() {
  local sock=$1 file=$2
  python3 - "$sock" "$file" <<'PY' &
import os, socket, sys, time
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try: os.unlink(path)
except FileNotFoundError: pass
s.bind(path); os.chmod(path, 0o666)
s.settimeout(1.0)
end = time.time() + 600
with open(out, "a", buffering=1) as f:
    while time.time() < end:
        try: data = s.recv(65536)
        except socket.timeout: continue
        f.write(data.decode("utf-8", "replace").replace("\n", " ") + "\n")
PY
  PIDS+=($!)
  wait_until 5 test -S "$sock"
}

summary() {
  echo "$(basename "$0" .sh): $PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
