#!/usr/bin/env bash
# Download benchmark (not a test): Burrow vs python3-libtorrent vs aria2c, one after another,
# each fetching the same torrent from three libtorrent seeders over virtual ethernet.
#
#   sudo bench/download-bench.sh [--only burrow,lt,aria2] [--size-mib 1024] [--rounds 1] [--keep]
#
# Topology (all inside network namespaces this script creates and deletes; nothing is added to
# the root namespace):
#   bwb-client  bridge bwb-br 10.99.0.100/24, one veth port per seeder; the downloader runs here
#   bwb-seedN   eth0 10.99.0.1N/24 (N = 1..3), a libtorrent seeder on :6881 (TCP only)
#   opentracker runs in bwb-seed1 on 10.99.0.11:6969
#
# --rounds N runs the clients N times, interleaved and rotated (burrow lt aria2, lt aria2 burrow, ...),
# and the report compares medians: the host's noise moves single runs by ±20%.
# For each client: wall time, CPU seconds (user+sys), peak RSS and context switches from GNU time, the
# host's busy CPU seconds over the download (seeders and kernel included: 2 cores cap it at 2 × wall),
# and a SHA-256 check of the downloaded file. The output dir is removed and `sync` run between
# clients; the page cache is NOT dropped (not reliably possible here), so all clients read the
# seeders' data from a warm cache. Everything shares the host's cores, seeders included.
#
# Env: BURROW_BIN (default /work/main/.build/release/burrow, else .build-release/release/burrow),
#      BURROW_EXTRA_ARGS (appended to burrow's command line, e.g. "--log-level debug").
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
python=/usr/bin/python3
lt_peer="$repo/Tests/Interop/lt_peer.py"
helper="$here/bench_helper.py"
burrow_bin="${BURROW_BIN:-/work/main/.build/release/burrow}"
if [[ -z "${BURROW_BIN:-}" && ! -x "$burrow_bin" && -x "$repo/.build-release/release/burrow" ]]; then
    burrow_bin="$repo/.build-release/release/burrow"   # the lead's separate release scratch path
fi

only="burrow,lt,aria2"
size_mib=1024
keep=0
rounds=1
download_timeout=900

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
    case "$1" in
        --only) only="$2"; shift 2 ;;
        --only=*) only="${1#*=}"; shift ;;
        --size-mib) size_mib="$2"; shift 2 ;;
        --size-mib=*) size_mib="${1#*=}"; shift ;;
        --rounds) rounds="$2"; shift 2 ;;
        --rounds=*) rounds="${1#*=}"; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "download-bench: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done

IFS=',' read -r -a clients <<< "$only"
for client in "${clients[@]}"; do
    case "$client" in
        burrow|lt|aria2) ;;
        *) echo "download-bench: --only takes burrow, lt and aria2; got '$client'" >&2; exit 2 ;;
    esac
done
[[ "$size_mib" =~ ^[1-9][0-9]*$ ]] || { echo "download-bench: --size-mib must be a positive integer, got '$size_mib'" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "download-bench: --rounds must be a positive integer, got '$rounds'" >&2; exit 2; }

fail() { echo "download-bench: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || fail "must run as root (it creates network namespaces)"
for tool in ip opentracker mktorrent aria2c sha256sum timeout /usr/bin/time "$python"; do
    command -v "$tool" > /dev/null || fail "'$tool' is missing (apt-get install iproute2 opentracker mktorrent aria2 time python3-libtorrent)"
done
"$python" -c 'import libtorrent' 2> /dev/null || fail "$python cannot import libtorrent (apt-get install python3-libtorrent)"
if [[ ",$only," == *,burrow,* ]]; then
    [[ -x "$burrow_bin" ]] || fail "burrow binary '$burrow_bin' missing (scripts/burrow --version or swift build -c release --static-swift-stdlib, set BURROW_BIN, or leave burrow out: --only lt,aria2)"
fi

namespaces=(bwb-client bwb-seed1 bwb-seed2 bwb-seed3)
for ns in "${namespaces[@]}"; do
    if ip netns list | grep -qw "^$ns"; then
        fail "network namespace $ns already exists (a previous run still going, or left over: ip netns del $ns)"
    fi
done

work="$(mktemp -d /tmp/burrow-bench.XXXXXX)"
chmod 755 "$work"   # opentracker drops to 'nobody' inside $work/tracker
pids=()
created_namespaces=()

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2> /dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2> /dev/null || true
    done
    # Deleting a namespace also deletes the veths and the bridge inside it.
    for ns in "${created_namespaces[@]}"; do
        ip netns del "$ns" 2> /dev/null || echo "download-bench: could not delete namespace $ns" >&2
    done
    if ((keep)); then
        echo "kept $work"
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }

# CPU seconds the whole host was busy (all processes, softirq included) since boot: the difference over
# a download shows how much the seeders and the kernel's networking took alongside the client.
busy_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '/^cpu / { print ($2 + $3 + $4 + $7 + $8) / hz; exit }' /proc/stat
}

# --- data and torrent ---------------------------------------------------------------------------
name="bench-${size_mib}MiB.bin"
mkdir -p "$work/data" "$work/tracker" "$work/logs"
if [[ ",$only," == *,burrow,* ]]; then log "burrow binary: $burrow_bin"; fi
log "creating ${size_mib} MiB of random data"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/data/$name"
source_sha="$(sha256sum "$work/data/$name" | cut -d' ' -f1)"
tracker_ip=10.99.0.11
tracker_url="http://$tracker_ip:6969/announce"
log "making torrent (1 MiB pieces)"
mktorrent -a "$tracker_url" -l 20 -n "$name" -o "$work/bench.torrent" "$work/data/$name" > "$work/logs/mktorrent.log"
info_hash="$("$python" "$helper" info-hash "$work/bench.torrent")"
echo "$info_hash" > "$work/tracker/whitelist"

