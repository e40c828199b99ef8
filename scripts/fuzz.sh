#!/usr/bin/env bash
# Builds Burrow's libFuzzer targets (the Fuzz/ package) and runs each for a while, one after another.
#
# Usage: scripts/fuzz.sh [--seconds N] [--runs N] [--update-corpus] [TARGET...]
#   --seconds N       run each target for N seconds (default 60 when --runs is not given)
#   --runs N          run each target for N inputs (benchmark-style: --runs 10000000); with --seconds
#                     too, whichever limit comes first
#   --update-corpus   merge the new inputs that add coverage into Fuzz/Corpus/<target> (for a commit)
#   TARGET            bencode metainfo magnet peerwire extension http-tracker udp-tracker dns netlink
#                     (default: all)
#
# Seeds come from Fuzz/Corpus/<target> (committed, read only); inputs libFuzzer finds interesting go to
# .build-fuzz/corpus/<target> and are not committed unless --update-corpus. A crash, a failed property, a
# leak or a hang (10 s per input) stops that target, keeps the input in .build-fuzz/artifacts/<target>/ and
# prints the command that reproduces it; the script then exits 1 after running the remaining targets.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH=/opt/swift/usr/bin:$PATH

all_targets=(bencode metainfo magnet peerwire extension http-tracker udp-tracker dns netlink)
# Corpus name -> executable in Fuzz/Sources.
executable() {
  case "$1" in
    bencode) echo FuzzBencode ;; metainfo) echo FuzzMetainfo ;; magnet) echo FuzzMagnet ;;
    peerwire) echo FuzzPeerWire ;; extension) echo FuzzExtensionMessages ;;
    http-tracker) echo FuzzHTTPTracker ;; udp-tracker) echo FuzzUDPTracker ;;
    dns) echo FuzzDNS ;; netlink) echo FuzzNetlink ;;
    *) echo "unknown fuzz target '$1' (known: ${all_targets[*]})" >&2; exit 2 ;;
  esac
}

seconds=""
runs=""
update_corpus=false
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --update-corpus) update_corpus=true; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) executable "$1" >/dev/null; targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
limit=()
[ -n "$runs" ] && limit+=(-runs="$runs")
[ -n "$seconds" ] && limit+=(-max_total_time="$seconds")
[ ${#limit[@]} -gt 0 ] || limit=(-max_total_time=60)

scratch="$root/.build-fuzz"
echo "== fuzz build (release, -sanitize=fuzzer,address; $scratch)"
# Flags explained in Fuzz/Package.swift. A failed build fails the script: never a silent skip.
log=$(mktemp)
if ! (cd Fuzz && swift build -c release --scratch-path "$scratch" \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -enable-testing) >"$log" 2>&1; then
  grep -E "error:" "$log" | head -50 || tail -50 "$log"
  echo "fuzz build failed"; exit 1
fi
if grep -E "^$root/Fuzz/.*warning:" "$log"; then echo "warnings in the fuzz targets"; exit 1; fi
rm -f "$log"
bin="$scratch/release"

# LeakSanitizer reports, per input, memory the parser allocated and never freed. Swift's own backtracer
# is off: after a trap it reads the stack in a way AddressSanitizer reports as a second, unrelated error.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export SWIFT_BACKTRACE=enable=no
failed=()
summary=()
for target in "${targets[@]}"; do
  exe="$bin/$(executable "$target")"
  work="$scratch/corpus/$target"
  artifacts="$scratch/artifacts/$target"
  mkdir -p "$work" "$artifacts"
  echo "== fuzz $target (${limit[*]})"
  out="$scratch/$target.log"
  status=0
  # New inputs go to the first corpus directory (scratch); the committed seeds are only read.
  "$exe" "${limit[@]}" -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$work" "$root/Fuzz/Corpus/$target" >"$out" 2>&1 || status=$?
  stats=$(grep -E "^#[0-9]+[[:space:]]+DONE" "$out" | tail -1 || true)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out" | tail -1)
  secs=$(grep -oE "Done [0-9]+ runs in [0-9]+ second" "$out" | grep -oE "[0-9]+ second" | grep -oE "[0-9]+" | tail -1 || true)
  cov=$(grep -oE "cov: [0-9]+ ft: [0-9]+" <<<"$stats" || true)
  if [ "$status" -ne 0 ]; then
    grep -E "ERROR: |Fatal error|fuzz property|SUMMARY" "$out" | head -10 || tail -30 "$out"
    crash=$(ls -t "$artifacts" 2>/dev/null | head -1)
    echo "FAILED: $target (exit $status); log: $out"
    [ -n "$crash" ] && echo "  reproduce: $exe $artifacts/$crash"
    failed+=("$target")
    summary+=("$(printf '%-13s %-7s %12s %9s %6s  %s' "$target" FAILED "${runs:-?}" "${rate:-?}" "${secs:-?}" "$cov")")
  else
    summary+=("$(printf '%-13s %-7s %12s %9s %6s  %s' "$target" ok "${runs:-?}" "${rate:-?}" "${secs:-?}" "$cov")")
  fi
  if $update_corpus; then
    "$exe" -merge=1 "$root/Fuzz/Corpus/$target" "$work" >"$scratch/$target.merge.log" 2>&1
  fi
done

echo "== fuzz summary"
printf '%-13s %-7s %12s %9s %6s  %s\n' target result executions "exec/s" "s" coverage
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then echo "fuzzing found failures in: ${failed[*]}"; exit 1; fi
