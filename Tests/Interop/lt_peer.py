#!/usr/bin/python3
"""A python3-libtorrent peer used as a reference client by the interop suite and the benchmark.

  lt_peer.py seed     --torrent T --save DIR --listen IP:PORT [--seed-mode]
  lt_peer.py download (--torrent T | --magnet URI) --save DIR --listen IP:PORT [--timeout S]

`seed` checks (or, with --seed-mode, trusts) the data under DIR and seeds until SIGTERM/SIGINT.
`download` exits 0 once libtorrent reports the torrent complete (every piece hash-checked),
1 on a torrent error, 2 on timeout. Progress goes to stdout, one line per second.

The session is TCP only (uTP off) with DHT, LSD, UPnP and NAT-PMP off, so peers are found only
through the tracker, and several peers may share one IP (everything runs on 127.0.0.1).
LT_PEER_LOG=1 in the environment logs every peer-wire message sent and received.
"""

import argparse
import os
import signal
import sys
import time

import libtorrent as lt


def make_session(listen: str) -> lt.session:
    settings = {
        "listen_interfaces": listen,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_tcp": True,
        "enable_outgoing_tcp": True,
        # Every peer of a test shares 127.0.0.1; libtorrent would otherwise keep only one.
        "allow_multiple_connections_per_ip": True,
        # Plain BitTorrent handshakes only: the peers we talk to need not speak MSE.
        "out_enc_policy": lt.enc_policy.disabled,
        "in_enc_policy": lt.enc_policy.enabled,
        "alert_mask": lt.alert_category.error | lt.alert_category.status
        | lt.alert_category.tracker | lt.alert_category.peer | lt.alert_category.connect,
        "user_agent": "burrow-interop-libtorrent",
    }
    if os.environ.get("LT_PEER_LOG") == "1":
        # Every message sent and received, for diagnosing a peer's behaviour (very verbose).
        settings["alert_mask"] |= lt.alert_category.peer_log
    return lt.session(settings)


def log(message: str) -> None:
    print(f"[lt_peer {time.strftime('%H:%M:%S')}] {message}", flush=True)


def drain_alerts(session: lt.session) -> list:
    alerts = session.pop_alerts()
    for alert in alerts:
        if isinstance(alert, (lt.tracker_error_alert, lt.tracker_reply_alert,
                              lt.tracker_warning_alert, lt.torrent_error_alert,
                              lt.peer_error_alert, lt.peer_disconnected_alert,
                              lt.peer_connect_alert, lt.metadata_received_alert,
                              lt.torrent_finished_alert, lt.file_error_alert,
                              lt.hash_failed_alert, lt.peer_log_alert)):
            log(f"alert {type(alert).__name__}: {alert.message()}")
    return alerts


def add_params(args) -> lt.add_torrent_params:
    if args.magnet:
        params = lt.parse_magnet_uri(args.magnet)
    else:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(args.torrent)
    params.save_path = args.save
    # Not auto-managed: the queueing logic must never pause a test torrent.
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    if getattr(args, "seed_mode", False):
        params.flags |= lt.torrent_flags.seed_mode
    return params


def describe(status) -> str:
    return (f"state={status.state} progress={status.progress * 100:.1f}% "
            f"peers={status.num_peers} seeds={status.num_seeds} "
            f"down={status.download_rate / 1e6:.2f}MB/s up={status.upload_rate / 1e6:.2f}MB/s "
            f"total_done={status.total_done}")


def run_seed(args) -> int:
    stop = {"requested": False}

    def request_stop(signum, frame):
        stop["requested"] = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    session = make_session(args.listen)
    handle = session.add_torrent(add_params(args))
    announced_as_seed = False
    last_report = 0.0
    while not stop["requested"]:
        drain_alerts(session)
        status = handle.status()
        if status.errc.value() != 0:
            log(f"torrent error: {status.errc.message()}")
            return 1
        if status.is_seeding and not announced_as_seed:
            # Re-announce right away so the tracker lists us as complete without waiting an interval.
            handle.force_reannounce()
            announced_as_seed = True
            log("seeding")
        if time.monotonic() - last_report >= 1.0:
            log(describe(status))
            last_report = time.monotonic()
        time.sleep(0.1)
    log("stopping")
    return 0


def run_download(args) -> int:
    session = make_session(args.listen)
    handle = session.add_torrent(add_params(args))
    deadline = time.monotonic() + args.timeout
    last_report = 0.0
    while time.monotonic() < deadline:
        drain_alerts(session)
        status = handle.status()
        if status.errc.value() != 0:
            log(f"torrent error: {status.errc.message()}")
            return 1
        if status.has_metadata and status.is_seeding:
            log(f"complete: {describe(status)}")
            return 0
        if time.monotonic() - last_report >= 1.0:
            log(describe(status))
            last_report = time.monotonic()
        time.sleep(0.05)
    log(f"timeout after {args.timeout}s: {describe(handle.status())}")
    return 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    seed = sub.add_parser("seed")
    seed.add_argument("--torrent", required=True)
    seed.add_argument("--seed-mode", action="store_true",
                      help="trust the data instead of checking it up front (pieces are checked when first sent)")
    download = sub.add_parser("download")
    source = download.add_mutually_exclusive_group(required=True)
    source.add_argument("--torrent")
    source.add_argument("--magnet")
    download.add_argument("--timeout", type=float, default=120.0)
    for command in (seed, download):
        command.add_argument("--save", required=True, help="directory holding <torrent name>")
        command.add_argument("--listen", required=True, help="IP:PORT to listen on")
    args = parser.parse_args()
    if args.command == "seed":
        args.magnet = None
        return run_seed(args)
    return run_download(args)


if __name__ == "__main__":
    sys.exit(main())
