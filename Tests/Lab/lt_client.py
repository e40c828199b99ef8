#!/usr/bin/python3
"""Stand-in client for the tunnel lab: python3-libtorrent bound to VPN interfaces.

  lt_client.py --torrent T --output DIR --bind wg0[,tun0] --port N

listen_interfaces and outgoing_interfaces are set to the --bind interfaces (libtorrent binds its
sockets to them by name); names are resolved by libtorrent's own resolver, i.e. the system resolver.
Prints one progress line per second in Burrow's non-TTY format ("<name>  <pct>%  <done>/<total>  ...")
so the lab parses every client's progress the same way; exits 0 once every piece is verified.
"""

import argparse
import sys
import time

import libtorrent as lt


def size(value: int) -> str:
    units = ["B", "KiB", "MiB", "GiB"]
    amount, unit = float(value), 0
    while amount >= 1024 and unit < len(units) - 1:
        amount /= 1024
        unit += 1
    return f"{value} B" if unit == 0 else f"{amount:.1f} {units[unit]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--torrent", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    interfaces = [name for name in args.bind.split(",") if name]
    session = lt.session({
        "listen_interfaces": ",".join(f"{name}:{args.port}" for name in interfaces),
        "outgoing_interfaces": ",".join(interfaces),
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_incoming_utp": False, "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "out_enc_policy": lt.enc_policy.disabled, "in_enc_policy": lt.enc_policy.enabled,
        "alert_mask": lt.alert_category.error | lt.alert_category.status | lt.alert_category.tracker
        | lt.alert_category.connect,
        "user_agent": "burrow-lab-lt-standin",
    })
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(args.torrent)
    params.save_path = args.output
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    handle = session.add_torrent(params)
    name = params.ti.name()
    last_report = 0.0
    while True:
        for alert in session.pop_alerts():
            if isinstance(alert, (lt.tracker_error_alert, lt.tracker_reply_alert, lt.listen_failed_alert,
                                  lt.listen_succeeded_alert, lt.torrent_error_alert, lt.peer_error_alert)):
                print(f"[lt {time.strftime('%H:%M:%S')}] {type(alert).__name__}: {alert.message()}",
                      file=sys.stderr, flush=True)
        status = handle.status()
        if status.errc.value() != 0:
            print(f"failed: {status.errc.message()}", flush=True)
            return 1
        now = time.monotonic()
        if now - last_report >= 1.0 or status.is_seeding:
            print(f"{name}  {status.progress * 100:.1f}%  {size(status.total_wanted_done)}/{size(status.total_wanted)}"
                  f"  down {size(status.download_rate)}/s  peers {status.num_peers}", flush=True)
            last_report = now
        if status.is_seeding:
            print("complete: every selected file is verified", flush=True)
            return 0
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
