"""The set_load_recovery job (docs/job-protocol.md): payload checks without a meter, then
against a simulated meter over real DLMS (HLS-GMAC), and a reading-only association."""

from __future__ import annotations

import pytest

pytest.importorskip("gurux_dlms")
model_mod = pytest.importorskip("meter_sim.model")

from sim_fixtures import fleet_fixture, run_job  # noqa: E402

from meter_bridge import executors as ex  # noqa: E402
from meter_bridge.errors import JobError, MeterRefused  # noqa: E402

pytestmark = pytest.mark.timeout(60)
MeterConfig = model_mod.MeterConfig


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"reconnect_delay_s": 30},
        {"reconnect_delay_s": -1, "reconnect_attempts_per_hour": 3},
        {"reconnect_delay_s": 1.5, "reconnect_attempts_per_hour": 3},
        {"reconnect_delay_s": 30, "reconnect_attempts_per_hour": 256},
        {"reconnect_delay_s": 86401, "reconnect_attempts_per_hour": 3},
        {"reconnect_delay_s": True, "reconnect_attempts_per_hour": 3},
        {"reconnect_delay_s": "30", "reconnect_attempts_per_hour": 3},
    ],
)
def test_bad_load_recovery_payload_is_refused_before_the_meter(payload):
    with pytest.raises(JobError) as exc:
        ex.validate_set_load_recovery(payload)
    assert exc.value.retryable is False


def test_control_mode_keeps_the_meter_mode_and_adds_or_removes_local_reconnection():
    assert [ex.control_mode_for(m, True) for m in range(7)] == [0, 5, 5, 6, 6, 5, 6]
    assert [ex.control_mode_for(m, False) for m in range(7)] == [0, 1, 2, 3, 4, 1, 3]


fleet = fleet_fixture(
    MeterConfig("SIM00071", load_limit_w=2000),
    MeterConfig("SIM00072", auth="lls", password="secret12"),
)


def test_set_load_recovery_reaches_the_meter_and_reads_back(fleet):
    model = fleet.meter("SIM00071")
    payload = {"reconnect_delay_s": 45, "reconnect_attempts_per_hour": 3}
    result = run_job(fleet, "SIM00071", "set_load_recovery", payload)
    assert result == {
        "reconnect_delay_s": 45,
        "reconnect_attempts_per_hour": 3,
        "control_mode": 5,
        "load_recovery": "normal",
        "relay": "connected",
    }
    assert (model.reconnect_delay_s, model.reconnect_attempts_per_hour) == (45, 3)
    assert model.control_mode == 5 and model.auto_reconnect_enabled()
    # the meter now reconnects by itself after a load trip
    model.set_load(2500)
    model.set_load(500)
    model.advance(45)
    assert model.relay_connected
    off = run_job(
        fleet,
        "SIM00071",
        "set_load_recovery",
        {"reconnect_delay_s": 45, "reconnect_attempts_per_hour": 0},
    )
    assert off["control_mode"] == 1 and not model.auto_reconnect_enabled()


def test_lockout_is_read_back_and_a_remote_reconnect_clears_it(fleet):
    model = fleet.meter("SIM00071")
    run_job(
        fleet,
        "SIM00071",
        "set_load_recovery",
        {"reconnect_delay_s": 10, "reconnect_attempts_per_hour": 1},
    )
    model.remote_reconnect()  # a fresh hour
    model.set_load(2500)
    model.advance(10)  # reconnects, trips again: locked out
    events = run_job(fleet, "SIM00071", "read_events")["events"]
    assert [e["code"] for e in events][-4:] == [60, 80, 60, 81]
    state = run_job(
        fleet,
        "SIM00071",
        "set_load_recovery",
        {"reconnect_delay_s": 10, "reconnect_attempts_per_hour": 1},
    )
    assert state["load_recovery"] == "lockout" and state["relay"] == "disconnected"
    model.set_load(500)
    assert run_job(fleet, "SIM00071", "reconnect")["relay"] == "connected"
    assert model.state()["load_recovery"] == "normal"


def test_a_reading_association_cannot_set_load_recovery(fleet):
    model = fleet.meter("SIM00072")
    with pytest.raises(MeterRefused):
        run_job(
            fleet,
            "SIM00072",
            "set_load_recovery",
            {"reconnect_delay_s": 10, "reconnect_attempts_per_hour": 5},
            auth="lls",
            password="secret12",
            invocation_counter=0,
        )
    assert (model.reconnect_delay_s, model.reconnect_attempts_per_hour) == (0, 0)
    assert model.control_mode == 1
