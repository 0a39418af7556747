#!/usr/bin/env bash
# The main job on the bundled samples: installs what it needs, builds, then shows the seed
# path (host lo -> host/VM veth -> VM br0 -> bridge port -> node eth0, see samples/README.md)
# twice: as one timeline (every capture point merged in time order, each line labelled with
# its point), then as joined paths (`--flows`: legs across the forwarders and the DNAT, with
# the VM's conntrack table as evidence). Extra arguments go to both runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked -q
args=()
for p in host-lo host-veth vm-veth vm-lo vm-br0 vm-brport node-eth0; do
  args+=(-r "samples/$p.pcap")
done
echo "== one timeline: flowtrail -nn ${args[*]}"
target/release/flowtrail -nn "${args[@]}" "$@"
echo
echo "== joined paths: flowtrail ${args[*]} --conntrack vm=samples/vm-conntrack.txt --flows"
target/release/flowtrail "${args[@]}" --conntrack vm=samples/vm-conntrack.txt --flows "$@"
