#!/usr/bin/python3
"""Tunnel-guard scenarios: a client downloads a real torrent over wg0 (and tun0) in the lab while the
tunnel is killed, downed, readdressed or flapped. Every scenario builds a fresh lab and checks:

  clear-leaks     no client packet on the clear interface except the tunnels' encapsulated traffic
  seeders         no seeder ever saw an address other than the tunnel addresses (or the swarm's own)
  clear-dns       no DNS query on the clear interface (and none at the clear DNS server)
  resume          progress resumes within LAB_RESUME_LIMIT (2 s) of the tunnel being restored
  complete        the client exits 0 and the file is byte-identical (sha256) to the seeded one

With the firewall (the firewall_* scenarios, or --firewall for any scenario) `burrow firewall apply
--bind ...` runs in bl-client before the client starts, and at the end:

  firewall-status   `burrow firewall status` says "active and matching"; its leak counter is reported,
                    and must be > 0 where a scenario expects drops (firewall_unpinned_link_down)
  firewall-restore  `burrow firewall remove` leaves `nft list ruleset` exactly as before apply

The firewall_unpinned_* scenarios run Burrow with BURROW_TEST_UNBOUND_SOCKETS=1 (no interface pinning)
and route its marked packets through wg0 by an fwmark rule (Lab.route_marked_through_wireguard): when
the tunnel goes away, the orphaned sockets' FIN/retransmissions and late packets head for clear0, and
only the firewall stands in their way. clear-leaks must still find nothing on clear0.

Why only link_down must show drops: with the link down, wg0 keeps its address, so the orphaned sockets'
FIN retransmissions (0.2, 0.4, 0.8 s ...) keep heading for clear0 and are dropped every time (13 in the
lab; without the firewall the same run put 15 FINs on clear0). When wireguard-go dies or the address
is removed, the address disappears and the kernel refuses to route packets from it at all (EINVAL in
the route lookup), so only packets emitted in the short window before that reach the firewall: 0-3 per
run (without the firewall: 3 FINs, respectively 1 DNS query, on clear0). Their counter is reported.
Loopback drops (Burrow dialling its own tunnel address, learnt from the tracker) are counted apart and
are not leak attempts.

  test_lab.py [--client burrow|lt|aria2] [-k NAME ...] [--firewall] [--keep] [--list]

Environment: BURROW_BIN (default /work/main/.build/debug/burrow); CI=true forces --client burrow and
turns "unsupported by this client" into a failure; LAB_RESUME_LIMIT (2), LAB_STALL_TIMEOUT (30:
a client making no progress that long is stopped), LAB_OUTAGE (3: seconds a tunnel stays down),
LAB_SEEDER_RATE (upload bytes/s per seeder, 3 MiB), LAB_WORK (parent of the work directories).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lab as L  # noqa: E402
from clients import CLIENT_KINDS, ClientRun, ClientUnsupported, burrow_bin  # noqa: E402


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"environment variable {name}={raw!r} is not a number")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


RESUME_LIMIT = env_float("LAB_RESUME_LIMIT", 2.0)
STALL_TIMEOUT = env_float("LAB_STALL_TIMEOUT", 30.0)
OUTAGE = env_float("LAB_OUTAGE", 3.0)
SEEDER_RATE = int(env_float("LAB_SEEDER_RATE", 3 * L.MIB))
START_TIMEOUT = 60.0
ACTION_AT = 0.2  # fraction of the torrent downloaded before a scenario acts


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class ScenarioContext:
    lab: L.Lab
    client: ClientRun
    notes: dict = field(default_factory=dict)
    restore_interface: str = L.WG_IF


@dataclass
class Scenario:
    name: str
    description: str
    size_mib: int
    act: Callable[[ScenarioContext], float]  # returns the monotonic time the tunnel was restored
    bind: tuple[str, ...] = (L.WG_IF,)
    wireguard_at_start: bool = True
    firewall: bool = False          # `burrow firewall apply` in bl-client before the client starts
    unpinned_sockets: bool = False  # BURROW_TEST_UNBOUND_SOCKETS=1: only the firewall stops leaks
    expect_drops: bool = False      # the firewall's leak counter must end > 0


# ---------------------------------------------------------------------------------------------
# Actions

def act_tunnel_killed(ctx: ScenarioContext) -> float:
    ctx.client.wait_fraction(ACTION_AT, START_TIMEOUT)
    ctx.notes["down_at"] = ctx.lab.wg_kill()
    time.sleep(OUTAGE)
    return ctx.lab.wg_restart()


def act_link_down(ctx: ScenarioContext) -> float:
    ctx.client.wait_fraction(ACTION_AT, START_TIMEOUT)
    ctx.notes["down_at"] = ctx.lab.link_down()
    time.sleep(OUTAGE)
    return ctx.lab.link_up()


def act_address_removed(ctx: ScenarioContext) -> float:
    ctx.client.wait_fraction(ACTION_AT, START_TIMEOUT)
    ctx.notes["down_at"] = ctx.lab.addr_del()
    time.sleep(OUTAGE)
    return ctx.lab.addr_add()


def act_address_changed(ctx: ScenarioContext) -> float:
    ctx.client.wait_fraction(ACTION_AT, START_TIMEOUT)
    ctx.notes["down_at"] = ctx.lab.addr_del()
    time.sleep(OUTAGE)
    return ctx.lab.addr_add(address=L.WG_CLIENT_ALT_IP)


def act_client_before_tunnel(ctx: ScenarioContext) -> float:
    ctx.notes["down_at"] = ctx.client.started
    time.sleep(OUTAGE + 1)
    if ctx.client.exited():
        raise L.LabError(f"{ctx.client.kind} exited (status {ctx.client.process.popen.returncode}) while "
                         f"wg0 did not exist yet; it should wait for the tunnel\n{ctx.client.tail()}")
    ctx.notes["bytes_before_tunnel"] = ctx.client.done_bytes()
    return ctx.lab.wg_up()


def act_two_tunnels_one_killed(ctx: ScenarioContext) -> float:
    ctx.client.wait_fraction(ACTION_AT, START_TIMEOUT)
    down = ctx.notes["down_at"] = ctx.lab.wg_kill()
    time.sleep(OUTAGE)
    ctx.notes["bytes_during_outage_via_tun0"] = ctx.client.bytes_between(down, time.monotonic())
    return ctx.lab.wg_restart()


FLAPS = 50


def act_flaps(ctx: ScenarioContext) -> float:
    ctx.client.wait_fraction(0.1, START_TIMEOUT)
    ctx.notes["down_at"] = time.monotonic()
    restored = 0.0
    for _ in range(FLAPS):
        ctx.lab.link_down()
        time.sleep(0.1)
        restored = ctx.lab.link_up(wait=False)
        time.sleep(0.3)
    ctx.lab._wait_ping(L.WG_IF)  # the tunnel really works after the last flap
    ctx.notes["flap_seconds"] = round(restored - ctx.notes["down_at"], 1)
    return restored


SCENARIOS = [
    Scenario("tunnel_killed", "wireguard-go SIGKILLed mid-download, restarted after the outage", 96,
             act_tunnel_killed),
    Scenario("link_down", "ip link set wg0 down mid-download, up after the outage", 96, act_link_down),
    Scenario("address_removed", "ip addr del 10.66.0.2 from wg0, added back after the outage", 96,
             act_address_removed),
    Scenario("address_changed", "ip addr del 10.66.0.2, tunnel back as 10.66.0.3", 96, act_address_changed),
    Scenario("client_before_tunnel", "client started while wg0 does not exist; tunnel created later", 64,
             act_client_before_tunnel, wireguard_at_start=False),
    Scenario("two_tunnels_one_killed", "bound to wg0,tun0; wireguard-go killed mid-download", 96,
             act_two_tunnels_one_killed, bind=(L.WG_IF, L.OVPN_IF)),
    Scenario("flaps_50", f"{FLAPS} link down/up flaps (0.1 s down, 0.3 s up) in a row", 200, act_flaps),
    Scenario("firewall_unpinned_tunnel_killed", "firewall on, sockets NOT pinned; wireguard-go SIGKILLed", 96,
             act_tunnel_killed, firewall=True, unpinned_sockets=True),
    Scenario("firewall_unpinned_link_down", "firewall on, sockets NOT pinned; wg0 down during the outage", 96,
             act_link_down, firewall=True, unpinned_sockets=True, expect_drops=True),
    Scenario("firewall_unpinned_address_removed", "firewall on, sockets NOT pinned; wg0's address removed", 96,
             act_address_removed, firewall=True, unpinned_sockets=True),
    Scenario("firewall_pinned_tunnel_killed", "firewall on, normal pinning; wireguard-go SIGKILLed", 96,
             act_tunnel_killed, firewall=True),
    Scenario("firewall_pinned_two_tunnels", "firewall on (wg0,tun0), normal pinning; wireguard-go killed", 96,
             act_two_tunnels_one_killed, bind=(L.WG_IF, L.OVPN_IF), firewall=True),
]


# ---------------------------------------------------------------------------------------------
# The firewall layer (burrow firewall apply/status/remove inside bl-client)

def burrow_firewall(action: str, bind: tuple[str, ...] = ()) -> L.subprocess.CompletedProcess:
    argv = [burrow_bin(), "firewall", action] + (["--bind", ",".join(bind)] if bind else [])
    return L.ns_run(L.CLIENT_NS, argv, check=False)


def client_ruleset() -> str:
    return L.ns_run(L.CLIENT_NS, ["nft", "list", "ruleset"]).stdout


def firewall_drops(status_output: str) -> tuple[int, int] | None:
    """(packets, bytes) from the "leak attempts blocked: N packets, B bytes" line."""
    match = re.search(r"leak attempts blocked: (\d+) packets, (\d+) bytes", status_output)
    return (int(match.group(1)), int(match.group(2))) if match else None


def apply_firewall(scenario: Scenario, info: dict) -> str:
    """Applies the firewall in bl-client; returns the ruleset from before, for the restore check."""
    before = client_ruleset()
    applied = burrow_firewall("apply", scenario.bind)
    if applied.returncode != 0:
        raise L.LabError(f"burrow firewall apply --bind {','.join(scenario.bind)} failed "
                         f"(status {applied.returncode}): {(applied.stderr or applied.stdout).strip()}")
    info["firewall_applied"] = applied.stdout.strip().splitlines()[0]
    return before


def check_firewall(scenario: Scenario, before: str, info: dict) -> list[Check]:
    checks = []
    status = burrow_firewall("status", scenario.bind)
    drops = firewall_drops(status.stdout)
    info["firewall_status"] = status.stdout.strip().splitlines()
    info["firewall_drops"] = drops
    loopback = re.search(r"loopback packets dropped.*?: (\d+) packets, (\d+) bytes", status.stdout)
    info["firewall_loopback_drops"] = (int(loopback.group(1)), int(loopback.group(2))) if loopback else None
    matching = status.returncode == 0 and "active and matching" in status.stdout
    detail = f"{status.stdout.strip().splitlines()[0] if status.stdout.strip() else status.stderr.strip()}; " \
             f"dropped {drops[0]} packets, {drops[1]} bytes" if drops else f"no counter line: {status.stdout}{status.stderr}"
    if scenario.expect_drops:
        passed = matching and drops is not None and drops[0] > 0
        detail += " (must be > 0: unpinned sockets tried the clear route)"
    elif scenario.unpinned_sockets:
        passed = matching and drops is not None
        detail += " (> 0 not required: once wg0's address is gone the kernel does not route its packets at all)"
    else:
        passed = matching and drops is not None
    checks.append(Check("firewall-status", passed, detail))
    removed = burrow_firewall("remove")
    after = client_ruleset()
    restored = removed.returncode == 0 and after == before
    checks.append(Check("firewall-restore", restored,
                        "nft list ruleset identical to before apply" if restored else
                        f"remove status {removed.returncode} {removed.stderr.strip()}; before:\n{before}\nafter:\n{after}"))
    return checks


# ---------------------------------------------------------------------------------------------
# Running one scenario

def run_scenario(scenario: Scenario, kind: str, root: Path, keep: bool) -> tuple[list[Check], dict]:
    work = root / scenario.name
    work.mkdir(parents=True, exist_ok=True)
    info: dict = {"client": kind, "work_dir": str(work)}
    checks: list[Check] = []
    if scenario.firewall and kind != "burrow":
        raise ClientUnsupported("the firewall scenarios need Burrow (its SO_MARK and `burrow firewall`)")
    try:
        with L.Lab(work, wireguard=scenario.wireguard_at_start, seeder_rate=SEEDER_RATE) as lab:
            torrent = L.make_payload_torrent(work, f"{scenario.name}.bin", scenario.size_mib * L.MIB)
            lab.add_torrent(torrent)
            ruleset_before = apply_firewall(scenario, info) if scenario.firewall else None
            env = None
            if scenario.unpinned_sockets:
                lab.route_marked_through_wireguard()
                env = {"BURROW_TEST_UNBOUND_SOCKETS": "1"}
            client = ClientRun(kind, lab, torrent, work / "download", list(scenario.bind), env=env)
            ctx = ScenarioContext(lab, client)
            restored = scenario.act(ctx)
            info["action_at_bytes"] = client.bytes_between(0, ctx.notes["down_at"])
            ending = client.wait_finished(STALL_TIMEOUT, overall_timeout=300)
            info["ending"] = ending
            info["seconds"] = round(time.monotonic() - client.started, 1)
            capture = lab.stop_capture()
            info.update({k: v for k, v in ctx.notes.items() if k != "down_at"})

            # resume
            by_progress = client.progress_resume_after(restored)
            by_log = client.event_after(restored, ("tunnel up", "resumed"))
            by_traffic = lab.meter.first_flow_after(restored, scenario.bind[0] if len(scenario.bind) == 1 else L.WG_IF)
            info["resume_progress_s"] = None if by_progress is None else round(by_progress, 2)
            info["resume_log_s"] = None if by_log is None else round(by_log[0], 2)
            info["resume_tunnel_traffic_s"] = None if by_traffic is None else round(by_traffic, 2)
            candidates = [value for value in (by_progress, by_log and by_log[0], by_traffic) if value is not None]
            if by_progress is None:
                checks.append(Check("resume", False, f"progress never increased after the tunnel was restored "
                                    f"({ending}); tunnel traffic after restore: {info['resume_tunnel_traffic_s']}"))
            else:
                best = min(candidates)
                checks.append(Check("resume", best <= RESUME_LIMIT,
                                    f"{best:.2f}s (progress line {by_progress:.2f}s, log line "
                                    f"{info['resume_log_s']}, 256 KiB through the tunnel "
                                    f"{info['resume_tunnel_traffic_s']}; limit {RESUME_LIMIT}s)"))

            # leaks on the clear wire
            info["capture"] = dict(capture.counts)
            checks.append(Check("clear-leaks", not capture.leaks,
                                "none" if not capture.leaks else capture.describe()))
            clear_server = lab.clear_dns_queries()
            dns_ok = not capture.dns_queries and not clear_server
            detail = "none" if dns_ok else (
                f"{len(capture.dns_queries)} DNS queries on clear0, {len(clear_server)} at the clear DNS server: "
                + "; ".join([p.summary for p in capture.dns_queries[:5]] + clear_server[:3]))
            checks.append(Check("clear-dns", dns_ok, detail))

            # what the seeders saw
            seen = lab.peers_seen(torrent)
            addresses = set().union(*seen.values()) if seen else set()
            foreign = sorted(addresses - L.TUNNEL_ADDRESSES - set(L.SEEDER_IPS))
            info["seeders_saw"] = sorted(addresses - set(L.SEEDER_IPS))
            checks.append(Check("seeders", not foreign,
                                f"saw {info['seeders_saw']}" + (f"; NOT tunnel addresses: {foreign}" if foreign else "")))

            # the file
            path = client.downloaded_path()
            exit_ok = client.process.popen.returncode == 0
            if path.is_file() and path.stat().st_size == torrent.size and L.sha256_file(path) == torrent.sha256:
                checks.append(Check("complete", exit_ok, f"byte-identical; {ending}"))
            else:
                size = path.stat().st_size if path.exists() else None
                checks.append(Check("complete", False, f"{path} is not the seeded file (size {size} of "
                                    f"{torrent.size}, sha256 differs); {ending}"))
            info["events"] = [f"{when - client.started:.3f}s {name}" for when, name, _ in client.events][:20]
            if ruleset_before is not None:
                checks += check_firewall(scenario, ruleset_before, info)
            lab.stop_seeders()
    finally:
        # The payloads are large; whatever happened, keep only logs and captures unless --keep.
        if not keep:
            shutil.rmtree(work / "data", ignore_errors=True)
            shutil.rmtree(work / "download", ignore_errors=True)
    return checks, info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--client", choices=CLIENT_KINDS, default=None,
                        help="burrow (default, BURROW_BIN), lt (python3-libtorrent) or aria2 stand-in")
    parser.add_argument("-k", action="append", default=[], help="only scenarios whose name contains this")
    parser.add_argument("--keep", action="store_true", help="keep payloads and downloads")
    parser.add_argument("--firewall", action="store_true",
                        help="apply `burrow firewall` in bl-client before the client starts, in every scenario")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    if args.list:
        for scenario in SCENARIOS:
            print(f"{scenario.name:34} {scenario.size_mib:4} MiB  {scenario.description}")
        return 0
    kind = args.client or "burrow"
    if in_ci() and kind != "burrow":
        print(f"CI=true: the tunnel lab must test Burrow, not the {kind} stand-in", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("the tunnel lab needs root (network namespaces)", file=sys.stderr)
        return 2
    if kind == "burrow" and not os.access(burrow_bin(), os.X_OK):
        print(f"FAIL: BURROW_BIN {burrow_bin()} is not an executable file; build it (swift build --product "
              f"burrow) or point BURROW_BIN at it" + ("" if in_ci() else ", or run a stand-in: --client lt|aria2"),
              file=sys.stderr)
        return 1
    selected = [s for s in SCENARIOS if not args.k or any(k in s.name for k in args.k)]
    if args.firewall:
        selected = [dataclasses.replace(s, firewall=True) for s in selected]
    if not selected:
        print(f"no scenario matches {args.k}", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix=f"burrow-lab-{kind}-", dir=os.environ.get("LAB_WORK")))
    print(f"tunnel lab: client {kind}, {len(selected)} scenarios, work dir {root}", flush=True)
    results = {}
    failed = skipped = 0
    for scenario in selected:
        print(f"\n=== {scenario.name}: {scenario.description}", flush=True)
        started = time.monotonic()
        try:
            checks, info = run_scenario(scenario, kind, root, args.keep)
        except ClientUnsupported as reason:
            if in_ci():
                print(f"FAIL {scenario.name}: client cannot run it: {reason}")
                failed += 1
            else:
                print(f"SKIP {scenario.name} ({kind}): {reason}")
                skipped += 1
            results[scenario.name] = {"skipped": str(reason)}
            continue
        except L.LabError as error:
            print(f"FAIL {scenario.name}: {error}")
            results[scenario.name] = {"error": str(error)}
            failed += 1
            continue
        except Exception:
            print(f"FAIL {scenario.name}: harness error\n{traceback.format_exc()}")
            results[scenario.name] = {"error": traceback.format_exc()}
            failed += 1
            continue
        passed = all(check.passed for check in checks)
        failed += 0 if passed else 1
        for check in checks:
            print(f"  {'ok  ' if check.passed else 'FAIL'} {check.name:12} {check.detail}")
        shown = {k: v for k, v in info.items() if k not in ("work_dir",)}
        print(f"  info: {json.dumps(shown)}")
        print(f"{'PASS' if passed else 'FAIL'} {scenario.name} ({time.monotonic() - started:.0f}s)", flush=True)
        results[scenario.name] = {"passed": passed, "checks": [c.__dict__ for c in checks], "info": info}
    (root / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\n{len(selected) - failed - skipped}/{len(selected)} scenarios passed, {failed} failed, "
          f"{skipped} skipped (client {kind}); results in {root / 'results.json'}")
    return 1 if failed else 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    # SIGTERM (e.g. from run.sh's timeout) unwinds like Ctrl-C, so every Lab tears itself down.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # Lab.__exit__ has already torn the namespaces down on the way out.
        print("interrupted", file=sys.stderr)
        sys.exit(130)
