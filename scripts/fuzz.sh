#!/usr/bin/env bash
# Runs every cargo-fuzz target (or the ones named) for a bounded time each, starting from the
# committed seeds in fuzz/seeds/TARGET, then prints one summary line per target: runs, time,
# corpus size, and crashes. Exit status 1 when any target found a crash (or failed to run);
# the reproducer lands in fuzz/artifacts/TARGET (add it as a regression test, then fix).
#
# usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]       (default 60 s, every target)
#
# Builds with debug assertions (-a), so integer overflows panic and are found too, and without
# a sanitizer (-s none: stable toolchain; the crate forbids unsafe code anyway). Logs go to
# fuzz/logs/TARGET.log; corpora grow in fuzz/corpus/TARGET (not committed).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
shift || true
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
mkdir -p logs
if [ ${#targets[@]} -eq 1 ]; then cargo fuzz build -a -s none "${targets[0]}"; else cargo fuzz build -a -s none; fi
status=0
summary=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  [ -d "seeds/$t" ] && cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
  before=$(compgen -G "artifacts/$t/crash-*" | wc -l || true)
  echo "== fuzz $t for ${secs}s"
  log="logs/$t.log"
  rc=0
  # The wall-clock bound is the fuzzer's own; `timeout` only guards against a hung build.
  timeout $((secs + 600)) cargo fuzz run -a -s none "$t" "corpus/$t" -- \
    -max_total_time="$secs" -max_len=8192 -timeout=10 -print_final_stats=1 >"$log" 2>&1 || rc=$?
  # (`|| true`: a crashed run has no such line, and under `set -e -o pipefail` the failed
  # grep would end the script before the summary said which target crashed)
  runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1 | awk '{print $2 " runs in " $5 " s"}' || true)
  [ -n "$runs" ] || runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{print $2 " runs"}' | tail -1 || true)
  files=$(find "corpus/$t" -type f | wc -l)
  after=$(compgen -G "artifacts/$t/crash-*" | wc -l || true)
  if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
    status=1
    crash=$(grep -m1 -E "panicked at|ERROR: libFuzzer|SUMMARY" "$log" || true)
    summary+=("$t: FAILED (exit $rc) after ${runs:-?}; $crash; artifacts: $(ls artifacts/"$t" 2>/dev/null | tr '\n' ' ')")
    tail -30 "$log"
  else
    summary+=("$t: ok, ${runs:-? runs}, corpus $files files, no crash")
  fi
done
echo
echo "== fuzz summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
exit $status
