"""Building blocks of the interop suite: processes, ports, payloads, torrents, the tracker, checks.

Everything runs on 127.0.0.1. Every process is started in its own session (so it leads its own
process group) and registered with a `ProcessRegistry`, which stops them all by pid when a case
ends, whether it passed or not.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"
PIECE_LENGTH_EXPONENT = 18  # 256 KiB pieces
HERE = Path(__file__).resolve().parent
PYTHON = "/usr/bin/python3"  # Debian's python: the one that has the libtorrent bindings


class HarnessError(AssertionError):
    """A setup step or an expectation of the suite failed; the message says which and why."""


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise HarnessError(f"environment variable {name}={raw!r} is not a number of seconds")


# ---------------------------------------------------------------------------------------------
# Bencode (only what the suite reads: tracker scrape replies)

def bdecode(data: bytes):
    value, end = _bdecode_at(data, 0)
    if end != len(data):
        raise HarnessError(f"trailing bytes after bencoded value at offset {end}")
    return value


def _bdecode_at(data: bytes, at: int):
    lead = data[at:at + 1]
    if lead == b"i":
        end = data.index(b"e", at)
        return int(data[at + 1:end]), end + 1
    if lead == b"l":
        items, at = [], at + 1
        while data[at:at + 1] != b"e":
            item, at = _bdecode_at(data, at)
            items.append(item)
        return items, at + 1
    if lead == b"d":
        result, at = {}, at + 1
        while data[at:at + 1] != b"e":
            key, at = _bdecode_at(data, at)
            result[key], at = _bdecode_at(data, at)
        return result, at + 1
    if lead.isdigit():
        colon = data.index(b":", at)
        length = int(data[at:colon])
        return data[colon + 1:colon + 1 + length], colon + 1 + length
    raise HarnessError(f"invalid bencode at offset {at}: {data[at:at + 16]!r}")


# ---------------------------------------------------------------------------------------------
# Ports

class PortAllocator:
    """Hands out distinct loopback ports that were free (for both TCP and UDP) when picked."""

    def __init__(self) -> None:
        self._given: set[int] = set()

    def take(self) -> int:
        for _ in range(200):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                tcp.bind((LOOPBACK, 0))
                port = tcp.getsockname()[1]
                if port in self._given:
                    continue
                try:
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                        udp.bind((LOOPBACK, port))
                except OSError:
                    continue
            self._given.add(port)
            return port
        raise HarnessError("could not find a free loopback port for TCP and UDP")


def wait_for_tcp(port: int, timeout: float, what: str, process: "ManagedProcess | None" = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.exited():
            raise HarnessError(f"{what} exited with status {process.returncode()} before listening "
                               f"on {LOOPBACK}:{port}\n{process.tail()}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise HarnessError(f"{what} did not listen on {LOOPBACK}:{port} within {timeout:.0f}s")


# ---------------------------------------------------------------------------------------------
# Processes

@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def returncode(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float) -> int:
        """Waits for exit; raises HarnessError (the process keeps running) on timeout."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"{self.name} did not exit within {timeout:.0f}s\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError as error:
            return f"--- {self.name}: log unreadable ({error})"
        shown = "\n".join(text[-lines:])
        return f"--- last {min(lines, len(text))} lines of {self.name} ({self.log_path.name}):\n{shown}"


