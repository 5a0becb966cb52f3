"""The set_tariff_calendar job and money-mode credit (docs/job-protocol.md): payload checks
without a meter, then against a simulated money-mode meter over real DLMS (HLS-GMAC): the
calendar written, read back and charged band by band, the next one activated by the meter
at its time, and money tokens delivered."""

from __future__ import annotations

import datetime as dt

import pytest

pytest.importorskip("gurux_dlms")
model_mod = pytest.importorskip("meter_sim.model")

from meter_bridge import executors as ex  # noqa: E402
from meter_bridge.errors import JobError, MeterRefused  # noqa: E402
from meter_sim.testing import hls_job_meter  # noqa: E402

pytestmark = pytest.mark.timeout(60)
MeterConfig = model_mod.MeterConfig
MIDNIGHT = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)  # a Monday


def calendar(name, off_cpu=1000, peak_cpu=4000):
    """Off-peak (rate 1) but 17:00-21:00 peak (rate 2), every day: as Odoo builds it."""
    return {
        "name": name,
        "seasons": [{"name": "S1", "start_month": 1, "start_day": 1, "week": "W1"}],
        "weeks": [{"name": "W1", "days": [1] * 7}],
        "days": [
            {
                "day_id": 1,
                "schedule": [
                    {"start_min": 0, "rate": 1},
                    {"start_min": 1020, "rate": 2},
                    {"start_min": 1260, "rate": 1},
                ],
            }
        ],
        "charges": [
            {"rate": 1, "charge_per_unit": off_cpu},
            {"rate": 2, "charge_per_unit": peak_cpu},
        ],
    }


PAYLOAD = {
    "utc_offset_min": 0,
    "active": calendar("T1-20260101"),
    "passive": None,
    "activate_at": None,
}


@pytest.mark.parametrize(
    "change",
    [
        {"utc_offset_min": 900},
        {"active": None},
        {"active": {**calendar("X"), "weeks": [{"name": "W1", "days": [1] * 6}]}},
        {
            "active": {
                **calendar("X"),
                "seasons": [{"name": "S1", "start_month": 1, "start_day": 1, "week": "W9"}],
            }
        },
        {"active": {**calendar("X"), "charges": [{"rate": 1, "charge_per_unit": 40000}]}},
        {"passive": calendar("T1-20260401")},  # without activate_at
    ],
)
def test_bad_calendar_payload_is_refused_before_the_meter(change):
    with pytest.raises(JobError) as exc:
        ex.validate_set_tariff_calendar({**PAYLOAD, **change})
    assert exc.value.retryable is False


def run(fleet, serial, job_type, payload=None):
    model = fleet.meter(serial)
    job_meter = {
        **hls_job_meter(model, fleet.port_of(serial), id=1, timeout_s=3),
        "credit_mode": model.credit_mode,
    }
    result = ex.execute_job(
        {"id": 1, "job_type": job_type, "payload": payload or {}, "meter": job_meter},
        deadline_s=20,
    )
    result.pop("invocation_counter", None)
    return result


