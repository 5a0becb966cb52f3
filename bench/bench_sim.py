"""How many association + 6 GET + release cycles per second one meter-sim process sustains.

    .venv/bin/python bench/bench_sim.py [METERS] [--seconds S] [--clients C] [--auth hls|none]

Starts `meter-sim --meters METERS` as one subprocess on free ports, then C client threads
(default: the machine's core count) cycle over the meters for S seconds. The meters are
locked as real prepaid meters are, so each cycle is the management association (client 1)
with HLS-GMAC and the meter's keys (the demo/test derivation of meter_sim/security.py),
through the bridge's MeterConnection, each APDU ciphered. `--auth none` serves meters whose
management client needs no authentication (GET only), to measure what the ciphering costs.
Not a test.
"""

from __future__ import annotations

import argparse
import collections
import os
import threading
import time

import structlog
from common import MachineBusy, cpu_seconds, headline

from meter_bridge.dlms import MeterConnection
from meter_sim import objects, security
from meter_sim.testing import attr, run_cli

READS = [
    attr(1, objects.LOGICAL_DEVICE_NAME, 2),
    attr(8, objects.CLOCK, 2),
    attr(3, objects.ENERGY_IMPORT, 2),
    attr(3, objects.POWER_IMPORT, 2),
    attr(112, objects.CREDIT, 2),
    attr(70, objects.DISCONNECT_CONTROL, 2),
]


def job_meter(listed: dict, seed: str = security.DEMO_KEY_SEED) -> dict:
    """The `meter` dict of a bridge job (docs/job-protocol.md) for a meter of `meter-sim
    --json`'s listing, configured as a real meter is: the management client, the meter's
    authentication and, for HLS-GMAC, its keys (here those the simulator derives from the
    seed, as the demo data holds them). Its `invocation_counter` (the last one the meter
    accepted) is 0: a fresh simulator; see Counters."""
    meter = {
        "serial_number": listed["serial"],
        "connection_type": "tcp",
        "host": listed["host"],
        "port": listed["port"],
        "framing": listed["framing"],
        "client_address": listed["client_address"],
        "server_logical_address": listed["server_logical_address"],
        "server_physical_address": listed["server_physical_address"],
        "auth": "hls_gmac" if listed["auth"] == "hls" else listed["auth"],
        "invocation_counter": 0,
        "timeout_s": 10,
    }
    if listed["auth"] == "hls":
        keys = security.derive_keys(listed["serial"], seed)
        meter |= {
            "auth_key": keys["authentication_key"],
            "encryption_key": keys["encryption_key"],
            "system_title": listed.get("system_title"),
        }
    return meter


class Counters:
    """The last HLS-GMAC invocation counter used per meter, as Odoo keeps it: a meter refuses
    a counter that is not above the last one it accepted, even in a new association. One
    lock per meter: two threads on one meter take turns (else the later counter could
    reach the meter first and the earlier be refused)."""

    def __init__(self):
        self.last = collections.defaultdict(int)
        self.locks = collections.defaultdict(threading.Lock)
        self._lock = threading.Lock()

    def lock(self, serial: str) -> threading.Lock:
        with self._lock:
            return self.locks[serial]


def cycles(
    meters: list[dict],
    seconds: float,
    clients: int,
    reads: list | None = None,
    last_counters: dict | None = None,
) -> tuple[int, int, float]:
    """(cycles, errors, elapsed): C client threads cycling over ``meters`` (job meter dicts,
    see job_meter, each with the last invocation counter its meter accepted) for S seconds;
    each cycle an association, a GET of each of ``reads`` (default READS), a release.
    ``last_counters`` (serial -> counter), when given, receives the counters used last."""
    reads = READS if reads is None else reads
    counts = [0] * clients
    errors = [0] * clients
    counters = Counters()
    counters.last.update({m["serial_number"]: m.get("invocation_counter") or 0 for m in meters})
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        j = i
        while time.monotonic() < stop:
            meter = meters[j % len(meters)]
            j += clients
            serial = meter["serial_number"]
            with counters.lock(serial):
                conn = MeterConnection.from_job_meter(
                    {**meter, "invocation_counter": counters.last[serial]}
                )
                try:
                    with conn:
                        for a in reads:
                            conn.client.get(a)
                    counts[i] += 1
                except Exception:
                    errors[i] += 1
                finally:
                    if conn.invocation_counter is not None:
                        counters.last[serial] = max(counters.last[serial], conn.invocation_counter)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if last_counters is not None:
        last_counters.update(counters.last)
    return sum(counts), sum(errors), time.monotonic() - t0


def quiet_dlms_cosem() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # chatty


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("meters", type=int, nargs="?", default=200)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--clients", type=int, default=os.cpu_count() or 1)
    p.add_argument(
        "--auth",
        choices=("hls", "none"),
        default="hls",
        help="the meters' management association: hls (as locked meters are; default) or "
        "none (GET only, no ciphering: for comparison)",
    )
    args = p.parse_args()
    quiet_dlms_cosem()
    with run_cli(args.meters, "--auth", args.auth, control=False, timeout=120) as sim:
        meters = [job_meter(m) for m in sim.meters]
        sim_cpu = cpu_seconds(sim.proc.pid)
        with MachineBusy() as busy:
            total, errors, elapsed = cycles(meters, args.seconds, args.clients)
        sim_cpu = cpu_seconds(sim.proc.pid) - sim_cpu
    print(
        f"cores: {os.cpu_count()}  meters: {args.meters}  client threads: {args.clients}  "
        f"auth: {args.auth}"
    )
    print(
        f"cycles (associate + 6 GET + release, management client, {args.auth}): {total} in "
        f"{elapsed:.1f} s = {total / elapsed:.1f} /s  errors: {errors}"
    )
    headline("sim: cycles per second, one simulator process", total / elapsed, unit=" /s")
    if total:
        print(
            f"sim: CPU {sim_cpu:.1f} s = {1000 * sim_cpu / total:.2f} ms per cycle "
            f"({100 * sim_cpu / elapsed:.0f} % of one core)"
        )
    print(f"sim: {busy.line()}", flush=True)


if __name__ == "__main__":
    main()
