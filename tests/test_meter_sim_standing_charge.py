"""Standing charge on the simulated meter (docs/meter-contract.md, "Standing charge"): a
time-based Charge (IC 113) takes its unit charge from credit once per period of the meter's
clock, also when the clock is moved forward over several periods, never twice; inside a
friendly period it still accrues (credit goes negative) and the next token repays it."""

from __future__ import annotations

import datetime as dt

import pytest

from meter_sim.model import (
    EV_CHARGE_COLLECTED,
    EV_CREDIT_TRIP,
    MeterConfig,
    MeterModel,
)

pytestmark = pytest.mark.timeout(20)
DAY = 86400
MONDAY_10 = dt.datetime(2024, 3, 4, 10, 0, tzinfo=dt.timezone.utc)


def meter(credit_kwh=10.0, charge_kwh=1.5, start=MONDAY_10, watts=0):
    m = MeterModel(
        MeterConfig("S1", credit_kwh=credit_kwh, standing_charge_kwh=charge_kwh), start=start
    )
    m.set_load(watts)
    return m


def collected(m):
    return [e for e in m.log_events("standard") if e.code == EV_CHARGE_COLLECTED]


def test_one_charge_per_day_as_the_clock_runs():
    m = meter()
    m.advance(13 * 3600)  # Monday 23:00: the day in progress is not charged yet
    assert m.credit_wh == 10000 and m.charge_paid_wh == 0
    m.advance(2 * 3600)  # Tuesday 01:00: Monday's charge
    assert m.credit_wh == 8500 and m.charge_paid_wh == 1500
    m.advance(2 * DAY)  # Thursday 01:00
    assert m.credit_wh == 5500 and m.charge_paid_wh == 4500
    assert len(collected(m)) == 3
    assert m.state()["standing_charge_paid_kwh"] == 4.5


def test_clock_moved_forward_over_days_charges_each_day_once_and_back_none_twice():
    m = meter()
    m.set_clock(MONDAY_10 + dt.timedelta(days=4))  # Friday 10:00: Mon..Thu passed
    assert m.credit_wh == 10000 - 4 * 1500
    assert m.charge_last_time == dt.datetime(2024, 3, 8, tzinfo=dt.timezone.utc)
    m.set_clock(MONDAY_10 + dt.timedelta(days=1))  # back to Tuesday: nothing given back
    m.advance(3 * DAY)  # the meter's clock passes Wed..Fri midnight again: none twice
    assert m.credit_wh == 4000 and m.charge_paid_wh == 6000
    m.advance(DAY)  # Saturday 00:00 of the meter's clock: a new day
    assert m.credit_wh == 2500 and m.charge_paid_wh == 7500


def test_charges_accrue_below_zero_in_a_friendly_period_and_a_token_repays_them():
    m = meter(credit_kwh=1.0, charge_kwh=2.0)
    # friendly all week: the charges take credit below zero without a trip
    m.set_friendly_schedule(windows=[(d, 0, 1440) for d in range(7)], limit_wh=-10000)
    m.advance(3 * DAY)  # Thursday 10:00: three charges
    assert m.credit_wh == 1000 - 3 * 2000
    assert m.relay_connected
    assert m.state()["friendly"] == "deferring"
    assert EV_CREDIT_TRIP not in [e.code for e in m.log_events("standard")]
    assert m.add_credit(1, 8000) == 0  # the token repays the accrued charges first
    assert m.credit_wh == 3000 and m.relay_connected


def test_outside_a_friendly_period_a_charge_to_zero_trips():
    m = meter(credit_kwh=1.0, charge_kwh=2.0)
    m.advance(DAY)
    assert m.credit_wh == -1000
    assert not m.relay_connected and m.disconnect_reason == "credit"


def test_activation_of_a_new_unit_charge_starts_at_the_next_period():
    m = meter(charge_kwh=0.0)
    m.advance(DAY)
    assert m.credit_wh == 10000  # no charge configured: nothing taken
    m.set_charge_passive(700)
    m.advance(DAY)
    assert m.credit_wh == 10000  # passive only: nothing taken
    m.activate_charge()
    m.advance(13 * 3600)  # Wednesday 23:00
    assert m.credit_wh == 10000
    m.advance(2 * 3600)
    assert m.credit_wh == 9300 and m.charge_unit_wh == 700


def test_bad_config_is_refused():
    with pytest.raises(ValueError):
        MeterConfig.from_dict({"serial": "S1", "standing_charge_kwh": -1})
