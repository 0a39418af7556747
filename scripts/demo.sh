#!/usr/bin/env bash
# The main job on the bundled samples: installs what it needs, builds, and shows the seed
# path (host lo -> host/VM veth -> VM br0 -> bridge port -> node eth0, see samples/README.md)
# as one timeline: every capture point merged in time order, each line labelled with its point.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked -q
args=()
for p in host-lo host-veth vm-veth vm-lo vm-br0 vm-brport node-eth0; do
  args+=(-r "samples/$p.pcap")
done
exec target/release/flowtrail -nn "${args[@]}" "$@"