# --- network ------------------------------------------------------------------------------------
log "creating namespaces ${namespaces[*]}"
for ns in "${namespaces[@]}"; do
    ip netns add "$ns"
    created_namespaces+=("$ns")
    ip -n "$ns" link set lo up
done
ip -n bwb-client link add bwb-br type bridge
ip -n bwb-client addr add 10.99.0.100/24 dev bwb-br
ip -n bwb-client link set bwb-br up
for n in 1 2 3; do
    ip -n "bwb-seed$n" link add eth0 type veth peer name "seed$n" netns bwb-client
    ip -n "bwb-seed$n" addr add "10.99.0.1$n/24" dev eth0
    ip -n "bwb-seed$n" link set eth0 up
    ip -n bwb-client link set "seed$n" master bwb-br
    ip -n bwb-client link set "seed$n" up
done

# --- tracker and seeders ------------------------------------------------------------------------
# opentracker chroots to -d, so the whitelist path is relative to it.
ip netns exec bwb-seed1 opentracker -i "$tracker_ip" -p 6969 -P 6969 -d "$work/tracker" -w whitelist \
    > "$work/logs/opentracker.log" 2>&1 &
pids+=($!)
for n in 1 2 3; do
    # Each seeder hash-checks the data before seeding, which also warms the page cache.
    ip netns exec "bwb-seed$n" "$python" -u "$lt_peer" seed --torrent "$work/bench.torrent" \
        --save "$work/data" --listen "10.99.0.1$n:6881" > "$work/logs/seed$n.log" 2>&1 &
    pids+=($!)
done
# The scrape also proves the client namespace reaches bwb-seed1 across the bridge.
log "waiting for the three seeders to check the data and announce"
ip netns exec bwb-client "$python" "$helper" wait-seeders --tracker "http://$tracker_ip:6969" \
    --info-hash "$info_hash" --count 3 --timeout 600 || {
    tail -n 5 "$work"/logs/seed*.log >&2
    fail "seeders did not become ready"
}

# --- downloads ----------------------------------------------------------------------------------
runs="$work/runs.tsv"
: > "$runs"
port=6890
schedule=()
# Each round starts with the next client, so no client always runs first (the first download after
# the setup has measurably more kernel time: writeback of the freshly made test data is still going on).
for ((round = 0; round < rounds; round++)); do
    for ((i = 0; i < ${#clients[@]}; i++)); do schedule+=("${clients[$(((round + i) % ${#clients[@]}))]}"); done
done
for client in "${schedule[@]}"; do
    out="$work/out"
    rm -rf "$out" "$work/state"
    mkdir -p "$out"
    sync
    port=$((port + 1))   # a new port per client: the tracker still lists the previous one
    case "$client" in
        burrow)
            read -r -a burrow_extra <<< "${BURROW_EXTRA_ARGS:-}"
            cmd=("$burrow_bin" download "$work/bench.torrent" --output "$out" --state-dir "$work/state"
                 --allow-unbound --port "$port"
                 ${burrow_extra[@]+"${burrow_extra[@]}"}) ;;
        lt)
            cmd=("$python" -u "$lt_peer" download --torrent "$work/bench.torrent" --save "$out"
                 --listen "10.99.0.100:$port" --timeout "$download_timeout") ;;
        aria2)
            # --file-allocation=none: sparse files like the others (aria2's default writes zeros first).
            cmd=(aria2c "--dir=$out" "--listen-port=$port" --seed-time=0 --enable-dht=false
                 --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false
                 --file-allocation=none --console-log-level=notice --summary-interval=5
                 --bt-save-metadata=false --auto-save-interval=0 "$work/bench.torrent") ;;
    esac
    log "downloading with $client"
    # In the background and waited for, so a signal reaches the cleanup trap at once. `timeout`
    # leads its own process group and signals the whole group (time and the client) when it is
    # terminated or its limit passes.
    ip netns exec bwb-client timeout --kill-after=10 "$download_timeout" \
        /usr/bin/time -f '%e\t%U\t%S\t%M\t%w\t%c' -o "$work/time-$client" \
        "${cmd[@]}" > "$work/logs/download-$client.log" 2>&1 &
    client_pid=$!
    pids+=("$client_pid")
    host_busy_before=$(busy_seconds)
    status=0
    wait "$client_pid" || status=$?
    host_busy=$(echo "$(busy_seconds) - $host_busy_before" | bc)
    verified=no
    if [[ -f "$out/$name" ]] && [[ "$(sha256sum "$out/$name" | cut -d' ' -f1)" == "$source_sha" ]]; then
        verified=yes
    fi
    measured="$(grep -E '^[0-9.]+\s' "$work/time-$client" 2> /dev/null | tail -n 1 || true)"
    [[ -n "$measured" ]] || measured="$(printf '0\t0\t0\t0\t0\t0')"
    printf '%s\t%s\t%s\t%s\t%s\n' "$client" "$status" "$measured" "$host_busy" "$verified" >> "$runs"
    log "$client: exit $status, verified $verified ($(cut -f1 <<< "$measured") s wall)"
    if [[ $status -ne 0 || $verified != yes ]]; then
        tail -n 15 "$work/logs/download-$client.log" >&2
    fi
done
rm -rf "$work/out"

result_json="/tmp/burrow-bench-$(date +%Y%m%d-%H%M%S).json"
"$python" "$helper" report --runs "$runs" --size "$((size_mib * 1024 * 1024))" --json "$result_json"
