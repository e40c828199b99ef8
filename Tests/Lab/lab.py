#!/usr/bin/python3
"""Burrow's tunnel lab: three network namespaces, two VPN tunnels, a tracker, DNS and seeders.

    bl-client  clear0 10.200.1.2/24 (default route)   wg0 10.66.0.2/24 (wireguard-go)
               tun0 10.67.0.2 p2p (openvpn, static key)   resolv.conf -> 10.200.1.1 (the "clear" DNS)
    bl-server  toclient0 10.200.1.1/24   toswarm0 10.77.0.1/24   wgsrv0 10.66.0.1/24   tunsrv0 10.67.0.1
               forwards between all of them, WITHOUT NAT; dnsmasq on 10.200.1.1 logs every query
    bl-swarm   swarm0 10.77.0.0/24: opentracker .10 (HTTP+UDP 6969), dnsmasq .53 (tracker.lab -> .10),
               python3-libtorrent seeders .21 .22 .23 (TCP 6881) that log every peer address

The clear network is routed to the swarm on purpose: a socket that escapes the tunnels really reaches
the tracker and the seeders, so a leak shows up in the clear-interface capture and in the seeders' peer
logs instead of being blocked by accident. In bl-client a socket bound to wg0/tun0 (SO_BINDTODEVICE)
or to a tunnel address is routed through that tunnel by policy rules (tables 166/167); everything else
takes the default route over clear0.

Library: `with Lab(work_dir) as lab:` builds everything and tears it down on exit, even on failure.
CLI (used by lab.sh):  lab.py up [--dir D] | down | status
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = "/usr/bin/python3"  # Debian's python: the one with the libtorrent bindings
STATE_DIR = Path("/run/burrow-lab")
STATE_FILE = STATE_DIR / "state.json"

# Namespaces (all start with the prefix, so a stale lab is easy to find and remove).
PREFIX = "bl-"
CLIENT_NS, SERVER_NS, SWARM_NS = "bl-client", "bl-server", "bl-swarm"
NAMESPACES = (CLIENT_NS, SERVER_NS, SWARM_NS)

# Addresses.
CLIENT_CLEAR, SERVER_CLEAR = "10.200.1.2", "10.200.1.1"
CLEAR_PREFIX = 24
CLIENT_IF_CLEAR, SERVER_IF_CLIENT, SERVER_IF_SWARM, SWARM_IF = "clear0", "toclient0", "toswarm0", "swarm0"
SERVER_SWARM_SIDE = "10.77.0.1"
TRACKER_IP, SWARM_DNS_IP = "10.77.0.10", "10.77.0.53"
SEEDER_IPS = ("10.77.0.21", "10.77.0.22", "10.77.0.23")
TRACKER_PORT, SEEDER_PORT = 6969, 6881
TRACKER_HOST = "tracker.lab"
ANNOUNCE_URL = f"http://{TRACKER_HOST}:{TRACKER_PORT}/announce"

WG_IF, WG_SERVER_IF = "wg0", "wgsrv0"  # distinct names: wireguard-go's UAPI sockets share /var/run/wireguard
WG_CLIENT_IP, WG_CLIENT_ALT_IP, WG_SERVER_IP, WG_PREFIX = "10.66.0.2", "10.66.0.3", "10.66.0.1", 24
WG_PORT = 51820
WG_TABLE = 166
OVPN_IF, OVPN_SERVER_IF = "tun0", "tunsrv0"
OVPN_CLIENT_IP, OVPN_SERVER_IP = "10.67.0.2", "10.67.0.1"
OVPN_PORT = 1194
OVPN_TABLE = 167
# The SO_MARK Burrow puts on its sockets as root (Sources/Sockets: SocketMark.burrow); the firewall matches it.
BURROW_MARK = 0x42525700
MARK_RULE_PREF = 1700  # after the oif/from rules of both tunnels (1660-1671)
OVPN_TUN_MTU = 1380  # keeps the encapsulated UDP under the veth MTU (no outer fragments)

# Every address the client may legitimately show to the swarm.
TUNNEL_ADDRESSES = frozenset({WG_CLIENT_IP, WG_CLIENT_ALT_IP, OVPN_CLIENT_IP})
# UDP destination ports (at SERVER_CLEAR) of the tunnels' own encapsulated traffic.
TUNNEL_PORTS = frozenset({WG_PORT, OVPN_PORT})

MIB = 1024 * 1024
PIECE_LENGTH_EXPONENT = 18  # 256 KiB pieces


class LabError(RuntimeError):
    """A lab step failed; the message says which and why (with the relevant output)."""


def log(message: str) -> None:
    print(f"[lab {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Commands

def run(argv: list[str], *, check: bool = True, timeout: float = 20, what: str | None = None,
        input_text: str | None = None) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input_text)
    except subprocess.TimeoutExpired:
        raise LabError(f"{what or ' '.join(argv)}: no answer within {timeout:.0f}s")
    except OSError as error:
        raise LabError(f"{what or ' '.join(argv)}: could not run {argv[0]}: {error}")
    if check and result.returncode != 0:
        raise LabError(f"{what or ' '.join(argv)} failed with status {result.returncode}: "
                       f"{(result.stderr or result.stdout).strip()}")
    return result


def in_ns(ns: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def ns_run(ns: str, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return run(in_ns(ns, argv), **kwargs)


def ip(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(["ip", "-n", ns, *args], check=check)


def sysctl(ns: str, key: str, value: str) -> None:
    ns_run(ns, ["sysctl", "-q", "-w", f"{key}={value}"])


# ---------------------------------------------------------------------------------------------
# Processes

@dataclass
class LabProcess:
    """A process the lab started inside a namespace. It leads its own process group, so stopping
    it reaches anything it forked; `ip netns exec` execs the command, so the pid is the program's."""
    name: str
    argv: list[str]
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError as error:
            return f"--- {self.name}: log unreadable ({error})"
        return f"--- last {min(lines, len(text))} lines of {self.name} ({self.log_path}):\n" + \
            "\n".join(text[-lines:])

    def signal(self, signum: int) -> None:
        if self.exited():
            return
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass

    def stop(self, grace: float = 3.0) -> None:
        if self.exited():
            return
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(timeout=5)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no cleanup by the process."""
        self.signal(signal.SIGKILL)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            raise LabError(f"{self.name} (pid {self.pid}) survived SIGKILL for 5s")


def wait_until(predicate, timeout: float, what: str, poll: float = 0.05,
               watched: LabProcess | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if watched is not None and watched.exited():
            raise LabError(f"{what}: {watched.name} exited with status {watched.popen.returncode}\n"
                           f"{watched.tail()}")
        time.sleep(poll)
    detail = f"\n{watched.tail()}" if watched is not None else ""
    raise LabError(f"{what}: not within {timeout:.0f}s{detail}")


def log_contains(path: Path, needle: str) -> bool:
    try:
        return needle in path.read_text(errors="replace")
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# Payloads and torrents

@dataclass
class LabTorrent:
    path: Path          # the .torrent
    data_path: Path     # the seeded file (single-file torrent)
    name: str
    size: int
    sha256: str
    info_hash_hex: str


def make_payload_torrent(directory: Path, name: str, size: int) -> LabTorrent:
    """Random content of `size` bytes in directory/data/<name> and a v1 torrent announcing to
    tracker.lab (so a client must resolve a name before it can find the seeders)."""
    data_dir = directory / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    data_path = data_dir / name
    digest = hashlib.sha256()
    with open(data_path, "wb") as handle:
        remaining = size
        while remaining > 0:
            chunk = os.urandom(min(remaining, 4 * MIB))
            digest.update(chunk)
            handle.write(chunk)
            remaining -= len(chunk)
    torrent_path = directory / f"{name}.torrent"
    torrent_path.unlink(missing_ok=True)
    run(["mktorrent", "-a", ANNOUNCE_URL, "-l", str(PIECE_LENGTH_EXPONENT), "-o", str(torrent_path),
         str(data_path)], timeout=120, what="mktorrent")
    import libtorrent as lt  # Debian's python only; imported late so --help works anywhere
    info = lt.torrent_info(str(torrent_path))
    return LabTorrent(torrent_path, data_path, name, size, digest.hexdigest(), str(info.info_hashes().v1))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(4 * MIB), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Capture analysis (pcap written by tcpdump -w on the client's clear interface, outbound only)

@dataclass
class CapturedPacket:
    time: float
    kind: str      # tunnel | tunnel-icmp | dns | leak | link-layer
    summary: str


@dataclass
class CaptureReport:
    packets: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    leaks: list[CapturedPacket] = field(default_factory=list)
    dns_queries: list[CapturedPacket] = field(default_factory=list)

    def describe(self, limit: int = 15) -> str:
        lines = [f"{self.packets} outbound packets on {CLIENT_IF_CLEAR}: "
                 + ", ".join(f"{kind} {count}" for kind, count in sorted(self.counts.items()))]
        for title, items in (("leaks", self.leaks), ("DNS queries", self.dns_queries)):
            if items:
                lines.append(f"  {title} ({len(items)}), first {min(limit, len(items))}:")
                lines += [f"    {packet.time:.6f} {packet.summary}" for packet in items[:limit]]
        return "\n".join(lines)


def _dns_question(payload: bytes) -> str:
    """'A tracker.lab' from a DNS message, or '?' when it does not parse."""
    try:
        at, labels = 12, []
        while payload[at]:
            length = payload[at]
            labels.append(payload[at + 1:at + 1 + length].decode("ascii", "replace"))
            at += 1 + length
        qtype = struct.unpack("!H", payload[at + 1:at + 3])[0]
        return f"{ {1: 'A', 28: 'AAAA', 33: 'SRV', 12: 'PTR'}.get(qtype, qtype)} {'.'.join(labels)}"
    except (IndexError, struct.error):
        return "?"


def _ipv4(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def analyze_capture(pcap: Path) -> CaptureReport:
    """Classifies every outbound frame of the client's clear interface.

    Allowed: the tunnels' encapsulated traffic (UDP from CLIENT_CLEAR to SERVER_CLEAR:51820/1194,
    including later fragments of such datagrams), ICMP errors the client's kernel sends about tunnel
    datagrams (e.g. port unreachable after the tunnel process died), and non-IP frames (ARP).
    A DNS query (to port 53, UDP or TCP) is reported as `dns`. Anything else is a `leak`, whatever
    its source address: a packet with a tunnel source address on the clear wire is a leak too."""
    report = CaptureReport()
    data = pcap.read_bytes()
    if len(data) < 24:
        raise LabError(f"capture {pcap} is truncated ({len(data)} bytes): tcpdump never wrote its header")
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        endian = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        endian = ">"
    else:
        raise LabError(f"capture {pcap} is not a pcap file (magic {magic:#x})")
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise LabError(f"capture {pcap}: link type {linktype}, expected Ethernet (1)")
    tunnel_fragments: set[tuple] = set()
    at = 24
    while at + 16 <= len(data):
        seconds, fraction, captured, _ = struct.unpack(endian + "IIII", data[at:at + 16])
        frame = data[at + 16:at + 16 + captured]
        at += 16 + captured
        when = seconds + fraction / (1e9 if nano else 1e6)
        kind, summary = _classify(frame, tunnel_fragments)
        report.packets += 1
        report.counts[kind] = report.counts.get(kind, 0) + 1
        packet = CapturedPacket(when, kind, summary)
        if kind == "leak":
            report.leaks.append(packet)
        elif kind == "dns":
            report.dns_queries.append(packet)
    return report


def _classify(frame: bytes, tunnel_fragments: set[tuple]) -> tuple[str, str]:
    if len(frame) < 14:
        return "link-layer", "runt frame"
    ethertype = struct.unpack("!H", frame[12:14])[0]
    if ethertype == 0x86DD:
        payload = frame[14:]
        if len(payload) < 40:
            return "leak", "truncated IPv6"
        src = ":".join(f"{payload[8 + i]:02x}{payload[9 + i]:02x}" for i in range(0, 16, 2))
        dst = ":".join(f"{payload[24 + i]:02x}{payload[25 + i]:02x}" for i in range(0, 16, 2))
        return "leak", f"IPv6 {src} > {dst} next-header {payload[6]}"
    if ethertype != 0x0800:
        return "link-layer", f"ethertype {ethertype:#06x}"
    ip = frame[14:]
    if len(ip) < 20:
        return "leak", "truncated IPv4"
    header = (ip[0] & 0x0F) * 4
    proto = ip[9]
    src, dst = _ipv4(ip[12:16]), _ipv4(ip[16:20])
    ident = struct.unpack("!H", ip[4:6])[0]
    flags_offset = struct.unpack("!H", ip[6:8])[0]
    more_fragments, offset = bool(flags_offset & 0x2000), flags_offset & 0x1FFF
    key = (src, dst, proto, ident)
    if offset:
        if key in tunnel_fragments:
            return "tunnel", f"fragment of tunnel datagram {src} > {dst} id {ident}"
        return "leak", f"IPv4 fragment {src} > {dst} proto {proto} id {ident} offset {offset * 8}"
    body = ip[header:]
    if proto in (6, 17) and len(body) >= 4:
        sport, dport = struct.unpack("!HH", body[:4])
        name = "TCP" if proto == 6 else "UDP"
        if proto == 17 and src == CLIENT_CLEAR and dst == SERVER_CLEAR and dport in TUNNEL_PORTS:
            if more_fragments:
                tunnel_fragments.add(key)
            return "tunnel", f"UDP {src}:{sport} > {dst}:{dport}"
        if dport == 53:
            question = _dns_question(body[8:]) if proto == 17 else "(TCP)"
            return "dns", f"DNS {name} {src}:{sport} > {dst}:53 {question}"
        flags = ""
        if proto == 6 and len(body) >= 14:
            bits = body[13]
            flags = " [" + "".join(c for c, bit in zip("FSRPAU", (1, 2, 4, 8, 16, 32)) if bits & bit) + "]"
        return "leak", f"{name} {src}:{sport} > {dst}:{dport}{flags} len {len(ip)}"
    if proto == 1 and len(body) >= 8:
        icmp_type, code = body[0], body[1]
        quoted = body[8:]
        if icmp_type in (3, 11) and len(quoted) >= 28:
            quoted_header = (quoted[0] & 0x0F) * 4
            quoted_src, quoted_proto = _ipv4(quoted[12:16]), quoted[9]
            if quoted_proto == 17 and len(quoted) >= quoted_header + 4:
                quoted_sport = struct.unpack("!H", quoted[quoted_header:quoted_header + 2])[0]
                if quoted_src == SERVER_CLEAR and quoted_sport in TUNNEL_PORTS:
                    return "tunnel-icmp", f"ICMP {icmp_type}/{code} about tunnel datagram from {quoted_src}:{quoted_sport}"
        return "leak", f"ICMP {icmp_type}/{code} {src} > {dst}"
    return "leak", f"IPv4 proto {proto} {src} > {dst} len {len(ip)}"


# ---------------------------------------------------------------------------------------------
# Interface counters (read through /proc/<pid>/net/dev of a process living in the namespace)

def read_net_dev(anchor_pid: int) -> dict[str, tuple[int, int]]:
    """{interface: (rx_bytes, tx_bytes)} as seen inside the anchor process's namespace."""
    counters = {}
    with open(f"/proc/{anchor_pid}/net/dev") as handle:
        for line in handle.readlines()[2:]:
            name, _, numbers = line.partition(":")
            fields = numbers.split()
            counters[name.strip()] = (int(fields[0]), int(fields[8]))
    return counters


