"""Fault benchmark (issue 21 §4): a bridge SIGKILLed mid-job, PostgreSQL's connections cut,
Odoo restarted under load, and Odoo stopped under long-polls.

Each trial: one simulated meter, two sales for it; bridge A claims the first; bridge B waits
idle on its long-poll; then the fault strikes while A is on the meter:

- ``kill``: the meter sits behind a link that stalls (answers nothing), A hangs on it; the
  meter answers again and A is SIGKILLed (B takes the sale over once A's lease ends);
- ``pg-cut``: the meter is slow (``--slow-ms`` per round trip, a GPRS link: A's job lasts
  seconds) and, A in its association, every PostgreSQL connection to the database is
  terminated (``pg_terminate_backend``, as postgres): Odoo's pooled cursors and its NOTIFY
  listener, while A renews its lease and reports;
- ``odoo-restart``: the same slow meter; the Odoo the bench started gets a SIGTERM (its stop
  timed) and is started again on the same port and database while A is on the meter.

Measured from the fault: the first sale's credit on the meter and the sale queued behind
it (the simulator's credit, polled from the fault on, Odoo up or not), and the first sale
done in Odoo (and whether its first attempt did it, not a re-run). Then
the exactly-once check (both sales done, the meter's credit moved by exactly their sum and
two "credit added" events: a sale not delivered or delivered twice is NOT met). Last, Odoo
gets a SIGTERM while two idle bridges hold long-polls: the time until its process has exited
(and, for comparison, the same stop of an Odoo no bridge talks to).
Not a test: figures only (bench/RESULTS.md).

    .venv/bin/python bench/bench_faults.py --db sp_recov_e2e --trials 3 [--faults kill pg-cut]
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
import uuid

import psycopg2
from common import (
    MachineBusy,
    against,
    ensure_db,
    figures,
    locked_meter_vals,
    run_bridge,
    run_odoo,
    wait_until,
)
from odoo_e2e import sim_control, sim_meters, stop_timed
from stall_link import StallLink

TARGET_RETRY_S = 20.0
TARGET_STOP_S = 5.0

FAULTS = {
    "kill": "bridge SIGKILLed mid-job",
    "pg-cut": "PostgreSQL connections cut mid-job",
    "odoo-restart": "Odoo restarted mid-job",
}


def cut_connections(db):
    """Terminate every PostgreSQL connection to ``db`` (as postgres): how many there were."""
    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cr:
            cr.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [db],
            )
            return cr.fetchone()[0]
    finally:
        conn.close()


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


class CreditWatch:
    """Polls the simulated meter's credit from the fault on (Odoo may be down meanwhile):
    when it first reached each of ``levels`` (seconds after ``start``)."""

    def __init__(self, sim, serial, levels, start):
        self.sim, self.serial, self.levels, self.start = sim, serial, levels, start
        self.reached = [None] * len(levels)
        self.before_fault = [False] * len(levels)  # already there at the first look
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        first = True
        while not self._stop.is_set() and None in self.reached:
            try:
                credit = sim_control(self.sim, self.serial)["credit_kwh"]
            except OSError:
                credit = None
            now = time.perf_counter() - self.start
            for i, level in enumerate(self.levels):
                if credit is not None and self.reached[i] is None and credit >= level - 1e-6:
                    self.reached[i] = now
                    self.before_fault[i] = first
            first = first and credit is None
            self._stop.wait(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


def strike(fault, odoo, doomed, outage_s=0.0):
    """The fault, at once: Odoo's stop time for a restart (else None). ``outage_s``: a
    restarted Odoo stays down that long after its process exited."""
    if fault == "kill":
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
    elif fault == "pg-cut":
        cut_connections(odoo.db)
    else:
        down = (lambda: time.sleep(outage_s)) if outage_s else None
        return odoo.restart(down, slow_stop_s=TARGET_STOP_S)
    return None


def trial(odoo, key, login, run, n, lease, fault, slow_ms, outage_s=0.0):
    serial = f"FLT{run}{fault[0].upper()}{n}-00001"
    stall = fault == "kill"  # the others: a slow meter, A in its association at the fault
    conf = {"serial": serial} | ({} if stall else {"latency_ms": slow_ms})
    with sim_meters(conf) as sim, StallLink(sim.ports[serial]) as link:
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
        link.stall(stall)
        first = sell(odoo, meter, 3.0, f"{serial}-1")
        behind = sell(odoo, meter, 4.0, f"{serial}-2")
        extra = ("--lease", str(lease)) if lease else ()
        doomed_id, heir_id = f"flt-doomed-{run}-{n}", f"flt-heir-{run}-{n}"
        with run_bridge(odoo, key, doomed_id, *extra, login=login) as doomed:
            wait_until(
                lambda: link.stalled_connections if stall else job(odoo, first)["bridge_id"],
                what="bridge A to reach the meter",
            )
            with run_bridge(odoo, key, heir_id, *extra, login=login):
                time.sleep(2.0)  # B finds the meter busy and goes on its long-poll
                link.stall(False)
                mid_job = job(odoo, first)["state"] == "claimed"  # A still on the meter
                killed = time.perf_counter()
                with CreditWatch(sim, serial, (before + 3.0, before + 7.0), killed) as watch:
                    stop_s = strike(fault, odoo, doomed, outage_s)
                    down_s = time.perf_counter() - killed  # restart: until Odoo answered again
                    wait_until(
                        lambda: job(odoo, first)["state"] in ("done", "failed"),
                        timeout=300,
                        interval=0.05,
                        what="the first sale",
                    )
                    first_done = time.perf_counter() - killed
                    wait_until(
                        lambda: job(odoo, behind)["state"] in ("done", "failed"),
                        timeout=300,
                        interval=0.05,
                        what="the sale behind",
                    )
                    wait_until(lambda: None not in watch.reached, timeout=10, what="credit")
                # on the meter (the simulator's credit), Odoo up or not
                retried, queued = watch.reached
                early = watch.before_fault[0]
        rows = [job(odoo, first), job(odoo, behind)]
        state = sim_control(sim, serial)
        once = (
            [r["state"] for r in rows] == ["done", "done"]
            and abs(state["credit_kwh"] - (before + 7.0)) < 1e-6
            and sum(e["code"] == 66 for e in state["events"]) == 2
        )
        stop = (stop_s, down_s) if stop_s is not None else None
        return retried, queued, stop, once, [mid_job, *rows], first_done, early


def odoo_stop_time(odoo, key, login, run):
    """SIGTERM to Odoo with two idle bridges on their long-poll: seconds until it exited."""
    with (
        run_bridge(odoo, key, f"flt-idle-a-{run}", login=login),
        run_bridge(odoo, key, f"flt-idle-b-{run}", login=login),
    ):
        time.sleep(3.0)  # both are in wait_for_jobs now
        return stop_timed(odoo.proc, TARGET_STOP_S)


def idle_odoo_stop_time(db):
    """The same stop without any bridge: what the process's own shutdown costs here."""
    with run_odoo(db) as odoo:
        time.sleep(2.0)
        return stop_timed(odoo.proc, TARGET_STOP_S)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=3, help="trials of each fault")
    p.add_argument("--faults", nargs="+", choices=list(FAULTS), default=list(FAULTS))
    p.add_argument("--db", default="smartpm_bench")
    p.add_argument("--lease", type=int, default=0, help="bridges' --lease (default: theirs)")
    p.add_argument(
        "--slow-ms",
        type=float,
        default=1000,
        help="the slow meter's latency per round trip for pg-cut and odoo-restart (the job "
        "must outlast the 2 s the bench gives bridge B to reach its long-poll)",
    )
    p.add_argument(
        "--outage",
        type=float,
        default=0.0,
        metavar="S",
        help="odoo-restart: keep Odoo down S seconds after its process exited (at 15 and "
        "the default lease, A's lease lapses while Odoo is down: the restart grace's case)",
    )
    args = p.parse_args()
    ensure_db(args.db)
    run = uuid.uuid4().hex[:6].upper()
    login = "bench-faults"
    results = {fault: [] for fault in args.faults}
    with MachineBusy() as busy, run_odoo(args.db) as odoo:
        key = odoo.bridge_key(login)
        for fault in args.faults:
            for n in range(args.trials):
                retried, behind, stop_s, once, rows, first_done, early = trial(
                    odoo, key, login, run, n, args.lease, fault, args.slow_ms, args.outage
                )
                first_attempt = rows[1]["attempt_count"] == 1
                results[fault].append(
                    (retried, behind, stop_s, once, first_done, first_attempt, early)
                )
                stop = ""
                if stop_s is not None:
                    stop = (
                        f", Odoo stopped in {stop_s[0]:.2f} s, "
                        f"answered again after {stop_s[1]:.2f} s"
                    )
                print(
                    f"{fault} trial {n}: first sale on the meter after {retried:.2f} s (done in "
                    f"Odoo after {first_done:.2f} s), sale behind on the meter after "
                    f"{behind:.2f} s{stop}, exactly once: {once} "
                    f"[A mid-job at the fault, jobs] {rows}",
                    flush=True,
                )
        stop_s = odoo_stop_time(odoo, key, login, run)
    idle_s = idle_odoo_stop_time(args.db)
    for fault, rows in results.items():
        print(f"faults: {FAULTS[fault]} ({len(rows)} trials)", flush=True)
        retries = [r[0] for r in rows]
        queued = [r[1] for r in rows]
        stops = [r[2][0] for r in rows if r[2] is not None]
        figures(f"  {fault}: fault -> its credit on the meter", retries)
        early = sum(r[6] for r in rows)
        print(
            f"    worst {against(max(retries), TARGET_RETRY_S)}"
            + (
                f"; on the meter before the fault in {early} of {len(rows)} trials (the "
                "fault struck after the token, before the report)"
                if early
                else ""
            ),
            flush=True,
        )
        figures(f"  {fault}: fault -> the sale queued behind on the meter", queued)
        # on the slow meter the sale behind also takes its own job's seconds: no target
        target = TARGET_RETRY_S if fault == "kill" else None
        print(f"    worst {against(max(queued), target)}", flush=True)
        held = [r[1] - r[0] for r in rows]
        figures(f"  {fault}: the sale behind, after the first was on the meter", held)
        done = [r[4] for r in rows]
        figures(f"  {fault}: fault -> the first sale done in Odoo", done)
        print(f"    worst {against(max(done), TARGET_RETRY_S)}", flush=True)
        print(
            f"  {fault}: the first sale run on the meter by its first attempt (no re-run): "
            f"{sum(r[5] for r in rows)} of {len(rows)} trials"
            + (" (a killed bridge's job is run again by design)" if fault == "kill" else ""),
            flush=True,
        )
        if stops:
            for n, stop in enumerate(stops):
                print(
                    f"  {fault}: Odoo stop (SIGTERM -> exited), trial {n}: "
                    f"{against(stop, TARGET_STOP_S)}",
                    flush=True,
                )
            print(
                f"  {fault}: Odoo stop (SIGTERM -> exited) under load: worst "
                f"{against(max(stops), TARGET_STOP_S)}",
                flush=True,
            )
        else:
            print(f"  {fault}: Odoo stop: not part of this fault", flush=True)
        met = all(r[3] for r in rows)
        print(
            f"  {fault}: every credit on the meter exactly once: {'met' if met else 'NOT met'} "
            f"({sum(r[3] for r in rows)} of {len(rows)} trials)",
            flush=True,
        )
    print(
        "faults: Odoo stop (SIGTERM -> exited) with 2 bridges on long-poll: "
        f"{against(stop_s, TARGET_STOP_S)}; the same stop without bridges: "
        f"{against(idle_s)}",
        flush=True,
    )
    print(f"faults: {busy.line()}", flush=True)
    if not all(r[3] for rows in results.values() for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
