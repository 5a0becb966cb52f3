"""How many association + 6 GET + release cycles per second one meter-sim process sustains.

    .venv/bin/python bench/bench_sim.py [METERS] [--seconds S] [--clients C]

Starts `meter-sim --meters METERS` as one subprocess on free ports, then C client threads
(default: the machine's core count) cycle over the meters for S seconds. Not a test.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import structlog

from meter_sim import objects as o
from meter_sim.testing import attr, dlms_client, run_cli

READS = [
    attr(1, o.LOGICAL_DEVICE_NAME, 2),
    attr(8, o.CLOCK, 2),
    attr(3, o.ENERGY_IMPORT, 2),
    attr(3, o.POWER_IMPORT, 2),
    attr(112, o.CREDIT, 2),
    attr(70, o.DISCONNECT_CONTROL, 2),
]


def cycles(ports: list[int], seconds: float, clients: int) -> tuple[int, int, float]:
    """(cycles, errors, elapsed): C client threads cycling over ``ports`` for S seconds."""
    counts = [0] * clients
    errors = [0] * clients
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        j = i
        while time.monotonic() < stop:
            port = ports[j % len(ports)]
            j += clients
            try:
                c = dlms_client(port)
                with c.session():
                    for a in READS:
                        c.get(a)
                counts[i] += 1
            except Exception:
                errors[i] += 1

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts), sum(errors), time.monotonic() - t0


def quiet_dlms_cosem() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # chatty


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("meters", type=int, nargs="?", default=200)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--clients", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    quiet_dlms_cosem()
    with run_cli(args.meters, control=False, timeout=120) as sim:
        total, errors, elapsed = cycles(list(sim.ports.values()), args.seconds, args.clients)
    print(f"cores: {os.cpu_count()}  meters: {args.meters}  client threads: {args.clients}")
    print(
        f"cycles (associate + 6 GET + release): {total} in {elapsed:.1f} s "
        f"= {total / elapsed:.1f} /s  errors: {errors}"
    )


if __name__ == "__main__":
    main()
