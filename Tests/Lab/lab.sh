#!/usr/bin/env bash
# Manual control of the tunnel lab (needs root).
#   Tests/Lab/lab.sh up [--dir D] [--size-mib N]   build it, seed a demo torrent, leave it running
#   Tests/Lab/lab.sh status                         namespaces, addresses, processes, rules, wg state
#   Tests/Lab/lab.sh down                           stop every lab process, delete the bl-* namespaces
# Inside: ip netns exec bl-client <cmd>; logs under the work directory printed by `up`.
# A scenario run (run.sh / bench-killswitch.sh) replaces a lab left up by this script.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
case "${1:-}" in
    up|down|status) exec /usr/bin/python3 -u "$here/lab.py" "$@" ;;
    *) echo "usage: $0 up [--dir D] [--size-mib N] | down | status" >&2; exit 2 ;;
esac