class TrafficMeter:
    """Samples the client's tunnel interfaces every 50 ms and keeps cumulative received bytes per
    interface (counters restart when wireguard-go recreates wg0; resets are folded in), so a test can
    ask when data started flowing through a tunnel again, independently of the client's output."""

    def __init__(self, anchor_pid: int, interfaces: tuple[str, ...] = (WG_IF, OVPN_IF)) -> None:
        self.anchor_pid = anchor_pid
        self.interfaces = interfaces
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._last_raw: dict[str, int] = {}
        self._total: dict[str, int] = {name: 0 for name in interfaces}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="traffic-meter", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            try:
                counters = read_net_dev(self.anchor_pid)
            except OSError:
                return
            now = time.monotonic()
            with self._lock:
                for name in self.interfaces:
                    raw = counters.get(name, (None, None))[0]
                    if raw is None:
                        self._last_raw.pop(name, None)
                        continue
                    previous = self._last_raw.get(name, 0)
                    self._total[name] += raw - previous if raw >= previous else raw
                    self._last_raw[name] = raw
                self.samples.append((now, dict(self._total)))

    def total(self, interface: str) -> int:
        with self._lock:
            return self._total.get(interface, 0)

    def first_flow_after(self, since: float, interface: str | None = None, threshold: int = 256 * 1024,
                         until: float | None = None) -> float | None:
        """Seconds from `since` until `threshold` bytes had arrived through the interface (or through
        all tunnels together), counted from the last sample at or before `since`; None if never."""
        with self._lock:
            samples = list(self.samples)

        def received(totals: dict[str, int]) -> int:
            return totals.get(interface, 0) if interface else sum(totals.values())

        base = None
        for when, totals in samples:
            if when <= since:
                base = received(totals)
                continue
            if base is None:
                base = received(totals)
                continue
            if until is not None and when > until:
                return None
            if received(totals) - base >= threshold:
                return when - since
        return None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


