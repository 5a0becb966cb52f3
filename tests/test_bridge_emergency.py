"""The set_emergency_credit and take_emergency_credit jobs (docs/job-protocol.md), and the
emergency state in add_credit and ping results: payload checks without a meter, then
against a simulated meter over real DLMS (HLS-GMAC)."""

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
        {"amount_kwh": 5},
        {"amount_kwh": -1, "threshold_kwh": 1},
        {"amount_kwh": True, "threshold_kwh": 1},
        {"amount_kwh": "5", "threshold_kwh": 1},
        {"amount_kwh": 5, "threshold_kwh": 2e6},
    ],
)
def test_bad_emergency_payload_is_refused_before_the_meter(payload):
    with pytest.raises(JobError) as exc:
        ex.validate_set_emergency_credit(payload)
    assert exc.value.retryable is False


def test_take_emergency_credit_takes_no_payload():
    assert ex.validate_take_emergency_credit({}) == {}
    with pytest.raises(JobError):
        ex.validate_take_emergency_credit({"amount_kwh": 100})


SERIAL = "SIM00081"
fleet = fleet_fixture(MeterConfig(SERIAL, credit_kwh=1.0), scope="function")


def test_emergency_credit_is_set_taken_and_repaid_over_dlms(fleet):
    model = fleet.meter(SERIAL)
    result = run_job(fleet, SERIAL, "set_emergency_credit", {"amount_kwh": 5, "threshold_kwh": 2})
    assert result == {
        "emergency_status": "selectable",
        "emergency_in_use_kwh": 0.0,
        "emergency_amount_kwh": 5.0,
        "emergency_threshold_kwh": 2.0,
    }
    taken = run_job(fleet, SERIAL, "take_emergency_credit")
    assert taken["emergency_status"] == "in_use" and taken["already_in_use"] is False
    assert taken["emergency_in_use_kwh"] == 5.0 and taken["credit_kwh"] == 6.0
    assert model.credit_wh == 6000
    again = run_job(fleet, SERIAL, "take_emergency_credit")  # a retry, or a double click
    assert again["already_in_use"] is True and model.credit_wh == 6000
    delivered = run_job(fleet, SERIAL, "add_credit", {"token": model.mint_token(1, 8000).hex()})
    assert delivered["emergency_repaid_kwh"] == 5.0
    assert delivered["emergency_in_use_kwh"] == 0.0 and delivered["credit_kwh"] == 9.0
    assert delivered["emergency_status"] == "enabled"
    retry = run_job(fleet, SERIAL, "add_credit", {"token": model.mint_token(1, 8000).hex()})
    assert retry["already_applied"] is True and retry["emergency_repaid_kwh"] == 5.0
    assert model.credit_wh == 9000


def test_take_above_the_level_is_refused_and_changes_nothing(fleet):
    model = fleet.meter(SERIAL)
    run_job(fleet, SERIAL, "set_emergency_credit", {"amount_kwh": 5, "threshold_kwh": 0.5})
    with pytest.raises(MeterRefused) as exc:
        run_job(fleet, SERIAL, "take_emergency_credit")
    assert exc.value.retryable is False and "not selectable" in str(exc.value)
    assert model.credit_wh == 1000 and model.emergency_owed_wh == 0


def test_button_on_the_meter_shows_in_the_next_ping(fleet):
    model = fleet.meter(SERIAL)
    model.set_emergency_credit(amount_wh=3000, threshold_wh=2000)
    assert model.press_button()
    ping = run_job(fleet, SERIAL, "ping")
    assert ping["emergency_status"] == "in_use" and ping["emergency_in_use_kwh"] == 3.0
    assert ping["credit_kwh"] == 4.0


def test_a_reading_association_sees_the_status_but_cannot_take_it(sim_fleet):
    f = sim_fleet(
        MeterConfig(
            "SIM00082",
            credit_kwh=1.0,
            auth="lls",
            password="secret12",
            emergency_credit_kwh=5.0,
            emergency_threshold_kwh=2.0,
        )
    )
    model = f.meter("SIM00082")
    reading = {"auth": "lls", "password": "secret12", "invocation_counter": 0}
    ping = run_job(f, "SIM00082", "ping", **reading)
    assert ping["emergency_status"] == "selectable"
    with pytest.raises(MeterRefused):
        run_job(f, "SIM00082", "take_emergency_credit", **reading)
    assert model.credit_wh == 1000 and model.emergency_owed_wh == 0


money_fleet = fleet_fixture(
    MeterConfig("SIM00085", credit_mode="money", credit_kwh=3.0), scope="function"
)


def test_money_meter_refusal_names_the_currency_not_kwh(money_fleet):
    """On a money meter the level is currency (milli-units / 1000): the refusal says so."""
    run_job(
        money_fleet,
        "SIM00085",
        "set_emergency_credit",
        {"amount_money": 5, "threshold_money": 0.5},
        credit_mode="money",
    )
    with pytest.raises(MeterRefused) as exc:
        run_job(money_fleet, "SIM00085", "take_emergency_credit", credit_mode="money")
    message = str(exc.value)
    assert "not selectable" in message and "above 0.500 (currency)" in message
    assert "kWh" not in message
    assert money_fleet.meter("SIM00085").emergency_owed_wh == 0


def test_kwh_meter_refusal_names_kwh(fleet):
    run_job(fleet, SERIAL, "set_emergency_credit", {"amount_kwh": 5, "threshold_kwh": 0.5})
    with pytest.raises(MeterRefused, match=r"above 0\.5 kWh"):
        run_job(fleet, SERIAL, "take_emergency_credit")
