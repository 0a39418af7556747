#!/usr/bin/env bash
# The main job on the bundled samples: installs what it needs, builds, and prints the seed
# path's captures (every capture point, merged in time order, labelled like tcpdump -i any).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked -q
args=()
for f in samples/*.pcap; do args+=(-r "$f"); done
exec target/release/flowtrail -nn "${args[@]}" "$@"
