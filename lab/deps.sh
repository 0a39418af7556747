#!/usr/bin/env bash
# lab/deps.sh: install the Debian packages the lab needs, only those missing.
#   lab/deps.sh          install (root; apt-get)
#   lab/deps.sh --check  exit 1 listing what is missing, install nothing
set -euo pipefail

# command -> Debian package
declare -A PKG=(
	[ip]=iproute2 [ss]=iproute2 [iptables]=iptables [conntrack]=conntrack [socat]=socat
	[tcpdump]=tcpdump [ping]=iputils-ping [python3]=python3 [dumpcap]=wireshark-common
	[mergecap]=wireshark-common [timeout]=coreutils [stdbuf]=coreutils [setsid]=util-linux
)
missing=()
for c in "${!PKG[@]}"; do
	command -v "$c" >/dev/null || missing+=("${PKG[$c]}")
done
if ((${#missing[@]} == 0)); then
	echo "lab deps: all present" >&2
	exit 0
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [[ ${1:-} == --check ]]; then
	echo "lab deps: missing packages: ${missing[*]}" >&2
	exit 1
fi
[[ $EUID -eq 0 ]] || { echo "lab deps: need root to install: ${missing[*]}" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
# wireshark-common asks whether non-root users may capture; answer no.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
