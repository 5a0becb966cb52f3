# SPDX-License-Identifier: GPL-2.0-or-later
"""`meter-sim`: serve a fleet of simulated prepaid meters (DLMS/COSEM) from one process."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from .fleet import Fleet, default_configs, load_config

EPILOG = """\
examples:
  meter-sim --meters 200 --base-port 4100
      200 meters SIM00001..SIM00200 on 127.0.0.1:4100..4299, DLMS over TCP with the
      IEC 62056-47 wrapper, locked as real prepaid meters are: the public client (16,
      no authentication) may only GET the logical device name, the serial number and the
      clock; everything else takes the management client (1) with HLS-GMAC and the meter's
      keys (server address 1).
  meter-sim --meters 24 --key-seed smartpm-demo
      the keys of each meter (HLS-GMAC encryption and authentication keys, credit-token
      key) are derived from the seed and the serial (meter_sim/security.py), so that an
      Odoo database can hold the same keys: for the demo and the tests only. The default
      seed is the demo data's.
  meter-sim --meters 25 --money-meters SIM00025
      SIM00025 in money mode: its credit (50 by default) is in currency and it charges
      consumption at the price of the band of the activity calendar Odoo pushes to it
      (time-of-use tariffs); the other 24 hold credit in kWh.
  meter-sim --meters 10000 --latency-ms 500 --jitter-ms 100 --loss 0.01
      meters on a slow link (GPRS): every answer leaves 400-600 ms after its request,
      1 % of request frames are lost (the client times out and retries); one process and
      one network thread serve them all. In a --config file: "latency_ms", "jitter_ms",
      "loss" at the top (every meter) or in a meter (that one).
  meter-sim --meters 5 --speed 60 --control-port 4099
      one simulated minute per second; HTTP control on http://127.0.0.1:4099/meters
  meter-sim --config fleet.json     (auth: hls | lls | none; framing: wrapper | hdlc)
      meters described one by one, e.g.
      {"seed": 1, "speed": 1, "control_port": 4099, "meters": [
        {"serial": "SIM00001", "port": 4100},
        {"serial": "M-HDLC", "port": 4101, "framing": "hdlc", "auth": "lls",
         "password": "12345678"},
        {"serial": "M-LIMIT", "port": 4102, "credit_kwh": 20, "low_credit_kwh": 5,
         "trip_kwh": 0, "load_limit_w": 5000, "control_mode": 5,
         "reconnect_delay_s": 60, "reconnect_attempts_per_hour": 3,
         "emergency_credit_kwh": 5, "emergency_threshold_kwh": 2,
         "load": {"base_w": 300, "peak_w": 900, "noise": 0.1}},
        {"serial": "M-HLS", "port": 4103, "auth": "hls",
         "encryption_key": "000102030405060708090A0B0C0D0E0F",
         "authentication_key": "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF",
         "token_key": "00112233445566778899AABBCCDDEEFF",
         "system_title": "534D503030303031"},
        {"serial": "M-SERIAL", "serial_device": "/dev/ttyUSB0", "framing": "hdlc"}]}

connecting a client: client address 16 (public, no authentication) reads identification
only.
Client 1 of meters with auth lls (LLS password) or none may GET every object but not SET
or ACTION; client 1 of meters with auth hls (the default) may do everything, HLS-GMAC
with the meter's keys, every APDU
glo-ciphered, the client's invocation counter strictly increasing (a lower one is
refused, even in a new association); system_title defaults to "SIM" + the serial's last
5 characters. HDLC
meters use server physical address 17 unless "server_physical_address" says otherwise.
The object list (OBIS codes) is in docs/meter-contract.md.

HTTP control (--control-port):
  curl localhost:4099/meters                       list of meters and ports
  curl localhost:4099/meters/SIM00001              true state: credit, relay, events...
  curl -XPOST -d '{"kind":"cover_open"}' localhost:4099/meters/SIM00001/tamper
        kinds: cover_open, cover_close, over_current, reverse_connection
  curl -XPOST -d '{"watts":6000}' localhost:4099/meters/SIM00001/load
  curl -XPOST -d '{"offline":true}' localhost:4099/meters/SIM00001/offline
  curl -XPOST -d '{}' localhost:4099/meters/SIM00001/button
        the meter's button: takes emergency credit when credit is at or below its level

Stop with Ctrl-C or SIGTERM.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="meter-sim",
        description="Serve simulated prepaid electricity meters that speak DLMS/COSEM "
        "(logical-name referencing) on loopback TCP ports, one port per meter.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_meter_arguments(p)
    _add_fleet_arguments(p)
    return p