class ProcessRegistry:
    """Owns every process a case starts. `stop_all` ends them by pid (their own process group)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[ManagedProcess] = []

    def spawn(self, name: str, argv: list[str], cwd: Path | None = None,
              env: dict[str, str] | None = None) -> ManagedProcess:
        log_path = self.log_dir / f"{len(self.processes):02d}-{name}.log"
        log_file = open(log_path, "wb")
        try:
            popen = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        except OSError as error:
            raise HarnessError(f"could not start {name} ({argv[0]}): {error}")
        finally:
            log_file.close()
        process = ManagedProcess(name, argv, popen, log_path)
        self.processes.append(process)
        return process

    def stop(self, process: ManagedProcess, grace: float = 5.0) -> None:
        if process.exited():
            return
        # The process leads its own group (start_new_session), so this reaches its children too.
        self._signal_group(process.pid, signal.SIGTERM)
        try:
            process.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self._signal_group(process.pid, signal.SIGKILL)
            process.popen.wait(timeout=5)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            try:
                self.stop(process)
            except Exception as error:  # keep stopping the others
                print(f"warning: could not stop {process.name} (pid {process.pid}): {error}",
                      file=sys.stderr)

    def tails(self) -> str:
        return "\n".join(process.tail() for process in self.processes)

    @staticmethod
    def _signal_group(pid: int, signum: int) -> None:
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------------------------------------
# Payloads and torrents

@dataclass(frozen=True)
class PayloadSpec:
    """A torrent's content: `name` and, for multi-file torrents, (relative path, size) entries.
    A single-file torrent has exactly one entry whose path is empty."""
    name: str
    files: tuple[tuple[str, int], ...]

    @property
    def is_single_file(self) -> bool:
        return len(self.files) == 1 and self.files[0][0] == ""

    @property
    def total_size(self) -> int:
        return sum(size for _, size in self.files)


MIB = 1024 * 1024

# 3 MiB + 12345 bytes with 256 KiB pieces: 13 pieces, the last one short.
SINGLE_FILE = PayloadSpec("single.bin", (("", 3 * MIB + 12345),))

# Big enough (97 pieces) that a download from several fast seeders reaches an end game with
# duplicate requests and cancels, where fast-extension peers answer cancels with rejects.
SWARM_FILE = PayloadSpec("swarm.bin", (("", 24 * MIB + 4321),))

# Nested folders, a zero-length file, a file exactly one piece long, files straddling pieces,
# and a short last piece.
MULTI_FILE = PayloadSpec("multi", (
    ("a.bin", 1 * MIB + 1),
    ("docs/readme.txt", 1000),
    ("docs/empty.txt", 0),
    ("deep/nested/dir/c.bin", 2 * MIB + 12345),
    ("deep/nested/dir/exactly-one-piece.bin", 256 * 1024),
    ("z-last.bin", 777),
))


# One 32 MiB file: the download from a lone qBittorrent seeder that the 30 s retry pause once slowed.
LONE_SEEDER_FILE = PayloadSpec("lone.bin", (("", 32 * MIB),))

# Forty files of 200 KiB and a bigger one: more files than a low descriptor limit leaves storage,
# so the download keeps opening (and evicting) file descriptors while a connection flood runs.
MANY_FILES = PayloadSpec("many", tuple((f"part-{index:02d}.bin", 200 * 1024 + index) for index in range(40))
                         + (("big.bin", 6 * MIB),))


@dataclass
class Payload:
    spec: PayloadSpec
    root: Path  # the directory that holds <spec.name>
    digests: dict[str, str] = field(default_factory=dict)  # relative path (within name) -> sha256

    @property
    def data_path(self) -> Path:
        return self.root / self.spec.name


def create_payload(spec: PayloadSpec, root: Path) -> Payload:
    root.mkdir(parents=True, exist_ok=True)
    payload = Payload(spec, root)
    for relative, size in spec.files:
        path = payload.data_path / relative if relative else payload.data_path
        path.parent.mkdir(parents=True, exist_ok=True)
        content = os.urandom(size)
        path.write_bytes(content)
        payload.digests[relative] = hashlib.sha256(content).hexdigest()
    return payload


@dataclass
class TorrentFile:
    path: Path
    name: str
    info_hash_hex: str
    files: list[tuple[str, int]]  # as the metainfo lists them (path within name, size)

    def magnet(self, tracker_url: str) -> str:
        return (f"magnet:?xt=urn:btih:{self.info_hash_hex}&dn={urllib.parse.quote(self.name)}"
                f"&tr={urllib.parse.quote(tracker_url, safe='')}")


def make_torrent(payload: Payload, announce_url: str, output: Path) -> TorrentFile:
    """Makes a v1 torrent with Debian's mktorrent (256 KiB pieces) and reads it back."""
    argv = ["mktorrent", "-a", announce_url, "-l", str(PIECE_LENGTH_EXPONENT), "-n", payload.spec.name,
            "-o", str(output), str(payload.data_path)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise HarnessError(f"mktorrent failed ({result.returncode}): {result.stderr.strip()}")
    return read_torrent(output)


def read_torrent(path: Path) -> TorrentFile:
    import libtorrent as lt  # only Debian's python has it; imported late so --help works anywhere
    info = lt.torrent_info(str(path))
    storage = info.files()
    prefix = info.name() + "/"
    files = []
    for index in range(storage.num_files()):
        file_path = storage.file_path(index)
        relative = "" if storage.num_files() == 1 and file_path == info.name() else file_path
        if relative.startswith(prefix):
            relative = relative[len(prefix):]
        files.append((relative, storage.file_size(index)))
    return TorrentFile(path, info.name(), str(info.info_hashes().v1), files)


def copy_payload(payload: Payload, root: Path) -> Payload:
    """A second copy of the data, for a seeder that must not share files with another."""
    root.mkdir(parents=True, exist_ok=True)
    if payload.spec.is_single_file:
        shutil.copy2(payload.data_path, root / payload.spec.name)
    else:
        shutil.copytree(payload.data_path, root / payload.spec.name)
    return Payload(payload.spec, root, dict(payload.digests))


# ---------------------------------------------------------------------------------------------
# Checking downloads

def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def compare_download(payload: Payload, out_dir: Path, empty_files_optional: bool = False) -> list[str]:
    """Every difference between the source payload and out_dir/<name>; empty means identical.
    For multi-file torrents the set of files must match exactly, empty files included unless
    `empty_files_optional` (for a client known not to create zero-length files)."""
    problems = []
    target = out_dir / payload.spec.name
    if payload.spec.is_single_file:
        if not target.is_file():
            return [f"{target} is missing or not a regular file"]
        actual = sha256_file(target)
        if actual != payload.digests[""]:
            problems.append(f"{target}: sha256 {actual} != expected {payload.digests['']}")
        return problems
    if not target.is_dir():
        return [f"{target} is missing or not a directory"]
    found = {str(path.relative_to(target)) for path in target.rglob("*") if not path.is_dir()}
    expected = set(payload.digests)
    if empty_files_optional:
        empty = {relative for relative, size in payload.spec.files if size == 0}
        expected -= empty - found
    for missing in sorted(expected - found):
        problems.append(f"missing file {missing}")
    for extra in sorted(found - expected):
        problems.append(f"unexpected file {extra}")
    for relative in sorted(expected & found):
        path = target / relative
        if not path.is_file():
            problems.append(f"{relative} is not a regular file")
            continue
        actual = sha256_file(path)
        if actual != payload.digests[relative]:
            problems.append(f"{relative}: sha256 {actual} != expected {payload.digests[relative]}")
    return problems


_SIZE_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}


