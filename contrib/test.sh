#!/usr/bin/env bash
# Everything, from a fresh clone on Debian 12 as root: dependencies, the keyway user, a build,
# unit tests (swift test), a bounded fuzz run of every libFuzzer target, and the namespace tests.
# Environment: FUZZ_SECONDS (default 20 per target).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "contrib/test.sh must run as root (namespaces, chroot, setuid)" >&2; exit 1; fi

contrib/install-deps.sh || exit 1
contrib/create-user.sh >/dev/null || exit 1

echo "== build"
swift build --build-tests 2>&1 | grep -E "error|warning: |Compiling|Build" | grep -v "^\[" | tail -20
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "build failed"; exit 1; }
BIN=$(swift build --show-bin-path)
export BIN

passed=0 failed=0
record() { passed=$((passed + $1)); failed=$((failed + $2)); }

echo "== unit tests (swift test)"
log=$(mktemp)
swift test --skip-build 2>&1 | tee "$log" | grep -E "error:|failed|Executed [0-9]+ tests" | grep -v "^Test Suite" | tail -30
rc=${PIPESTATUS[0]}
line=$(grep -E "Executed [0-9]+ tests, with [0-9]+ failures" "$log" | tail -1)
total=$(sed -E 's/.*Executed ([0-9]+) tests.*/\1/' <<<"$line"); bad=$(sed -E 's/.*with ([0-9]+) failures.*/\1/' <<<"$line")
skipped=$(grep -cE "Test Case .* skipped" "$log" || true)
[ -n "$total" ] || { total=0; bad=1; }
[ "$rc" -eq 0 ] || [ "$bad" -gt 0 ] || bad=1
record $((total - bad - skipped)) "$bad"
[ "$skipped" -eq 0 ] || echo "   ($skipped skipped)"
rm -f "$log"

echo "== fuzz (${FUZZ_SECONDS:-20}s per target)"
if contrib/fuzz.sh "${FUZZ_SECONDS:-20}"; then record 1 0; else record 0 1; fi

for t in Tests/Integration/*.sh; do
  [ "$(basename "$t")" = lib.sh ] && continue
  echo "== $(basename "$t" .sh)"
  out=$(mktemp)
  timeout 900 bash "$t" 2>&1 | tee "$out"
  line=$(grep -E "^[a-z0-9-]+: [0-9]+ passed, [0-9]+ failed$" "$out" | tail -1)
  if [ -n "$line" ]; then
    record "$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")" "$(sed -E 's/.* ([0-9]+) failed/\1/' <<<"$line")"
  else
    echo "FAIL - $(basename "$t") ended without a summary"; record 0 1
  fi
  rm -f "$out"
done

# The suites must clean up what they create.
left=$(ip netns list 2>/dev/null | awk '{ print $1 }' | grep -c '^kw[0-9]*-' || true)
if [ "$left" = 0 ]; then echo "ok - the namespace suites left no namespace behind"; record 1 0
else echo "FAIL - $left test namespaces left behind: $(ip netns list | grep '^kw[0-9]*-' | tr '\n' ' ')"; record 0 1; fi

echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