def test_calendar_pushed_read_back_and_charged_band_by_band(sim_fleet):
    fleet = sim_fleet(MeterConfig("TOU00011", credit_mode="money", credit_kwh=0.0), start=MIDNIGHT)
    model = fleet.meter("TOU00011")
    later = dict(
        PAYLOAD,
        passive=calendar("T1-20260303", off_cpu=2000),
        activate_at="2026-03-03T00:00:00+00:00",
    )
    result = run(fleet, "TOU00011", "set_tariff_calendar", later)
    assert result["active"]["name"] == "T1-20260101"
    assert result["active"]["charges"] == PAYLOAD["active"]["charges"]
    assert result["passive"]["name"] == "T1-20260303"
    assert result["activate_at"] == "2026-03-03T00:00:00Z"
    assert result["active_rate"] == 1
    assert "credit_money" in result and "credit_kwh" not in result
    # a retry writes the same and reads the same
    assert run(fleet, "TOU00011", "set_tariff_calendar", later)["active"] == result["active"]

    token = model.mint_money_token(1, 20_000).hex()  # 20.000 of the currency
    added = run(fleet, "TOU00011", "add_credit", {"token": token, "transfer_number": 1, "kwh": 0})
    assert added["credit_money"] == 20.0 and added["charge_total"] == 0.0
    assert not added["already_applied"]
    model.set_load(1000)
    model.advance(17 * 3600)
    assert run(fleet, "TOU00011", "ping")["credit_money"] == 20.0 - 1.7
    model.advance(7 * 3600)  # the peak and the evening: the day costs 3.60
    state = run(
        fleet,
        "TOU00011",
        "read",
        {
            "objects": [
                {"obis": "1.0.1.8.1.255", "ic": 3, "attribute": 2},
                {"obis": "1.0.1.8.2.255", "ic": 3, "attribute": 2},
                {"obis": "0.0.19.20.0.255", "ic": 113, "attribute": 2},
            ]
        },
    )
    values = {r["obis"]: r["value"] for r in state["readings"]}
    assert values["1.0.1.8.1.255"] == 20_000 and values["1.0.1.8.2.255"] == 4_000
    assert values["0.0.19.20.0.255"] == 3_600
    # past midnight the meter runs the planned calendar by itself; the same push arriving
    # late does not undo it
    model.advance(3600)
    after = run(fleet, "TOU00011", "set_tariff_calendar", later)
    assert after["active"]["name"] == "T1-20260303"
    assert model.charge_total == 3_600 + 200


def test_money_meter_refuses_a_kwh_token_through_the_bridge(sim_fleet):
    fleet = sim_fleet(MeterConfig("TOU00012", credit_mode="money"), start=MIDNIGHT)
    model = fleet.meter("TOU00012")
    before = model.credit_wh
    token = model.mint_token(1, 5_000).hex()
    with pytest.raises(MeterRefused) as exc:
        run(fleet, "TOU00012", "add_credit", {"token": token, "transfer_number": 1, "kwh": 5})
    assert exc.value.code == 12
    assert model.credit_wh == before


def _money_clear(model, number, amount):
    from meter_sim import security

    token = security.mint_money_clear_token(model.token_key, model.serial, number, amount)
    return {"token": token.hex(), "transfer_number": number, "money_units": amount}


def test_money_clear_token_takes_money_off_a_money_meter_once(sim_fleet):
    fleet = sim_fleet(MeterConfig("TOU00013", credit_mode="money", credit_kwh=0.0), start=MIDNIGHT)
    model = fleet.meter("TOU00013")
    model.set_load(0)
    model.add_money(1, 10_000)  # 10.000 of the currency
    result = run(fleet, "TOU00013", "clear_credit", _money_clear(model, 2, 1_250))
    assert result == {
        "transfer_number": 2,
        "already_applied": False,
        "cleared_money": 1.25,
        "credit_money": 8.75,
        "relay": "connected",
    }
    assert model.credit_wh == 8_750
    # the retry after a lost answer: already applied, the amount read from the token log
    again = run(fleet, "TOU00013", "clear_credit", _money_clear(model, 2, 1_250))
    assert again["already_applied"] and again["cleared_money"] == 1.25
    assert model.credit_wh == 8_750
    # a kWh clear token on a money meter, and a money clear token on a kWh meter: refused
    kwh_clear = model.mint_clear_token(3, 1_000).hex()
    with pytest.raises(MeterRefused) as exc:
        run(
            fleet,
            "TOU00013",
            "clear_credit",
            {"token": kwh_clear, "transfer_number": 3, "wh": 1000},
        )
    assert exc.value.code == 12 and model.credit_wh == 8_750
    assert model.last_code("standard") == model_mod.EV_TOKEN_WRONG_UNIT


