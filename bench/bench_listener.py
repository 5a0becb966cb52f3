"""How many meters one push listener holds: connections, events/s, memory, and end to end
into Odoo.

    .venv/bin/python bench/bench_listener.py [--meters 10000] [--rate 1000] [--seconds 10]
        [--odoo --db sp_listener_bench] [--port 5410]

One `meter-bridge listen` process; this process is the fleet: a lightweight asyncio client
per meter (one TCP connection each, no DLMS server behind it) that sends real ciphered
DataNotifications, built and ciphered by the simulator's own functions
(meter_sim.objects.push_body, meter_sim.push.cipher_push) with the meter's keys and
counters. Every meter connects and pushes a heartbeat; then fraud events (cover opened,
each at its own second) go out round-robin at --rate for --seconds.

Where the listener forwards (push_ingest):
- default: a sink answering push_ingest at once (another process), so the figures are the
  listener's own (accepted connections, forwarded events/s, RSS);
- --odoo: a real Odoo (threaded, one process) with the meters in push mode in --db (made on
  the first run, reused after): every event is checked, decrypted and stored as an alarm;
  the figure is events -> alarms readable in Odoo.
The frames are ciphered before the clock starts (ciphering is the meters' work, not the
listener's). Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing
import os
import pickle
import resource
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

from common import (
    PG,
    ROOT,
    MachineBusy,
    ensure_db,
    established,
    headline,
    listener,
    push_meter_vals,
    run_odoo,
    wait_until,
)

from meter_sim.model import MeterConfig
from meter_sim.objects import push_body
from meter_sim.push import PUSH_FRAUD_EVENTS, PUSH_HEARTBEAT, cipher_push

COVER_OPEN = 40  # fraud log code (docs/meter-contract.md)
PREFIX = "LB"


# ----- the meters ------------------------------------------------------------------------
class LightMeter:
    """What push_body and cipher_push read of a meter: serial, config (keys, system title),
    invocation counter, credit, energy, relay and clock."""

    __slots__ = (
        "serial",
        "config",
        "server_invocation_counter",
        "credit_wh",
        "import_wh",
        "relay_connected",
        "now",
    )

    def __init__(self, serial: str, counter: int):
        self.serial = serial
        self.config = MeterConfig(serial, system_title=title_of(serial))
        self.server_invocation_counter = counter
        self.credit_wh, self.import_wh, self.relay_connected = 50_000, 1_000_000, True
        self.now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)

    def meter_time(self) -> dt.datetime:
        return self.now


def title_of(serial: str) -> str:
    return serial.encode().ljust(8, b"0")[:8].hex().upper()


def serials(n: int) -> list[str]:
    return [f"{PREFIX}{i:06d}" for i in range(n)]


def frame(meter: LightMeter, setup: str, event=None) -> bytes:
    return b"".join(cipher_push(meter, push_body(meter, setup, event)))


START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)  # the events' times on the meters


def _meter_frames(job):
    """One meter's frames: its heartbeat (counter 1), then its events (counters 2, 3, ...,
    cover opened one second apart)."""
    serial, n_events = job
    m = LightMeter(serial, 1)
    out = [frame(m, PUSH_HEARTBEAT)]
    for k in range(n_events):
        at = START + dt.timedelta(seconds=1 + k)
        out.append(frame(m, PUSH_FRAUD_EVENTS, SimpleNamespace(time=at, code=COVER_OPEN)))
    return out


def build_frames(names: list[str], events: int):
    """(heartbeats, events) per meter; events round-robin over the meters. Ciphered on every
    core, kept in var/ (the same meters and counters give the same frames: Odoo's counters
    and the bench's alarms are reset before each run)."""
    cache = ROOT / "var" / f"bench_listener_frames_{len(names)}_{events}.pickle"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    jobs = [(s, events // len(names) + (i < events % len(names))) for i, s in enumerate(names)]
    with multiprocessing.Pool() as pool:
        frames = pool.map(_meter_frames, jobs, chunksize=200)
    result = [f[0] for f in frames], [f[1:] for f in frames]
    cache.write_bytes(pickle.dumps(result))
    return result


async def connect_fleet(port: int, hello: list[bytes], out: dict):
    """Connect every meter, each pushing its heartbeat first; keeps the writers."""
    sem = asyncio.Semaphore(500)  # connections being opened at once

    async def connect(first: bytes):
        async with sem:
            for _attempt in range(50):
                try:
                    _r, w = await asyncio.open_connection("127.0.0.1", port)
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            else:
                raise RuntimeError("cannot connect to the listener")
        w.write(first)
        return w

    t0 = time.monotonic()
    out["writers"] = await asyncio.gather(*(connect(f) for f in hello))
    out["connect_s"] = time.monotonic() - t0


# ----- where the listener forwards ------------------------------------------------------
def sink(port, counter, first, last):
    """A push_ingest that accepts every message at once (JSON-RPC, as Odoo answers)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *a):
            pass

        def do_POST(self):  # noqa: N802
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            args = req["params"]["args"]
            if req["params"]["method"] == "authenticate":
                result = 2
            else:
                messages = args[5][1]
                result = [{"ok": True} for _ in messages]
                with counter.get_lock():
                    if not counter.value:
                        first.value = time.time()
                    counter.value += len(messages)
                    last.value = time.time()
            body = json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": result}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ----- Odoo -------------------------------------------------------------------------------
def ensure_meters(odoo, names: list[str], port: int) -> None:
    """The bench's meters in push mode (made once, reused); counters reset for this run."""
    have = odoo.call("smartpm.meter", "search_count", [("serial_number", "=like", PREFIX + "%")])
    for i in range(have, len(names), 500):
        vals = [
            push_meter_vals(serial, title_of(serial), f"127.0.0.1:{port}", 86400)
            for serial in names[i : i + 500]
        ]
        odoo.call("smartpm.meter", "create", vals)
        print(f"[bench] {i + len(vals)} meters", file=sys.stderr, flush=True)


def psql(db: str, sql: str) -> str:
    out = subprocess.run(
        ["psql", *PG, "-d", db, "-qtAX", "-c", sql], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def reset(db: str) -> None:
    """The bench's meters as new: no counter accepted, no alarm (nor its to-dos, messages,
    notifications) of an earlier run."""
    meters = f"SELECT id FROM smartpm_meter WHERE serial_number LIKE '{PREFIX}%'"
    alarms = f"SELECT id FROM smartpm_alarm WHERE meter_id IN ({meters})"
    psql(
        db,
        f"""
        DELETE FROM mail_activity WHERE res_model = 'smartpm.alarm' AND res_id IN ({alarms});
        DELETE FROM mail_message WHERE model = 'smartpm.alarm' AND res_id IN ({alarms});
        DELETE FROM sms_sms WHERE id IN (SELECT sms_id FROM
            smartpm_notification_log WHERE res_model = 'smartpm.alarm' AND res_id IN ({alarms}));
        DELETE FROM smartpm_notification_log
         WHERE res_model = 'smartpm.alarm' AND res_id IN ({alarms});
        DELETE FROM smartpm_alarm WHERE id IN ({alarms});
        UPDATE smartpm_meter SET push_invocation_counter = NULL WHERE id IN ({meters});
        """,
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--meters", type=int, default=10000)
    p.add_argument("--rate", type=float, default=1000, help="events per second, all meters")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--port", type=int, default=5410, help="the listener's (sink: port + 1)")
    p.add_argument("--odoo", action="store_true", help="forward to a real Odoo (end to end)")
    p.add_argument("--db", default="smartpm_bench")
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the listener inherits it
    if hard < args.meters + 100:
        sys.exit(f"fd limit {hard} is below {args.meters} connections")
    names = serials(args.meters)
    events = int(args.rate * args.seconds)
    t0 = time.monotonic()
    hello, later = build_frames(names, events)
    print(
        f"[bench] {len(hello) + events} frames ciphered in {time.monotonic() - t0:.1f} s",
        file=sys.stderr,
        flush=True,
    )

    with MachineBusy() as busy:
        if args.odoo:
            db = ensure_db(args.db)
            with run_odoo(db) as odoo:
                ensure_meters(odoo, names, args.port)
                reset(db)
                key = odoo.bridge_key("bench-listener")
                base = int(psql(db, "SELECT count(*) FROM smartpm_alarm"))
                with listener(odoo.url, db, "bench-listener", key, args.port) as proc:
                    res = run_fleet(
                        args,
                        proc,
                        hello,
                        later,
                        lambda: int(
                            psql(
                                db,
                                "SELECT count(*) FROM smartpm_meter WHERE serial_number LIKE "
                                f"'{PREFIX}%' AND push_invocation_counter IS NOT NULL",
                            )
                        ),
                    )

                    def stored():
                        return int(psql(db, "SELECT count(*) FROM smartpm_alarm")) - base

                    wait_until(lambda: stored() >= events, 900, 0.2, "alarms in Odoo")
                    res["stored_s"] = time.monotonic() - res["sent_at"]
                    res["forwarded"] = stored()
        else:
            n, first, last = (multiprocessing.Value("d", 0) for _ in range(3))
            sink_proc = multiprocessing.Process(
                target=sink, args=(args.port + 1, n, first, last), daemon=True
            )
            sink_proc.start()
            sink_url = f"http://127.0.0.1:{args.port + 1}"
            try:
                with listener(sink_url, "sink", "bench-listener", "k", args.port) as proc:
                    res = run_fleet(args, proc, hello, later, lambda: n.value)
                    total = len(hello) + events
                    wait_until(lambda: n.value >= total, 300, 0.05, "pushes forwarded")
                    res["stored_s"] = time.monotonic() - res["sent_at"]
                    res["forwarded"] = int(n.value) - args.meters  # the heartbeats came first
            finally:
                sink_proc.terminate()
    report(args, res, events)
    print(f"listener: {busy.line()}", flush=True)


def run_fleet(args, proc, hello, later, hellos_in) -> dict:
    """Connect the fleet (heartbeats), wait until ``hellos_in()`` says they all arrived
    where the listener forwards, then send the events at the rate."""
    res = {"rss_idle": rss_mb(proc.pid), "t0": time.monotonic()}
    out: dict = {}
    loop = asyncio.new_event_loop()
    done = threading.Event()

    def go():
        loop.run_until_complete(connect_fleet(args.port, hello, out))
        done.set()
        loop.run_forever()

    threading.Thread(target=go, daemon=True).start()
    done.wait()
    wait_until(lambda: established(args.port) >= args.meters, 120, 0.2, "connections")
    res["connect_s"] = out["connect_s"]
    res["held"] = established(args.port)
    wait_until(lambda: hellos_in() >= args.meters, 900, 0.2, "heartbeats forwarded")
    res["hello_s"] = time.monotonic() - res["t0"]
    time.sleep(1)
    res["rss_held"] = rss_mb(proc.pid)
    conns = out["writers"]
    by_writer = [(conns[i], fs) for i, fs in enumerate(later)]
    sent = {}

    async def send():
        t0 = time.monotonic()
        sent["at"] = t0
        longest = max((len(fs) for _w, fs in by_writer), default=0)
        n = 0
        for k in range(longest):
            for w, fs in by_writer:
                if k < len(fs):
                    w.write(fs[k])
                    n += 1
                    ahead = n / args.rate - (time.monotonic() - t0)
                    if ahead > 0.002:
                        await asyncio.sleep(ahead)
        sent["s"] = time.monotonic() - t0
        sent["n"] = n

    asyncio.run_coroutine_threadsafe(send(), loop).result()
    res["sent_at"] = sent["at"]
    res["send_s"] = sent["s"]
    res["rss_busy"] = rss_mb(proc.pid)
    res["held_after"] = established(args.port)
    res["loop"] = loop
    return res


def report(args, res, events):
    mode = "into Odoo" if args.odoo else "to a push_ingest sink"
    print(
        f"listener: {res['held']} connections held ({args.meters} meters connected and "
        f"sent a heartbeat in {res['connect_s']:.1f} s, all heartbeats forwarded "
        f"{mode} in {res['hello_s']:.1f} s; {res['held_after']} still held after the "
        f"events)\n"
        f"listener RSS: {res['rss_idle']:.0f} MB idle, {res['rss_held']:.0f} MB with the "
        f"connections, {res['rss_busy']:.0f} MB after the events "
        f"({(res['rss_held'] - res['rss_idle']) * 1024 / max(1, res['held']):.1f} KB per "
        f"connection)\n"
        f"events: {events} sent in {res['send_s']:.1f} s ({events / res['send_s']:.0f}/s); "
        f"{res['forwarded']} forwarded {mode}{' (alarms stored)' if args.odoo else ''} "
        f"{res['stored_s']:.1f} s after the first "
        f"= {events / res['stored_s']:.0f} events/s end to end, the last "
        f"{res['stored_s'] - res['send_s']:.1f} s after it was sent; cores={os.cpu_count()}",
        flush=True,
    )
    headline(f"listener: events/s end to end {mode}", events / res["stored_s"], None, " /s")
    headline(
        "listener: RSS per held connection",
        (res["rss_held"] - res["rss_idle"]) * 1024 / max(1, res["held"]),
        None,
        " KB",
    )


if __name__ == "__main__":
    main()
