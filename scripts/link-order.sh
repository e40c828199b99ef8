#!/usr/bin/env bash
# Regenerates linker/burrow.order, the function order the release link uses (see Package.swift,
# `releaseLink`). It lists every function of the burrow binary that runs during a start, an idle
# wait for an unreachable tracker, and a real local download, as callgrind sees them. lld puts those
# functions first in .text, so the pages a running burrow touches are packed together instead of
# each one mapping a 64 KiB fault-around window of cold code (idle RSS 22 -> 17.5 MiB).
#
# A stale order file is harmless (missing names are skipped; new hot code just lands in the cold
# part); rerun this after large changes. Needs valgrind and mktorrent; takes ~3 minutes.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export PATH=/opt/swift/usr/bin:$PATH
for tool in valgrind mktorrent objcopy python3; do
  command -v "$tool" >/dev/null || { echo "link-order: '$tool' is missing (apt-get install valgrind mktorrent binutils)" >&2; exit 1; }
done
scratch="${SCRATCH_PATH:-$root/.build}"   # another build directory: SCRATCH_PATH=.build-static scripts/link-order.sh
case "$scratch" in /*) ;; *) scratch="$root/$scratch" ;; esac   # the runs below change directory
(cd "$root" && swift build -c release --static-swift-stdlib --product burrow --scratch-path "$scratch" >&2)
bin="$scratch/release/burrow"
work="$(mktemp -d)"
seeder=""
cleanup() {
  if [ -n "$seeder" ]; then kill "$seeder" 2>/dev/null || true; wait "$seeder" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
# valgrind 3.19 cannot read the DWARF 5 the toolchain emits: profile a copy without debug info
# (the symbol table, which is all the order file needs, stays).
objcopy --strip-debug "$bin" "$work/burrow"
head -c 3000000 /dev/urandom > "$work/f.bin"
mktorrent -a http://127.0.0.1:1/announce -o "$work/f.torrent" "$work/f.bin" >/dev/null
mkdir -p "$work/seed/out" "$work/idle" "$work/leech"
cp "$work/f.bin" "$work/seed/out/"
port=$((40000 + RANDOM % 20000))
(cd "$work/seed" && exec "$bin" download "$work/f.torrent" --output out --state-dir state --allow-unbound --seed --port "$port" >seed.log 2>&1) &
seeder=$!
cg() { # name, seconds, burrow arguments...
  local name=$1 secs=$2; shift 2
  (cd "$work/$name" && timeout -s INT "$secs" valgrind --tool=callgrind --demangle=no \
      --callgrind-out-file="$work/$name.cg" "$work/burrow" "$@" >run.log 2>&1) || true
}
cg idle 45 download "$work/f.torrent" --output out --state-dir state --allow-unbound
cg leech 150 download "$work/f.torrent" --output out --state-dir state --allow-unbound --peer "127.0.0.1:$port" --port $((port + 1))
if ! cmp -s "$work/leech/out/f.bin" "$work/f.bin"; then
  echo "link-order: the profiled download did not complete; its log and the seeder's:" >&2
  tail -n 20 "$work/leech/run.log" "$work/seed/seed.log" >&2
  exit 1
fi
(cd "$work/idle" && valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/info.cg" \
    "$work/burrow" info "$work/f.torrent" >/dev/null 2>&1)
python3 - "$work/burrow" "$root/linker/burrow.order" "$work/idle.cg" "$work/info.cg" "$work/leech.cg" <<'PY'
import re, sys
binary, out, profiles = sys.argv[1], sys.argv[2], sys.argv[3:]
order, seen = [], set()
for path in profiles:
    names, objects, current = {}, {}, None
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        m = re.match(r"^(c?ob)=\((\d+)\)(?: (.*))?$", line)
        if m:
            kind, ident, name = m.groups()
            if name: objects[ident] = name
            if kind == "ob": current = objects[ident]
            continue
        m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line)
        if m:
            kind, ident, name = m.groups()
            if name: names[ident] = name
            if kind == "fn" and current == binary:
                symbol = names[ident].split("'")[0]
                if symbol not in seen and not symbol.startswith(("0x", "(")):
                    seen.add(symbol); order.append(symbol)
open(out, "w").write("\n".join(order) + "\n")
print(f"link-order: {len(order)} functions -> {out}")
PY
# SwiftPM does not track the order file as a link input: drop the binary so the next build links it anew.
rm -f "$bin"
echo "link-order: removed $bin; scripts/burrow (or swift build -c release --static-swift-stdlib) relinks it" >&2
