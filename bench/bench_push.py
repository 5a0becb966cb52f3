"""Push: event on a meter -> alarm in Odoo through `meter-bridge listen` (p50, p95), the
connections one listener holds, and a burst's events/s.

    .venv/bin/python bench/bench_push.py [--meters 500] [--events 50] [--db smartpm_bench]

A fleet of simulated meters in push mode (this process) connects to one listener process
(`meter-bridge listen`), which forwards to a real Odoo (HTTP, threaded). Latency: one cover
opening at a time on a random meter, timed until the alarm is readable over XML-RPC
(polling every 10 ms, so the figure includes up to 10 ms of polling). Not a test.
"""

from __future__ import annotations

import argparse
import random
import socket
import time
import uuid

from common import (
    ensure_db,
    established,
    figures,
    listener,
    push_meter_vals,
    run_odoo,
    wait_until,
)

from meter_sim.fleet import Fleet
from meter_sim.model import MeterConfig


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--meters", type=int, default=500)
    p.add_argument("--events", type=int, default=50)
    p.add_argument("--db", default="smartpm_bench")
    args = p.parse_args()
    db = ensure_db(args.db)
    run = uuid.uuid4().hex[:5].upper()
    serials = [f"P{run}{i:05d}" for i in range(args.meters)]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with run_odoo(db) as odoo:
        key = odoo.bridge_key("bench-push")
        # system titles unique to this run (the simulator's default repeats across runs)
        titles = {s: (run[:3] + s[-5:]).encode().hex().upper() for s in serials}
        dest = f"127.0.0.1:{port}"
        vals = [push_meter_vals(s, titles[s], dest, 3600) for s in serials]
        ids = dict(zip(serials, odoo.call("smartpm.meter", "create", vals), strict=True))
        configs = [
            MeterConfig(s, push_destination=f"127.0.0.1:{port}", system_title=titles[s])
            for s in serials
        ]
        with listener(odoo.url, odoo.db, "bench-push", key, port), Fleet(configs, speed=0) as fleet:
            t0 = time.monotonic()
            for s in serials:  # every meter says hello: one connection each
                fleet.push.heartbeat(s)
            wait_until(lambda: established(port) >= args.meters, 120, 0.2, "connections")
            connect_s = time.monotonic() - t0
            held = established(port)

            latencies = []
            for _ in range(args.events):
                serial = random.choice(serials)
                meter_id = ids[serial]
                before = odoo.call("smartpm.alarm", "search_count", [("meter_id", "=", meter_id)])
                start = time.monotonic()
                fleet.meter(serial).tamper("cover_open")
                fleet.meter(serial).advance(1)  # the next event at another second
                while (
                    odoo.call("smartpm.alarm", "search_count", [("meter_id", "=", meter_id)])
                    == before
                ):
                    time.sleep(0.01)
                latencies.append(time.monotonic() - start)

            # burst: every meter's cover at once
            start = time.monotonic()
            base = odoo.call(
                "smartpm.alarm", "search_count", [("meter_id", "in", list(ids.values()))]
            )
            for s in serials:
                fleet.meter(s).tamper("reverse_connection")
            wait_until(
                lambda: (
                    odoo.call(
                        "smartpm.alarm", "search_count", [("meter_id", "in", list(ids.values()))]
                    )
                    >= base + args.meters
                ),
                600,
                0.05,
                "burst alarms",
            )
            burst_s = time.monotonic() - start
    figures("event -> alarm", latencies)
    print(f"connections held by one listener: {held} (all {args.meters} up in {connect_s:.1f} s)")
    print(
        f"burst: {args.meters} events -> alarms in {burst_s:.2f} s = {args.meters / burst_s:.0f}/s"
    )


if __name__ == "__main__":
    main()