def test_money_clear_token_is_refused_by_a_kwh_meter(sim_fleet):
    fleet = sim_fleet(MeterConfig("TOU00014", credit_kwh=10.0), start=MIDNIGHT)
    model = fleet.meter("TOU00014")
    model.set_load(0)
    with pytest.raises(MeterRefused) as exc:
        run(fleet, "TOU00014", "clear_credit", _money_clear(model, 1, 1_000))
    assert exc.value.code == 12 and model.credit_wh == 10_000


def test_money_clear_payload_must_say_the_tokens_amount():
    from meter_sim import security

    token = security.mint_money_clear_token(bytes(16), "X1", 5, 1_000).hex()
    with pytest.raises(JobError):  # the kWh key for a money token
        ex.validate_clear_credit({"token": token, "transfer_number": 5, "wh": 1_000})
    with pytest.raises(JobError):
        ex.validate_clear_credit({"token": token, "transfer_number": 5, "money_units": 999})
    ok = ex.validate_clear_credit({"token": token, "transfer_number": 5, "money_units": 1_000})
    assert ok["wh"] == 1_000  # internally the meter's own unit


def test_money_meter_collects_a_standing_charge_in_money(sim_fleet):
    fleet = sim_fleet(MeterConfig("TOU00015", credit_mode="money", credit_kwh=0.0), start=MIDNIGHT)
    model = fleet.meter("TOU00015")
    model.set_load(0)
    model.add_money(1, 10_000)
    result = run(fleet, "TOU00015", "set_charge", {"charge_money": 1.25, "period_s": 86400})
    assert result["standing_charge_money"] == 1.25
    assert result["standing_charge_paid_money"] == 0.0
    assert "standing_charge_kwh" not in result and "credit_kwh" not in result
    model.advance(3 * 86400)
    ping = run(fleet, "TOU00015", "ping")
    assert ping["standing_charge_paid_money"] == 3.75
    assert ping["credit_money"] == 6.25


def test_realistic_price_is_charged_at_the_tables_price_scale(sim_fleet):
    # 25.00 and 12.50 per kWh in a currency of small units: price scale -3
    fleet = sim_fleet(MeterConfig("TOU00016", credit_mode="money", credit_kwh=0.0), start=MIDNIGHT)
    model = fleet.meter("TOU00016")
    model.set_load(0)
    dear = dict(calendar("T9-20260101", off_cpu=12_500, peak_cpu=25_000), price_scale=-3)
    result = run(fleet, "TOU00016", "set_tariff_calendar", dict(PAYLOAD, active=dear))
    assert result["active"]["price_scale"] == -3
    assert result["active"]["charges"] == dear["charges"]
    assert model.charge_scale_active == -3
    model.add_money(1, 300_000)  # 300.000 of the currency
    model.set_load(1000)
    model.advance(3600)  # 1 kWh off-peak: 12.500
    assert model.charge_total == 12_500 and model.credit_wh == 300_000 - 12_500
    model.advance(16 * 3600 + 3600)  # 16 kWh more off-peak, then 1 kWh at the peak
    assert model.charge_total == 17 * 12_500 + 25_000


def test_price_scale_outside_the_meters_range_is_refused_before_the_meter():
    with pytest.raises(JobError):
        ex.validate_set_tariff_calendar(dict(PAYLOAD, active=dict(calendar("X"), price_scale=1)))
    old = ex.validate_set_tariff_calendar(PAYLOAD)  # a payload without it: 10^-4
    assert old["active"]["price_scale"] == -4


