#!/usr/bin/python3
"""Helpers for download-bench.sh (run with Debian's /usr/bin/python3, which has libtorrent).

  bench_helper.py info-hash TORRENT
  bench_helper.py wait-seeders --tracker http://IP:PORT --info-hash HEX --count N --timeout S
  bench_helper.py report --runs RUNS_TSV --size BYTES --json OUT.json

RUNS_TSV has one line per client: client, status, wall s, user s, sys s, max RSS KiB, verified
(tab-separated). `report` prints the table and Burrow's ratios against every other client and
writes the same data as JSON.
"""

import argparse
import json
import statistics
import sys
import time
import urllib.parse
import urllib.request


def bdecode(data: bytes, at: int = 0):
    lead = data[at:at + 1]
    if lead == b"i":
        end = data.index(b"e", at)
        return int(data[at + 1:end]), end + 1
    if lead in (b"l", b"d"):
        items, at = [], at + 1
        while data[at:at + 1] != b"e":
            item, at = bdecode(data, at)
            items.append(item)
        if lead == b"l":
            return items, at + 1
        return dict(zip(items[0::2], items[1::2])), at + 1
    if lead.isdigit():
        colon = data.index(b":", at)
        length = int(data[at:colon])
        return data[colon + 1:colon + 1 + length], colon + 1 + length
    raise ValueError(f"invalid bencode at offset {at}")


def info_hash(args) -> int:
    import libtorrent as lt
    print(lt.torrent_info(args.torrent).info_hashes().v1)
    return 0


def wait_seeders(args) -> int:
    raw = bytes.fromhex(args.info_hash)
    url = f"{args.tracker}/scrape?info_hash={urllib.parse.quote_from_bytes(raw)}"
    deadline = time.monotonic() + args.timeout
    complete = 0
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                reply, _ = bdecode(response.read())
            complete = reply.get(b"files", {}).get(raw, {}).get(b"complete", 0)
            if complete >= args.count:
                print(f"tracker lists {complete} seeders")
                return 0
        except OSError as error:
            print(f"scrape failed ({error}); retrying", file=sys.stderr)
        time.sleep(0.5)
    print(f"tracker lists only {complete} of {args.count} seeders after {args.timeout:.0f}s",
          file=sys.stderr)
    return 1


def report(args) -> int:
    runs = []
    with open(args.runs) as handle:
        for line in handle:
            client, status, wall, user, system, rss, voluntary, involuntary, host_busy, verified = line.rstrip("\n").split("\t")
            runs.append({
                "client": client, "exit_status": int(status), "wall_s": float(wall),
                "user_s": float(user), "sys_s": float(system), "cpu_s": round(float(user) + float(system), 2),
                "peak_rss_mib": round(int(rss) / 1024, 1), "verified": verified == "yes",
                "context_switches": int(voluntary) + int(involuntary),
                "host_busy_cpu_s": round(float(host_busy), 2),
                "throughput_mib_s": round(args.size / (1 << 20) / float(wall), 1) if float(wall) > 0 else None,
            })
    print()
    print(f"{'client':<12}{'status':>7}{'wall s':>9}{'MiB/s':>8}{'cpu s':>8}{'user s':>8}{'sys s':>7}"
          f"{'peak RSS MiB':>14}{'ctx sw':>8}{'host cpu s':>11}  verified")
    for run in runs:
        print(f"{run['client']:<12}{run['exit_status']:>7}{run['wall_s']:>9.2f}"
              f"{run['throughput_mib_s'] or 0:>8.1f}{run['cpu_s']:>8.2f}{run['user_s']:>8.2f}"
              f"{run['sys_s']:>7.2f}{run['peak_rss_mib']:>14.1f}{run['context_switches']:>8}"
              f"{run['host_busy_cpu_s']:>11.2f}  "
              f"{'yes' if run['verified'] else 'NO'}")
    # One line per client: the median of its runs (all runs when --rounds was 1).
    summary = {}
    for client in dict.fromkeys(run["client"] for run in runs):
        mine = [run for run in runs if run["client"] == client]
        summary[client] = {key: round(statistics.median(run[key] for run in mine), 2)
                           for key in ("wall_s", "cpu_s", "peak_rss_mib")}
        summary[client]["runs"] = len(mine)
    if len(runs) > len(summary):
        print("\nmedians:")
        for client, medians in summary.items():
            print(f"  {client:<10} wall {medians['wall_s']:.2f} s   cpu {medians['cpu_s']:.2f} s   "
                  f"peak RSS {medians['peak_rss_mib']:.1f} MiB   ({medians['runs']} runs)")
    ratios = {}
    burrow = summary.get("burrow")
    if burrow is not None:
        print("\nBurrow / other (medians; below 1.0 means Burrow used less):")
        for client, other in summary.items():
            if client == "burrow":
                continue
            ratio = {key: round(burrow[key] / other[key], 2) if other[key] else None
                     for key in ("wall_s", "cpu_s", "peak_rss_mib")}
            ratios[client] = ratio
            print(f"  vs {client:<10} wall {ratio['wall_s']}x   cpu {ratio['cpu_s']}x   "
                  f"peak RSS {ratio['peak_rss_mib']}x")
    notes = ["the page cache is not dropped between runs (seeders read from a warm cache)",
             "seeders, tracker and client share the host's cores; cpu is the client's alone"]
    if any(run["client"] == "lt" for run in runs):
        notes.append("libtorrent 2.x writes through mmap, so its peak RSS includes file pages of the download")
    print("\nnotes:\n" + "\n".join(f"  - {note}" for note in notes))
    result = {"size_bytes": args.size, "runs": runs, "medians": summary, "burrow_ratios": ratios, "notes": notes}
    with open(args.json, "w") as handle:
        json.dump(result, handle, indent=2)
    print(f"\nJSON ({args.json}):")
    print(json.dumps(result, indent=2))
    return 0 if runs and all(run["verified"] and run["exit_status"] == 0 for run in runs) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    command = sub.add_parser("info-hash")
    command.add_argument("torrent")
    command = sub.add_parser("wait-seeders")
    command.add_argument("--tracker", required=True)
    command.add_argument("--info-hash", required=True)
    command.add_argument("--count", type=int, required=True)
    command.add_argument("--timeout", type=float, default=300)
    command = sub.add_parser("report")
    command.add_argument("--runs", required=True)
    command.add_argument("--size", type=int, required=True)
    command.add_argument("--json", required=True)
    args = parser.parse_args()
    return {"info-hash": info_hash, "wait-seeders": wait_seeders, "report": report}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
