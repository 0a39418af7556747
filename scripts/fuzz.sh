#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (default 60 s each), starting from the
# committed seeds in fuzz/seeds/TARGET. Exit status 1 when a target finds a crash; the
# reproducer lands in fuzz/artifacts/TARGET (add it as a regression test, then fix).
# usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
shift || true
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  [ -d "seeds/$t" ] && cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
  echo "== fuzz $t for ${secs}s"
  # -s none: no sanitizer (stable toolchain; the crate forbids unsafe code anyway).
  if ! cargo fuzz run -s none "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=8192 2>&1 | tail -3; then
    status=1
  fi
  if compgen -G "artifacts/$t/crash-*" >/dev/null; then
    echo "fuzz $t: crash found: $(ls artifacts/"$t"/crash-*)"
    status=1
  fi
done
exit $status
