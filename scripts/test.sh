#!/usr/bin/env bash
# The whole test suite: installs what it needs, then runs every test (unit, pipeline,
# tcpdump corpus and differential tests, and, as root, the network-namespace tests).
# Outside CI, tests that need root or missing tools skip with a message; with CI=true they fail.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo test --release --locked -- --test-threads "$(nproc)" "$@"
