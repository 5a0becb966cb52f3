"""The bridge's own ceiling: a billing read of N simulated meters by one bridge process, then
by two, against a stub Odoo that answers at once; meters per second and CPU per meter.

    .venv/bin/python bench/bench_bridge.py [--meters 1000] [--bridges 1 2] [--sim-seconds 5]

meter-sim runs in its own process, each bridge (`meter-bridge run`) in its own, and the stub
Odoo (a JSON-RPC server speaking only the job protocol of docs/job-protocol.md) in this one.
Bridges start idle on the long-poll; the clock starts when the jobs appear. The meters are
locked as real prepaid meters are: each job's meter is the management client with HLS-GMAC
and the meter's keys (as Odoo would send them), and the stub keeps the highest invocation
counter each meter reported, as Odoo does. For comparison, right after each round (the same
minutes, the same load), it measures what the same simulator process serves to bench_sim's
client threads for the same objects. `--rounds 2` reads every meter again with the same
bridges (they then know its scalers, as a bridge does day after day). Every job carries the
SmartPM profile's object map, as Odoo's do: once per claim (the bridge asks for it), or with
`--per-job-maps` in every job (the stub then refuses claim options, as an Odoo from before
them). Not a test: it prints its figures.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench_read import BILLING
from bench_sim import cycles, job_meter, quiet_dlms_cosem
from common import MachineBusy, cpu_seconds, headline, run_bridge, wait_until

from meter_bridge.obis import PUSH_SETUPS
from meter_bridge.object_map import FUNCTIONS, PUSH_SETUP
from meter_sim.testing import attr, run_cli

# issue 21 section 2: the bridge's CPU per meter against the bare dlms-cosem client's for
# the same cycle (association, the billing read's GETs, release)
TARGET_CPU_RATIO = 1.1

API_KEY = "bench-key"
UID = 2


def _contract_map():
    """The SmartPM profile's object map, as Odoo sends it in a job (services/meter_profile)."""
    out = {}
    for name, ((obis, ic), _classes, dflt) in FUNCTIONS.items():
        out[name] = {"obis": obis, "ic": ic, **({"attribute": dflt} if dflt else {})}
    out[PUSH_SETUP] = [{"obis": obis, "ic": ic} for obis, ic in PUSH_SETUPS]
    return out


CONTRACT_MAP = _contract_map()
CONTRACT_MAP_KEY = hashlib.sha256(json.dumps(CONTRACT_MAP, sort_keys=True).encode()).hexdigest()


class StubFault(Exception):
    """(exception name, message): answered as Odoo's JSON-RPC error."""


