"""`meter-bridge read`: read OBIS objects from one meter, for a field engineer.

Examples:
  meter-bridge read 127.0.0.1:4100 1.0.1.8.0.255 1.0.32.7.0.255
  meter-bridge read 10.0.0.7:4059 --hdlc --client 1 --auth lls --password 00000000 0.0.1.0.0.255
  meter-bridge read --serial /dev/ttyUSB0 --baud 9600 1.0.1.8.0.255
  meter-bridge read 127.0.0.1:4100 1.0.99.1.0.255 --from 2025-01-01T00:00Z --to 2025-01-02T00:00Z
  meter-bridge read 127.0.0.1:4100 0.0.1.0.0.255 1.0.32.7.0.255:3:3 --json

Values are decoded for a person (meter_bridge.describe): clocks as ISO local time with the
deviation and clock status, scaler_unit as "10^-1 V", registers scaled with their unit,
enumerations by name where the Blue Book names them, structures item by item. --json prints
the same as one document: per reading "value" (for programs), "text" (as printed), "type"
and the details of its type.
"""

from __future__ import annotations

import argparse
import json
import sys

from .codec import DataError, iso, parse_iso, scale, to_json
from .describe import describe
from .dlms import MeterConnection
from .errors import JobError
from .obis import KNOWN_IC, SCALED_CLASSES, normalize_obis, unit_name

EXIT_OK, EXIT_PARTIAL, EXIT_FAILED, EXIT_USAGE = 0, 1, 3, 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="meter-bridge read",
        description="Read objects from one DLMS/COSEM meter and print them.",
        epilog="OBIS may carry the interface class and attribute: 1.0.1.8.0.255:3:2. "
        "Without them the class comes from the SmartPM meter contract (else Data, 1) "
        "and the attribute is 2. Profiles (class 7) print one line per entry. "
        "Exit status: 0 all read, 1 some objects refused, 3 meter failed, 2 usage.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("target", nargs="?", help="HOST:PORT of a TCP meter (omit with --serial)")
    p.add_argument("obis", nargs="+", help="OBIS codes to read, e.g. 1.0.1.8.0.255[:IC[:ATTR]]")
    p.add_argument("--serial", metavar="DEVICE", help="serial device (HDLC), e.g. /dev/ttyUSB0")
    p.add_argument("--baud", type=int, default=9600, help="serial baud rate (default 9600)")
    framing = p.add_mutually_exclusive_group()
    framing.add_argument("--hdlc", action="store_true", help="HDLC framing over TCP")
    framing.add_argument(
        "--wrapper", action="store_true", help="IEC 62056-47 wrapper over TCP (the default)"
    )
    p.add_argument(
        "--client",
        type=int,
        default=None,
        help="client address (default 16 without auth, 1 with auth)",
    )
    p.add_argument("--server-logical", type=int, default=1, help="server logical address (1)")
    p.add_argument(
        "--server-physical", type=int, default=17, help="HDLC server physical address (17)"
    )
    p.add_argument("--auth", choices=["none", "lls", "hls_gmac"], default="none")
    p.add_argument("--password", help="LLS password")
    p.add_argument("--auth-key", help="HLS-GMAC authentication key (hex)")
    p.add_argument("--encryption-key", help="HLS-GMAC encryption key (hex)")
    p.add_argument(
        "--invocation-counter",
        type=int,
        default=0,
        help="HLS-GMAC: last invocation counter used with this meter",
    )
    p.add_argument(
        "--challenge-length",
        type=int,
        default=None,
        help="HLS-GMAC: bytes of the client's challenge, 8..64 (default 32)",
    )
    p.add_argument("--from", dest="from_", metavar="ISO", help="profile range start (UTC)")
    p.add_argument("--to", metavar="ISO", help="profile range end (UTC, default now)")
    p.add_argument("--timeout", type=float, default=10, help="seconds per answer (10)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--debug", action="store_true", help="log every DLMS frame")
    return p


def parse_object(text: str) -> tuple[str, int, int]:
    parts = text.split(":") if text.count(":") <= 2 and "-" not in text else [text]
    obis = normalize_obis(parts[0])
    ic = int(parts[1]) if len(parts) > 1 else KNOWN_IC.get(obis, 1)
    attr = int(parts[2]) if len(parts) > 2 else 2
    return obis, ic, attr