# ---------------------------------------------------------------------------------------------
# The lab

class Lab:
    """Builds the namespaces, tunnels, DNS servers and tracker on enter; tears all of it down on exit.

    Seeders are per torrent: `add_torrent` whitelists it at the tracker and starts one seeder per
    SEEDER_IPS address, throttled to `seeder_rate` bytes/s each."""

    def __init__(self, work_dir: Path, *, wireguard: bool = True, openvpn: bool = True,
                 capture: bool = True, seeder_rate: int = 3 * MIB) -> None:
        self.work_dir = work_dir
        self.log_dir = work_dir / "logs"
        self.start_wireguard = wireguard
        self.start_openvpn = openvpn
        self.capture_enabled = capture
        self.seeder_rate = seeder_rate
        self.processes: list[LabProcess] = []
        self.wireguard: LabProcess | None = None
        self.openvpn: LabProcess | None = None
        self.tcpdump: LabProcess | None = None
        self.client_anchor: LabProcess | None = None
        self.seeders: list[LabProcess] = []
        self.tracker: LabProcess | None = None
        self.whitelist: list[str] = []
        self.pcap_path = work_dir / "clear0.pcap"
        self.clear_dns_log = work_dir / "clear-dnsmasq.queries.log"
        self.wg_client_address = WG_CLIENT_IP
        self.meter: TrafficMeter | None = None
        self._keys: dict[str, str] = {}

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> "Lab":
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    def up(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        # One lab at a time: the namespace names are fixed, and building one removes a stale one.
        self._lab_lock = open(STATE_DIR / "lock", "w")
        try:
            fcntl.flock(self._lab_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lab_lock.close()
            self._lab_lock = None
            raise LabError("another tunnel lab is running in this machine (lock /run/burrow-lab/lock); "
                           "wait for it, or stop it with Tests/Lab/lab.sh down")
        remove_stale_lab()
        self._save_state()
        self._build_network()
        self._start_anchors()
        self._start_dns()
        self._start_tracker()
        self._make_keys()
        self._start_tunnel_servers()
        if self.start_wireguard:
            self.wg_up()
        if self.start_openvpn:
            self.openvpn_start()
        if self.capture_enabled:
            self.start_capture()
        self.meter = TrafficMeter(self.client_anchor.pid)
        log(f"lab up (logs in {self.log_dir})")

    def down(self) -> None:
        if self.meter is not None:
            self.meter.stop()
        for process in reversed(self.processes):
            try:
                process.stop()
            except Exception as error:  # keep stopping the rest
                log(f"warning: could not stop {process.name} (pid {process.pid}): {error}")
        if getattr(self, "_lab_lock", None) is not None:
            remove_stale_lab()
            self._lab_lock.close()
            self._lab_lock = None

    def _save_state(self) -> None:
        state = {"work_dir": str(self.work_dir), "pids": [p.pid for p in self.processes if not p.exited()]}
        STATE_FILE.write_text(json.dumps(state))

    def spawn(self, ns: str, name: str, argv: list[str], env: dict[str, str] | None = None) -> LabProcess:
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "ab") as log_file:
            try:
                popen = subprocess.Popen(in_ns(ns, argv), stdin=subprocess.DEVNULL, stdout=log_file,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         env=env)
            except OSError as error:
                raise LabError(f"could not start {name}: {error}")
        process = LabProcess(name, argv, popen, log_path)
        self.processes.append(process)
        self._save_state()
        return process

    # -- network --------------------------------------------------------------------------------

    def _build_network(self) -> None:
        for ns in NAMESPACES:
            run(["ip", "netns", "add", ns])
            ip(ns, "link", "set", "lo", "up")
            # No IPv6 at all: it would only add autoconfiguration chatter to the clear capture.
            sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1")
            sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1")
            sysctl(ns, "net.ipv4.conf.all.rp_filter", "0")
            sysctl(ns, "net.ipv4.conf.default.rp_filter", "0")
        ip(CLIENT_NS, "link", "add", CLIENT_IF_CLEAR, "type", "veth", "peer", "name", SERVER_IF_CLIENT,
           "netns", SERVER_NS)
        ip(SERVER_NS, "link", "add", SERVER_IF_SWARM, "type", "veth", "peer", "name", SWARM_IF,
           "netns", SWARM_NS)
        ip(CLIENT_NS, "addr", "add", f"{CLIENT_CLEAR}/{CLEAR_PREFIX}", "dev", CLIENT_IF_CLEAR)
        ip(CLIENT_NS, "link", "set", CLIENT_IF_CLEAR, "up")
        ip(CLIENT_NS, "route", "add", "default", "via", SERVER_CLEAR, "dev", CLIENT_IF_CLEAR)
        ip(SERVER_NS, "addr", "add", f"{SERVER_CLEAR}/{CLEAR_PREFIX}", "dev", SERVER_IF_CLIENT)
        ip(SERVER_NS, "addr", "add", f"{SERVER_SWARM_SIDE}/24", "dev", SERVER_IF_SWARM)
        ip(SERVER_NS, "link", "set", SERVER_IF_CLIENT, "up")
        ip(SERVER_NS, "link", "set", SERVER_IF_SWARM, "up")
        sysctl(SERVER_NS, "net.ipv4.ip_forward", "1")
        for address in (TRACKER_IP, SWARM_DNS_IP, *SEEDER_IPS):
            ip(SWARM_NS, "addr", "add", f"{address}/24", "dev", SWARM_IF)
        ip(SWARM_NS, "link", "set", SWARM_IF, "up")
        ip(SWARM_NS, "route", "add", "default", "via", SERVER_SWARM_SIDE)
        # Policy routing in the client: sockets bound to a tunnel (device or address) use that tunnel.
        for table, device, network in ((WG_TABLE, WG_IF, "10.66.0.0/24"), (OVPN_TABLE, OVPN_IF, "10.67.0.0/24")):
            ip(CLIENT_NS, "rule", "add", "pref", str(table * 10), "oif", device, "lookup", str(table))
            ip(CLIENT_NS, "rule", "add", "pref", str(table * 10 + 1), "from", network, "lookup", str(table))
        # The system resolver of the client namespace is the clear DNS server: any use of it is a leak.
        etc = Path("/etc/netns") / CLIENT_NS
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(f"nameserver {SERVER_CLEAR}\noptions timeout:1 attempts:1\n")
        # The seeders resolve tracker.lab through the swarm's own DNS server.
        etc = Path("/etc/netns") / SWARM_NS
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(f"nameserver {SWARM_DNS_IP}\noptions timeout:1 attempts:2\n")

    def _start_anchors(self) -> None:
        # A do-nothing process per namespace: its /proc/<pid>/net/dev shows that namespace's counters.
        self.client_anchor = self.spawn(CLIENT_NS, "anchor-client", ["sleep", "infinity"])

    def _start_dns(self) -> None:
        common = ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll",
                  "--bind-interfaces", "--log-queries", "--conf-file=/dev/null", "--user=root",
                  "--cache-size=0"]
        clear = self.spawn(SERVER_NS, "dnsmasq-clear", [
            *common, f"--listen-address={SERVER_CLEAR}", f"--address=/{TRACKER_HOST}/{TRACKER_IP}",
            f"--log-facility={self.clear_dns_log}", f"--pid-file={self.work_dir / 'dnsmasq-clear.pid'}"])
        swarm = self.spawn(SWARM_NS, "dnsmasq-swarm", [
            *common, f"--listen-address={SWARM_DNS_IP}", f"--address=/{TRACKER_HOST}/{TRACKER_IP}",
            f"--log-facility={self.log_dir / 'dnsmasq-swarm.queries.log'}",
            f"--pid-file={self.work_dir / 'dnsmasq-swarm.pid'}"])
        for process, ns, address in ((clear, SERVER_NS, SERVER_CLEAR), (swarm, SWARM_NS, SWARM_DNS_IP)):
            wait_until(lambda: self._listening(ns, address, 53, udp=True), 10,
                       f"{process.name} listening on {address}:53", watched=process)

    @staticmethod
    def _listening(ns: str, address: str, port: int, udp: bool = False) -> bool:
        result = ns_run(ns, ["ss", "-Hln" + ("u" if udp else "t"), f"src {address}:{port}"], check=False)
        return bool(result.stdout.strip())

    def clear_dns_queries(self) -> list[str]:
        """Every query the clear DNS server (the client's system resolver) received."""
        try:
            lines = self.clear_dns_log.read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [line for line in lines if "query[" in line]

    # -- tracker and seeders --------------------------------------------------------------------

    def _start_tracker(self) -> None:
        tracker_dir = self.work_dir / "tracker"
        tracker_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(tracker_dir, 0o755)
        (tracker_dir / "whitelist").write_text("".join(f"{h}\n" for h in self.whitelist))
        if self.tracker is not None:
            self.tracker.stop()
        # opentracker chroots into -d before reading the whitelist: the path is relative to it.
        self.tracker = self.spawn(SWARM_NS, "opentracker", [
            "opentracker", "-i", TRACKER_IP, "-p", str(TRACKER_PORT), "-P", str(TRACKER_PORT),
            "-d", str(tracker_dir), "-w", "whitelist"])
        wait_until(lambda: self._listening(SWARM_NS, TRACKER_IP, TRACKER_PORT), 10,
                   "opentracker listening", watched=self.tracker)

    def add_torrent(self, torrent: LabTorrent, seeders: int = len(SEEDER_IPS)) -> None:
        """Whitelists the torrent (restarting opentracker, which reads its whitelist at start) and
        starts `seeders` seeders, returning once each has announced successfully."""
        self.whitelist.append(torrent.info_hash_hex)
        self._start_tracker()
        started = []
        for address in SEEDER_IPS[:seeders]:
            name = f"seeder-{address.rsplit('.', 1)[1]}-{torrent.name}"
            process = self.spawn(SWARM_NS, name, [
                PYTHON, "-u", str(HERE / "seeder.py"), "--torrent", str(torrent.path),
                "--save", str(torrent.data_path.parent), "--listen", f"{address}:{SEEDER_PORT}",
                "--upload-rate", str(self.seeder_rate),
                "--peer-log", str(self.peer_log_path(address, torrent))])
            self.seeders.append(process)
            started.append(process)
        for process in started:
            wait_until(lambda: log_contains(process.log_path, "announced"), 30,
                       f"{process.name} announcing to the tracker", poll=0.1, watched=process)

    def peer_log_path(self, address: str, torrent: LabTorrent) -> Path:
        return self.work_dir / f"peers-{address}-{torrent.name}.log"

    def peers_seen(self, torrent: LabTorrent) -> dict[str, set[str]]:
        """{seeder address: every peer IP that seeder ever saw connected (or connecting)}."""
        seen = {}
        for address in SEEDER_IPS:
            path = self.peer_log_path(address, torrent)
            if path.exists():
                seen[address] = {line.split()[1] for line in path.read_text().splitlines() if line.strip()}
        return seen

    def stop_seeders(self) -> None:
        for process in self.seeders:
            process.stop()
        self.seeders.clear()

    # -- keys and tunnel servers ----------------------------------------------------------------

    def _make_keys(self) -> None:
        for role in ("client", "server"):
            private = run(["wg", "genkey"]).stdout.strip()
            public = run(["wg", "pubkey"], input_text=private + "\n").stdout.strip()
            self._keys[f"{role}-private"], self._keys[f"{role}-public"] = private, public
        self.ovpn_key = self.work_dir / "openvpn-static.key"
        self.ovpn_key.unlink(missing_ok=True)
        run(["openvpn", "--genkey", "secret", str(self.ovpn_key)])

    def _wg_conf(self, role: str) -> Path:
        path = self.work_dir / f"wg-{role}.conf"
        if role == "server":
            text = (f"[Interface]\nPrivateKey = {self._keys['server-private']}\nListenPort = {WG_PORT}\n\n"
                    f"[Peer]\nPublicKey = {self._keys['client-public']}\n"
                    # The whole /24: the client may come back with a different tunnel address.
                    f"AllowedIPs = 10.66.0.0/24\n")
        else:
            text = (f"[Interface]\nPrivateKey = {self._keys['client-private']}\n\n"
                    f"[Peer]\nPublicKey = {self._keys['server-public']}\n"
                    f"Endpoint = {SERVER_CLEAR}:{WG_PORT}\nAllowedIPs = 0.0.0.0/0\n")
        path.write_text(text)
        os.chmod(path, 0o600)
        return path

    def _start_wireguard_go(self, ns: str, interface: str, name: str) -> LabProcess:
        Path(f"/var/run/wireguard/{interface}.sock").unlink(missing_ok=True)  # left by a SIGKILLed run
        env = dict(os.environ, WG_PROCESS_FOREGROUND="1", LOG_LEVEL="error")
        process = self.spawn(ns, name, ["wireguard-go", "-f", interface], env=env)
        wait_until(lambda: Path(f"/var/run/wireguard/{interface}.sock").exists()
                   and ip(ns, "link", "show", interface, check=False).returncode == 0,
                   10, f"{name} creating {interface}", watched=process)
        return process

    def _start_tunnel_servers(self) -> None:
        self.wg_server = self._start_wireguard_go(SERVER_NS, WG_SERVER_IF, "wireguard-go-server")
        ns_run(SERVER_NS, ["wg", "setconf", WG_SERVER_IF, str(self._wg_conf("server"))])
        ip(SERVER_NS, "addr", "add", f"{WG_SERVER_IP}/{WG_PREFIX}", "dev", WG_SERVER_IF)
        ip(SERVER_NS, "link", "set", WG_SERVER_IF, "up")
        self.openvpn_server = self.spawn(SERVER_NS, "openvpn-server", [
            "openvpn", *self._ovpn_common(OVPN_SERVER_IF), "--ifconfig", OVPN_SERVER_IP, OVPN_CLIENT_IP,
            "--local", SERVER_CLEAR, "--lport", str(OVPN_PORT),
            "--float"])  # a restarted client comes back from a new source port
        # The server completes its initialisation only when the client's first packet arrives.
        wait_until(lambda: log_contains(self.openvpn_server.log_path, "link local (bound)"),
                   15, "openvpn server starting", watched=self.openvpn_server)

    def _ovpn_common(self, device: str) -> list[str]:
        return ["--dev", device, "--dev-type", "tun", "--proto", "udp4", "--secret", str(self.ovpn_key),
                "--cipher", "AES-256-CBC", "--auth", "SHA256", "--tun-mtu", str(OVPN_TUN_MTU),
                # Keepalives but no --ping-restart: a restart would drop the tunnel on its own and
                # blur what the scenario did; the server simply waits for a (re)started client.
                "--ping", "2", "--verb", "3", "--script-security", "0"]

    # -- WireGuard client controls --------------------------------------------------------------

    def wg_up(self, address: str | None = None) -> float:
        """Starts wireguard-go for wg0 (if not running), configures it, brings it up with `address`
        and routes table 166 through it; waits until a ping through wg0 reaches the tracker.
        Returns the monotonic time at which the tunnel was usable."""
        if address is not None:
            self.wg_client_address = address
        if self.wireguard is None or self.wireguard.exited():
            self.wireguard = self._start_wireguard_go(CLIENT_NS, WG_IF, "wireguard-go-client")
            ns_run(CLIENT_NS, ["wg", "setconf", WG_IF, str(self._wg_conf("client"))])
        self._ensure_address(WG_IF, self.wg_client_address, WG_PREFIX)
        ip(CLIENT_NS, "link", "set", WG_IF, "up")
        self._ensure_table_route(WG_TABLE, WG_IF)
        ready = time.monotonic()
        self._wait_ping(WG_IF)
        return ready

    def wg_kill(self) -> float:
        """SIGKILLs wireguard-go (a crash): wg0 disappears with its addresses and routes."""
        if self.wireguard is None:
            raise LabError("wg_kill: wireguard-go is not running")
        self.wireguard.kill()
        wait_until(lambda: ip(CLIENT_NS, "link", "show", WG_IF, check=False).returncode != 0, 5,
                   "wg0 disappearing after wireguard-go died")
        return time.monotonic()

    def wg_restart(self, address: str | None = None) -> float:
        """Starts wireguard-go again and re-applies `wg setconf`, the address and the route."""
        return self.wg_up(address)

    def link_down(self, interface: str = WG_IF) -> float:
        ip(CLIENT_NS, "link", "set", interface, "down")
        return time.monotonic()

    def link_up(self, interface: str = WG_IF, wait: bool = True) -> float:
        """Brings the link up and restores its table route (the kernel flushes routes of a downed
        link). With wait=False it returns right after (used by the flap loop)."""
        ip(CLIENT_NS, "link", "set", interface, "up")
        self._ensure_table_route(WG_TABLE if interface == WG_IF else OVPN_TABLE, interface)
        ready = time.monotonic()
        if wait:
            self._wait_ping(interface)
        return ready

    def addr_del(self, interface: str = WG_IF, address: str | None = None) -> float:
        if interface == WG_IF:
            ip(CLIENT_NS, "addr", "del", f"{address or self.wg_client_address}/{WG_PREFIX}", "dev", WG_IF)
        else:
            ip(CLIENT_NS, "addr", "del", OVPN_CLIENT_IP, "peer", OVPN_SERVER_IP, "dev", interface)
        return time.monotonic()

    def addr_add(self, interface: str = WG_IF, address: str | None = None) -> float:
        """Adds the tunnel address back (WireGuard: optionally a different one, e.g. WG_CLIENT_ALT_IP)."""
        if interface == WG_IF:
            self.wg_client_address = address or self.wg_client_address
            self._ensure_address(WG_IF, self.wg_client_address, WG_PREFIX)
        else:
            ip(CLIENT_NS, "addr", "add", OVPN_CLIENT_IP, "peer", OVPN_SERVER_IP, "dev", OVPN_IF)
        self._ensure_table_route(WG_TABLE if interface == WG_IF else OVPN_TABLE, interface)
        ready = time.monotonic()
        self._wait_ping(interface)
        return ready

    # -- OpenVPN client controls ----------------------------------------------------------------

    def openvpn_start(self) -> float:
        if self.openvpn is not None and not self.openvpn.exited():
            raise LabError("openvpn_start: the client is already running")
        self.openvpn = self.spawn(CLIENT_NS, "openvpn-client", [
            "openvpn", *self._ovpn_common(OVPN_IF), "--ifconfig", OVPN_CLIENT_IP, OVPN_SERVER_IP,
            "--remote", SERVER_CLEAR, str(OVPN_PORT), "--nobind"])
        wait_until(lambda: ip(CLIENT_NS, "-4", "addr", "show", OVPN_IF, check=False).stdout.count(OVPN_CLIENT_IP) > 0,
                   15, "openvpn client configuring tun0", watched=self.openvpn)
        self._ensure_table_route(OVPN_TABLE, OVPN_IF)
        ready = time.monotonic()
        self._wait_ping(OVPN_IF)
        return ready

    def openvpn_stop(self, crash: bool = True) -> float:
        """Ends the openvpn client (SIGKILL by default, like a crash); tun0 disappears."""
        if self.openvpn is None:
            raise LabError("openvpn_stop: the client is not running")
        if crash:
            self.openvpn.kill()
        else:
            self.openvpn.stop()
        wait_until(lambda: ip(CLIENT_NS, "link", "show", OVPN_IF, check=False).returncode != 0, 5,
                   "tun0 disappearing after openvpn stopped")
        return time.monotonic()

    # -- helpers --------------------------------------------------------------------------------

    def _ensure_address(self, interface: str, address: str, prefix: int) -> None:
        shown = ip(CLIENT_NS, "-4", "addr", "show", "dev", interface).stdout
        for present in re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", shown):
            if present != address:
                ip(CLIENT_NS, "addr", "del", f"{present}/{prefix}", "dev", interface)
        if f"inet {address}/" not in shown:
            ip(CLIENT_NS, "addr", "add", f"{address}/{prefix}", "dev", interface)

    def route_marked_through_wireguard(self) -> None:
        """Routes Burrow's marked packets by table 166 (wg0), as a VPN client that routes by fwmark
        does. Needed when BURROW_TEST_UNBOUND_SOCKETS=1 leaves sockets unpinned: they then reach the
        swarm through wg0 by this rule alone. While wg0 is gone, table 166 is empty, the lookup falls
        through to the main table and the packets head for clear0, where only the firewall stops them."""
        ip(CLIENT_NS, "rule", "add", "pref", str(MARK_RULE_PREF), "fwmark", hex(BURROW_MARK), "lookup", str(WG_TABLE))

    def _ensure_table_route(self, table: int, interface: str) -> None:
        ip(CLIENT_NS, "route", "replace", "default", "dev", interface, "table", str(table))

    def _wait_ping(self, interface: str, timeout: float = 10) -> None:
        """Proves the tunnel carries traffic: a TCP connection to the tracker from a socket bound to
        the interface (the namespaces have no ping binary; this is the same path a client takes)."""
        probe = ("import socket,sys\n"
                 "s=socket.socket(); s.settimeout(1)\n"
                 "s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sys.argv[1].encode())\n"
                 "s.connect((sys.argv[2], int(sys.argv[3])))\n")
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            result = ns_run(CLIENT_NS, [PYTHON, "-c", probe, interface, TRACKER_IP, str(TRACKER_PORT)],
                            check=False)
            if result.returncode == 0:
                return
            last = result.stderr.strip().splitlines()[-1:] or [""]
            last = last[0]
            time.sleep(0.1)
        raise LabError(f"no TCP connection through {interface} to {TRACKER_IP}:{TRACKER_PORT} "
                       f"within {timeout:.0f}s (last error: {last})")

    def start_capture(self) -> None:
        if self.tcpdump is not None and not self.tcpdump.exited():
            return
        self.pcap_path.unlink(missing_ok=True)
        # Outbound only: what the client put on the clear wire. -U flushes every packet.
        self.tcpdump = self.spawn(CLIENT_NS, "tcpdump-clear0", [
            "tcpdump", "-i", CLIENT_IF_CLEAR, "-Q", "out", "-n", "-U", "-s", "256", "-w", str(self.pcap_path)])
        wait_until(lambda: log_contains(self.tcpdump.log_path, "listening on"), 10,
                   "tcpdump starting on clear0", watched=self.tcpdump)

    def stop_capture(self) -> CaptureReport:
        if self.tcpdump is None:
            raise LabError("stop_capture: no capture is running")
        time.sleep(0.2)  # let the last packets reach the file
        self.tcpdump.stop()
        return analyze_capture(self.pcap_path)

    def client_command(self, argv: list[str]) -> list[str]:
        return in_ns(CLIENT_NS, argv)

    def status(self) -> str:
        return lab_status()


