#!/usr/bin/python3
"""A throttled python3-libtorrent seeder for the tunnel lab that records every peer address it sees.

  seeder.py --torrent T --save DIR --listen IP:PORT --upload-rate BYTES_PER_S --peer-log FILE

Trusts the data (seed mode), announces to the torrent's tracker from IP (the listen address), and
appends "<unix time> <peer ip> <how>" to FILE the first time each peer IP shows up, whether from an
incoming-connection alert (catches connections too short-lived for polling) or from polling
handle.get_peer_info() every 100 ms. Prints "announced" once the tracker accepted an announce.
TCP only; DHT, LSD, UPnP, NAT-PMP and uTP off; several connections per IP allowed.
"""

import argparse
import signal
import sys
import time

import libtorrent as lt


def log(message: str) -> None:
    print(f"[seeder {time.strftime('%H:%M:%S')}] {message}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--torrent", required=True)
    parser.add_argument("--save", required=True)
    parser.add_argument("--listen", required=True, help="IP:PORT")
    parser.add_argument("--upload-rate", type=int, required=True, help="bytes per second, 0 = unlimited")
    parser.add_argument("--peer-log", required=True)
    args = parser.parse_args()
    listen_ip = args.listen.rsplit(":", 1)[0]

    stop = {"requested": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(requested=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(requested=True))

    session = lt.session({
        "listen_interfaces": args.listen,
        # Outgoing connections (tracker announces included) leave from the seeder's own address, so
        # the tracker lists each seeder under its own IP although they share one interface.
        "outgoing_interfaces": listen_ip,
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_incoming_utp": False, "enable_outgoing_utp": False,
        "enable_incoming_tcp": True, "enable_outgoing_tcp": True,
        "allow_multiple_connections_per_ip": True,
        "upload_rate_limit": args.upload_rate,
        "out_enc_policy": lt.enc_policy.disabled, "in_enc_policy": lt.enc_policy.enabled,
        "alert_mask": lt.alert_category.error | lt.alert_category.status | lt.alert_category.tracker
        | lt.alert_category.peer | lt.alert_category.connect,
        "user_agent": "burrow-lab-seeder",
    })
    # libtorrent exempts "local" peers (private ranges, like every lab address) from rate limits by
    # putting them in the local peer class; put every address in the global class instead.
    everyone = lt.ip_filter()
    everyone.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
    session.set_peer_class_filter(everyone)
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(args.torrent)
    params.save_path = args.save
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    params.flags |= lt.torrent_flags.seed_mode
    handle = session.add_torrent(params)

    seen: set[str] = set()
    peer_log = open(args.peer_log, "a", buffering=1)

    def record(ip: str, how: str) -> None:
        if ip and ip not in seen:
            seen.add(ip)
            peer_log.write(f"{time.time():.3f} {ip} {how}\n")
            log(f"new peer address {ip} ({how})")

    announced = False
    last_report = 0.0
    while not stop["requested"]:
        for alert in session.pop_alerts():
            if isinstance(alert, lt.incoming_connection_alert):
                record(alert.endpoint[0], "incoming")
            elif isinstance(alert, (lt.peer_connect_alert, lt.peer_disconnected_alert, lt.peer_error_alert)):
                record(alert.endpoint[0], type(alert).__name__)
            if isinstance(alert, lt.tracker_reply_alert) and not announced:
                announced = True
                log(f"announced: {alert.message()}")
            elif isinstance(alert, (lt.tracker_error_alert, lt.torrent_error_alert, lt.listen_failed_alert)):
                log(f"alert {type(alert).__name__}: {alert.message()}")
        for peer in handle.get_peer_info():
            record(peer.ip[0], "peer_info")
        now = time.monotonic()
        if now - last_report >= 5:
            status = handle.status()
            log(f"peers={status.num_peers} up={status.upload_rate / 1e6:.2f}MB/s "
                f"uploaded={status.all_time_upload}")
            last_report = now
        time.sleep(0.1)
    log("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
