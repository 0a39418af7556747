#!/usr/bin/env bash
# lab/seedpath.sh: the DESIGN.md seed path, built in fresh network namespaces.
#
#   HOST ns                        VM ns                                           NODE ns
#   client -> 127.0.0.1:49673      socat 192.168.65.2:49700 / [fd00:65::2]:49700
#   socat (lo)                       -> 127.0.0.1:55001
#     -> 192.168.65.2:49700          nat OUTPUT DNAT 127.0.0.1:55001 -> 192.168.49.2:8443
#   veth-vm 192.168.65.1/24 <====> veth-host 192.168.65.2/24
#           fd00:65::1/64                    fd00:65::2/64
#                                  nat POSTROUTING -s 127/8 -o br0 MASQUERADE
#                                  br0 192.168.49.1/24 -- veth-node <========> eth0 192.168.49.2/24
#                                                                              echo server :8443
#
# Usage (as root):
#   set -a; eval "$(lab/seedpath.sh up)"; set +a
#                                       build a lab, print its variables (KEY=VALUE lines)
#   lab/seedpath.sh env   [ID]          print the variables of a running lab
#   lab/seedpath.sh traffic [ID] [-- client.py args]   run lab/client.py in HOST (bounded)
#   lab/seedpath.sh check [ID]          one echo connection end to end, exit 0 if it worked
#   lab/seedpath.sh exec ROLE CMD...    run CMD in the HOST|VM|NODE namespace of $FT_LAB_ID
#   lab/seedpath.sh run CMD...          up, run CMD with the variables exported, always down
#   lab/seedpath.sh down  [ID|--all]    kill the lab's processes, delete its namespaces
#   lab/seedpath.sh list                labs with state under $FT_LAB_STATE_ROOT
#
# Environment: FT_LAB_ID (whole lab id; default ${FT_LAB_PREFIX:-ft}<pid><random>),
# FT_LAB_PREFIX, FT_LAB_TTL (seconds, default 1800; daemons and a watchdog end the lab after
# it; 0 = no limit), FT_LAB_STATE_ROOT (default /tmp/flowtrail-lab), FT_LAB_BRNF (0|1,
# default 0: whether the VM's bridge calls iptables, i.e. br_netfilter's
# net.bridge.bridge-nf-call-iptables inside the VM namespace; see lab/README.md).
#
# Safety: every interface, address, route, sysctl and iptables rule is created inside the
# lab's own namespaces; nothing in the root namespace is changed. Traffic only goes to
# loopback or to the lab's own addresses. See lab/README.md.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$LAB_DIR/seedpath.sh"
STATE_ROOT=${FT_LAB_STATE_ROOT:-/tmp/flowtrail-lab}
TTL=${FT_LAB_TTL:-1800}
BRNF=${FT_LAB_BRNF:-0}

# Addresses and ports. They only exist inside the lab's namespaces, so labs can coexist.
HOST_IF=veth-vm VM_IF=veth-host VM_BR=br0 VM_BRPORT=veth-node NODE_IF=eth0
HOST_ADDR=192.168.65.1 VM_ADDR=192.168.65.2
HOST_ADDR6=fd00:65::1 VM_ADDR6=fd00:65::2
BR_ADDR=192.168.49.1 NODE_ADDR=192.168.49.2
ENTRY_PORT=49673 VM_PORT=49700 VM_LOCAL_PORT=55001 NODE_PORT=8443
VM_LO_PORT=55002 UDP_PORT=41000
# Fixed, locally administered MACs (02:42 like docker, then the IPv4 address) so that
# recordings repeat byte for byte where the kernel allows.
HOST_MAC=02:42:c0:a8:41:01 VM_MAC=02:42:c0:a8:41:02
BR_MAC=02:42:c0:a8:31:01 BRPORT_MAC=02:42:c0:a8:31:fe NODE_MAC=02:42:c0:a8:31:02

log() { echo "seedpath: $*" >&2; }
die() { log "error: $*"; exit 1; }
need_root() { [[ $EUID -eq 0 ]] || die "needs root (ip netns, iptables); skip when not root"; }

gen_id() { printf '%s%d%04x' "${FT_LAB_PREFIX:-ft}" "$$" "$((RANDOM))"; }

check_id() {
	[[ $1 =~ ^[A-Za-z0-9_-]{1,40}$ ]] || die "bad lab id '$1' (use [A-Za-z0-9_-], at most 40)"
}