# ---------------------------------------------------------------------------------------------
# Stale labs, status

def remove_stale_lab() -> None:
    """Stops every process left in bl-* namespaces (only the lab puts processes there) and deletes
    the namespaces and the client's /etc/netns files."""
    state_pids = []
    if STATE_FILE.exists():
        try:
            state_pids = json.loads(STATE_FILE.read_text()).get("pids", [])
        except (OSError, ValueError):
            pass
    namespaces = [name.split()[0] for name in run(["ip", "netns", "list"]).stdout.splitlines()
                  if name.startswith(PREFIX)]
    pids = set(state_pids)
    for ns in namespaces:
        pids |= {int(p) for p in run(["ip", "netns", "pids", ns], check=False).stdout.split()}
    for signum in (signal.SIGTERM, signal.SIGKILL):
        alive = [pid for pid in pids if _alive(pid) and _in_lab(pid, namespaces)]
        for pid in alive:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 3
        while any(_alive(pid) for pid in alive) and time.monotonic() < deadline:
            time.sleep(0.05)
    for ns in namespaces:
        run(["ip", "netns", "del", ns], check=False)
    for ns in (CLIENT_NS, SWARM_NS):
        shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
    for interface in (WG_IF, WG_SERVER_IF):
        sock = Path(f"/var/run/wireguard/{interface}.sock")
        if sock.exists() and not _socket_in_use(sock):
            sock.unlink(missing_ok=True)
    STATE_FILE.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _in_lab(pid: int, namespaces: list[str]) -> bool:
    """True if pid lives in one of the lab's namespaces (guards against a recycled pid)."""
    try:
        mine = os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return False
    for ns in namespaces:
        try:
            if os.stat(f"/run/netns/{ns}").st_ino == mine:
                return True
        except OSError:
            pass
    return False


