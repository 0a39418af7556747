#!/usr/bin/env bash
# lab/record-samples.sh [OUTDIR]: build a fresh seed-path lab, record samples/, check them.
#
# Runs as root. Builds the lab with lab/seedpath.sh, records each phase with one tcpdump per
# interface (-s 262144, --immediate-mode), lets lab/client.py (fixed source ports, fixed
# payloads) and ping make a small, fixed amount of traffic, stops the captures with SIGINT,
# tears the lab down (also on failure), checks the result with lab/check_samples.py and only
# then replaces the capture files in OUTDIR (default: samples/ next to lab/).
# Every file it writes is described in samples/README.md.
#
# Environment: FT_LAB_ID (default ftrec<pid>), FT_LAB_TTL (default 600), FT_KEEP_WORK=1
# keeps the work directory for inspection.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${1:-$(dirname "$LAB_DIR")/samples}
SEEDPATH=$LAB_DIR/seedpath.sh
PY=${FT_LAB_PYTHON:-python3}

log() { echo "record: $*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $EUID -eq 0 ]] || die "needs root"
for c in ip tcpdump dumpcap conntrack socat ping "$PY" stdbuf timeout; do
	command -v "$c" >/dev/null || die "missing $c (lab/deps.sh installs the lab's tools)"
done

export FT_LAB_ID=${FT_LAB_ID:-ftrec$$}
export FT_LAB_TTL=${FT_LAB_TTL:-600}
export FT_LAB_BRNF=0
WORK=$(mktemp -d /tmp/flowtrail-rec.XXXXXX)
CAP_PIDS=()
CAP_ERRS=()

stop_captures() {
	local pid i
	((${#CAP_PIDS[@]})) || return 0
	for pid in "${CAP_PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
	for pid in "${CAP_PIDS[@]}"; do
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	CAP_PIDS=()
	CAP_ERRS=()
}

cleanup() {
	local rc=$?
	trap - EXIT
	stop_captures
	"$SEEDPATH" down "$FT_LAB_ID" 2>/dev/null || true
	if [[ ${FT_KEEP_WORK:-0} == 1 ]]; then log "work directory kept: $WORK"; else rm -rf -- "$WORK"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# cap NS IFACE NAME: one tcpdump writing WORK/NAME.pcap
cap() {
	local ns=$1 ifc=$2 name=$3
	ip netns exec "$ns" tcpdump -Z root --immediate-mode -U -s 262144 -i "$ifc" \
		-w "$WORK/$name.pcap" 2>"$WORK/$name.tcpdump.log" &
	CAP_PIDS+=("$!")
	CAP_ERRS+=("$WORK/$name.tcpdump.log:listening on")
}

wait_ready() {
	local e file pat i
	for e in "${CAP_ERRS[@]}"; do
		file=${e%%:*} pat=${e#*:}
		for ((i = 0; i < 100; i++)); do
			grep -q "$pat" "$file" 2>/dev/null && break
			sleep 0.05
		done
		grep -q "$pat" "$file" || die "capture not ready: $(cat "$file")"
	done
	sleep 0.2
}

flush_neigh() {
	local ns
	for ns in "$FT_HOST_NS" "$FT_VM_NS" "$FT_NODE_NS"; do ip -n "$ns" neigh flush all; done
}

client() { # NS client.py args...: bounded
	local ns=$1
	shift
	ip netns exec "$ns" timeout 60 "$PY" "$LAB_DIR/client.py" --deadline 40 --timeout 5 "$@"
}

set -a
eval "$("$SEEDPATH" up)"
set +a

# --- 1. the seed path: seven tcpdumps, one dumpcap for the VM (pcapng), conntrack events ---
log "phase seed path"
flush_neigh
cap "$FT_HOST_NS" lo host-lo
cap "$FT_HOST_NS" "$FT_HOST_IF" host-veth
cap "$FT_VM_NS" "$FT_VM_IF" vm-veth
cap "$FT_VM_NS" lo vm-lo
cap "$FT_VM_NS" "$FT_VM_BR" vm-br0
cap "$FT_VM_NS" "$FT_VM_BRPORT" vm-brport
cap "$FT_NODE_NS" "$FT_NODE_IF" node-eth0
ip netns exec "$FT_VM_NS" dumpcap -q -s 262144 -i "$FT_VM_IF" -i lo -i "$FT_VM_BR" \
	-i "$FT_VM_BRPORT" -w "$WORK/vm-all.pcapng" 2>"$WORK/dumpcap.log" &
CAP_PIDS+=("$!")
CAP_ERRS+=("$WORK/dumpcap.log:Capturing on")
ip netns exec "$FT_VM_NS" stdbuf -oL conntrack -E -o timestamp,id \
	>"$WORK/vm-conntrack-events.txt" 2>"$WORK/conntrack.log" &
CAP_PIDS+=("$!")
wait_ready
# A VM-local connection on lo first, so that vm-lo.pcap shows lo is captured fine.
client "$FT_VM_NS" --connect "$FT_VM_LO_SERVICE" -n 1 --size 200 --src-port 40100 \
	--log "$WORK/vm-lo-client.jsonl" >/dev/null
sleep 0.1
client "$FT_HOST_NS" --connect "$FT_ENTRY" -n 5 --src-port 40001 --interval 0.1 \
	--size 64,1500,6000,12000,2000 --mode halfclose,close,halfclose,halfclose,reset \
	--log "$WORK/seedpath-client.jsonl" >/dev/null
sleep 0.5
ip netns exec "$FT_VM_NS" conntrack -L -o id >"$WORK/vm-conntrack.txt" 2>/dev/null
stop_captures

# --- 2. the same bridge with br_netfilter on (replies de-NATed before br0 sees them) -------
if ip netns exec "$FT_VM_NS" test -e /proc/sys/net/bridge/bridge-nf-call-iptables; then
	log "phase bridge with br_netfilter"
	ip netns exec "$FT_VM_NS" sysctl -q -w net.bridge.bridge-nf-call-iptables=1 >/dev/null
	flush_neigh
	cap "$FT_VM_NS" "$FT_VM_BR" vm-br0-brnf
	wait_ready
	client "$FT_HOST_NS" --connect "$FT_ENTRY" -n 1 --size 1000 --src-port 40010 \
		--log "$WORK/brnf-client.jsonl" >/dev/null
	sleep 0.3
	stop_captures
	ip netns exec "$FT_VM_NS" sysctl -q -w net.bridge.bridge-nf-call-iptables=0 >/dev/null
else
	log "no br_netfilter in this kernel: skipping vm-br0-brnf.pcap"
fi

# --- 3. single-interface captures on HOST's veth: TCP over IPv6, UDP, ICMP, ICMPv6 -------
one_phase() { # name, then the traffic command
	local name=$1
	shift
	log "phase $name"
	flush_neigh
	cap "$FT_HOST_NS" "$FT_HOST_IF" "$name"
	wait_ready
	"$@"
	sleep 0.3
	stop_captures
}
tcp6_traffic() {
	client "$FT_HOST_NS" --connect "[$FT_VM_ADDR6]:$FT_VM_PORT" -n 2 --src-port 40020 \
		--size 100,3000 --mode halfclose,reset --interval 0.1 \
		--log "$WORK/tcp6-client.jsonl" >/dev/null
}
udp_traffic() {
	client "$FT_HOST_NS" --udp --connect "$FT_VM_ADDR:$FT_UDP_PORT" -n 2 --datagrams 2 \
		--size 100,2000 --src-port 40030 --log "$WORK/udp-client.jsonl" >/dev/null
	# A closed port: one datagram, answered by ICMP port unreachable.
	client "$FT_HOST_NS" --udp --connect "$FT_VM_ADDR:41999" -n 1 --size 50 --src-port 40040 \
		--timeout 2 --allow-errors --log "$WORK/udp-client.jsonl" >/dev/null 2>&1
}
udp6_traffic() {
	client "$FT_HOST_NS" --udp --connect "[$FT_VM_ADDR6]:$FT_UDP_PORT" -n 2 --datagrams 2 \
		--size 100,1200 --src-port 40050 --log "$WORK/udp6-client.jsonl" >/dev/null
}
icmp_traffic() {
	ip netns exec "$FT_HOST_NS" timeout 10 ping -n -q -c 3 -i 0.2 -W 2 "$FT_VM_ADDR" >/dev/null
}
icmp6_traffic() {
	ip netns exec "$FT_HOST_NS" timeout 10 ping -6 -n -q -c 3 -i 0.2 -W 2 "$FT_VM_ADDR6" >/dev/null
}
one_phase tcp6 tcp6_traffic
one_phase udp udp_traffic
one_phase udp6 udp6_traffic
one_phase icmp icmp_traffic
one_phase icmp6 icmp6_traffic

# --- 4. tear down, check nothing is left, check the captures, publish -----------------
"$SEEDPATH" down "$FT_LAB_ID"
if ip netns list | grep -q "^${FT_LAB_ID}_"; then die "namespaces left over"; fi
grep -h 'packets captured' "$WORK"/*.tcpdump.log | sort | uniq -c | sed 's/^/record: tcpdump: /' >&2
rm -f "$WORK"/*.log
chmod 644 "$WORK"/*
"$PY" "$LAB_DIR/check_samples.py" "$WORK"

mkdir -p "$OUT"
# Replace only what this script writes (README.md and anything else stay).
rm -f "$OUT"/*.pcap "$OUT"/*.pcapng "$OUT"/*-client.jsonl "$OUT"/vm-conntrack*.txt \
	"$OUT"/manifest.json
cp "$WORK"/*.pcap "$WORK"/*.pcapng "$WORK"/*.jsonl "$WORK"/*.txt "$WORK"/manifest.json "$OUT"/
du -cb "$OUT"/* | tail -1 | sed 's/^/record: total bytes in samples: /' >&2
log "wrote $(find "$WORK" -type f | wc -l) files to $OUT"