# resolve_id [ID]: the given id, else $FT_LAB_ID.
resolve_id() {
	local id=${1:-${FT_LAB_ID:-}}
	[[ -n $id ]] || die "no lab id: pass one or export FT_LAB_ID (set -a; eval \"\$($SELF up)\")"
	check_id "$id"
	echo "$id"
}

ns_exists() { [[ -e /run/netns/$1 ]]; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

write_env() { # id state iptables
	local id=$1 state=$2 ipt=$3
	local h=${id}_host v=${id}_vm n=${id}_node
	cat <<EOF
FT_LAB_ID=$id
FT_LAB_STATE=$state
FT_LAB_DIR=$LAB_DIR
FT_HOST_NS=$h
FT_VM_NS=$v
FT_NODE_NS=$n
FT_HOST_IF=$HOST_IF
FT_VM_IF=$VM_IF
FT_VM_BR=$VM_BR
FT_VM_BRPORT=$VM_BRPORT
FT_NODE_IF=$NODE_IF
FT_HOST_MAC=$HOST_MAC
FT_VM_MAC=$VM_MAC
FT_BR_MAC=$BR_MAC
FT_VM_BRPORT_MAC=$BRPORT_MAC
FT_NODE_MAC=$NODE_MAC
FT_HOST_ADDR=$HOST_ADDR
FT_VM_ADDR=$VM_ADDR
FT_HOST_ADDR6=$HOST_ADDR6
FT_VM_ADDR6=$VM_ADDR6
FT_BR_ADDR=$BR_ADDR
FT_NODE_ADDR=$NODE_ADDR
FT_ENTRY=127.0.0.1:$ENTRY_PORT
FT_ENTRY_PORT=$ENTRY_PORT
FT_VM_PORT=$VM_PORT
FT_VM_LOCAL=127.0.0.1:$VM_LOCAL_PORT
FT_VM_LOCAL_PORT=$VM_LOCAL_PORT
FT_NODE=$NODE_ADDR:$NODE_PORT
FT_NODE_PORT=$NODE_PORT
FT_VM_LO_SERVICE=127.0.0.1:$VM_LO_PORT
FT_UDP_PORT=$UDP_PORT
FT_IPTABLES=$ipt
FT_LAB_BRNF=$BRNF
FT_POINTS=$h/lo,$h/$HOST_IF,$v/$VM_IF,$v/lo,$v/$VM_BR,$v/$VM_BRPORT,$n/$NODE_IF
FT_POINT_NAMES=host-lo,host-veth,vm-veth,vm-lo,vm-br0,vm-brport,node-eth0
EOF
}

# start_daemon ID NS NAME CMD...: a long-running lab process, bounded by TTL, in its own
# session (so a test harness killing its process group does not leave half a lab; the
# watchdog or `down` ends it). Its pid goes to STATE/pids.
start_daemon() {
	local id=$1 ns=$2 name=$3; shift 3
	local state=$STATE_ROOT/$id
	local -a bound=()
	((TTL > 0)) && bound=(timeout "$TTL")
	# A simple command (not a function) so that $! is the daemon itself after the execs.
	ip netns exec "$ns" setsid "${bound[@]}" "$@" >"$state/$name.log" 2>&1 </dev/null &
	echo "$! $name" >>"$state/pids"
}

wait_listen() { # ns tcp|udp port
	local ns=$1 proto=$2 port=$3 flag=-lnt i
	[[ $proto == udp ]] && flag=-lnu
	for ((i = 0; i < 100; i++)); do
		in_ns "$ns" ss -H "$flag" "sport = :$port" | grep -q . && return 0
		sleep 0.05
	done
	die "nothing listens on $proto port $port in $ns"
}

wait_oper() { # ns ifname: until the kernel reports operstate UP (at most 5 s)
	local i
	for ((i = 0; i < 100; i++)); do
		ip -n "$1" -o link show dev "$2" | grep -q ' state UP ' && return 0
		sleep 0.05
	done
	die "$1/$2 did not come up"
}

pick_iptables() { # ns
	local c
	for c in iptables iptables-nft iptables-legacy; do
		command -v "$c" >/dev/null || continue
		if in_ns "$1" "$c" -t nat -S >/dev/null 2>&1; then echo "$c"; return 0; fi
	done
	die "no iptables variant works inside a network namespace (tried nft and legacy)"
}

quiet_ipv6() { # ns: no link-local autoconf, no DAD, no RS/RA; MLD reports sent at once
	in_ns "$1" sysctl -q -w \
		net.ipv6.conf.default.addr_gen_mode=1 \
		net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.default.dad_transmits=0 \
		net.ipv6.conf.default.router_solicitations=0 \
		net.ipv6.conf.default.accept_ra=0 \
		net.ipv6.conf.default.mldv1_unsolicited_report_interval=10 \
		net.ipv6.conf.default.mldv2_unsolicited_report_interval=10 \
		net.ipv6.conf.all.accept_ra=0 >/dev/null
}

cmd_up() {
	need_root
	local id=${FT_LAB_ID:-$(gen_id)}
	check_id "$id"
	[[ $BRNF == 0 || $BRNF == 1 ]] || die "FT_LAB_BRNF must be 0 or 1"
	local state=$STATE_ROOT/$id h=${id}_host v=${id}_vm n=${id}_node
	for ns in "$h" "$v" "$n"; do ns_exists "$ns" && die "namespace $ns exists already"; done
	[[ -e $state ]] && die "state $state exists already (lab $id running? use down)"
	mkdir -p "$state"
	: >"$state/pids"
	# From here on a failure tears down whatever was built.
	trap 'rc=$?; if ((rc)); then log "up failed, cleaning up"; teardown "'"$id"'"; fi' EXIT

	local ns
	for ns in "$h" "$v" "$n"; do
		ip netns add "$ns"
		quiet_ipv6 "$ns"
		ip -n "$ns" link set lo up
	done

	# HOST <-> VM link: created in HOST, peer born directly in VM.
	ip -n "$h" link add name "$HOST_IF" address "$HOST_MAC" type veth \
		peer name "$VM_IF" address "$VM_MAC" netns "$v"
	ip -n "$h" addr add "$HOST_ADDR/24" dev "$HOST_IF"
	ip -n "$h" -6 addr add "$HOST_ADDR6/64" dev "$HOST_IF" nodad
	ip -n "$v" addr add "$VM_ADDR/24" dev "$VM_IF"
	ip -n "$v" -6 addr add "$VM_ADDR6/64" dev "$VM_IF" nodad

	# VM bridge with one port whose peer is NODE's eth0. IPv4 only there.
	ip -n "$v" link add name "$VM_BR" address "$BR_MAC" type bridge stp_state 0 mcast_snooping 0
	ip -n "$v" link add name "$VM_BRPORT" address "$BRPORT_MAC" type veth \
		peer name "$NODE_IF" address "$NODE_MAC" netns "$n"
	in_ns "$v" sysctl -q -w "net.ipv6.conf.$VM_BR.disable_ipv6=1" \
		"net.ipv6.conf.$VM_BRPORT.disable_ipv6=1" >/dev/null
	in_ns "$n" sysctl -q -w "net.ipv6.conf.$NODE_IF.disable_ipv6=1" >/dev/null
	ip -n "$v" link set "$VM_BRPORT" master "$VM_BR"
	ip -n "$v" addr add "$BR_ADDR/24" dev "$VM_BR"
	ip -n "$n" addr add "$NODE_ADDR/24" dev "$NODE_IF"

	ip -n "$h" link set "$HOST_IF" up
	ip -n "$v" link set "$VM_IF" up
	ip -n "$v" link set "$VM_BR" up
	ip -n "$v" link set "$VM_BRPORT" up
	ip -n "$n" link set "$NODE_IF" up

	# VM NAT, as minikube/docker do it: locally originated 127.0.0.1:55001 goes to the node.
	local ipt
	ipt=$(pick_iptables "$v")
	in_ns "$v" sysctl -q -w net.ipv4.conf.all.route_localnet=1 >/dev/null
	in_ns "$v" "$ipt" -t nat -A OUTPUT -d 127.0.0.1/32 -p tcp --dport "$VM_LOCAL_PORT" \
		-j DNAT --to-destination "$NODE_ADDR:$NODE_PORT"
	in_ns "$v" "$ipt" -t nat -A POSTROUTING -s 127.0.0.0/8 -o "$VM_BR" -j MASQUERADE
	in_ns "$v" "$ipt" -t nat -S OUTPUT | grep -q "DNAT.*$NODE_ADDR:$NODE_PORT" ||
		die "DNAT rule not in place ($ipt)"
	# br_netfilter (built in or loaded) makes bridged frames traverse iptables; its sysctls
	# are per namespace. Set them explicitly so the lab behaves the same on every kernel
	# that has them; never load a module (that would change the whole machine).
	if in_ns "$v" test -e /proc/sys/net/bridge/bridge-nf-call-iptables; then
		in_ns "$v" sysctl -q -w "net.bridge.bridge-nf-call-iptables=$BRNF" \
			"net.bridge.bridge-nf-call-ip6tables=$BRNF" \
			"net.bridge.bridge-nf-call-arptables=$BRNF" >/dev/null
	elif [[ $BRNF != 0 ]]; then
		die "FT_LAB_BRNF=$BRNF but this kernel has no br_netfilter (not loading modules)"
	fi

	write_env "$id" "$state" "$ipt" >"$state/env"

	# Processes. Server first, forwarders after it.
	local py=${FT_LAB_PYTHON:-python3}
	start_daemon "$id" "$n" node-server "$py" "$LAB_DIR/server.py" \
		--tcp "$NODE_ADDR:$NODE_PORT" --lifetime "${TTL/#0/31536000}"
	start_daemon "$id" "$v" vm-services "$py" "$LAB_DIR/server.py" \
		--tcp "127.0.0.1:$VM_LO_PORT" --udp "$VM_ADDR:$UDP_PORT" --udp "[$VM_ADDR6]:$UDP_PORT" \
		--lifetime "${TTL/#0/31536000}"
	start_daemon "$id" "$v" vm-forwarder socat -d -t 10 -T 60 \
		"TCP4-LISTEN:$VM_PORT,bind=$VM_ADDR,fork,reuseaddr" \
		"TCP4:127.0.0.1:$VM_LOCAL_PORT,connect-timeout=5"
	start_daemon "$id" "$v" vm-forwarder6 socat -d -t 10 -T 60 \
		"TCP6-LISTEN:$VM_PORT,bind=[$VM_ADDR6],fork,reuseaddr,ipv6only=1" \
		"TCP4:127.0.0.1:$VM_LOCAL_PORT,connect-timeout=5"
	start_daemon "$id" "$h" host-forwarder socat -d -t 10 -T 60 \
		"TCP4-LISTEN:$ENTRY_PORT,bind=127.0.0.1,fork,reuseaddr" \
		"TCP4:$VM_ADDR:$VM_PORT,connect-timeout=5"
	wait_listen "$n" tcp "$NODE_PORT"
	wait_listen "$v" tcp "$VM_LO_PORT"
	wait_listen "$v" udp "$UDP_PORT"
	wait_listen "$v" tcp "$VM_PORT"
	wait_listen "$h" tcp "$ENTRY_PORT"

	if ((TTL > 0)); then # watchdog: ends the lab after TTL even if nobody calls down
		# shellcheck disable=SC2016 # expanded by the inner bash
		setsid bash -c 'trap "exit 0" TERM INT HUP; sleep "$1" & wait $!; exec "$2" down "$3"' _ "$TTL" "$SELF" "$id" \
			>/dev/null 2>&1 </dev/null &
		echo "$!" >"$state/watchdog.pid"
	fi
	# The kernel applies carrier changes in its linkwatch work, rate-limited system-wide to
	# about one batch a second; only then do the IPv6 addresses become usable and send their
	# MLD reports. Wait for that, then a little more, so captures started after `up` see none.
	wait_oper "$h" "$HOST_IF"
	wait_oper "$v" "$VM_IF"
	wait_oper "$v" "$VM_BR"
	wait_oper "$v" "$VM_BRPORT"
	wait_oper "$n" "$NODE_IF"
	sleep 0.25
	trap - EXIT
	log "lab $id up (namespaces $h $v $n, $ipt)"
	cat "$state/env"
}

kill_ns_procs() { # ns: every process in the namespace is the lab's own
	local ns=$1 pids i
	pids=$(ip netns pids "$ns" 2>/dev/null || true)
	[[ -z $pids ]] && return 0
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null || true
	for ((i = 0; i < 40; i++)); do
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		[[ -z $pids ]] && return 0
		sleep 0.05
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null || true
	sleep 0.1
}

teardown() { # id
	local id=$1 state=$STATE_ROOT/$1 ns wd
	if [[ -f $state/watchdog.pid ]]; then
		wd=$(<"$state/watchdog.pid")
		# Only our own watchdog: a session leader whose command line names this lab.
		local cmdline=""
		[[ -r /proc/$wd/cmdline ]] && cmdline=$(tr '\0' ' ' <"/proc/$wd/cmdline" 2>/dev/null || true)
		if [[ $wd != "$$" && $cmdline == *" $id "* && $cmdline == *seedpath.sh* ]] &&
			[[ $(ps -o pgid= -p "$wd" | tr -d ' ') == "$wd" ]]; then
			kill -TERM -- "-$wd" 2>/dev/null || true
			local i
			for ((i = 0; i < 20; i++)); do # gone, or a zombie waiting for init to reap it
				if [[ $(ps -o stat= -p "$wd" 2>/dev/null) == Z* ]] || ! kill -0 "$wd" 2>/dev/null; then
					break
				fi
				sleep 0.05
			done
		fi
	fi
	for ns in "${id}_host" "${id}_vm" "${id}_node"; do
		ns_exists "$ns" || continue
		kill_ns_procs "$ns"
		ip netns del "$ns" 2>/dev/null || log "could not delete namespace $ns"
	done
	rm -rf -- "$state"
}

cmd_down() {
	need_root
	if [[ ${1:-} == --all ]]; then
		local d
		for d in "$STATE_ROOT"/*/; do
			[[ -d $d ]] || continue
			teardown "$(basename "$d")"
		done
		return 0
	fi
	local id
	id=$(resolve_id "${1:-}")
	teardown "$id"
	log "lab $id down"
}

cmd_env() {
	local id
	id=$(resolve_id "${1:-}")
	[[ -f $STATE_ROOT/$id/env ]] || die "no lab $id (no $STATE_ROOT/$id/env)"
	cat "$STATE_ROOT/$id/env"
}

load_env() { # id
	[[ -f $STATE_ROOT/$1/env ]] || die "no lab $1"
	set -a
	# shellcheck disable=SC1090
	source "$STATE_ROOT/$1/env"
	set +a
}

cmd_traffic() {
	need_root
	local id=${FT_LAB_ID:-}
	if [[ $# -gt 0 && $1 != -- && $1 != -* ]]; then id=$1; shift; fi
	[[ ${1:-} == -- ]] && shift
	id=$(resolve_id "$id")
	load_env "$id"
	# Hard bound on the client whatever its own --deadline says.
	in_ns "$FT_HOST_NS" timeout "${FT_CLIENT_TIMEOUT:-300}" "${FT_LAB_PYTHON:-python3}" \
		"$LAB_DIR/client.py" --connect "$FT_ENTRY" "$@"
}

cmd_check() {
	need_root
	local id out
	id=$(resolve_id "${1:-}")
	out=$(cmd_traffic "$id" -- -n 1 --size 1000 --timeout 5 --deadline 10) ||
		die "lab $id: echo through the seed path failed: $out"
	log "lab $id: echo through the seed path ok: $out"
}

cmd_exec() {
	need_root
	[[ $# -ge 2 ]] || die "usage: exec host|vm|node CMD..."
	local role=${1,,} id
	shift
	[[ $role == host || $role == vm || $role == node ]] || die "role must be host, vm or node"
	id=$(resolve_id "")
	in_ns "${id}_$role" "$@"
}

cmd_run() {
	need_root
	[[ $# -ge 1 ]] || die "usage: run CMD..."
	local envtext id rc=0
	envtext=$(cmd_up)
	id=$(sed -n 's/^FT_LAB_ID=//p' <<<"$envtext")
	trap 'teardown "'"$id"'"' EXIT
	trap 'exit 130' INT TERM
	load_env "$id"
	"$@" || rc=$?
	return "$rc"
}

cmd_list() {
	local d
	for d in "$STATE_ROOT"/*/; do
		[[ -f $d/env ]] && basename "$d"
	done
	return 0
}

main() {
	local cmd=${1:-}
	[[ $# -gt 0 ]] && shift
	case $cmd in
	up) cmd_up "$@" ;;
	down) cmd_down "$@" ;;
	env) cmd_env "$@" ;;
	traffic) cmd_traffic "$@" ;;
	check) cmd_check "$@" ;;
	exec) cmd_exec "$@" ;;
	run) cmd_run "$@" ;;
	list) cmd_list ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; [[ -z $cmd || $cmd == -h || $cmd == --help || $cmd == help ]] ;;
	esac
}

main "$@"
