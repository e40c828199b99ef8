#!/usr/bin/env bash
# Runs the tunnel-guard scenarios in the namespace lab (needs root).
#   Tests/Lab/run.sh                      every scenario against Burrow ($BURROW_BIN)
#   Tests/Lab/run.sh --client lt          against the python3-libtorrent stand-in (or aria2)
#   Tests/Lab/run.sh -k flaps -k killed   only scenarios whose names contain "flaps" or "killed"
# Honours BURROW_BIN, CI, LAB_* (see test_lab.py --help). Exit status 0 only if every scenario passed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python=/usr/bin/python3
if [[ ! -x "$python" ]] || ! "$python" -c 'import libtorrent' 2>/dev/null; then
    echo "run.sh: $python with python3-libtorrent is required" >&2
    exit 1
fi
for tool in wireguard-go wg openvpn dnsmasq opentracker tcpdump mktorrent ip; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 1; }
done
# Hard cap; on SIGTERM the python side tears the lab down (namespaces, processes) before exiting.
exec timeout --kill-after=30 "${LAB_SUITE_TIMEOUT:-1800}" "$python" -u "$here/test_lab.py" "$@"
