"""The bridge's executor CPU per billing read, A/B in one process, interleaved per meter:
upstream dlms-cosem ciphering against dlms_compat.ConnectionGcm, scalers read against
scalers known (the bridge's ScalerCache).

    .venv/bin/python bench/bench_bridge_ab.py [METERS] [--passes P]

On a shared machine two runs minutes apart differ by more than the changes measured here:
each meter is read by the three variants in turn (rotating order), so every variant sees the
same load. CPU of this thread (the executor: association, GETs, release) and of the
simulator process, per read. Not a test: it prints its figures.
"""

from __future__ import annotations

import argparse
import time

from bench_read import BILLING
from bench_sim import job_meter
from common import MachineBusy, cpu_seconds
from dlms_cosem.connection import DlmsConnection
from dlms_cosem.security import HighLevelSecurityGmacAuthentication as UpstreamHls

from meter_bridge import dlms
from meter_bridge import dlms_compat as compat
from meter_bridge.executors import execute_job
from meter_sim.testing import run_cli

OURS = {name: getattr(compat.DlmsConnectionCompat, name) for name in ("encrypt", "decrypt")}
OURS_HLS = {
    name: compat.HlsGmacCompat.__dict__[name]
    for name in ("hls_generate_reply_data", "hls_meter_data_is_valid")
}


def _upstream_reply(self, connection):
    data = UpstreamHls.hls_generate_reply_data(self, connection)
    connection.client_invocation_counter += 1  # dlms_compat entry 8 stays
    return data


def use_connection_gcm(on: bool) -> None:
    for name, ours in OURS.items():
        setattr(compat.DlmsConnectionCompat, name, ours if on else getattr(DlmsConnection, name))
    hls = compat.HlsGmacCompat
    hls.hls_generate_reply_data = OURS_HLS["hls_generate_reply_data"] if on else _upstream_reply
    hls.hls_meter_data_is_valid = (
        OURS_HLS["hls_meter_data_is_valid"] if on else UpstreamHls.hls_meter_data_is_valid
    )


VARIANTS = {
    "upstream ciphering, scalers read": (False, False),
    "ConnectionGcm, scalers read": (True, False),
    "ConnectionGcm, scalers known": (True, True),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("meters", type=int, nargs="?", default=200)
    p.add_argument("--passes", type=int, default=3)
    args = p.parse_args()
    with run_cli(args.meters, control=False, speed=0, timeout=120) as sim, MachineBusy() as busy:
        meters = [job_meter(m) for m in sim.meters]
        counters = {}
        known = dlms.SCALERS

        def read(meter):
            serial = meter["serial_number"]
            job = {
                "id": 1,
                "job_type": "read",
                "payload": {"objects": BILLING},
                "meter": {**meter, "invocation_counter": counters.get(serial, 0)},
            }
            counters[serial] = execute_job(job)["invocation_counter"]

        for meter in meters:  # warm-up: every meter once (its scalers now known)
            read(meter)
        spent = {v: [0.0, 0.0, 0] for v in VARIANTS}
        names = list(VARIANTS)
        for _ in range(args.passes):
            for i, meter in enumerate(meters):
                for name in names[i % 3 :] + names[: i % 3]:
                    gcm, cached = VARIANTS[name]
                    use_connection_gcm(gcm)
                    dlms.SCALERS = known if cached else dlms.ScalerCache()
                    sim0, own0 = cpu_seconds(sim.proc.pid), time.thread_time()
                    read(meter)
                    spent[name][0] += time.thread_time() - own0
                    spent[name][1] += cpu_seconds(sim.proc.pid) - sim0
                    spent[name][2] += 1
        use_connection_gcm(True)
        dlms.SCALERS = known
    for name, (own, sim_cpu, n) in spent.items():
        print(
            f"{name:34s} bridge executor {1000 * own / n:.2f} ms/read, "
            f"simulator {1000 * sim_cpu / n:.2f} ms/read (n={n})"
        )
    print(f"ab: {busy.line()}", flush=True)


if __name__ == "__main__":
    main()