class StubOdoo:
    """Just enough of smartpm.meter.job over /jsonrpc: hands out the queued jobs, one lease
    per job, and counts the reports. No retries: a failed report is counted as failed."""

    def __init__(self, db="bench_stub", claim_options=True):
        self.db = db
        self.claim_options = claim_options  # False: an Odoo from before claim options
        self.cond = threading.Condition()
        self.pending = collections.deque()
        self.holder = {}  # job id -> bridge id
        self.claimed = {}  # job id -> job, until reported (a released job is queued again)
        self.serial_of = {}  # job id -> meter serial
        self.counters = collections.defaultdict(int)  # serial -> last invocation counter
        self.done = self.failed = 0
        self.calls = collections.Counter()
        self._server = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def queue(self, jobs):
        with self.cond:
            self.pending.extend(jobs)
            self.cond.notify_all()

    def finished(self):
        with self.cond:
            return self.done + self.failed

    # -- the RPCs the bridge makes ---------------------------------------------------------

    def dispatch(self, service, method, args):
        if service == "common" and method == "authenticate":
            return UID if args[2] == API_KEY else False
        _db, _uid, _key, _model, name, call_args, _kwargs = args
        self.calls[name] += 1
        return getattr(self, f"rpc_{name}")(*call_args)

    def rpc_claim(self, bridge_id, limit, _lease_seconds, options=None):
        """Odoo's claim options (docs/job-protocol.md): job_types, only jobs of these types
        (the stub holds one job per meter: each is its meter's first); busy_meter_ids, none
        of these meters. Both scan the queue; without them, the queue's head is popped.
        object_maps per_claim: the map in the first job only, the others naming its key."""
        if options and not self.claim_options:
            raise StubFault("builtins.TypeError", "claim() takes 4 positional arguments")
        options = options or {}
        per_claim = options.get("object_maps") == "per_claim"
        with self.cond:
            if options.get("job_types") or options.get("busy_meter_ids"):
                jobs = self._take(limit, options)
            else:
                jobs = [self.pending.popleft() for _ in range(min(limit, len(self.pending)))]
            out = []
            for job in jobs:
                self.holder[job["id"]] = bridge_id
                self.claimed[job["id"]] = job
                serial = self.serial_of[job["id"]] = job["meter"]["serial_number"]
                job["meter"]["invocation_counter"] = self.counters[serial]
                # every meter has the SmartPM profile, as in Odoo: its map in each job, or
                # (per claim) in the first job only, the others naming its key
                meter = dict(job["meter"], object_map=CONTRACT_MAP)
                if per_claim:
                    meter["object_map_key"] = CONTRACT_MAP_KEY
                    if out:
                        del meter["object_map"]
                out.append(dict(job, meter=meter))
            return out

    def _take(self, limit, options):
        types = set(options.get("job_types") or ())
        busy = set(options.get("busy_meter_ids") or ())
        jobs, rest = [], collections.deque()
        for job in self.pending:
            if (
                len(jobs) < limit
                and (not types or job["job_type"] in types)
                and job["meter"]["id"] not in busy
            ):
                jobs.append(job)
            else:
                rest.append(job)
        self.pending = rest
        return jobs

    def _keep_counter(self, report):
        """The meter saw the counter even when the report is refused (as in Odoo)."""
        counter = (report.get("result") or {}).get("invocation_counter")
        counter = counter if counter is not None else report.get("invocation_counter")
        serial = self.serial_of.pop(report["job_id"], None)
        if serial and counter:
            self.counters[serial] = max(self.counters[serial], int(counter))

    def rpc_report(self, bridge_id, reports):
        answers = []
        with self.cond:
            for report in reports:
                self._keep_counter(report)
                self.claimed.pop(report["job_id"], None)
                if self.holder.pop(report["job_id"], None) != bridge_id:
                    answers.append({"job_id": report["job_id"], "ok": False, "refused": True})
                    continue
                if "result" in report:
                    self.done += 1
                    answers.append({"job_id": report["job_id"], "ok": True, "state": "done"})
                else:
                    self.failed += 1
                    answers.append({"job_id": report["job_id"], "ok": True, "state": "failed"})
            self.cond.notify_all()
        return answers

    def rpc_complete(self, job_id, bridge_id, result):
        return self.rpc_report(bridge_id, [{"job_id": job_id, "result": result}])[0]["ok"]

    def rpc_fail(self, job_id, bridge_id, error, retryable, *counter):
        report = {"job_id": job_id, "error": error}
        if counter:
            report["invocation_counter"] = counter[0]
        self.rpc_report(bridge_id, [report])
        return {"state": "failed", "next_attempt_at": False}

    def rpc_extend_lease(self, job_ids, bridge_id, _lease_seconds, _attempts=None):
        # the bridge names each job's attempt (job protocol); the stub hands out one claim
        with self.cond:
            return [i for i in job_ids if self.holder.get(i) == bridge_id]

    def rpc_release(self, job_ids, bridge_id):
        with self.cond:
            ids = [i for i in job_ids if self.holder.get(i) == bridge_id]
            for i in ids:
                del self.holder[i]
            # back to pending, at the front, as Odoo's release makes them due at once
            self.pending.extendleft(reversed([self.claimed.pop(i) for i in ids]))
            self.cond.notify_all()
            return ids

    def rpc_ingest(self, _bridge_id, readings, events):
        return {"readings": len(readings), "events": len(events)}

    def rpc_wait_for_jobs(self, timeout):
        with self.cond:
            return self.cond.wait_for(lambda: bool(self.pending), timeout=timeout)

    # -- HTTP ------------------------------------------------------------------------------

    def __enter__(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                params = request["params"]
                try:
                    result = stub.dispatch(params["service"], params["method"], params["args"])
                    answer = {"result": result}
                except StubFault as exc:  # as Odoo answers an exception
                    answer = {
                        "error": {
                            "code": 200,
                            "message": "Odoo Server Error",
                            "data": {"name": exc.args[0], "message": exc.args[1]},
                        }
                    }
                data = json.dumps({"jsonrpc": "2.0", "id": request.get("id"), **answer})
                data = data.encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # a bridge stopped during its long-poll

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 128
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()


def billing_jobs(listing, first_id):
    """One billing read per meter of `meter-sim --json`'s listing; the stub fills in each
    meter's invocation counter at the claim."""
    return [
        {
            "id": first_id + n,
            "job_type": "read",
            "payload": {"objects": BILLING},
            "attempt_count": 1,
            "max_attempts": 5,
            "idempotency_key": f"bench-{first_id + n}",
            "meter": {"id": n + 1, **job_meter(listed)},
        }
        for n, listed in enumerate(listing)
    ]


def rpc_calls(stub):
    """Calls other than the long-poll (each costs a real Odoo an API-key check)."""
    return sum(n for name, n in stub.calls.items() if name != "wait_for_jobs")


def profile(pid, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    spy = subprocess.Popen(
        [Path(sys.executable).parent / "py-spy", "record", "--pid", str(pid), "--rate", "1000"]
        + ["--format", "raw", "--output", path, "--gil"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches
    return spy


def round_label(n, rnd, rounds):
    """ "1 bridge(s)", or with --rounds "1 bridge(s), round 2 (scalers known)"."""
    if rounds == 1:
        return f"{n} bridge(s)"
    return f"{n} bridge(s), round {rnd} ({'scalers read' if rnd == 1 else 'scalers known'})"


def measure_round(args, sim, stub, handles, n, rnd, next_id, bridge_ms):
    """One billing read of every meter by the running bridges, then (with --sim-seconds) the
    bare client's cycles in the same minutes; prints the figures, keeps (the bridges' CPU ms
    per meter, the bare client's per cycle) in bridge_ms[label]; returns the next job id."""
    label = round_label(n, rnd, args.rounds)
    jobs = billing_jobs(sim.meters, next_id)
    next_id += len(jobs)
    end = stub.finished() + len(jobs)
    failed = stub.failed
    spies = [
        profile(h.pid, f"{args.profile}/bridge-{n}-{i}-r{rnd}.txt")
        for i, h in enumerate(handles)
        if args.profile
    ]
    calls = rpc_calls(stub)
    pids = {"sim": sim.proc.pid} | {f"bridge{i}": h.pid for i, h in enumerate(handles)}
    before = {k: cpu_seconds(pid) for k, pid in pids.items()}
    stub_before = time.process_time()
    t0 = time.perf_counter()
    stub.queue(jobs)
    wait_until(
        lambda: stub.finished() >= end,
        timeout=1800,
        interval=0.05,
        what="the reads",
    )
    elapsed = time.perf_counter() - t0
    cpu = {k: cpu_seconds(pid) - before[k] for k, pid in pids.items()}
    cpu["stub-odoo"] = time.process_time() - stub_before
    rpcs = rpc_calls(stub) - calls
    for spy in spies:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
    shares = " ".join(f"{k}={v / elapsed:.0%}" for k, v in cpu.items())
    per_meter = {"sim": cpu["sim"], "stub-odoo": cpu["stub-odoo"]}
    per_meter[f"bridges({n})"] = sum(v for k, v in cpu.items() if k.startswith("bridge"))
    ms = per_meter[f"bridges({n})"] / len(jobs) * 1000
    per_meter = " ".join(f"{k}={v / len(jobs) * 1000:.2f}" for k, v in per_meter.items())
    print(
        f"billing read, {label}, stub Odoo: {len(jobs)} meters in {elapsed:.2f}s "
        f"= {len(jobs) / elapsed:.1f} meters/s, failed={stub.failed - failed}, "
        f"{rpcs / len(jobs):.2f} RPCs/meter\n"
        f"  CPU (share of one core): {shares}\n"
        f"  CPU ms per meter: {per_meter}",
        flush=True,
    )
    headline(f"bridge: {label}, meters/s", len(jobs) / elapsed, None, " meters/s")
    if args.sim_seconds > 0:
        bridge_ms[label] = (ms, bare_client(args, sim, stub))
    return next_id


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--meters", type=int, default=1000)
    p.add_argument("--bridges", type=int, nargs="+", default=[1, 2])
    p.add_argument("--concurrency", help="worker threads per bridge (default: the bridge's)")
    p.add_argument("--prefetch", help="jobs claimed ahead per bridge (default: the bridge's)")
    p.add_argument(
        "--sim-seconds", type=float, default=5.0, help="bench_sim run for comparison (0: none)"
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="billing reads of every meter per bridge set (round 1 reads the scalers, the "
        "next ones find them in the bridge's cache, as a bridge does day after day)",
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        help="record each bridge with py-spy (pip install py-spy) into DIR, collapsed stacks",
    )
    p.add_argument(
        "--per-job-maps",
        action="store_true",
        help="the stub refuses claim options, as an older Odoo: each job carries the map",
    )
    args = p.parse_args()
    extra = []  # the bridge's defaults (INFO logging, concurrency, prefetch) unless given
    if args.concurrency:
        extra += ["--concurrency", args.concurrency]
    if args.prefetch:
        extra += ["--prefetch", args.prefetch]
    next_id = 1
    bridge_ms = {}  # round label -> (the bridges' CPU ms per meter, the bare client's)
    with (
        MachineBusy("bridge"),
        run_cli(args.meters, control=False, speed=0, timeout=300) as sim,
        StubOdoo(claim_options=not args.per_job_maps) as stub,
    ):
        print(f"cores: {os.cpu_count()}  meters: {args.meters}", flush=True)
        for n in args.bridges:
            polls = stub.calls["wait_for_jobs"]
            bridges = [
                run_bridge(stub, API_KEY, f"stub-{n}-{i}", *extra, login="bench") for i in range(n)
            ]
            handles = [b.__enter__() for b in bridges]
            try:
                wait_until(
                    lambda n=n, polls=polls: stub.calls["wait_for_jobs"] >= polls + n,
                    timeout=60,
                    what="bridges up",
                )
                for rnd in range(1, args.rounds + 1):
                    next_id = measure_round(args, sim, stub, handles, n, rnd, next_id, bridge_ms)
            finally:
                for b in bridges:
                    b.__exit__(None, None, None)
        if args.sim_seconds > 0:
            for label, (ms, client_ms) in bridge_ms.items():
                headline(
                    f"bridge: {label}, CPU per meter / the bare client's per cycle "
                    f"({ms:.2f} / {client_ms:.2f} ms)",
                    ms / client_ms if client_ms else float("inf"),
                    TARGET_CPU_RATIO,
                    "x",
                )


def bare_client(args, sim, stub):
    """The bare dlms-cosem client's CPU ms per cycle (bench_sim's client threads) on the same
    simulator, right after a round: the same minutes, the same load. Its counters go on from
    the bridges' and the bridges' next round goes on from its."""
    quiet_dlms_cosem()
    sim_before, client_before = cpu_seconds(sim.proc.pid), time.process_time()
    meters = [
        {**job_meter(m), "invocation_counter": stub.counters[m["serial"]]} for m in sim.meters
    ]
    # the bridge's cycle: the billing read's objects, as the bare dlms-cosem client
    reads = [attr(o["ic"], o["obis"], o["attribute"]) for o in BILLING]
    used = {}
    total, errors, elapsed = cycles(meters, args.sim_seconds, os.cpu_count() or 1, reads, used)
    with stub.cond:
        for serial, counter in used.items():
            stub.counters[serial] = max(stub.counters[serial], counter)
    sim_cpu = cpu_seconds(sim.proc.pid) - sim_before
    client_cpu = time.process_time() - client_before
    print(
        f"  bench_sim on the same simulator ({args.meters} meters, associate + the "
        f"billing read's {len(reads)} GET + release): {total / elapsed:.1f} cycles/s, "
        f"errors={errors}; "
        f"sim CPU {sim_cpu / elapsed:.0%} of one core, "
        f"{sim_cpu / max(total, 1) * 1000:.2f} ms per cycle; its dlms-cosem client threads "
        f"{client_cpu / max(total, 1) * 1000:.2f} ms per cycle",
        flush=True,
    )
    return client_cpu / max(total, 1) * 1000


if __name__ == "__main__":
    main()
