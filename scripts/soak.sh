#!/usr/bin/env bash
# Soak: live capture on every point of the seed-path lab under continuous connection churn,
# --no-join then joined (FLOWTRAIL_SOAK_PHASES=nojoin|join for one),
# (tests/soak_live.rs) for SECONDS each (default 600), printing the memory samples and counters.
# Needs root (network namespaces); fails instead of skipping (CI=true).
# usage: scripts/soak.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
# The lab's watchdog must outlive both phases.
export FLOWTRAIL_SOAK_SECS="$secs" CI=true FT_LAB_TTL=$((2 * secs + 300))
cargo test --release --locked --test soak_live -- --nocapture --test-threads 1 live_capture_memory_is_flat_under_churn
