#!/usr/bin/python3
"""Kill-switch benchmark: N link flaps (ip link set wg0 down / up) while a client downloads over wg0.

  bench_killswitch.py [--client burrow|lt|aria2] [--flaps 100] [--down 0.3] [--up 0.7] [--size-mib 384]

Reads Burrow's log lines (any stream):
  kill switch: ... closed <N> sockets in <X> µs     (also "us"; X may have decimals)
  ... resumed in <X> ms
and prints p50/p99 of the kill latency, sockets closed and time to resume. Independently of the
client's output it also measures, for every flap, how long after "link up" 64 KiB had arrived through
wg0 again (the lab's own view of resuming), and runs the clear-interface leak analysis at the end.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lab as L  # noqa: E402
from clients import CLIENT_KINDS, ClientRun  # noqa: E402

KILL_PATTERN = re.compile(r"kill switch:.*?closed (\d+) sockets? in (\d+(?:\.\d+)?) ?(?:µs|us)\b")
RESUME_PATTERN = re.compile(r"resumed in (\d+(?:\.\d+)?) ?ms\b")


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0-100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(name: str, unit: str, values: list[float]) -> str:
    if not values:
        return f"{name:34} no samples"
    return (f"{name:34} n={len(values):3}  p50={percentile(values, 50):10.1f} {unit}  "
            f"p99={percentile(values, 99):10.1f} {unit}  max={max(values):10.1f} {unit}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--client", choices=CLIENT_KINDS, default="burrow")
    parser.add_argument("--flaps", type=int, default=100)
    parser.add_argument("--down", type=float, default=0.3, help="seconds wg0 stays down per flap")
    parser.add_argument("--up", type=float, default=0.7, help="seconds wg0 stays up between flaps")
    parser.add_argument("--size-mib", type=int, default=384)
    parser.add_argument("--seeder-rate", type=int, default=1 * L.MIB, help="upload bytes/s per seeder")
    args = parser.parse_args()
    if os.environ.get("CI", "").lower() in ("1", "true", "yes") and args.client != "burrow":
        print("CI=true: the benchmark measures Burrow, not a stand-in", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="burrow-bench-killswitch-", dir=os.environ.get("LAB_WORK")))
    print(f"kill-switch bench: client {args.client}, {args.flaps} flaps ({args.down}s down, {args.up}s up), "
          f"work dir {work}", flush=True)
    with L.Lab(work, seeder_rate=args.seeder_rate) as lab:
        torrent = L.make_payload_torrent(work, "bench.bin", args.size_mib * L.MIB)
        lab.add_torrent(torrent)
        client = ClientRun(args.client, lab, torrent, work / "download", [L.WG_IF])
        client.wait_fraction(0.02, 60)
        flaps: list[tuple[float, float]] = []
        for index in range(args.flaps):
            if client.exited():
                print(f"client exited after {index} flaps (status {client.process.popen.returncode}); "
                      f"use a larger --size-mib or lower --seeder-rate", file=sys.stderr)
                break
            down = lab.link_down()
            time.sleep(args.down)
            up = lab.link_up(wait=False)
            flaps.append((down, up))
            time.sleep(args.up)
        client.stop()
        capture = lab.stop_capture()
        lab.stop_seeders()
        torrent.data_path.unlink(missing_ok=True)

    kill_us, sockets, resume_ms = [], [], []
    for line in client.lines:
        if match := KILL_PATTERN.search(line.text):
            sockets.append(float(match.group(1)))
            kill_us.append(float(match.group(2)))
        if match := RESUME_PATTERN.search(line.text):
            resume_ms.append(float(match.group(1)))
    traffic_ms = []
    never = 0
    for index, (_, up) in enumerate(flaps):
        until = flaps[index + 1][0] if index + 1 < len(flaps) else None
        delay = lab.meter.first_flow_after(up, L.WG_IF, threshold=64 * 1024, until=until)
        if delay is None:
            never += 1
        else:
            traffic_ms.append(delay * 1000)
    print(f"\n{len(flaps)} flaps done; client output in {client.log_path}")
    print(summary("kill latency (Burrow log)", "µs", kill_us))
    print(summary("sockets closed per kill (Burrow log)", "", sockets))
    print(summary("time to resume (Burrow log)", "ms", resume_ms))
    print(summary("64 KiB through wg0 after up (lab)", "ms", traffic_ms))
    print(f"{'flaps without 64 KiB before next down':34} {never} of {len(flaps)}")
    if len(kill_us) != len(flaps) and args.client == "burrow":
        print(f"note: {len(kill_us)} kill-switch lines for {len(flaps)} flaps", file=sys.stderr)
    print(f"clear interface: {'no leaks, no DNS' if not capture.leaks and not capture.dns_queries else capture.describe()}")
    if args.client == "burrow" and not kill_us:
        print("no 'kill switch: ... closed N sockets in X µs' lines in Burrow's output", file=sys.stderr)
        return 1
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)  # unwind so the Lab tears itself down
    signal.signal(signal.SIGINT, _interrupt)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
