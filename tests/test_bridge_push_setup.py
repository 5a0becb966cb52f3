"""The set_push job (docs/job-protocol.md): payload checks without a meter, then the push
setups of a simulated meter written and read back over real DLMS (HLS-GMAC), the meter
then pushing to the new destination; a reading association cannot change them."""

from __future__ import annotations

import socket

import pytest
from odoo_e2e import wait_until

from meter_bridge import executors as ex
from meter_bridge.errors import JobError, MeterRefused
from meter_sim.model import MeterConfig
from meter_sim.testing import hls_job_meter

pytestmark = pytest.mark.timeout(60)
GOOD = {
    "destination": "127.0.0.1:4059",
    "heartbeat_s": 900,
    "retries": 5,
    "repetition_delay_s": 20,
    "randomisation_s": 3,
    "windows": [[0, 360], [1320, 1440]],
}


@pytest.mark.parametrize(
    "change",
    [
        {"destination": "nohostport"},
        {"destination": "host:99999"},
        {"destination": None},
        {"heartbeat_s": -1},
        {"heartbeat_s": 1.5},
        {"retries": 256},
        {"repetition_delay_s": None},
        {"windows": [[10, 10]]},
        {"windows": [[0, 1441]]},
        {"windows": [[0, 10]] * 9},
    ],
)
def test_bad_push_payload_is_refused_before_the_meter(change):
    with pytest.raises(JobError) as exc:
        ex.validate_set_push({**GOOD, **change})
    assert exc.value.retryable is False


def run(fleet, serial, payload, **meter_kw):
    model = fleet.meter(serial)
    job_meter = {**hls_job_meter(model, fleet.port_of(serial), id=1, timeout_s=3), **meter_kw}
    result = ex.execute_job(
        {"id": 1, "job_type": "set_push", "payload": payload, "meter": job_meter}, deadline_s=20
    )
    result.pop("invocation_counter", None)
    return result


def test_push_settings_reach_the_meter_read_back_and_it_pushes_there(sim_fleet):
    fleet = sim_fleet(MeterConfig("SIM00091"))
    model = fleet.meter("SIM00091")
    assert run(fleet, "SIM00091", GOOD) == GOOD
    p = model.push
    assert (p.destination, p.heartbeat_s, p.retries) == ("127.0.0.1:4059", 900, 5)
    assert (p.repetition_delay_s, p.randomisation_s, p.windows) == (20, 3, [(0, 360), (1320, 1440)])

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(10)
    here = {**GOOD, "destination": f"127.0.0.1:{srv.getsockname()[1]}", "windows": []}
    here["randomisation_s"] = 0
    assert run(fleet, "SIM00091", here)["destination"] == here["destination"]
    model.tamper("cover_open")
    conn, _ = srv.accept()
    conn.settimeout(10)
    assert conn.recv(2) == b"\x00\x01"  # a wrapper frame arrives
    conn.close()
    srv.close()

    off = run(fleet, "SIM00091", {**here, "destination": "", "heartbeat_s": 0})
    assert off["destination"] == "" and off["heartbeat_s"] == 0
    model.tamper("cover_close")
    wait_until(lambda: not model.push.address(), 5)
    assert fleet.push.pending("SIM00091") == 0  # push off: nothing queued


def test_a_reading_association_cannot_set_push(sim_fleet):
    fleet = sim_fleet(MeterConfig("SIM00092", auth="lls", password="secret12"))
    with pytest.raises(MeterRefused):
        run(fleet, "SIM00092", GOOD, auth="lls", password="secret12", invocation_counter=0)
    assert fleet.meter("SIM00092").push.destination == ""