def _socket_in_use(path: Path) -> bool:
    import socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
            return True
        except OSError:
            return False


def lab_status() -> str:
    lines = []
    namespaces = [n.split()[0] for n in run(["ip", "netns", "list"]).stdout.splitlines() if n.startswith(PREFIX)]
    if not namespaces:
        return "no lab namespaces (bl-*)"
    for ns in namespaces:
        lines.append(f"== {ns}")
        lines += ["  " + line for line in ip(ns, "-br", "addr").stdout.splitlines()]
        pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
        for pid in pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
            except OSError:
                continue
            lines.append(f"  pid {pid}: {cmdline}")
    if CLIENT_NS in namespaces:
        lines.append("== client rules")
        lines += ["  " + line for line in ip(CLIENT_NS, "rule").stdout.splitlines()]
        wg = ns_run(CLIENT_NS, ["wg", "show", WG_IF], check=False)
        lines += ["  " + line for line in (wg.stdout or wg.stderr).splitlines()]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# CLI

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build the lab and leave it running, with a demo torrent seeded")
    up.add_argument("--dir", type=Path, help="work directory (default: a new one under /tmp)")
    up.add_argument("--size-mib", type=int, default=64, help="demo torrent size")
    sub.add_parser("down", help="tear down any running lab")
    sub.add_parser("status", help="show namespaces, addresses and processes")
    args = parser.parse_args()
    if args.command == "down":
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        with open(STATE_DIR / "lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print("a lab run (test_lab.py or bench) holds /run/burrow-lab/lock; it tears its lab "
                      "down itself. Stop that run first.", file=sys.stderr)
                return 1
            remove_stale_lab()
        print("lab down")
        return 0
    if args.command == "status":
        print(lab_status())
        return 0
    work_dir = args.dir or Path(tempfile.mkdtemp(prefix="burrow-lab-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    lab = Lab(work_dir, capture=False)
    try:
        lab.up()
        torrent = make_payload_torrent(work_dir, "demo.bin", args.size_mib * MIB)
        lab.add_torrent(torrent)
        if lab.meter is not None:
            lab.meter.stop()
    except BaseException:
        lab.down()
        raise
    # Leave everything running; `lab.sh down` stops it by the pids recorded in the state file.
    for process in lab.processes:
        process.popen.returncode = 0  # detach: no ResourceWarning about running children at exit
    print(f"lab up in {work_dir}\n  torrent: {torrent.path} ({args.size_mib} MiB, sha256 {torrent.sha256})\n"
          f"  try: ip netns exec {CLIENT_NS} $BURROW_BIN download {torrent.path} --output /tmp/out "
          f"--bind {WG_IF} --dns {SWARM_DNS_IP}\n  stop: Tests/Lab/lab.sh down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
