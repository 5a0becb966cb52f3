"""Vend to meter: N purchases through the bank XML-RPC API against a demo database; time
from the purchase's commit (the call's answer) to the simulated meter holding the credit,
read from the meter's own state, not from Odoo. One idle bridge.

    .venv/bin/python bench/bench_vend.py [--purchases 200] [--db smartpm_bench_demo]

The demo database is created with demo data when missing ("Demo Bank", login demo_bank).
Not a test: it prints its figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
import urllib.request
import uuid
import xmlrpc.client

from common import ensure_db, figures, run_bridge, run_odoo

from meter_sim.testing import run_cli


def bank_time():
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--purchases", type=int, default=200)
    p.add_argument("--amount", type=float, default=10.0)
    p.add_argument("--db", default="smartpm_bench_demo")
    args = p.parse_args()
    ensure_db(args.db, demo=True)
    run = uuid.uuid4().hex[:8]
    with run_cli(24, speed=0, timeout=120) as sim, run_odoo(args.db) as odoo:
        # point the demo meters at this run's simulated meters
        for serial, port in sim.ports.items():
            ids = odoo.call("smartpm.meter", "search", [("serial_number", "=", serial)])
            odoo.call("smartpm.meter", "write", ids, {"port": port, "host": "127.0.0.1"})
        key = odoo.bridge_key("bench-bridge")
        common = xmlrpc.client.ServerProxy(f"{odoo.url}/xmlrpc/2/common")
        bank_uid = common.authenticate(args.db, "demo_bank", "demo_bank", {})
        assert bank_uid, "the demo database has no demo_bank user"
        bank = xmlrpc.client.ServerProxy(f"{odoo.url}/xmlrpc/2/object", allow_none=True)
        serials = sorted(sim.ports)

        def credit(serial):
            url = f"http://127.0.0.1:{sim.control_port}/meters/{serial}"
            with urllib.request.urlopen(url) as r:
                return json.load(r)["credit_wh"]

        with run_bridge(odoo, key, f"bench-vend-{run}", login="bench-bridge"):
            time.sleep(2)  # the bridge is up and idle in its long-poll
            latencies, call_times = [], []
            for i in range(args.purchases):
                serial = serials[i % len(serials)]
                before = credit(serial)
                t0 = time.perf_counter()
                receipt = bank.execute_kw(
                    args.db,
                    bank_uid,
                    "demo_bank",
                    "smartpm.bank.api",
                    "purchase",
                    [serial, args.amount, False, f"BENCH-{run}-{i}", bank_time()],
                )
                committed = time.perf_counter()
                call_times.append(committed - t0)
                wh = round(float(receipt["kwh"]) * 1000)
                deadline = committed + 30
                while credit(serial) < before + wh:
                    if time.perf_counter() > deadline:
                        raise SystemExit(f"purchase {i} on {serial} not on the meter after 30 s")
                    time.sleep(0.005)
                latencies.append(time.perf_counter() - committed)
        figures(
            f"vend: purchase commit -> credit on the meter ({args.purchases} purchases)",
            latencies,
        )
        figures("vend: XML-RPC purchase call", call_times)


if __name__ == "__main__":
    main()
