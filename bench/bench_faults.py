"""Fault benchmark (issue 21 §4): a bridge SIGKILLed mid-job, and Odoo stopped under long-polls.

Each trial: one simulated meter behind a link that stalls (the meter answers nothing); two
sales for it; bridge A claims the first and hangs on the meter; bridge B waits idle on its
long-poll; the meter answers again and A is SIGKILLed. Measured from the kill: the first
sale on the meter (B takes it over once A's lease ends) and the sale queued behind it. Then
the exactly-once check (the meter's credit and its "credit added" events). Last, Odoo gets a
SIGTERM while two idle bridges hold long-polls: the time until its process has exited (and,
for comparison, the same stop of an Odoo no bridge talks to).
Not a test: figures only (bench/RESULTS.md).

    .venv/bin/python bench/bench_faults.py --db sp_recov_e2e --trials 3
"""

from __future__ import annotations

import argparse
import os
import signal
import time
import uuid

from common import ensure_db, figures, locked_meter_vals, run_bridge, run_odoo, wait_until
from odoo_e2e import sim_control, sim_meters
from stall_link import StallLink

TARGET_RETRY_S = 20.0
TARGET_STOP_S = 5.0


def sell(odoo, meter_id, amount, ref):
    wizard = odoo.call(
        "smartpm.sell.credit.wizard",
        "create",
        {"meter_id": meter_id, "amount": amount, "external_ref": ref},
    )
    action = odoo.call("smartpm.sell.credit.wizard", "action_confirm", [wizard])
    purchase = odoo.call("smartpm.credit.purchase", "read", [action["res_id"]], fields=["job_id"])
    return purchase[0]["job_id"][0]


def job(odoo, job_id):
    return odoo.call(
        "smartpm.meter.job", "read", [job_id], fields=["state", "bridge_id", "attempt_count"]
    )[0]


def trial(odoo, key, login, run, n, lease):
    serial = f"FLT{run}{n}-00001"
    with sim_meters({"serial": serial}) as sim, StallLink(sim.ports[serial]) as link:
        tariff = odoo.call(
            "smartpm.tariff", "create", {"name": f"{serial} 1/kWh", "price_per_kwh": 1}
        )
        tenant = odoo.call("res.partner", "create", {"name": f"{serial} tenant", "is_tenant": True})
        meter = odoo.call(
            "smartpm.meter",
            "create",
            {
                "serial_number": serial,
                "host": "127.0.0.1",
                "port": link.port,
                "state": "active",
                "tenant_id": tenant,
                "tariff_id": tariff,
                **locked_meter_vals(serial),
            },
        )
        before = sim_control(sim, serial)["credit_kwh"]
        link.stall()
        first = sell(odoo, meter, 3.0, f"{serial}-1")
        behind = sell(odoo, meter, 4.0, f"{serial}-2")
        extra = ("--lease", str(lease)) if lease else ()
        doomed_id, heir_id = f"flt-doomed-{run}-{n}", f"flt-heir-{run}-{n}"
        with run_bridge(odoo, key, doomed_id, *extra, login=login) as doomed:
            wait_until(lambda: link.stalled_connections, what="bridge A to reach the meter")
            with run_bridge(odoo, key, heir_id, *extra, login=login):
                time.sleep(2.0)  # B finds the meter busy and goes on its long-poll
                link.stall(False)
                doomed.send_signal(signal.SIGKILL)
                doomed.wait()
                killed = time.perf_counter()
                wait_until(
                    lambda: job(odoo, first)["state"] in ("done", "failed"),
                    timeout=300,
                    interval=0.05,
                    what="the first sale",
                )
                retried = time.perf_counter() - killed
                wait_until(
                    lambda: job(odoo, behind)["state"] in ("done", "failed"),
                    timeout=300,
                    interval=0.05,
                    what="the sale behind",
                )
                queued = time.perf_counter() - killed
        rows = [job(odoo, first), job(odoo, behind)]
        state = sim_control(sim, serial)
        once = (
            [r["state"] for r in rows] == ["done", "done"]
            and abs(state["credit_kwh"] - (before + 7.0)) < 1e-6
            and sum(e["code"] == 66 for e in state["events"]) == 2
        )
        return retried, queued, once, rows


def odoo_stop_time(odoo, key, login, run):
    """SIGTERM to Odoo with two idle bridges on their long-poll: seconds until it exited."""
    with (
        run_bridge(odoo, key, f"flt-idle-a-{run}", login=login),
        run_bridge(odoo, key, f"flt-idle-b-{run}", login=login),
    ):
        time.sleep(3.0)  # both are in wait_for_jobs now
        started = time.perf_counter()
        odoo.proc.send_signal(signal.SIGTERM)
        odoo.proc.wait(120)
        return time.perf_counter() - started


def idle_odoo_stop_time(db):
    """The same stop without any bridge: what the process's own shutdown costs here."""
    with run_odoo(db) as odoo:
        time.sleep(2.0)
        started = time.perf_counter()
        odoo.proc.send_signal(signal.SIGTERM)
        odoo.proc.wait(120)
        return time.perf_counter() - started


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--db", default="smartpm_bench")
    p.add_argument("--lease", type=int, default=0, help="bridges' --lease (default: theirs)")
    args = p.parse_args()
    ensure_db(args.db)
    run = uuid.uuid4().hex[:6].upper()
    login = "bench-faults"
    retries, queued, checks = [], [], []
    with run_odoo(args.db) as odoo:
        key = odoo.bridge_key(login)
        for n in range(args.trials):
            retried, behind, once, rows = trial(odoo, key, login, run, n, args.lease)
            retries.append(retried)
            queued.append(behind)
            checks.append(once)
            print(
                f"trial {n}: retried after {retried:.2f} s, sale behind after {behind:.2f} s, "
                f"exactly once: {once} {rows}",
                flush=True,
            )
        stop_s = odoo_stop_time(odoo, key, login, run)
    idle_s = idle_odoo_stop_time(args.db)
    figures("faults: bridge killed mid-job -> its credit on the meter", retries)
    print(f"  target <= {TARGET_RETRY_S:.0f} s")
    figures("faults: bridge killed mid-job -> the sale queued behind on the meter", queued)
    print(f"faults: Odoo stop (SIGTERM -> exited) with 2 bridges on long-poll: {stop_s:.2f} s")
    print(f"  target <= {TARGET_STOP_S:.0f} s; the same stop without bridges: {idle_s:.2f} s")
    print(f"faults: every credit on the meter exactly once: {all(checks)} ({len(checks)} trials)")
    print(f"  machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    if not all(checks):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
