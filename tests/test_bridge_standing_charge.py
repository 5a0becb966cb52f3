"""The set_charge job (docs/job-protocol.md) and the standing charge in ping results:
payload checks without a meter, then against a simulated meter over real DLMS (HLS-GMAC)."""

from __future__ import annotations

import datetime as dt

import pytest

pytest.importorskip("gurux_dlms")
fleet_mod = pytest.importorskip("meter_sim.fleet")
model_mod = pytest.importorskip("meter_sim.model")

from meter_bridge import executors as ex  # noqa: E402
from meter_bridge.errors import JobError  # noqa: E402
from meter_sim.testing import hls_job_meter  # noqa: E402

pytestmark = pytest.mark.timeout(60)
MeterConfig = model_mod.MeterConfig
SERIAL = "SIM00091"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"charge_kwh": 1.5},
        {"charge_kwh": -1, "period_s": 86400},
        {"charge_kwh": 1.5, "period_s": 0},
        {"charge_kwh": 1.5, "period_s": 86400.5},
        {"charge_kwh": 1.0005, "period_s": 86400},  # not whole Wh
        {"charge_kwh": 32.769, "period_s": 86400},  # 32769 Wh: no long x 10^n
        {"charge_kwh": True, "period_s": 86400},
    ],
)
def test_bad_charge_payload_is_refused_before_the_meter(payload):
    with pytest.raises(JobError) as exc:
        ex.validate_set_charge(payload)
    assert exc.value.retryable is False


def test_unit_charge_scaling_is_exact():
    assert ex.unit_charge_scaled(1500) == (1500, 0)
    assert ex.unit_charge_scaled(45000) == (4500, 1)
    assert ex.validate_set_charge({"charge_kwh": 45, "period_s": 86400}) == {
        "charge_wh": 45000,
        "period_s": 86400,
    }


@pytest.fixture()
def fleet():
    start = dt.datetime(2024, 3, 4, 10, 0, tzinfo=dt.timezone.utc)
    f = fleet_mod.Fleet(meters=[MeterConfig(SERIAL, credit_kwh=20.0)], speed=0, start=start)
    f.start()
    try:
        yield f
    finally:
        f.stop()


def run(fleet, job_type, payload=None):
    model = fleet.meter(SERIAL)
    job_meter = hls_job_meter(model, fleet.port_of(SERIAL), id=1, timeout_s=3)
    result = ex.execute_job(
        {"id": 1, "job_type": job_type, "payload": payload or {}, "meter": job_meter},
        deadline_s=20,
    )
    result.pop("invocation_counter", None)
    return result


def test_charge_is_set_read_back_and_collected_over_dlms(fleet):
    model = fleet.meter(SERIAL)
    model.set_load(0)
    result = run(fleet, "set_charge", {"charge_kwh": 45.0, "period_s": 86400})
    assert result == {
        "standing_charge_kwh": 45.0,
        "standing_charge_period_s": 86400,
        "standing_charge_paid_kwh": 0.0,
        "credit_kwh": 20.0,
        "relay": "connected",
    }
    assert model.charge_unit_wh == 45000
    again = run(fleet, "set_charge", {"charge_kwh": 1.5, "period_s": 86400})  # a change
    assert again["standing_charge_kwh"] == 1.5
    model.advance(2 * 86400)  # two midnights of the meter's clock
    ping = run(fleet, "ping")
    assert ping["standing_charge_paid_kwh"] == 3.0
    assert ping["credit_kwh"] == 17.0 == model.credit_wh / 1000
