#!/usr/bin/python3
"""Burrow against real BitTorrent programs from Debian, all on 127.0.0.1.

Each case starts its own opentracker, seeders and one downloader, waits (with hard timeouts) for
the download, and asserts the downloaded files are byte-identical to the source (SHA-256 of every
file, and for multi-file torrents the exact set of files, empty ones included). Every process a
case starts is stopped by pid afterwards and its temp dir removed, pass or fail.

Environment:
  BURROW_BIN                 the burrow binary (default /work/main/.build/debug/burrow)
  BURROW_EXTRA_ARGS          appended to every burrow command line (e.g. "--log-level debug")
  INTEROP_SUBJECT            client playing Burrow's role: burrow (default), libtorrent, aria2 or
                             transmission; the others validate the harness itself
  INTEROP_DOWNLOAD_TIMEOUT   seconds one download may take (default 90)
  INTEROP_CASE_TIMEOUT       hard limit for one whole case (default 180)
  INTEROP_KEEP_FAILED=1      keep the temp dir (logs, data) of a failed case
  CI=true                    a missing tool fails its case instead of skipping it
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
import unittest
from contextlib import contextmanager
from pathlib import Path

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))

from clients import BurrowClient, Client, make_client, missing_executables  # noqa: E402
from harness import (LONE_SEEDER_FILE, MANY_FILES, MULTI_FILE, SINGLE_FILE, SWARM_FILE,  # noqa: E402
                     ConnectionFlood, HarnessError, PayloadSpec, Tracker, Workspace, MIB,
                     PIECE_LENGTH_EXPONENT, compare_download, copy_payload, create_payload,
                     env_seconds, in_ci, last_verified_bytes, make_torrent, open_descriptors,
                     wait_for_tcp)

SUBJECT = os.environ.get("INTEROP_SUBJECT", "burrow")
DOWNLOAD_TIMEOUT = env_seconds("INTEROP_DOWNLOAD_TIMEOUT", 90)
CASE_TIMEOUT = env_seconds("INTEROP_CASE_TIMEOUT", 180)
SEEDERS_READY_TIMEOUT = 30.0
STALL_FREE_TIMEOUT = min(20.0, DOWNLOAD_TIMEOUT)
KEEP_FAILED = os.environ.get("INTEROP_KEEP_FAILED") == "1"
# How soon a downloader must verify its first bytes (from start, or from being given the torrent).
# qBittorrent 4.5 itself takes about 4.5 s from being given a torrent to its first connection.
FIRST_BLOCK_TIMEOUT = env_seconds("INTEROP_FIRST_BLOCK_TIMEOUT", 5)
QBITTORRENT_FIRST_BLOCK_TIMEOUT = env_seconds("INTEROP_QBITTORRENT_FIRST_BLOCK_TIMEOUT", 10)
# The open-file limit Burrow runs under while FLOOD_CONNECTIONS silent connections hit its port.
FLOOD_NOFILE = 128
FLOOD_CONNECTIONS = 400


class CaseTimeout(HarnessError):
    pass


def _case_timed_out(signum, frame):
    raise CaseTimeout(f"case exceeded INTEROP_CASE_TIMEOUT={CASE_TIMEOUT:.0f}s")


class InteropTest(unittest.TestCase):
    """Cases are named from Burrow's point of view; INTEROP_SUBJECT swaps in another client."""

    def setUp(self) -> None:
        signal.signal(signal.SIGALRM, _case_timed_out)
        signal.alarm(int(CASE_TIMEOUT))

    def tearDown(self) -> None:
        signal.alarm(0)

    # -- helpers ------------------------------------------------------------------------------

    def clients(self, *labels: str) -> list[Client]:
        """Fresh clients for this case; a missing program skips the case, or fails it under CI."""
        clients = [make_client(SUBJECT if label == "subject" else label) for label in labels]
        # Every case also needs the tracker and the torrent maker.
        problems = missing_executables("opentracker", "mktorrent")
        problems += [problem for client in clients for problem in client.missing_tools()]
        missing = sorted(set(problems))
        if missing:
            message = "missing: " + "; ".join(missing)
            if in_ci():
                self.fail(f"CI=true and a required tool is missing ({message})")
            self.skipTest(message)
        return clients

    def require_udp_tracker(self, client: Client) -> None:
        if client.udp_tracker_unsupported:
            message = f"{client.label} cannot take part: {client.udp_tracker_unsupported}"
            if in_ci():
                self.fail(f"CI=true: {message}")
            self.skipTest(message)

    @contextmanager
    def workspace(self):
        ws = Workspace(self._testMethodName)
        passed = False
        try:
            yield ws
            passed = True
        except BaseException:
            print(f"\n===== logs of {self._testMethodName} =====\n{ws.registry.tails()}\n"
                  f"===== end of logs =====", file=sys.stdout)
            raise
        finally:
            ws.close(keep=KEEP_FAILED and not passed)

    def transfer(self, seeders: list[Client], downloader: Client, spec: PayloadSpec,
                 tracker_scheme: str = "http", via_magnet: bool = False,
                 timeout: float = DOWNLOAD_TIMEOUT, first_block_within: float | None = None) -> float:
        """Seeders (each with its own copy of the data) serve one downloader via one tracker.
        With `first_block_within`, the downloader must report verified bytes that soon after it
        started (or was given the torrent). Returns the download's seconds."""
        if not downloader.dials_loopback_peers and not all(s.dials_loopback_peers for s in seeders):
            # Only possible when INTEROP_SUBJECT=transmission: nobody would open a connection.
            message = (f"neither {downloader.label} nor every seeder connects to peers on 127.0.0.1")
            if in_ci():
                self.fail(f"CI=true: {message}")
            self.skipTest(message)
        with self.workspace() as ws:
            tracker = Tracker(ws.registry, ws.ports.take(), ws.path("tracker"))
            announce = tracker.udp_announce if tracker_scheme == "udp" else tracker.http_announce
            payload = create_payload(spec, ws.path("source"))
            torrent = make_torrent(payload, announce, ws.root / f"{spec.name}.torrent")
            self.assertEqual(sorted(path for path, _ in torrent.files), sorted(payload.digests),
                             "mktorrent's file list differs from the payload")
            tracker.start([torrent.info_hash_hex])

            out_dir = ws.path("download")
            source = torrent.magnet(tracker.http_announce) if via_magnet else str(torrent.path)

            def start_seeders() -> list:
                processes = []
                for index, seeder in enumerate(seeders):
                    data = copy_payload(payload, ws.path(f"seed-{index}-{seeder.label}"))
                    processes.append(seeder.seed(ws, torrent, data.root))
                tracker.wait_for_seeders(torrent.info_hash_hex, len(seeders), SEEDERS_READY_TIMEOUT,
                                         processes)
                return processes

            if downloader.dials_loopback_peers:
                # Usual order: the downloader's first announce already lists every seeder.
                seed_processes = start_seeders()
                download = downloader.download(ws, source, out_dir)
            else:
                # The downloader won't dial 127.0.0.1 peers, so it announces first and the
                # seeders, told of it by the tracker, must connect to it.
                download = downloader.download(ws, source, out_dir)
                tracker.wait_for_leechers(torrent.info_hash_hex, 1, SEEDERS_READY_TIMEOUT,
                                          [download.process])
                seed_processes = start_seeders()
            first_block = None
            if first_block_within is not None:
                first_block = _time_to_first_block(downloader, download, first_block_within)
            seconds = download.wait_until_complete(payload, timeout)
            for process in seed_processes:
                if process.exited():
                    raise HarnessError(f"seeder {process.name} died during the transfer "
                                       f"(status {process.returncode()})\n{process.tail()}")
            names = "+".join(seeder.label for seeder in seeders)
            first = f" (first block after {first_block:.1f}s)" if first_block is not None else ""
            print(f"\n    {downloader.label} <- {names}: {spec.total_size} bytes in {seconds:.1f}s{first}",
                  end=" ", file=sys.stdout, flush=True)
            return seconds

    # -- 2. Burrow downloads from each reference client, and from all of them at once ----------

    def test_01_burrow_downloads_from_libtorrent(self):
        seeder, subject = self.clients("libtorrent", "subject")
        self.transfer([seeder], subject, SINGLE_FILE)

    def test_02_burrow_downloads_from_transmission(self):
        seeder, subject = self.clients("transmission", "subject")
        self.transfer([seeder], subject, SINGLE_FILE)

    def test_03_burrow_downloads_from_aria2(self):
        seeder, subject = self.clients("aria2", "subject")
        self.transfer([seeder], subject, SINGLE_FILE)

    def test_04_burrow_downloads_from_all_three_at_once(self):
        *seeders, subject = self.clients("libtorrent", "transmission", "aria2", "subject")
        self.transfer(seeders, subject, MULTI_FILE)

    def test_04b_burrow_downloads_from_three_libtorrent_seeders_without_stalling(self):
        # On loopback this takes about a second; a generous limit still catches stalls such as
        # dropping every peer when they reject blocks we cancelled in the end game (BEP 6).
        *seeders, subject = self.clients("libtorrent", "libtorrent", "libtorrent", "subject")
        self.transfer(seeders, subject, SWARM_FILE, timeout=STALL_FREE_TIMEOUT)

    # -- 3. Each reference client downloads from a Burrow seeder ---------------------------------

    def test_05_libtorrent_downloads_from_burrow(self):
        subject, downloader = self.clients("subject", "libtorrent")
        self.transfer([subject], downloader, SINGLE_FILE)

    def test_06_transmission_downloads_from_burrow(self):
        subject, downloader = self.clients("subject", "transmission")
        self.transfer([subject], downloader, SINGLE_FILE)

    def test_07_aria2_downloads_from_burrow(self):
        subject, downloader = self.clients("subject", "aria2")
        self.transfer([subject], downloader, SINGLE_FILE)

    # -- 4. Magnet link: metadata over BEP 9, then the data -----------------------------------

    def test_08_burrow_downloads_magnet_from_libtorrent(self):
        seeder, subject = self.clients("libtorrent", "subject")
        self.transfer([seeder], subject, MULTI_FILE, via_magnet=True)

    def test_09_burrow_downloads_magnet_from_transmission(self):
        seeder, subject = self.clients("transmission", "subject")
        self.transfer([seeder], subject, SINGLE_FILE, via_magnet=True)

    # -- 5. Multi-file torrent: nested folders, an empty file, a short last piece --------------

    def test_10_burrow_downloads_multifile_from_libtorrent(self):
        seeder, subject = self.clients("libtorrent", "subject")
        self.transfer([seeder], subject, MULTI_FILE)

    def test_11_burrow_downloads_multifile_from_aria2(self):
        seeder, subject = self.clients("aria2", "subject")
        self.transfer([seeder], subject, MULTI_FILE)

    def test_12_libtorrent_downloads_multifile_from_burrow(self):
        subject, downloader = self.clients("subject", "libtorrent")
        self.transfer([subject], downloader, MULTI_FILE)

    def test_13_transmission_downloads_multifile_from_burrow(self):
        subject, downloader = self.clients("subject", "transmission")
        self.transfer([subject], downloader, MULTI_FILE)

    def test_14_aria2_downloads_multifile_from_burrow(self):
        subject, downloader = self.clients("subject", "aria2")
        self.transfer([subject], downloader, MULTI_FILE)

    # -- 6. A torrent whose only tracker is UDP (BEP 15) ---------------------------------------

    def test_15_burrow_downloads_from_libtorrent_via_udp_tracker(self):
        seeder, subject = self.clients("libtorrent", "subject")
        self.require_udp_tracker(subject)
        self.transfer([seeder], subject, SINGLE_FILE, tracker_scheme="udp")

    def test_16_libtorrent_downloads_from_burrow_via_udp_tracker(self):
        subject, downloader = self.clients("subject", "libtorrent")
        self.require_udp_tracker(subject)
        self.transfer([subject], downloader, SINGLE_FILE, tracker_scheme="udp")

    # -- 7. Crash safety: SIGKILL at any moment loses no verified piece ------------------------

    def test_17_burrow_killed_mid_download_resumes_without_losing_pieces(self):
        seeder, subject = self.clients("libtorrent", "subject")
        if not isinstance(subject, BurrowClient):
            self.skipTest("Burrow-specific: resume data after SIGKILL")
        with self.workspace() as ws:
            tracker = Tracker(ws.registry, ws.ports.take(), ws.path("tracker"))
            payload = create_payload(SWARM_FILE, ws.path("source"))
            torrent = make_torrent(payload, tracker.http_announce, ws.root / "swarm.torrent")
            tracker.start([torrent.info_hash_hex])
            data = copy_payload(payload, ws.path("seed"))
            seed = seeder.seed(ws, torrent, data.root)
            tracker.wait_for_seeders(torrent.info_hash_hex, 1, SEEDERS_READY_TIMEOUT, [seed])
            out_dir = ws.path("download")
            argv = [subject.binary, "download", str(torrent.path), "--output", str(out_dir),
                    "--state-dir", str(ws.path("state")), "--allow-unbound", "--log-level", "info"]
            # First run, throttled so that it is surely mid-download when killed.
            first = ws.registry.spawn("burrow-first", argv + ["--port", str(ws.ports.take()),
                                                              "--max-download", "3000"])
            verified_before = 0
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and verified_before < 6 * MIB:
                time.sleep(0.25)
                verified_before = last_verified_bytes(first.log_path.read_text(errors="replace"))
            self.assertGreaterEqual(verified_before, 6 * MIB, "the first run made no progress\n" + first.tail())
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
            # Second run: every piece verified before the kill is back without a recheck of the rest.
            second = ws.registry.spawn("burrow-second", argv + ["--port", str(ws.ports.take())])
            status = second.wait(DOWNLOAD_TIMEOUT)
            log = second.log_path.read_text(errors="replace")
            self.assertEqual(status, 0, "second run failed\n" + second.tail())
            match = re.search(r"(\d+)/(\d+) pieces already verified", log)
            self.assertIsNotNone(match, "no resume line in the second run\n" + second.tail())
            piece_length = 1 << PIECE_LENGTH_EXPONENT
            restored_bytes = int(match.group(1)) * piece_length
            self.assertGreaterEqual(restored_bytes + piece_length, verified_before,
                                    f"restart lost verified data: {restored_bytes} restored, "
                                    f"{verified_before} verified before SIGKILL")
            self.assertNotIn("checking", log.split("pieces already verified")[0],
                             "the restart rechecked instead of trusting the resume data")
            problems = compare_download(payload, out_dir)
            self.assertEqual(problems, [], "data differs after the restart")
            print(f"\n    burrow SIGKILLed at {verified_before} verified bytes; restart restored "
                  f"{match.group(1)}/{match.group(2)} pieces", end=" ", file=sys.stdout, flush=True)

    # -- 8. qBittorrent (qbittorrent-nox, driven through its WebUI API) --------------------------

    def test_18_burrow_downloads_from_lone_qbittorrent_seeder(self):
        # qBittorrent 4.5.2 closes many fresh incoming connections before the handshake; Burrow
        # used to hold its only peer off for 30 s after that (a 32 MiB download took 30.6 s).
        seeder, subject = self.clients("qbittorrent", "subject")
        self.transfer([seeder], subject, LONE_SEEDER_FILE, first_block_within=FIRST_BLOCK_TIMEOUT,
                      timeout=STALL_FREE_TIMEOUT)

    def test_19_qbittorrent_downloads_from_burrow(self):
        subject, downloader = self.clients("subject", "qbittorrent")
        self.transfer([subject], downloader, SINGLE_FILE, first_block_within=QBITTORRENT_FIRST_BLOCK_TIMEOUT)

    def test_20_qbittorrent_downloads_multifile_from_burrow(self):
        subject, downloader = self.clients("subject", "qbittorrent")
        self.transfer([subject], downloader, MULTI_FILE, first_block_within=QBITTORRENT_FIRST_BLOCK_TIMEOUT)

    # -- 9. Descriptor exhaustion: a connection flood under a low open-file limit -----------------

    def test_21_burrow_downloads_under_connection_flood_with_low_descriptor_limit(self):
        seeder, subject = self.clients("libtorrent", "subject")
        if not isinstance(subject, BurrowClient):
            self.skipTest("Burrow-specific: its descriptor budget")
        problems = missing_executables("prlimit")
        if problems:
            if in_ci():
                self.fail(f"CI=true and a required tool is missing ({problems[0]})")
            self.skipTest(problems[0])
        with self.workspace() as ws:
            tracker = Tracker(ws.registry, ws.ports.take(), ws.path("tracker"))
            payload = create_payload(MANY_FILES, ws.path("source"))
            torrent = make_torrent(payload, tracker.http_announce, ws.root / "many.torrent")
            tracker.start([torrent.info_hash_hex])
            data = copy_payload(payload, ws.path("seed"))
            seed = seeder.seed(ws, torrent, data.root)
            tracker.wait_for_seeders(torrent.info_hash_hex, 1, SEEDERS_READY_TIMEOUT, [seed])
            out_dir, port = ws.path("download"), ws.ports.take()
            # Throttled, so that the download lasts while the flood runs.
            burrow = ws.registry.spawn("burrow-download", [
                "prlimit", f"--nofile={FLOOD_NOFILE}:{FLOOD_NOFILE}", "--",
                subject.binary, "download", str(torrent.path), "--output", str(out_dir),
                "--allow-unbound", "--port", str(port), "--max-download", "4000", *subject.extra_args])
            wait_for_tcp(port, 15, "burrow", burrow)
            flood = ConnectionFlood(port, FLOOD_CONNECTIONS).start()
            peak = 0
            try:
                deadline = time.monotonic() + DOWNLOAD_TIMEOUT
                while not burrow.exited() and time.monotonic() < deadline:
                    try:
                        peak = max(peak, open_descriptors(burrow.pid))
                    except OSError:
                        pass  # it just exited
                    time.sleep(0.1)
            finally:
                flood.stop()
            status = burrow.wait(5)
            self.assertEqual(status, 0, "burrow failed under the flood\n" + burrow.tail())
            self.assertEqual(compare_download(payload, out_dir), [], "data differs after the flood")
            self.assertGreater(flood.closed_by_peer, FLOOD_CONNECTIONS,
                               "burrow did not close the silent connections")
            self.assertLess(peak, FLOOD_NOFILE, "burrow used every descriptor it had")
            print(f"\n    burrow under a flood of {FLOOD_CONNECTIONS} silent connections "
                  f"({flood.opened} opened, {flood.closed_by_peer} closed by burrow) with "
                  f"{FLOOD_NOFILE} descriptors: complete, peak {peak} open", end=" ", file=sys.stdout, flush=True)


