#!/usr/bin/env bash
# Installs the Debian packages the tests use (real peers, tracker, tunnels, packet tools). Needs root.
set -euo pipefail
packages=(opentracker transmission-cli transmission-daemon aria2 python3-libtorrent python3-pytest qbittorrent-nox
          mktorrent tcpdump nftables iproute2 wireguard-tools wireguard-go openvpn dnsmasq time procps)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root or install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
