#!/usr/bin/env bash
# Kill-switch benchmark in the tunnel lab (needs root): 100 wg0 link flaps while Burrow downloads,
# then p50/p99 of Burrow's "kill switch: ... closed N sockets in X µs" and "resumed in X ms" lines.
#   Tests/Lab/bench-killswitch.sh [--client burrow|lt|aria2] [--flaps N] [--down S] [--up S] [--size-mib N]
# Honours BURROW_BIN (default /work/main/.build/debug/burrow) and CI.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec timeout --kill-after=30 "${LAB_BENCH_TIMEOUT:-900}" /usr/bin/python3 -u "$here/bench_killswitch.py" "$@"