def last_verified_bytes(log: str) -> int:
    """Verified bytes from Burrow's last progress line ("12.5 MiB/24.0 MiB ...")."""
    found = re.findall(r"([\d.]+) (B|KiB|MiB|GiB)/[\d.]+ (?:B|KiB|MiB|GiB)", log)
    if not found:
        return 0
    value, unit = found[-1]
    return int(float(value) * _SIZE_UNITS[unit])


# ---------------------------------------------------------------------------------------------
# The tracker

class Tracker:
    """Debian's opentracker (whitelist-only build) on 127.0.0.1, HTTP and UDP on one port."""

    def __init__(self, registry: ProcessRegistry, port: int, work_dir: Path) -> None:
        self.registry = registry
        self.port = port
        self.work_dir = work_dir
        self.process: ManagedProcess | None = None

    @property
    def http_announce(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/announce"

    @property
    def udp_announce(self) -> str:
        return f"udp://{LOOPBACK}:{self.port}/announce"

    def start(self, info_hashes_hex: list[str]) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "whitelist").write_text("".join(f"{h}\n" for h in info_hashes_hex))
        # opentracker chroots into -d (and drops to nobody) before reading the whitelist, so the
        # whitelist path is given relative to that directory. An absolute -w path outside it is
        # silently unreadable, and every announce is then refused as "not authorized".
        os.chmod(self.work_dir, 0o755)
        self.process = self.registry.spawn("opentracker", [
            "opentracker", "-i", LOOPBACK, "-p", str(self.port), "-P", str(self.port),
            "-d", str(self.work_dir), "-w", "whitelist"])
        wait_for_tcp(self.port, 10, "opentracker", self.process)

    def scrape(self, info_hash_hex: str) -> dict[str, int]:
        """complete/incomplete/downloaded counts for one torrent (zeros if the tracker has no peers)."""
        raw = bytes.fromhex(info_hash_hex)
        url = f"http://{LOOPBACK}:{self.port}/scrape?info_hash={urllib.parse.quote_from_bytes(raw)}"
        with urllib.request.urlopen(url, timeout=5) as response:
            reply = bdecode(response.read())
        entry = reply.get(b"files", {}).get(raw, {})
        return {key: int(entry.get(key.encode(), 0)) for key in ("complete", "incomplete", "downloaded")}

    def wait_for_seeders(self, info_hash_hex: str, count: int, timeout: float,
                         watched: list[ManagedProcess]) -> None:
        """Waits until the tracker lists `count` seeders, so a downloader started next is told of them."""
        self._wait_for_count(info_hash_hex, "complete", count, timeout, watched, "seeders")

    def wait_for_leechers(self, info_hash_hex: str, count: int, timeout: float,
                          watched: list[ManagedProcess]) -> None:
        """Waits until the tracker lists `count` leechers, so a seeder started next is told of them."""
        self._wait_for_count(info_hash_hex, "incomplete", count, timeout, watched, "leechers")

    def _wait_for_count(self, info_hash_hex: str, key: str, count: int, timeout: float,
                        watched: list[ManagedProcess], role: str) -> None:
        deadline = time.monotonic() + timeout
        counts = {}
        while time.monotonic() < deadline:
            for process in watched:
                if process.exited():
                    raise HarnessError(f"{process.name} exited with status {process.returncode()} "
                                       f"before the tracker listed it\n{process.tail()}")
            counts = self.scrape(info_hash_hex)
            if counts[key] >= count:
                return
            time.sleep(0.2)
        names = ", ".join(process.name for process in watched)
        raise HarnessError(f"tracker lists {counts.get(key, 0)} of {count} {role} ({names}) "
                           f"after {timeout:.0f}s (scrape: {counts})")


