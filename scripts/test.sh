#!/usr/bin/env bash
# Burrow's whole test run: unit tests (swift test), a burst of fuzzing, the interop suite against real
# clients, then the tunnel lab (kill switch, DNS, leak capture; root only).
# Usage: scripts/test.sh            (as root: installs missing Debian packages first)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
if [ "$(id -u)" = 0 ]; then scripts/install-deps.sh; fi

echo "== build"
log=$(mktemp)
if ! swift build --build-tests >"$log" 2>&1; then
  grep -E "error:" "$log" | head -50 || tail -50 "$log"
  echo "build failed"; exit 1
fi
# Burrow builds without warnings: any warning in our own sources fails the run.
if grep -E "^$PWD/(Sources|Tests)/.*warning:" "$log"; then echo "warnings in Burrow's sources"; exit 1; fi
rm -f "$log"

echo "== unit tests"
swift test --skip-build

echo "== fuzzing: a short burst of every libFuzzer target (scripts/fuzz.sh; a finding fails the run)"
scripts/fuzz.sh --seconds 6

echo "== interop suite (real peers: opentracker, libtorrent, transmission, aria2, qBittorrent)"
BURROW_BIN="$PWD/.build/debug/burrow" Tests/Interop/run.sh

echo "== tunnel lab (network namespaces, WireGuard + OpenVPN, kill switch scenarios; needs root)"
if [ "$(id -u)" = 0 ]; then
  BURROW_BIN="$PWD/.build/debug/burrow" Tests/Lab/run.sh --client burrow
elif [ "${CI:-}" = true ]; then
  echo "the tunnel lab needs root, and CI must run it"; exit 1
else
  echo "SKIPPED: the tunnel lab needs root (run scripts/test.sh as root)"
fi