def _time_to_first_block(client: Client, download, limit: float) -> float:
    """Seconds from now until `client` reports verified bytes; fails past `limit`. A download that
    already ended counts as having its first block now (its last progress line may precede it)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if client.completed_bytes(download) > 0 or download.process.exited():
            return time.monotonic() - started
        time.sleep(0.1)
    raise HarnessError(f"{client.label} verified no data within {limit:.0f}s of starting\n"
                       + client.diagnostics() + "\n" + download.process.tail())


def _stop_on_signal(signum, frame):
    # Turned into an exception so every case's cleanup (stopping processes, removing dirs) runs.
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", action="append", default=[],
                        help="only cases whose name contains this substring (repeatable)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _stop_on_signal)

    loader = unittest.TestLoader()
    if args.k:
        loader.testNamePatterns = [f"*{pattern}*" for pattern in args.k]
    suite = loader.loadTestsFromTestCase(InteropTest)
    print(f"interop suite: subject={SUBJECT}"
          + (f" ({make_client('burrow').binary})" if SUBJECT == "burrow" else "")
          + f", {suite.countTestCases()} cases, CI={'true' if in_ci() else 'false'}", flush=True)
    started = time.monotonic()
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)

    failed = [test.id().rsplit(".", 1)[-1] for test, _ in result.failures + result.errors]
    skipped = [(test.id().rsplit(".", 1)[-1], reason) for test, reason in result.skipped]
    passed = result.testsRun - len(failed) - len(skipped)
    print("\n==================== interop summary ====================")
    print(f"subject: {SUBJECT}   time: {time.monotonic() - started:.0f}s")
    print(f"passed: {passed}   failed: {len(failed)}   skipped: {len(skipped)}   total: {result.testsRun}")
    for name in failed:
        print(f"  FAILED  {name}")
    for name, reason in skipped:
        print(f"  SKIPPED {name}: {reason}")
    ok = result.wasSuccessful() and result.testsRun > 0
    print("RESULT: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