# ---------------------------------------------------------------------------------------------
# One case's sandbox

class Workspace:
    """A temp dir, a port allocator and a process registry for one case; `close` cleans up."""

    def __init__(self, label: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"burrow-interop-{label}-"))
        os.chmod(self.root, 0o755)
        (self.root / "logs").mkdir()
        self.registry = ProcessRegistry(self.root / "logs")
        self.ports = PortAllocator()

    def path(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def close(self, keep: bool) -> None:
        self.registry.stop_all()
        if keep:
            print(f"(kept {self.root} for inspection)", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# A connection flood

class ConnectionFlood:
    """Keeps `count` TCP connections open to a port without ever sending a byte; each one the other
    side closes is opened again, at most `OPENS_PER_ROUND` every 50 ms (about 400 a second, so the
    flood cannot use up loopback's ephemeral ports). Runs in a thread until `stop`."""

    OPENS_PER_ROUND = 20

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.opened = 0
        self.closed_by_peer = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"flood-{port}", daemon=True)

    def start(self) -> "ConnectionFlood":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        try:
            while not self._stop.is_set():
                round_started = time.monotonic()
                opens = self.count if self.opened == 0 else self.OPENS_PER_ROUND
                while len(selector.get_map()) < self.count and opens > 0 and not self._stop.is_set():
                    opens -= 1
                    conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    conn.setblocking(False)
                    if conn.connect_ex((LOOPBACK, self.port)) not in (0, errno.EINPROGRESS):
                        conn.close()
                        break
                    selector.register(conn, selectors.EVENT_READ)
                    self.opened += 1
                for key, _ in selector.select(timeout=0.05):
                    conn = key.fileobj
                    try:
                        data = conn.recv(4096)
                    except OSError:
                        data = b""
                    if not data:  # closed (or refused) by the other side
                        selector.unregister(conn)
                        conn.close()
                        self.closed_by_peer += 1
                time.sleep(max(0.0, 0.05 - (time.monotonic() - round_started)))
        finally:
            for key in list(selector.get_map().values()):
                key.fileobj.close()
            selector.close()


def open_descriptors(pid: int) -> int:
    """How many descriptors process `pid` holds (/proc/PID/fd)."""
    return len(os.listdir(f"/proc/{pid}/fd"))
