#!/usr/bin/env bash
# Builds every libFuzzer target (Fuzz/) with ASan and runs each for a bounded time.
# Usage: contrib/fuzz.sh [SECONDS_PER_TARGET]   (default 30; CI uses a short run)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
targets=(fuzz-wire fuzz-config fuzz-isakmp fuzz-ikev2 fuzz-ike fuzz-ike2 fuzz-datapath fuzz-offloads fuzz-icmp)
scratch=$PWD/.build-fuzz
# --sanitize=fuzzer instruments only the Fuzz package's own targets; the code under test lives in
# the main package, so coverage instrumentation is asked of every Swift module explicitly (without
# it the fuzzers ran blind: ~400 counters instead of ~28,000).
flags=(--sanitize=fuzzer --sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table)
export SWIFT_BACKTRACE=enable=no
for t in "${targets[@]}"; do
  echo "== building $t"
  # A target that no longer compiles fails loudly, with the compiler's errors (not only the last lines).
  if ! out=$(swift build --package-path Fuzz -c debug --product "$t" "${flags[@]}" --scratch-path "$scratch" 2>&1); then
    grep -E -A4 'error:' <<<"$out" | head -40
    echo "FAIL: $t did not build"
    exit 1
  fi
  tail -2 <<<"$out"
done
bin=$(swift build --package-path Fuzz -c debug "${flags[@]}" --scratch-path "$scratch" --show-bin-path)
for t in "${targets[@]}"; do
  corpus=$(mktemp -d)
  seeds=Fuzz/seeds/${t#fuzz-}
  [ -d "$seeds" ] && cp "$seeds"/* "$corpus"/
  echo "== running $t for ${seconds}s"
  log=$(mktemp)
  status=0
  "$bin/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=./ "$corpus" >"$log" 2>&1 || status=$?
  grep -E 'stat::number_of_executed_units|^Done|ERROR|SUMMARY|crash-' "$log" || true
  rm -rf "$corpus"
  if [ "$status" -ne 0 ]; then tail -40 "$log"; rm -f "$log"; echo "FAIL: $t found a crash (exit $status)"; exit 1; fi
  rm -f "$log"
  echo "ok: $t"
done