def test_money_meter_emergency_credit_in_money_repaid_by_the_next_money_token(sim_fleet):
    fleet = sim_fleet(MeterConfig("TOU00017", credit_mode="money", credit_kwh=0.0), start=MIDNIGHT)
    model = fleet.meter("TOU00017")
    model.set_load(0)
    model.add_money(1, 500)  # 0.500 left
    settings = {"amount_money": 5.0, "threshold_money": 1.0}
    set_result = run(fleet, "TOU00017", "set_emergency_credit", settings)
    assert set_result["emergency_status"] == "selectable"
    assert set_result["emergency_amount_money"] == 5.0
    assert set_result["emergency_threshold_money"] == 1.0
    assert "emergency_amount_kwh" not in set_result
    taken = run(fleet, "TOU00017", "take_emergency_credit")
    assert taken["emergency_status"] == "in_use" and taken["emergency_in_use_money"] == 5.0
    assert taken["credit_money"] == 5.5 and model.credit_wh == 5_500
    token = model.mint_money_token(2, 20_000).hex()
    added = run(fleet, "TOU00017", "add_credit", {"token": token, "transfer_number": 2, "kwh": 0})
    assert added["emergency_repaid_money"] == 5.0
    assert added["credit_money"] == 20.5  # 5.500 + 20.000 - 5.000 repaid
    assert added["emergency_in_use_money"] == 0.0


def test_money_meter_thresholds_are_set_in_money(sim_fleet):
    fleet = sim_fleet(MeterConfig("TOU00018", credit_mode="money", credit_kwh=0.0), start=MIDNIGHT)
    model = fleet.meter("TOU00018")
    result = run(
        fleet, "TOU00018", "set_thresholds", {"low_credit_money": 2.5, "trip_money": -0.25}
    )
    assert result == {"low_credit_money": 2.5, "trip_money": -0.25}
    assert (model.low_credit_wh, model.trip_wh) == (2_500, -250)


def holiday_calendar(name):
    """calendar() with a day profile 2: off-peak all day, for public holidays."""
    cal = calendar(name)
    cal["days"] = [*cal["days"], {"day_id": 2, "schedule": [{"start_min": 0, "rate": 1}]}]
    return cal


@pytest.mark.parametrize(
    "days",
    [
        [{"date": "2026-02-30", "day_id": 2}],
        [{"date": "2026-3-2", "day_id": 2}],
        [{"date": "2026-03-02", "day_id": 7}],  # no such day profile
        [{"date": "2026-03-02", "day_id": 2}, {"date": "2026-03-02", "day_id": 1}],
        "2026-03-02",
    ],
)
def test_bad_special_days_are_refused_before_the_meter(days):
    payload = {**PAYLOAD, "active": holiday_calendar("X"), "special_days": days}
    with pytest.raises(JobError) as exc:
        ex.validate_set_tariff_calendar(payload)
    assert exc.value.retryable is False


def test_special_days_written_read_back_and_a_holiday_charged_at_its_band(sim_fleet):
    fleet = sim_fleet(MeterConfig("TOU00013", credit_mode="money", credit_kwh=0.0), start=MIDNIGHT)
    model = fleet.meter("TOU00013")
    payload = dict(
        PAYLOAD,
        active=holiday_calendar("T1-20260101"),
        special_days=[
            {"date": "2026-03-02", "day_id": 2},  # today, Monday: a public holiday
            {"date": "****-12-25", "day_id": 2},  # every year
        ],
    )
    result = run(fleet, "TOU00013", "set_tariff_calendar", payload)
    assert result["special_days"] == payload["special_days"]
    assert model.tou_special_days == [((2026, 3, 2), 2), ((None, 12, 25), 2)]
    token = model.mint_money_token(1, 20_000).hex()
    run(fleet, "TOU00013", "add_credit", {"token": token, "transfer_number": 1, "kwh": 0})
    model.set_load(1000)
    model.advance(18 * 3600)  # 18:00 on the holiday: still off-peak
    assert model.active_rate() == 1
    model.advance(6 * 3600)  # the holiday: 24 kWh at 0.10
    assert run(fleet, "TOU00013", "ping")["credit_money"] == 20.0 - 2.4
    model.advance(18 * 3600)  # Tuesday 18:00: peak
    assert model.active_rate() == 2
    # an empty table clears it; the holiday is gone
    cleared = run(fleet, "TOU00013", "set_tariff_calendar", dict(payload, special_days=[]))
    assert cleared["special_days"] == [] and model.tou_special_days == []
