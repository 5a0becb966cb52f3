"""Ingest: readings written back through the batch RPC (`smartpm.meter.job.ingest`), rows/s.

    .venv/bin/python bench/bench_ingest.py [--readings 50000] [--batch 500] [--meters 100]

Calls Odoo's JSON-RPC as a Bridge API user, exactly as meter_bridge does. Not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import uuid

from common import MachineBusy, Timer, ensure_db, figures, headline, run_odoo

from meter_bridge.odoo_client import OdooClient


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--readings", type=int, default=50000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--meters", type=int, default=100)
    p.add_argument("--db", default="smartpm_bench")
    args = p.parse_args()
    db = ensure_db(args.db)
    run = uuid.uuid4().hex[:6].upper()
    with run_odoo(db) as odoo:
        key = odoo.bridge_key("bench-bridge")
        serials = [f"I{run}-{i:06d}" for i in range(args.meters)]
        meter_ids = odoo.call(
            "smartpm.meter",
            "create",
            [{"serial_number": s, "host": "127.0.0.1", "port": 1} for s in serials],
        )
        # a bridge ingests only for the meters of the jobs it holds: hold one per meter
        odoo.call(
            "smartpm.meter.job", "create", [{"meter_id": m, "job_type": "ping"} for m in meter_ids]
        )
        client = OdooClient(odoo.url, db, "bench-bridge", key, timeout=120)
        client.claim("bench", args.meters, 3600)
        start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        rows = [
            {
                "serial_number": serials[i % args.meters],
                "obis": "1.0.1.8.0.255",
                "value": float(i),
                "unit": "Wh",
                "time": (start + dt.timedelta(minutes=15 * (i // args.meters))).isoformat(),
            }
            for i in range(args.readings)
        ]
        batch_times = []
        with MachineBusy() as busy, Timer() as total:
            for i in range(0, len(rows), args.batch):
                with Timer() as t:
                    client.ingest("bench", rows[i : i + args.batch], [])
                batch_times.append(t.elapsed)
        print(
            f"ingest: {args.readings} readings in batches of {args.batch}: {total.elapsed:.1f}s "
            f"= {args.readings / total.elapsed:.0f} readings/s",
            flush=True,
        )
        headline("ingest: readings/s", args.readings / total.elapsed, None, " readings/s")
        figures(f"  per batch of {args.batch}", batch_times)
        print(f"ingest: {busy.line()}", flush=True)
        with Timer() as again:
            client.ingest("bench", rows[: args.batch], [])
        print(f"  resending a stored batch (idempotent, stores nothing): {again.elapsed:.3f}s")


if __name__ == "__main__":
    main()
