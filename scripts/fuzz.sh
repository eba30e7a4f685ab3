#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/) for SECONDS each (default 60), one after the
# other, and prints per target the executions, executions per second, coverage and
# crashes. Exits non-zero when a target crashed (or hung past 10 s, or ran out of
# memory); the input is kept under fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS]          FUZZ_TARGETS="stats documents" scripts/fuzz.sh 30
#
# cargo-fuzz is installed from crates.io when missing. Only the stable toolchain is
# installed, and cargo-fuzz passes -Z flags to rustc, so RUSTC_BOOTSTRAP=1 is set.
# Targets are built without a sanitizer (`-s none`): coalmine forbids unsafe code, and
# what is looked for is a panic (debug assertions, overflow checks are on).
# What libFuzzer finds is kept in fuzz/target/corpus/<target> (not committed); the
# committed seeds in fuzz/corpus/<target> are only read.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
read -r -a targets <<<"${FUZZ_TARGETS:-documents xds_request stats}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

echo "== cargo fuzz build (release, debug assertions, no sanitizer)"
build_start=$SECONDS
for target in "${targets[@]}"; do
  cargo fuzz build -s none "$target"
done
echo "built in $((SECONDS - build_start)) s"

failed=0
for target in "${targets[@]}"; do
  work="target/corpus/$target"
  log="target/fuzz-$target.log"
  mkdir -p "$work" "artifacts/$target"
  before=$(ls "artifacts/$target" | wc -l)
  echo "== $target: ${seconds} s"
  status=0
  cargo fuzz run -s none "$target" "$work" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  crashes=$(($(ls "artifacts/$target" | wc -l) - before))
  echo "$target: executions=${execs:-?} exec/s=${rate:-?} cov=${cov:-?} ft=${ft:-?} crashes=$crashes (log: fuzz/$log)"
  if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    failed=1
    echo "FAIL: $target crashed or could not run (exit $status):" >&2
    grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" >&2 || tail -n 20 "$log" >&2
  fi
done
exit "$failed"
