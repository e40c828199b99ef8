"""The BitTorrent programs the suite drives, behind one small interface.

Each client can `seed` a torrent from a directory holding the complete data and `download` a
torrent (a .torrent path or a magnet URI) into a directory. All of them listen on 127.0.0.1 only,
with DHT, local peer discovery, peer exchange and port mapping off: the tracker is the only way
peers find each other, so a case controls exactly who talks to whom.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from harness import (HERE, LOOPBACK, PYTHON, HarnessError, ManagedProcess, Payload, TorrentFile,
                     Workspace, compare_download, last_verified_bytes, wait_for_tcp)

DEFAULT_BURROW_BIN = "/work/main/.build/debug/burrow"


class Download:
    """A running download. `wait_until_complete` returns once the data matches the payload."""

    def __init__(self, client: "Client", process: ManagedProcess, out_dir: Path,
                 exits_when_complete: bool) -> None:
        self.client = client
        self.process = process
        self.out_dir = out_dir
        self.exits_when_complete = exits_when_complete

    def wait_until_complete(self, payload: Payload, timeout: float) -> float:
        """Seconds it took. Raises HarnessError naming what went wrong."""
        started = time.monotonic()
        if self.exits_when_complete:
            status = self.process.wait(timeout)
            if status != 0:
                raise HarnessError(f"{self.client.label} download exited with status {status}\n"
                                   f"{self.process.tail()}")
            problems = compare_download(payload, self.out_dir, not self.client.creates_empty_files)
            if problems:
                raise HarnessError(f"{self.client.label} exited 0 but the data differs from the source:\n  "
                                   + "\n  ".join(problems))
            return time.monotonic() - started
        deadline = started + timeout
        problems = ["not checked yet"]
        while time.monotonic() < deadline:
            if self.process.exited():
                raise HarnessError(f"{self.client.label} exited with status {self.process.returncode()} "
                                   f"before the download completed\n{self.process.tail()}")
            problems = compare_download(payload, self.out_dir, not self.client.creates_empty_files)
            if not problems:
                return time.monotonic() - started
            time.sleep(0.5)
        raise HarnessError(f"{self.client.label} did not complete within {timeout:.0f}s:\n  "
                           + "\n  ".join(problems) + "\n" + self.client.diagnostics() + "\n"
                           + self.process.tail())


class Client:
    label = "client"
    # False for a client that ignores tracker-supplied peers on 127.0.0.0/8: it can only be
    # reached by peers that learn of it from the tracker and connect to it.
    dials_loopback_peers = True
    # False for a client that never creates zero-length files of a multi-file torrent.
    creates_empty_files = True
    # Why this client cannot use a UDP tracker in the suite's setup, or None if it can.
    udp_tracker_unsupported: str | None = None

    def missing_tools(self) -> list[str]:
        """Human-readable descriptions of what is needed but absent."""
        raise NotImplementedError

    def seed(self, ws: Workspace, torrent: TorrentFile, data_root: Path) -> ManagedProcess:
        raise NotImplementedError

    def download(self, ws: Workspace, source: str, out_dir: Path) -> Download:
        raise NotImplementedError

    def diagnostics(self) -> str:
        return ""

    def completed_bytes(self, download: Download) -> int:
        """Bytes the downloader reports verified so far (for time-to-first-block checks)."""
        raise HarnessError(f"{self.label} cannot report its progress")


def missing_executables(*names: str) -> list[str]:
    return [f"`{name}` not found on PATH" for name in names if shutil.which(name) is None]


class LibtorrentClient(Client):
    """python3-libtorrent through lt_peer.py (TCP only, no encryption on outgoing connections)."""
    label = "libtorrent"
    script = HERE / "lt_peer.py"

    def missing_tools(self) -> list[str]:
        if not Path(PYTHON).exists():
            return [f"{PYTHON} not found"]
        probe = subprocess.run([PYTHON, "-c", "import libtorrent"], capture_output=True, text=True)
        return [] if probe.returncode == 0 else [
            f"{PYTHON} cannot import libtorrent (apt-get install python3-libtorrent): "
            f"{probe.stderr.strip().splitlines()[-1:]}"]

    def seed(self, ws, torrent, data_root):
        port = ws.ports.take()
        return ws.registry.spawn("libtorrent-seed", [
            PYTHON, "-u", str(self.script), "seed", "--torrent", str(torrent.path),
            "--save", str(data_root), "--listen", f"{LOOPBACK}:{port}"])

    def download(self, ws, source, out_dir):
        port = ws.ports.take()
        source_args = ["--magnet", source] if source.startswith("magnet:") else ["--torrent", source]
        process = ws.registry.spawn("libtorrent-download", [
            PYTHON, "-u", str(self.script), "download", *source_args, "--save", str(out_dir),
            "--listen", f"{LOOPBACK}:{port}", "--timeout", "600"])
        return Download(self, process, out_dir, exits_when_complete=True)


class Aria2Client(Client):
    label = "aria2"
    udp_tracker_unsupported = "aria2 talks to UDP trackers only through its DHT socket, and DHT is off"

    def missing_tools(self):
        return missing_executables("aria2c")

    @staticmethod
    def _common(port: int, directory: Path) -> list[str]:
        return [
            "aria2c", f"--dir={directory}", f"--listen-port={port}",
            "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
            "--enable-peer-exchange=false", "--disable-ipv6=true",
            "--file-allocation=none", "--console-log-level=notice", "--summary-interval=1",
            "--bt-stop-timeout=0", "--auto-save-interval=0", "--bt-save-metadata=false",
            # aria2 ends itself if the harness (its parent python) dies without cleaning up.
            f"--stop-with-process={os.getpid()}",
        ]

    def seed(self, ws, torrent, data_root):
        port = ws.ports.take()
        # -V: hash-check the existing data first; --seed-ratio=0.0: seed with no ratio limit.
        return ws.registry.spawn("aria2-seed", [
            *self._common(port, data_root), "--check-integrity=true", "--seed-ratio=0.0",
            str(torrent.path)])

    def download(self, ws, source, out_dir):
        port = ws.ports.take()
        # --seed-time=0: exit as soon as the download is complete and hash-checked.
        process = ws.registry.spawn("aria2-download", [
            *self._common(port, out_dir), "--seed-time=0", source])
        return Download(self, process, out_dir, exits_when_complete=True)


class TransmissionClient(Client):
    """transmission-daemon with a private config dir, driven by transmission-remote over RPC."""
    label = "transmission"
    # Transmission 3.00 treats 127.0.0.0/8 as "martian" (net.c isMartianAddr) and never connects
    # to such peers from a tracker; it does accept incoming connections from them.
    dials_loopback_peers = False
    # Transmission 3.00 creates a file only when it writes a block to it: empty files never appear.
    creates_empty_files = False

    def __init__(self) -> None:
        self._rpc_ports: list[int] = []

    def missing_tools(self):
        return missing_executables("transmission-daemon", "transmission-remote")

    def _start_daemon(self, ws: Workspace, role: str, download_dir: Path) -> tuple[ManagedProcess, int]:
        peer_port, rpc_port = ws.ports.take(), ws.ports.take()
        config_dir = ws.path(f"transmission-{role}-{peer_port}")
        settings = {
            "dht-enabled": False, "lpd-enabled": False, "pex-enabled": False, "utp-enabled": False,
            "port-forwarding-enabled": False,
            "peer-port": peer_port, "peer-port-random-on-start": False,
            "bind-address-ipv4": LOOPBACK, "bind-address-ipv6": "::1",
            "rpc-enabled": True, "rpc-port": rpc_port, "rpc-bind-address": LOOPBACK,
            "rpc-authentication-required": False, "rpc-whitelist-enabled": False,
            "rpc-host-whitelist-enabled": False,
            "download-dir": str(download_dir), "incomplete-dir-enabled": False,
            # Without this transmission names unfinished files "*.part".
            "rename-partial-files": False,
            "ratio-limit-enabled": False, "idle-seeding-limit-enabled": False,
            # 0 = "prefer plaintext": the default (1) opens outgoing connections with MSE and only
            # retries in plaintext after the peer hangs up.
            "encryption": 0,
            "blocklist-enabled": False, "start-added-torrents": True, "watch-dir-enabled": False,
            "download-queue-enabled": False, "seed-queue-enabled": False,
            "queue-stalled-enabled": False, "message-level": 2, "umask": 18,
        }
        (config_dir / "settings.json").write_text(json.dumps(settings, indent=1))
        process = ws.registry.spawn(f"transmission-{role}", [
            "transmission-daemon", "--foreground", "--config-dir", str(config_dir),
            "--logfile", str(ws.registry.log_dir / f"transmission-{role}-{peer_port}.daemon.log")])
        wait_for_tcp(rpc_port, 15, "transmission-daemon RPC", process)
        self._rpc_ports.append(rpc_port)
        return process, rpc_port

    @staticmethod
    def _remote(rpc_port: int, *args: str) -> str:
        result = subprocess.run(["transmission-remote", f"{LOOPBACK}:{rpc_port}", *args],
                                capture_output=True, text=True, timeout=20)
        refused = args[0] == "-a" and "success" not in result.stdout + result.stderr
        if result.returncode != 0 or refused:
            raise HarnessError(f"transmission-remote {' '.join(args)} failed ({result.returncode}): "
                               f"{result.stdout.strip()} {result.stderr.strip()}")
        return result.stdout

    def seed(self, ws, torrent, data_root):
        process, rpc_port = self._start_daemon(ws, "seed", data_root)
        # Added over data that is already there, transmission verifies it and then seeds.
        self._remote(rpc_port, "-a", str(torrent.path), "-w", str(data_root))
        return process

    def download(self, ws, source, out_dir):
        process, rpc_port = self._start_daemon(ws, "download", out_dir)
        self._remote(rpc_port, "-a", source, "-w", str(out_dir))
        # transmission-daemon never exits on completion: completion is judged from the files.
        return Download(self, process, out_dir, exits_when_complete=False)

    def diagnostics(self):
        reports = []
        for port in self._rpc_ports:
            try:
                reports.append(self._remote(port, "-t", "all", "-i"))
            except Exception as error:
                reports.append(f"(transmission-remote on {port} failed: {error})")
        return "--- transmission-remote -t all -i:\n" + "\n".join(reports)


class BurrowClient(Client):
    label = "burrow"

    @property
    def binary(self) -> str:
        return os.environ.get("BURROW_BIN", DEFAULT_BURROW_BIN)

    @property
    def extra_args(self) -> list[str]:
        """BURROW_EXTRA_ARGS, split on whitespace (e.g. "--log-level debug")."""
        return os.environ.get("BURROW_EXTRA_ARGS", "").split()

    def missing_tools(self):
        path = Path(self.binary)
        if not path.is_file() or not os.access(path, os.X_OK):
            return [f"burrow binary {self.binary} does not exist or is not executable "
                    f"(build it, or point BURROW_BIN at it)"]
        return []

    def seed(self, ws, torrent, data_root):
        port = ws.ports.take()
        # Each Burrow gets its own state directory in the workspace: nothing lands in ~/.local/state.
        return ws.registry.spawn("burrow-seed", [
            self.binary, "download", str(torrent.path), "--output", str(data_root),
            "--state-dir", str(ws.path(f"state-{data_root.name}")),
            "--seed", "--allow-unbound", "--port", str(port), *self.extra_args])

    def download(self, ws, source, out_dir):
        port = ws.ports.take()
        process = ws.registry.spawn("burrow-download", [
            self.binary, "download", source, "--output", str(out_dir),
            "--state-dir", str(ws.path(f"state-{out_dir.name}")),
            "--allow-unbound", "--port", str(port), *self.extra_args])
        return Download(self, process, out_dir, exits_when_complete=True)

    def completed_bytes(self, download):
        """From the last progress line (one per second when stdout is not a terminal)."""
        return last_verified_bytes(download.process.log_path.read_text(errors="replace"))


class QBittorrentClient(Client):
    """qbittorrent-nox 4.5 (Debian), one instance per role with its own profile, driven through its
    WebUI API v2 with plain urllib: the few calls the suite needs (add a torrent, read its progress)
    are two HTTP requests, so no client library (qbittorrent-api) has to be installed for CI.

    Its config (written before start) accepts the legal notice, puts the WebUI on a loopback port with
    authentication bypassed for localhost, fixes the peer port on 127.0.0.1 and turns DHT, LSD, PeX,
    UPnP/NAT-PMP and queueing off, and allows several connections from one IP: with its default of
    one, it closes every incoming connection from 127.0.0.1 at once (everyone here shares that IP;
    libtorrent's own peers fail the same way). Everything else keeps qBittorrent's defaults
    (encryption allowed), so Burrow meets it much as it would in a real swarm."""
    label = "qbittorrent"

    def __init__(self) -> None:
        self._webui: list[str] = []

    def missing_tools(self):
        return missing_executables("qbittorrent-nox")

    def _start(self, ws: Workspace, role: str, save_dir: Path) -> tuple[ManagedProcess, str]:
        peer_port, webui_port = ws.ports.take(), ws.ports.take()
        profile = ws.path(f"qbittorrent-{role}-{peer_port}")
        config = profile / "qBittorrent" / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "qBittorrent.conf").write_text(QBITTORRENT_CONF.format(
            peer_port=peer_port, webui_port=webui_port, save_dir=save_dir))
        process = ws.registry.spawn(f"qbittorrent-{role}", [
            "qbittorrent-nox", f"--profile={profile}", f"--webui-port={webui_port}"])
        wait_for_tcp(webui_port, 20, "qbittorrent-nox WebUI", process)
        base = f"http://{LOOPBACK}:{webui_port}/api/v2"
        self._webui.append(base)
        preferences = json.loads(_http(base + "/app/preferences"))
        wrong = {key: preferences.get(key) for key, wanted in QBITTORRENT_EXPECTED.items()
                 if preferences.get(key) != wanted}
        if wrong:
            raise HarnessError(f"qbittorrent-nox ignored its config: {wrong} (wanted {QBITTORRENT_EXPECTED})")
        return process, base

    @staticmethod
    def _add(base: str, source: str, save_dir: Path, seeding: bool) -> None:
        fields = {"savepath": str(save_dir), "paused": "false",
                  "skip_checking": "true" if seeding else "false"}
        files = {}
        if source.startswith("magnet:"):
            fields["urls"] = source
        else:
            files["torrents"] = (Path(source).name, Path(source).read_bytes())
        reply = _http(base + "/torrents/add", multipart=(fields, files))
        if reply.strip() != "Ok.":
            raise HarnessError(f"qbittorrent-nox refused the torrent {source}: {reply!r}")

    def seed(self, ws, torrent, data_root):
        process, base = self._start(ws, "seed", data_root)
        # The data is known to be complete: skip the hash check and seed at once.
        self._add(base, str(torrent.path), data_root, seeding=True)
        # It announces while still loading the torrent ("checkingResumeData", ~2 s), and meanwhile
        # accepts connections and never answers them: wait until it really seeds.
        deadline = time.monotonic() + 30
        state = "?"
        while time.monotonic() < deadline:
            torrents = json.loads(_http(base + "/torrents/info"))
            state = torrents[0]["state"] if torrents else "not added"
            if state in ("uploading", "stalledUP", "forcedUP"):
                return process
            time.sleep(0.2)
        raise HarnessError(f"qbittorrent-nox is not seeding after 30 s (state {state})\n{process.tail()}")

    def download(self, ws, source, out_dir):
        process, base = self._start(ws, "download", out_dir)
        self._add(base, source, out_dir, seeding=False)
        # qbittorrent-nox never exits on completion: completion is judged from the files.
        return Download(self, process, out_dir, exits_when_complete=False)

    def completed_bytes(self, download: Download) -> int:
        """Verified bytes qBittorrent reports for its (only) torrent."""
        torrents = json.loads(_http(self._webui[-1] + "/torrents/info"))
        return int(torrents[0].get("completed", 0)) if torrents else 0

    def diagnostics(self):
        reports = []
        for base in self._webui:
            try:
                reports.append(_http(base + "/torrents/info"))
            except Exception as error:
                reports.append(f"({base}/torrents/info failed: {error})")
        return "--- qbittorrent torrents/info:\n" + "\n".join(reports)


QBITTORRENT_CONF = """\
[LegalNotice]
Accepted=true

[BitTorrent]
Session\\DHTEnabled=false
Session\\LSDEnabled=false
Session\\PeXEnabled=false
Session\\MultiConnectionsPerIp=true
Session\\Port={peer_port}
Session\\InterfaceAddress=127.0.0.1
Session\\QueueingSystemEnabled=false
Session\\DefaultSavePath={save_dir}
Session\\TempPathEnabled=false
Session\\AddExtensionToIncompleteFiles=false

[Network]
PortForwardingEnabled=false

[Preferences]
WebUI\\Address=127.0.0.1
WebUI\\Port={webui_port}
WebUI\\LocalHostAuth=false
WebUI\\HostHeaderValidation=false
WebUI\\CSRFProtection=false
General\\Locale=en
"""

# What the config above must have set (WebUI API names), checked after start.
QBITTORRENT_EXPECTED = {"dht": False, "pex": False, "lsd": False, "upnp": False,
                        "random_port": False, "queueing_enabled": False,
                        "enable_multi_connections_from_same_ip": True}


def _http(url: str, multipart: tuple[dict, dict] | None = None, timeout: float = 10) -> str:
    """GET `url`, or POST it as multipart/form-data (fields, files name -> (filename, bytes))."""
    data, headers = None, {}
    if multipart is not None:
        fields, files = multipart
        boundary = "burrow-interop-" + os.urandom(8).hex()
        parts = []
        for name, value in fields.items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                         f"{value}\r\n".encode())
        for name, (filename, content) in files.items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                         f'filename="{filename}"\r\nContent-Type: application/x-bittorrent\r\n\r\n'.encode()
                         + content + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        data = b"".join(parts)
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read().decode(errors="replace")
    except OSError as error:
        raise HarnessError(f"qbittorrent WebUI request {url} failed: {error}")


REFERENCE_CLIENTS = {client.label: client for client in
                     (LibtorrentClient, TransmissionClient, Aria2Client, QBittorrentClient)}


def make_client(label: str) -> Client:
    if label == "burrow":
        return BurrowClient()
    if label in REFERENCE_CLIENTS:
        return REFERENCE_CLIENTS[label]()
    raise HarnessError(f"unknown client {label!r}; expected burrow or one of {sorted(REFERENCE_CLIENTS)}")