def _add_meter_arguments(p: argparse.ArgumentParser) -> None:
    """The generated meters: how many, where, how they talk and what they hold."""
    p.add_argument(
        "--meters",
        type=int,
        default=1,
        metavar="N",
        help="number of meters SIM00001.. (default 1; ignored with --config)",
    )
    p.add_argument(
        "--base-port",
        type=int,
        default=4100,
        metavar="P",
        help="TCP port of the first meter, the next ones follow (default 4100; "
        "0 = any free port each)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--framing",
        choices=("wrapper", "hdlc"),
        default="wrapper",
        help="framing of the generated meters (default wrapper)",
    )
    p.add_argument(
        "--auth",
        choices=("hls", "lls", "none"),
        default="hls",
        help="authentication of the management client of the generated meters "
        "(default hls; SET and ACTION need hls)",
    )
    p.add_argument(
        "--key-seed",
        default=None,
        metavar="SEED",
        help="derive each generated meter's keys from SEED and its serial "
        "(demo and tests only; default: the demo data's seed)",
    )
    p.add_argument(
        "--object-map",
        metavar="FILE",
        help="JSON file {contract OBIS: OBIS}: the generated meters serve those objects at "
        "other OBIS codes, as another vendor's meter does, e.g. "
        '{"0.0.19.10.0.255": "0.128.96.50.0.255"} (default: the SmartPM contract; in a '
        '--config file, the key "object_map" of each meter)',
    )
    p.add_argument(
        "--credit-kwh",
        type=float,
        default=50.0,
        help="initial credit of the generated meters (default 50; in currency units on "
        "money-mode meters)",
    )
    p.add_argument(
        "--latency-ms",
        type=float,
        default=None,
        metavar="MS",
        help="each meter answers MS milliseconds after a request, as over GPRS "
        "(default 0; with --config: replaces its top-level latency_ms, a meter's own wins)",
    )
    p.add_argument(
        "--jitter-ms",
        type=float,
        default=None,
        metavar="MS",
        help="the latency varies by up to +/- MS milliseconds, uniformly (default 0)",
    )
    p.add_argument(
        "--loss",
        type=float,
        default=None,
        metavar="P",
        help="share of request frames lost on the link, unanswered (default 0; e.g. 0.01)",
    )
    p.add_argument(
        "--money-meters",
        default="",
        metavar="SERIALS",
        help="comma-separated serials of generated meters in money mode (credit held in "
        "currency, consumption charged at the time-of-use band's price), e.g. SIM00025; "
        "the others hold credit in kWh",
    )


def _add_fleet_arguments(p: argparse.ArgumentParser) -> None:
    """The fleet as a whole: time, load model, configuration file, control, output."""
    p.add_argument(
        "--speed",
        type=float,
        default=None,
        metavar="X",
        help="simulated seconds per real second (default 1; 0 freezes time)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="S",
        help="seed of the load model; same seed = same consumption (default 0)",
    )
    p.add_argument(
        "--config", metavar="FILE", help="JSON file describing the meters (see examples below)"
    )
    p.add_argument(
        "--control-port",
        type=int,
        default=None,
        metavar="PORT",
        help="port of the local HTTP control interface (0 = any free port; "
        "default: no control interface)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the listening meters as one JSON line (for scripts)",
    )


def _link(args) -> dict:
    """The link settings given on the command line."""
    given = {"latency_ms": args.latency_ms, "jitter_ms": args.jitter_ms, "loss": args.loss}
    return {k: v for k, v in given.items() if v is not None}


def _meters(args):
    """(meter configs, extra settings of the config file); ValueError on bad input."""
    if args.config:
        try:
            return load_config(args.config, _link(args))
        except (OSError, ValueError, TypeError) as e:
            raise ValueError(f"bad --config: {e}") from e
    if args.meters < 1:
        raise ValueError("--meters must be at least 1")
    keys = {"key_seed": args.key_seed} if args.key_seed else {}
    money = {s.strip() for s in args.money_meters.split(",") if s.strip()}
    if args.object_map:
        try:
            with open(args.object_map, encoding="utf-8") as f:
                keys["object_map"] = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError(f"bad --object-map: {e}") from e
    meters = default_configs(
        args.meters,
        args.base_port,
        framing=args.framing,
        credit_kwh=args.credit_kwh,
        auth=args.auth,
        **keys,
        **_link(args),
    )
    unknown = money - {m.serial for m in meters}
    if unknown:
        raise ValueError(f"--money-meters: no generated meter {', '.join(sorted(unknown))}")
    for meter in meters:
        if meter.serial in money:
            meter.credit_mode = "money"
    return meters, {}


def _print_listing(fleet, args) -> list:
    listing = fleet.listing()
    if args.json:
        control_port = fleet.control.port if fleet.control else None
        print(json.dumps({"meters": listing, "control_port": control_port}), flush=True)
        return listing
    for m in listing:
        where = m["serial_device"] or f"{m['host']}:{m['port']}"
        print(
            f"{m['serial']} {where} {m['framing']} auth={m['auth']} client={m['client_address']}",
            flush=True,
        )
    if fleet.control:
        print(f"control http://{args.host}:{fleet.control.port}/meters", flush=True)
    return listing


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        meters, extra = _meters(args)
    except ValueError as e:
        print(f"meter-sim: {e}", file=sys.stderr)
        return 2
    speed = args.speed if args.speed is not None else extra.get("speed", 1.0)
    seed = args.seed if args.seed is not None else extra.get("seed", 0)
    control_port = args.control_port if args.control_port is not None else extra.get("control_port")
    try:
        fleet = Fleet(
            meters=meters, speed=speed, seed=seed, host=args.host, control_port=control_port
        )
    except ValueError as e:
        print(f"meter-sim: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        fleet.start()
    except OSError as e:
        print(f"meter-sim: cannot listen: {e}", file=sys.stderr)
        return 1
    try:
        listing = _print_listing(fleet, args)
        print(f"meter-sim ready: {len(listing)} meters, speed {speed}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        fleet.stop()
        print("meter-sim stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