def meter_from_args(args) -> dict:
    meter = {
        "auth": args.auth,
        "password": args.password,
        "auth_key": args.auth_key,
        "encryption_key": args.encryption_key,
        "invocation_counter": args.invocation_counter,
        "client_address": args.client
        if args.client is not None
        else (16 if args.auth == "none" else 1),
        "server_logical_address": args.server_logical,
        "server_physical_address": args.server_physical,
        "timeout_s": args.timeout,
        "hls_challenge_length": args.challenge_length,
    }
    if args.serial:
        meter.update(
            connection_type="serial", framing="hdlc", device=args.serial, baudrate=args.baud
        )
    else:
        host, _, port = (args.target or "").rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("target must be HOST:PORT (or use --serial DEVICE)")
        meter.update(
            connection_type="tcp",
            host=host,
            port=int(port),
            framing="hdlc" if args.hdlc else "wrapper",
        )
    return meter


def main_read(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    if args.serial and args.target:
        # with --serial every positional is an OBIS code
        args.obis.insert(0, args.target)
        args.target = None
    try:
        meter = meter_from_args(args)
        objects = [parse_object(o) for o in args.obis]
        start, end = parse_iso(args.from_), parse_iso(args.to)
    except ValueError as e:
        parser.error(str(e))
    out: dict = {"readings": [], "profiles": {}, "errors": {}}
    try:
        with MeterConnection.from_job_meter(
            meter, debug=args.debug, deadline_s=args.timeout * (4 + 2 * len(objects))
        ) as conn:
            for obis, ic, attr in objects:
                try:
                    if ic == 7 and attr == 2:
                        rows = (
                            conn.get_profile(obis, start, end)
                            if (start or end)
                            else conn.get_profile(obis)
                        )
                        out["profiles"][obis] = [to_json(r) for r in rows]
                    else:
                        out["readings"].append(read_described(conn, obis, ic, attr))
                except JobError as e:
                    if not e.retryable or type(e) is JobError:
                        out["errors"][obis] = str(e)
                    else:
                        raise
            if conn.invocation_counter is not None:
                out["invocation_counter"] = conn.invocation_counter
            if conn.warnings:
                out["warnings"] = list(conn.warnings)
    except JobError as e:
        print(f"error: {e}", file=sys.stderr)
        if getattr(e, "invocation_counter", None) is not None:
            print(f"invocation counter now {e.invocation_counter}", file=sys.stderr)
        return EXIT_FAILED
    _print(out, args.json)
    return EXIT_PARTIAL if out["errors"] else EXIT_OK


def read_described(conn, obis: str, ic: int, attr: int) -> dict:
    """One attribute read and described (meter_bridge.describe): the value for a program
    ("value", scaled with its unit for registers) and for a person ("text")."""
    raw = conn.get_raw(obis, ic, attr)
    try:
        described = describe(raw, ic, attr)
    except DataError as e:
        raise JobError(f"GET {obis}/{ic}/{attr}: undecodable answer: {e}") from e
    reading = {"obis": obis, "ic": ic, "attribute": attr, **described, "unit": ""}
    if "trailing_bytes" in described:
        conn.warnings.append(
            f"GET {obis}/{ic}/{attr}: {len(described['trailing_bytes']) // 2} trailing bytes "
            f"after the value ignored"
        )
    if attr == 2 and ic in SCALED_CLASSES and isinstance(described.get("value"), (int, float)):
        scaler, unit = conn.scaler_unit(obis, ic)
        value = scale(described["value"], scaler)
        reading.update(value=to_json(value), unit=unit_name(unit), scaler=scaler)
        reading["text"] = f"{value} {reading['unit']}".rstrip()
    elif described["type"] == "scaler_unit":
        reading["unit"] = described["unit"]
    return reading


def _print(out: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(out, indent=2, default=str))
        return
    for r in out["readings"]:
        print(f"{r['obis']:<18} {r['text']}".rstrip())
    for obis, rows in out["profiles"].items():
        print(f"{obis} ({len(rows)} entries)")
        for row in rows:
            print("  " + "  ".join(str(v) for v in row))
    for obis, msg in out["errors"].items():
        print(f"{obis:<18} ERROR {msg}")
    for warning in out.get("warnings", []):
        print(f"warning: {warning}")
    if "invocation_counter" in out:
        print(f"invocation counter now {out['invocation_counter']}")


__all__ = ["main_read", "build_parser", "iso"]
