"""The clients the tunnel lab drives inside bl-client: Burrow and two stand-ins (libtorrent, aria2).

A `ClientRun` starts one of them, timestamps every stdout/stderr line as it arrives (monotonic
clock), extracts the downloaded byte count from progress lines, and notes kill-switch log lines.

What the lab relies on in a client's output (Burrow's contract, the stand-ins are made to match):
  * stdout: one progress line per second containing "<done> <unit>/<total> <unit>" (units B, KiB,
    MiB, GiB; a space before the unit is optional, so aria2's "12MiB/64MiB" parses too). The first
    such pair on the line is the downloaded (verified) byte count.
  * any stream: lines containing "tunnel down", "tunnel up", "waiting for tunnel" and
    "resumed in <N> ms" are recorded with their arrival time (Burrow's kill switch).
  * exit status 0 once every piece is verified.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import lab as L

DEFAULT_BURROW_BIN = "/work/main/.build/debug/burrow"
CLIENT_KINDS = ("burrow", "lt", "aria2")

_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3, "TiB": 1024 ** 4}
PROGRESS_PATTERN = re.compile(r"(\d+(?:\.\d+)?) ?(B|KiB|MiB|GiB|TiB)/(\d+(?:\.\d+)?) ?(B|KiB|MiB|GiB|TiB)\b")
EVENT_PATTERNS = {
    "tunnel down": re.compile(r"tunnel down", re.IGNORECASE),
    "tunnel up": re.compile(r"tunnel up", re.IGNORECASE),
    "waiting for tunnel": re.compile(r"waiting for tunnel", re.IGNORECASE),
    "resumed": re.compile(r"resumed in", re.IGNORECASE),
}


class ClientUnsupported(Exception):
    """The selected stand-in cannot do what a scenario needs (e.g. aria2 binds one interface)."""


def burrow_bin() -> str:
    return os.environ.get("BURROW_BIN", DEFAULT_BURROW_BIN)


def parse_progress(line: str) -> int | None:
    match = PROGRESS_PATTERN.search(line)
    if not match:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def client_argv(kind: str, torrent: Path, output: Path, bind: list[str], port: int) -> list[str]:
    if kind == "burrow":
        # Burrow's state (resume data) beside the output folder, never in ~/.local/state or /var/lib/burrow.
        return [burrow_bin(), "download", str(torrent), "--output", str(output),
                "--state-dir", str(output.parent / (output.name + ".state")), "--bind", ",".join(bind),
                "--dns", L.SWARM_DNS_IP, "--port", str(port)]
    if kind == "lt":
        return [L.PYTHON, "-u", str(L.HERE / "lt_client.py"), "--torrent", str(torrent), "--output", str(output),
                "--bind", ",".join(bind), "--port", str(port)]
    if kind == "aria2":
        if len(bind) != 1:
            raise ClientUnsupported("aria2c --interface takes exactly one interface")
        return ["aria2c", f"--interface={bind[0]}", "--async-dns=true", f"--async-dns-server={L.SWARM_DNS_IP}",
                "--disable-ipv6=true", "--enable-dht=false", "--enable-dht6=false", "--enable-peer-exchange=false",
                "--bt-enable-lpd=false", "--seed-time=0", f"--dir={output}", "--summary-interval=1",
                f"--listen-port={port}", "--file-allocation=none", "--console-log-level=notice",
                "--show-console-readout=true", "--bt-stop-timeout=0", str(torrent)]
    raise ValueError(f"unknown client {kind!r}; expected one of {', '.join(CLIENT_KINDS)}")


@dataclass
class Line:
    time: float
    stream: str
    text: str


@dataclass
class ClientRun:
    kind: str
    lab: L.Lab
    torrent: L.LabTorrent
    output: Path
    bind: list[str]
    port: int = 6890
    env: dict[str, str] | None = None  # extra environment variables for the client
    lines: list[Line] = field(default_factory=list)
    progress: list[tuple[float, int]] = field(default_factory=list)
    events: list[tuple[float, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.output.mkdir(parents=True, exist_ok=True)
        argv = client_argv(self.kind, self.torrent.path, self.output, self.bind, self.port)
        if self.kind == "burrow" and not os.access(argv[0], os.X_OK):
            raise L.LabError(f"BURROW_BIN {argv[0]} is not an executable file (build it with "
                             f"`swift build --product burrow`, or pick a stand-in with --client lt|aria2)")
        self.log_path = self.lab.log_dir / f"client-{self.kind}.log"
        self._lock = threading.Lock()
        self.started = time.monotonic()
        environment = dict(os.environ, **self.env) if self.env else None
        popen = subprocess.Popen(L.in_ns(L.CLIENT_NS, argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, start_new_session=True, bufsize=0, env=environment)
        self.process = L.LabProcess(f"client-{self.kind}", argv, popen, self.log_path)
        self.lab.processes.append(self.process)  # the lab stops it on teardown whatever happens
        self._log = open(self.log_path, "a", buffering=1, errors="replace")
        shown_env = "".join(f"{key}={value} " for key, value in (self.env or {}).items())
        self._log.write(f"$ {shown_env}{' '.join(argv)}\n")
        self._readers = [threading.Thread(target=self._read, args=(popen.stdout, "out"), daemon=True),
                         threading.Thread(target=self._read, args=(popen.stderr, "err"), daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self, pipe, stream: str) -> None:
        buffer = b""
        while True:
            chunk = pipe.read1(65536) if hasattr(pipe, "read1") else os.read(pipe.fileno(), 65536)
            if not chunk:
                break
            now = time.monotonic()
            buffer += chunk
            # aria2 redraws its readout with \r; treat \r as a line end too.
            parts = re.split(rb"[\r\n]", buffer)
            buffer = parts.pop()
            for raw in parts:
                if raw.strip():
                    self._line(now, stream, raw.decode("utf-8", "replace"))
        if buffer.strip():
            self._line(time.monotonic(), stream, buffer.decode("utf-8", "replace"))

    def _line(self, now: float, stream: str, text: str) -> None:
        with self._lock:
            self.lines.append(Line(now, stream, text))
            self._log.write(f"{now - self.started:8.3f} {stream} {text}\n")
            if stream == "out" or self.kind == "aria2":
                done = parse_progress(text)
                if done is not None:
                    self.progress.append((now, done))
            for name, pattern in EVENT_PATTERNS.items():
                if pattern.search(text):
                    self.events.append((now, name, text))

    # -- queries --------------------------------------------------------------------------------

    def done_bytes(self) -> int:
        with self._lock:
            return max((done for _, done in self.progress), default=0)

    def exited(self) -> bool:
        return self.process.exited()

    def wait_fraction(self, fraction: float, timeout: float) -> float:
        """Waits until progress lines show `fraction` of the torrent; returns the time it did."""
        target = fraction * self.torrent.size
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.done_bytes() >= target:
                return time.monotonic()
            if self.exited():
                raise L.LabError(f"{self.kind} exited with status {self.process.popen.returncode} at "
                                 f"{self.done_bytes()} bytes, before reaching {fraction:.0%}\n{self.tail()}")
            time.sleep(0.05)
        raise L.LabError(f"{self.kind} did not reach {fraction:.0%} of {self.torrent.size} bytes within "
                         f"{timeout:.0f}s (at {self.done_bytes()})\n{self.tail()}")

    def progress_resume_after(self, since: float) -> float | None:
        """Seconds from `since` to the first progress line whose byte count exceeds every count
        printed up to `since`."""
        with self._lock:
            samples = list(self.progress)
        baseline = max((done for when, done in samples if when <= since), default=0)
        for when, done in samples:
            if when > since and done > baseline:
                return when - since
        return None

    def event_after(self, since: float, names: tuple[str, ...]) -> tuple[float, str] | None:
        with self._lock:
            for when, name, text in self.events:
                if when > since and name in names:
                    return when - since, text
        return None

    def bytes_between(self, start: float, end: float) -> int:
        with self._lock:
            before = max((done for when, done in self.progress if when <= start), default=0)
            after = max((done for when, done in self.progress if when <= end), default=0)
        return after - before

    def wait_finished(self, stall_timeout: float, overall_timeout: float) -> str:
        """Waits for the client to exit; stops it if progress stalls for `stall_timeout` seconds or
        the whole run exceeds `overall_timeout`. Returns how it ended."""
        deadline = time.monotonic() + overall_timeout
        last_change, last_done = time.monotonic(), self.done_bytes()
        while not self.exited():
            now = time.monotonic()
            done = self.done_bytes()
            if done != last_done:
                last_change, last_done = now, done
            if now - last_change > stall_timeout:
                self.stop()
                return f"stopped: no progress for {stall_timeout:.0f}s (stuck at {done} of {self.torrent.size} bytes)"
            if now > deadline:
                self.stop()
                return f"stopped: still running after {overall_timeout:.0f}s ({done} of {self.torrent.size} bytes)"
            time.sleep(0.1)
        for reader in self._readers:
            reader.join(timeout=2)
        return f"exited with status {self.process.popen.returncode}"

    def stop(self) -> None:
        self.process.signal(signal.SIGINT)
        try:
            self.process.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.stop()
        for reader in self._readers:
            reader.join(timeout=2)

    def tail(self, count: int = 25) -> str:
        with self._lock:
            shown = self.lines[-count:]
        return "\n".join(f"  {line.time - self.started:8.3f} {line.stream} {line.text}" for line in shown)

    def downloaded_path(self) -> Path:
        return self.output / self.torrent.name
