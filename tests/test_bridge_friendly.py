"""The set_friendly_schedule job (docs/job-protocol.md): payload checks without a meter,
then against a simulated meter over real DLMS (HLS-GMAC), and a reading-only association."""

from __future__ import annotations

import datetime as dt

import pytest

pytest.importorskip("gurux_dlms")
model_mod = pytest.importorskip("meter_sim.model")

from sim_fixtures import fleet_fixture, run_job  # noqa: E402

from meter_bridge import executors as ex  # noqa: E402
from meter_bridge.errors import JobError, MeterRefused  # noqa: E402

pytestmark = pytest.mark.timeout(60)
MeterConfig = model_mod.MeterConfig
START = dt.datetime(2024, 3, 1, 18, 30, tzinfo=dt.timezone.utc)  # a Friday evening
GOOD = {
    "utc_offset_min": 60,
    "windows": [
        {"weekday": 4, "start_min": 1080, "end_min": 1440},
        {"weekday": 5, "start_min": 0, "end_min": 1440},
    ],
    "special_days": ["2024-12-25", "2024-03-04"],
    "friendly_limit_kwh": -5.0,
}


@pytest.mark.parametrize(
    "change",
    [
        {"utc_offset_min": None},
        {"utc_offset_min": 900},
        {"windows": None},
        {"windows": [{"weekday": 7, "start_min": 0, "end_min": 60}]},
        {"windows": [{"weekday": 0, "start_min": 600, "end_min": 600}]},
        {"windows": [{"weekday": 0, "start_min": 0, "end_min": 1441}]},
        {"windows": [{"weekday": 0, "start_min": "0", "end_min": 60}]},
        {"windows": [{"weekday": 0, "start_min": 0, "end_min": 60}] * 65},
        {"special_days": ["25/12/2024"]},
        {"special_days": "2024-12-25"},
        {"friendly_limit_kwh": 1},
        {"friendly_limit_kwh": None},
    ],
)
def test_bad_friendly_payload_is_refused_before_the_meter(change):
    with pytest.raises(JobError) as exc:
        ex.validate_set_friendly_schedule({**GOOD, **change})
    assert exc.value.retryable is False


fleet = fleet_fixture(
    MeterConfig("SIM00081", credit_kwh=0.5),
    MeterConfig("SIM00082", auth="lls", password="secret12"),
    MeterConfig("SIM00083", framing="hdlc"),
    start=START,
)


def test_friendly_schedule_reaches_the_meter_and_reads_back(fleet):
    model = fleet.meter("SIM00081")
    result = run_job(fleet, "SIM00081", "set_friendly_schedule", GOOD)
    assert result == {
        "utc_offset_min": 60,
        "windows": GOOD["windows"],
        "special_days": ["2024-03-04", "2024-12-25"],
        "friendly_limit_kwh": -5.0,
        "friendly": "inside",  # Friday 19:30 local
        "credit_kwh": 0.5,
        "relay": "connected",
    }
    assert model.friendly_windows == [(4, 1080, 1440), (5, 0, 1440)]
    assert model.friendly_days == [dt.date(2024, 3, 4), dt.date(2024, 12, 25)]
    assert model.friendly_limit_wh == -5000 and model.friendly_offset_min == 60
    # the meter now defers its credit trip through the Friday night and the Saturday
    model.set_load(1000)
    model.advance(3600)
    assert model.relay_connected and model.credit_wh < 0
    again = run_job(fleet, "SIM00081", "set_friendly_schedule", GOOD)
    assert again["friendly"] == "deferring" and again["relay"] == "connected"
    # an empty schedule: the deferred trip happens at once
    off = run_job(
        fleet,
        "SIM00081",
        "set_friendly_schedule",
        {"utc_offset_min": 0, "windows": [], "special_days": [], "friendly_limit_kwh": 0},
    )
    assert off["relay"] == "disconnected" and off["windows"] == [] and off["special_days"] == []


def test_a_reading_association_cannot_set_the_friendly_schedule(fleet):
    model = fleet.meter("SIM00082")
    with pytest.raises(MeterRefused):
        run_job(
            fleet,
            "SIM00082",
            "set_friendly_schedule",
            GOOD,
            auth="lls",
            password="secret12",
            invocation_counter=0,
        )
    assert model.friendly_windows == [] and model.friendly_days == []
    assert model.friendly_limit_wh == 0


@pytest.mark.parametrize("serial", ["SIM00081", "SIM00083"], ids=["wrapper", "hdlc"])
def test_a_full_schedule_fits_one_ciphered_set(fleet, serial):
    """64 windows and 128 special days: ciphered SETs far above 127 bytes (dlms_compat 10),
    over HDLC in several frames (gurux_compat: segmented general-glo-ciphering)."""
    model = fleet.meter(serial)
    windows = [
        {"weekday": i % 7, "start_min": 20 * (i // 7), "end_min": 20 * (i // 7) + 10}
        for i in range(64)
    ]
    days = [(dt.date(2025, 1, 1) + dt.timedelta(days=i)).isoformat() for i in range(128)]
    payload = {
        "utc_offset_min": -300,
        "windows": windows,
        "special_days": days,
        "friendly_limit_kwh": -1.5,
    }
    result = run_job(fleet, serial, "set_friendly_schedule", payload)
    assert result["special_days"] == days
    assert sorted(map(tuple, (w.values() for w in result["windows"]))) == sorted(
        map(tuple, (w.values() for w in windows))
    )
    assert len(model.friendly_windows) == 64 and len(model.friendly_days) == 128
    assert model.friendly_offset_min == -300 and model.friendly_limit_wh == -1500


money_fleet = fleet_fixture(
    MeterConfig("SIM00084", credit_mode="money", credit_kwh=0.5),
    start=START,
)


def test_money_meter_gets_the_limit_in_currency_and_defers_down_to_it(money_fleet):
    """A money-mode meter counts milli-units: friendly_limit_money -2.5 is -2500 of them,
    read back in currency; the meter defers its trip down to that and trips there."""
    model = money_fleet.meter("SIM00084")
    payload = {k: v for k, v in GOOD.items() if k != "friendly_limit_kwh"}
    payload["friendly_limit_money"] = -2.5
    result = run_job(money_fleet, "SIM00084", "set_friendly_schedule", payload, credit_mode="money")
    assert result["friendly_limit_money"] == -2.5 and "friendly_limit_kwh" not in result
    assert result["credit_money"] == 0.5 and result["friendly"] == "inside"
    assert model.friendly_limit_wh == -2500
    model.charge_scale_active = -4
    model.charges_active = {rate: 10_000 for rate in range(64)}  # 1.000 a kWh, any band
    model.set_load(2000)
    model.advance(1800)  # Friday 20:00 local: 1 kWh, 1.000 used of 0.500: still on
    assert model.relay_connected and -2500 < model.credit_wh < 0
    assert model.credit_wh == -500
    model.advance(3 * 3600)  # the limit reached inside the period: off
    assert not model.relay_connected and model.credit_wh <= -2500


def test_money_limit_above_zero_is_refused():
    payload = {k: v for k, v in GOOD.items() if k != "friendly_limit_kwh"}
    with pytest.raises(JobError, match="friendly_limit_money"):
        ex.validate_set_friendly_schedule({**payload, "friendly_limit_money": 1.0})
