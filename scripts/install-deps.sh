#!/usr/bin/env bash
# Installs what flowtrail's build, demo and tests need on a fresh Debian/Ubuntu machine:
# libpcap-dev (build), and the oracles and lab tools the tests use (tcpdump, tshark, tcpflow,
# iproute2, iptables, conntrack, socat, tmux; GNU time for peak-RSS checks, libcap2-bin's setcap
# and util-linux's setpriv/prlimit for the privilege and allocation tests). Only missing
# packages are installed.
set -euo pipefail
pkgs=(libpcap-dev tcpdump tshark tcpflow iproute2 iptables conntrack socat tmux iperf3 procps iputils-ping python3 time libcap2-bin util-linux)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=(sudo -E)
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
echo 'wireshark-common wireshark-common/install-setuid boolean false' | "${SUDO[@]}" debconf-set-selections
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
