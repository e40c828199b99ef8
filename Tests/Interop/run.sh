#!/usr/bin/env bash
# Runs Burrow's interop suite against Debian's opentracker, python3-libtorrent, transmission and aria2.
#   Tests/Interop/run.sh                 all cases
#   Tests/Interop/run.sh -k magnet -k udp   only cases whose names contain "magnet" or "udp"
# Honours BURROW_BIN (default /work/main/.build/debug/burrow), INTEROP_SUBJECT, CI; see test_interop.py.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python=/usr/bin/python3
if [[ ! -x "$python" ]]; then
    echo "run.sh: $python (Debian's python3, with python3-libtorrent) is required" >&2
    exit 1
fi
# Hard cap for the whole suite; the python side stops its processes when it receives SIGTERM.
export PYTHONDONTWRITEBYTECODE=1
exec timeout --kill-after=20 "${INTEROP_SUITE_TIMEOUT:-900}" "$python" -u "$here/test_interop.py" "$@"
