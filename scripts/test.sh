#!/usr/bin/env bash
# The whole test suite: installs what it needs, then runs every test (unit, pipeline,
# tcpdump corpus and differential tests, and, as root, the network-namespace tests), and
# type-checks the fuzz targets and checks the API docs' links.
# Outside CI, tests that need root or missing tools skip with a message; with CI=true they fail.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The `checked` profile is release with integer overflow checks (Cargo.toml): an overflow
# panics the test instead of wrapping silently.
cargo test --profile checked --locked -- --test-threads "$(nproc)" "$@"
# The fuzz targets (scripts/fuzz.sh runs them) must keep building as the crate's API changes:
# type-checked here with the cfg cargo-fuzz sets (about 40 s from scratch).
RUSTFLAGS="--cfg fuzzing" cargo check --release --locked --manifest-path fuzz/Cargo.toml --bins
# The API docs (module docs hold the design: README, "Layout") must not point at items that
# are gone or private: every intra-doc link resolves (about 30 s from scratch).
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked -q
