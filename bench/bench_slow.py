"""Slow links: one bridge reads N simulated meters that answer 500 ms after each request
(GPRS), against a stub Odoo; a purchase for one of them is queued during the round.

    .venv/bin/python bench/bench_slow.py [--meters 10000] [--latency-ms 500] [--jitter-ms 100]
        [--auth hls] [--concurrency 1000] [--prefetch 0] [--credit-after 20] [--sim-procs 2]

meter-sim (`--sim-procs` processes sharing the meters, `--latency-ms`) and the bridge
(`meter-bridge run`) run in their own processes, the stub Odoo of bench_bridge.py (claims in
queue order, a credit job put at the front as Odoo's job priority does) in this one: a real
Odoo handing out 10,000 jobs is bench_read's subject, this one's is the bridge holding many
slow associations at once.
Reports meters read, wall time, the bridge's peak RSS, the associations it held at once
(its open sockets to the meters, sampled every 0.2 s), and how long the purchase took from
its queueing to its report while the reading round went on. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from bench_bridge import API_KEY, StubOdoo, billing_jobs
from bench_sim import job_meter
from common import MachineBusy, cpu_seconds, headline, run_bridge, wait_until

from meter_sim.testing import credit_token, run_cli

# issue 21 section 3: 10,000 meters at 500 ms per round trip in <= 3 minutes, <= 1 GB
TARGET_METERS = 10000
TARGET_ROUND_S = 180.0
TARGET_RSS_MB = 1024.0


class SlowStub(StubOdoo):
    """StubOdoo that notes when each job's report arrived; a credit job jumps the queue."""

    def __init__(self):
        super().__init__()
        self.reported_at = {}
        self.claimed_at = {}  # job id -> when a claim handed it out, and the claim's options
        self.outcome = {}

    def queue_first(self, job):
        with self.cond:
            self.pending.appendleft(job)
            self.cond.notify_all()

    def rpc_claim(self, bridge_id, limit, lease_seconds, options=None):
        jobs = super().rpc_claim(bridge_id, limit, lease_seconds, options)
        now = time.perf_counter()
        for job in jobs:
            self.claimed_at.setdefault(job["id"], (now, sorted(options or ())))
        return jobs

    def rpc_report(self, bridge_id, reports):
        now = time.perf_counter()
        for report in reports:
            self.reported_at.setdefault(report["job_id"], now)
            self.outcome[report["job_id"]] = report.get("result") or report.get("error")
        return super().rpc_report(bridge_id, reports)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_sockets(pid: int) -> int:
    n = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            n += os.readlink(fd).startswith("socket:")
        except OSError:
            pass
    return n


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--meters", type=int, default=10000)
    p.add_argument("--latency-ms", type=float, default=500)
    p.add_argument("--jitter-ms", type=float, default=100)
    p.add_argument("--loss", type=float, default=0.0)
    p.add_argument(
        "--auth",
        choices=("none", "hls"),
        default="hls",
        help="the read meters' management client (default hls, as real prepaid meters are "
        "locked: every APDU ciphered on both sides, the simulator's AES-GCM on cryptography, "
        "gurux_compat.fast_gcm_stream; none: no authentication); the purchase's meter is HLS "
        "whatever this says",
    )
    p.add_argument("--concurrency", type=int, default=1000, help="the bridge's in-flight limit")
    p.add_argument("--prefetch", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument(
        "--sim-procs",
        type=int,
        default=2,
        help="meter-sim processes sharing the fleet (default 2): one simulator serves all its "
        "meters on one thread, which real meters, each its own device, do not share",
    )
    p.add_argument(
        "--credit-after", type=float, default=20.0, help="seconds into the round (0: no credit)"
    )
    args = p.parse_args()
    link = ["--latency-ms", str(args.latency_ms), "--jitter-ms", str(args.jitter_ms)]
    link += ["--loss", str(args.loss)]
    meters = [{"serial": f"SIM{i + 1:05d}", "auth": args.auth} for i in range(args.meters)]
    # the purchase's meter: as slow, not in the round (Odoo runs one job per meter at a time)
    meters.append({"serial": "CREDIT01", "auth": "hls"})
    procs = max(1, args.sim_procs)
    configs = []
    for n in range(procs):
        config = Path(tempfile.mkdtemp()) / f"slow-fleet-{n}.json"
        config.write_text(json.dumps({"meters": meters[n::procs]}))
        configs.append(str(config))
    t_sim = time.perf_counter()
    with contextlib.ExitStack() as stack:
        sims = [
            stack.enter_context(
                run_cli(0, *link, control=False, config=config, speed=0, timeout=900)
            )
            for config in configs
        ]
        # in serial order: the round's jobs go to every simulator process from the start
        sim = SimpleNamespace(
            meters=sorted((m for s in sims for m in s.meters), key=lambda m: m["serial"])
        )
        stub = stack.enter_context(SlowStub())
        print(
            f"cores: {os.cpu_count()}  meters: {args.meters} in {procs} simulator processes (up in "
            f"{time.perf_counter() - t_sim:.0f}s)  link: {args.latency_ms:g}±{args.jitter_ms:g} "
            f"ms, loss {args.loss:g}, auth {args.auth}  bridge: concurrency "
            f"{args.concurrency}, prefetch {args.prefetch}, batch {args.batch_size}",
            flush=True,
        )
        extra = ["--concurrency", str(args.concurrency), "--prefetch", str(args.prefetch)]
        extra += ["--batch-size", str(args.batch_size)]
        with run_bridge(stub, API_KEY, "slow-1", *extra, login="bench") as bridge:
            wait_until(lambda: stub.calls["wait_for_jobs"] >= 1, timeout=60, what="bridge up")
            idle_sockets, idle_rss = open_sockets(bridge.pid), peak_rss_mb(bridge.pid)
            credit_meter = next(m for m in sim.meters if m["serial"] == "CREDIT01")
            jobs = billing_jobs([m for m in sim.meters if m is not credit_meter], 1)
            for job in jobs:  # the bench's management client (ids as Odoo would send)
                if job["meter"]["auth"] == "none":
                    job["meter"]["invocation_counter"] = 0
            credit_id = len(jobs) + 1
            credit_job = {
                "id": credit_id,
                "job_type": "add_credit",
                "payload": {"token": credit_token(1, 1000, credit_meter["serial"]).hex(), "kwh": 1},
                "attempt_count": 1,
                "max_attempts": 5,
                "idempotency_key": "bench-credit",
                # a meter id of its own: the bridge keeps one association per meter id
                "meter": {"id": len(jobs) + 1, **job_meter(credit_meter)},
            }
            peak = {"sockets": 0, "threads": 0}
            done = threading.Event()

            def sample():
                while not done.wait(0.2):
                    try:
                        peak["sockets"] = max(peak["sockets"], open_sockets(bridge.pid))
                        peak["threads"] = max(peak["threads"], threads_of(bridge.pid))
                    except OSError:
                        return

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            pids = {"sim": [s.proc.pid for s in sims], "bridge": [bridge.pid]}
            cpu = {k: sum(cpu_seconds(pid) for pid in v) for k, v in pids.items()}
            busy = MachineBusy().__enter__()
            t0 = time.perf_counter()
            stub.queue(jobs)
            credit_at = None
            if args.credit_after > 0:
                time.sleep(args.credit_after)
                credit_at = time.perf_counter()
                stub.queue_first(credit_job)
            total = len(jobs) + (1 if credit_at else 0)
            wait_until(
                lambda: stub.finished() >= total, timeout=3600, interval=0.05, what="the round"
            )
            elapsed = time.perf_counter() - t0
            busy.__exit__(None, None, None)
            done.set()
            sampler.join(2)
            cpu = {k: sum(cpu_seconds(pid) for pid in v) - cpu[k] for k, v in pids.items()}
            rss = peak_rss_mb(bridge.pid)
        reads_at = sorted(t for i, t in stub.reported_at.items() if i != credit_id)
        print(
            f"slow links: {len(jobs)} meters read in {elapsed:.1f}s "
            f"({len(jobs) / elapsed:.1f} meters/s), failed={stub.failed}; "
            f"bridge peak RSS {rss:.0f} MB (idle {idle_rss:.0f} MB), "
            f"in flight at most {peak['sockets'] - idle_sockets} associations "
            f"({peak['threads']} threads); CPU share of one core: "
            + " ".join(f"{k}={v / elapsed:.0%}" for k, v in cpu.items()),
            flush=True,
        )
        if credit_at is not None:
            delivered = stub.reported_at.get(credit_id)
            left = sum(1 for t in reads_at if t > delivered) if delivered else None
            claimed = stub.claimed_at.get(credit_id, (math.nan, []))
            print(
                f"credit queued {credit_at - t0:.1f}s into the round: claimed in "
                f"{claimed[0] - credit_at:.2f}s (claim options: {claimed[1] or 'none'}), "
                f"delivered in {delivered - credit_at:.2f}s, {left} reads still to come "
                f"(round ended {reads_at[-1] - delivered:.1f}s later); result "
                f"{stub.outcome.get(credit_id)}",
                flush=True,
            )
            headline("slow links: the purchase, queued -> delivered", delivered - credit_at)
        full = len(jobs) >= TARGET_METERS and args.latency_ms >= 500
        # the target is for the full round (10,000 meters, 500 ms): a smaller one has none
        headline(
            f"slow links: {len(jobs)} meters, round time",
            elapsed,
            TARGET_ROUND_S if full else None,
        )
        headline("slow links: meters/s", len(jobs) / elapsed, None, " meters/s")
        headline("slow links: bridge peak RSS", rss, TARGET_RSS_MB, " MB")
        print(f"slow links: {busy.line()}", flush=True)


if __name__ == "__main__":
    main()
