"""Reading throughput: a billing read (energy registers + clock) of N simulated meters by one
bridge process, then by two; meters per second and where the CPU time goes.

    .venv/bin/python bench/bench_read.py [--meters 1000] [--bridges 1 2] [--db smartpm_bench]
                                         [--odoo-workers N] [--rounds 2] [--profile DIR]

meter-sim runs in its own process; Odoo in its own (threaded), or with --odoo-workers N in
N prefork worker processes; each bridge in its own. The meters are locked as real prepaid
meters are: Odoo holds each one as the management client with HLS-GMAC and the keys the
simulator derives for it (tests/odoo_e2e.py locked_meter_vals), so each read is a ciphered
association. `--rounds 2` reads every meter again with the same bridge processes (they then
know the scalers, as bridges running day after day do). Not a test: it prints its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid

from common import (
    PG,
    ROOT,
    MachineBusy,
    Timer,
    against,
    cpu_seconds,
    ensure_db,
    figures,
    locked_meter_vals,
    run_bridge,
    run_odoo,
    tree_cpu_seconds,
    wait_until,
)

from meter_sim.testing import run_cli

# issue 21 section 2, end to end on the project's 2-core machine
TARGET_METERS_PER_S = 500.0
TARGET_BUSY = 0.85

BILLING = [
    {"obis": "0.0.1.0.0.255", "ic": 8, "attribute": 2},
    {"obis": "1.0.1.8.0.255", "ic": 3, "attribute": 2},
    {"obis": "1.0.2.8.0.255", "ic": 3, "attribute": 2},
]


def quiet_port():
    """A free port below Linux's ephemeral range (32768 and up): Odoo binds its gevent port
    seconds after it is chosen, and the bridges' thousands of outgoing connections to the
    meters may take an ephemeral one meanwhile (the gevent server then restarts in a loop)."""
    for port in random.sample(range(20000, 32768), 500):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below 32768")


def profile(pid, path):
    """py-spy recording ``pid`` (samples while a thread holds the GIL) into ``path``."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    spy = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "--pid", str(pid)]
        + ["--rate", "250", "--format", "raw", "--output", path, "--gil"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches
    return spy


def rpc_calls(bridge_id):
    """RPCs a stopped bridge made (its `bridge_stopped` log line, JSON)."""
    for line in (ROOT / "var" / f"e2e-bridge-{bridge_id}.log").read_text().splitlines():
        if '"bridge_stopped"' in line:
            return json.loads(line).get("rpc_calls", 0)
    return 0


def open_jobs(db, job_ids):
    out = subprocess.run(
        ["psql", *PG, "-d", db, "-qtAX", "-c"]
        + [
            "SELECT count(*) FROM smartpm_meter_job WHERE state IN ('pending', 'claimed') "
            f"AND id BETWEEN {min(job_ids)} AND {max(job_ids)}"
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--meters", type=int, default=1000)
    p.add_argument("--bridges", type=int, nargs="+", default=[1, 2])
    p.add_argument("--concurrency", type=int, default=16, help="worker threads per bridge")
    p.add_argument(
        "--prefetch", type=int, default=32, help="jobs a bridge claims ahead of free workers"
    )
    p.add_argument("--db", default="smartpm_bench")
    p.add_argument(
        "--odoo-workers",
        type=int,
        default=0,
        help="Odoo prefork HTTP workers (0: one threaded process). Each idle bridge holds "
        "one worker in its wait_for_jobs long-poll (up to 25 s): use more workers than bridges",
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        help="record Odoo and each bridge with py-spy (GIL samples) into DIR, collapsed stacks",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="billing reads of every meter per bridge set, by the same bridge processes "
        "(round 1 reads the scalers; the next ones find them in the bridges' cache, as "
        "bridges running day after day do)",
    )
    p.add_argument(
        "--fresh", action="store_true", help="a new database (runs add 1,000s of rows each)"
    )
    args = p.parse_args()
    db = ensure_db(args.db, fresh=args.fresh)
    run = uuid.uuid4().hex[:6].upper()
    odoo_args = []
    if args.odoo_workers:
        odoo_args = [
            f"--workers={args.odoo_workers}",
            f"--gevent-port={quiet_port()}",  # prefork starts the websocket server too
            "--limit-time-real=120",  # > the bridge's 25 s long-poll; Odoo's default
            "--limit-time-cpu=60",
        ]
    label = f"Odoo {args.odoo_workers} workers" if args.odoo_workers else "Odoo threaded"
    with (
        run_cli(args.meters, control=False, speed=0, timeout=300) as sim,
        run_odoo(db, odoo_args) as odoo,
    ):
        key = odoo.bridge_key("bench-bridge")
        meter_ids = odoo.call(
            "smartpm.meter",
            "create",
            [
                {
                    "serial_number": f"B{run}-{serial}",
                    "host": "127.0.0.1",
                    "port": port,
                    "state": "active",
                    **locked_meter_vals(serial),
                }
                for serial, port in sim.ports.items()
            ],
        )
        for n in args.bridges:
            # Bridges first, idle on their long-poll: the clock measures reading, not start-up.
            bridges = [
                run_bridge(
                    odoo,
                    key,
                    f"bench-{run}-{n}-{i}",
                    "--concurrency",
                    str(args.concurrency),
                    "--prefetch",
                    str(args.prefetch),
                    login="bench-bridge",
                )
                for i in range(n)
            ]
            handles = [b.__enter__() for b in bridges]
            try:
                time.sleep(3)
                for rnd in range(1, args.rounds + 1):
                    measure_round(args, db, sim, odoo, handles, meter_ids, n, rnd, label)
            finally:
                for b in bridges:
                    b.__exit__(None, None, None)
            rpcs = sum(rpc_calls(f"bench-{run}-{n}-{i}") for i in range(n))
            print(
                f"  {n} bridge(s): {rpcs / (args.meters * args.rounds):.2f} RPCs/meter over "
                f"{args.rounds} round(s) (claim, report, ... not the long-poll)",
                flush=True,
            )


def round_label(n, rnd, rounds):
    """ "1 bridge(s)", or with --rounds "1 bridge(s), round 2 (scalers known)"."""
    if rounds == 1:
        return f"{n} bridge(s)"
    return f"{n} bridge(s), round {rnd} ({'scalers read' if rnd == 1 else 'scalers known'})"


def measure_round(args, db, sim, odoo, handles, meter_ids, n, rnd, label):
    """One billing read of every meter by the running bridges: jobs created, the clock and
    the CPU counters from their commit to the last job's end; prints the figures."""
    what = round_label(n, rnd, args.rounds)
    job_ids = odoo.call(
        "smartpm.meter.job",
        "create",
        [{"meter_id": m, "job_type": "read", "payload": {"objects": BILLING}} for m in meter_ids],
    )
    # from the commit of the jobs (the answer to create) on
    procs = [("sim", sim.proc.pid), ("odoo", odoo.proc.pid)]
    before = {name: tree_cpu_seconds(pid) for name, pid in procs}
    before_bridges = sum(cpu_seconds(h.pid) for h in handles)
    spies = []
    if args.profile:
        targets = [("odoo", odoo.proc.pid)] + [(f"bridge{i}", h.pid) for i, h in enumerate(handles)]
        spies = [profile(pid, f"{args.profile}/{k}-{n}-r{rnd}.txt") for k, pid in targets]
    with MachineBusy() as busy, Timer() as t:
        # Asked of PostgreSQL, not Odoo: the bench must not compete with the bridges for
        # Odoo's workers (idle bridges each hold one in a long-poll).
        wait_until(
            lambda: open_jobs(db, job_ids) == 0,
            timeout=1800,
            interval=0.1,
            what="the reads",
        )
    bridge_cpu = sum(cpu_seconds(h.pid) for h in handles) - before_bridges
    for spy in spies:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
    after = {name: tree_cpu_seconds(pid) for name, pid in procs}
    failed = odoo.call(
        "smartpm.meter.job",
        "search_count",
        [("id", "in", job_ids), ("state", "=", "failed")],
    )
    cpu = {name: after[name] - before[name] for name in after}
    cpu["bridge"] = bridge_cpu
    total = sum(cpu.values()) or 1.0
    shares = " ".join(
        f"{k}={v / total:.0%} ({1000 * v / args.meters:.2f} ms/meter)"
        for k, v in sorted(cpu.items())
    )
    # the bench's own processes (sim, Odoo, bridges): not the machine, which /proc/stat
    # measures below (other users' work counts there)
    shares += f"; bench processes busy {total / t.elapsed / (os.cpu_count() or 1):.0%} of the cores"
    print(
        f"billing read, {what}, {label}: {args.meters} meters in {t.elapsed:.1f}s = "
        f"{args.meters / t.elapsed:.1f} meters/s, failed={failed}; CPU share {shares}",
        flush=True,
    )
    rate = against(args.meters / t.elapsed, TARGET_METERS_PER_S, " meters/s", True)
    share = against(busy.share * 100, TARGET_BUSY * 100, "%", True)
    print(f"  throughput {rate}, whole machine busy {share}; {busy.line()}", flush=True)
    done = odoo.call(
        "smartpm.meter.job",
        "search_read",
        [("id", "in", job_ids)],
        fields=["date_claimed", "date_done"],
    )
    figures(
        f"  claim->done per job ({what})",
        [
            (
                time.mktime(time.strptime(r["date_done"], "%Y-%m-%d %H:%M:%S"))
                - time.mktime(time.strptime(r["date_claimed"], "%Y-%m-%d %H:%M:%S"))
            )
            for r in done
            if r["date_done"] and r["date_claimed"]
        ]
        or [0.0],
    )


if __name__ == "__main__":
    main()
