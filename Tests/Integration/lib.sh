# Shared helpers for the namespace tests. Source it; set BIN to the build products.
# Every test creates its own namespaces and temp dir, removes them on exit, bounds every wait,
# and only ever sends traffic to addresses inside namespaces it created.
set -u
PASSED=0
FAILED=0
ok()   { PASSED=$((PASSED + 1)); echo "ok - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }

TMP=$(mktemp -d /tmp/keyway-it.XXXXXX)
chmod 755 "$TMP"
PIDS=()

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
