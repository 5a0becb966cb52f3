"""Friendly (non-disconnect) periods on the simulated meter (docs/meter-contract.md,
"Friendly periods"): no credit trip inside the week's friendly hours or on a special day,
down to the friendly limit; a trip once the period ends; a token repays the debt."""

from __future__ import annotations

import datetime as dt

import pytest

from meter_sim.model import (
    EV_CREDIT_TRIP,
    EV_FRIENDLY_TRIP_DEFERRED,
    EV_ZERO_CREDIT,
    MeterConfig,
    MeterModel,
)

pytestmark = pytest.mark.timeout(20)
FRIDAY_18_30 = dt.datetime(2024, 3, 1, 18, 30, tzinfo=dt.timezone.utc)  # a Friday
NIGHTS = [(d, 0, 7 * 60) for d in range(7)] + [(d, 18 * 60, 1440) for d in range(7)]


def meter(credit_kwh=0.5, watts=1000, start=FRIDAY_18_30, **schedule):
    m = MeterModel(MeterConfig("S1", credit_kwh=credit_kwh), start=start)
    m.set_load(watts)
    schedule.setdefault("windows", NIGHTS)
    schedule.setdefault("limit_wh", -20000)
    m.set_friendly_schedule(**schedule)
    return m


def codes(m, *wanted):
    return [e.code for e in m.log_events("standard") if e.code in wanted]


def test_no_credit_trip_at_night_inside_friendly_hours_and_a_trip_at_its_end():
    m = meter()
    m.advance(3600)  # 19:30: credit ran out at 19:00
    assert m.credit_wh < 0 and m.relay_connected
    assert m.state()["friendly"] == "deferring"
    m.advance(11 * 3600 + 29 * 60)  # Saturday 06:59: still the night's friendly hours
    assert m.relay_connected
    m.advance(120)  # 07:01
    assert not m.relay_connected and m.disconnect_reason == "credit"
    assert codes(m, EV_ZERO_CREDIT, EV_FRIENDLY_TRIP_DEFERRED, EV_CREDIT_TRIP) == [65, 86, 59]
    trip = [e for e in m.log_events("standard") if e.code == EV_CREDIT_TRIP][0]
    assert trip.time <= dt.datetime(2024, 3, 2, 7, 1, tzinfo=dt.timezone.utc)
    assert m.state()["friendly"] == "outside"


def test_period_end_trips_without_consumption():
    m = meter(credit_kwh=0.05)
    m.advance(300)
    assert m.relay_connected and m.state()["friendly"] == "deferring"
    m.set_load(0)
    m.advance(13 * 3600)  # Saturday 07:30
    assert not m.relay_connected


def test_no_trip_on_a_special_day_in_local_time():
    # Monday 2024-03-04 is a public holiday; the schedule's local time is UTC+2.
    start = dt.datetime(2024, 3, 4, 5, 0, tzinfo=dt.timezone.utc)  # 07:00 local
    m = meter(
        start=start,
        credit_kwh=0.1,
        windows=[],
        special_days=[dt.date(2024, 3, 4)],
        offset_min=120,
    )
    m.advance(12 * 3600)  # 19:00 local, credit long gone
    assert m.relay_connected and m.credit_wh < 0
    m.advance(5 * 3600 - 120)  # 23:58 local
    assert m.relay_connected
    m.advance(180)  # Tuesday 00:01 local: a working day
    assert not m.relay_connected


def test_friendly_limit_reached_trips_even_inside_a_period():
    m = meter(limit_wh=-1000)
    m.advance(3600 + 20 * 60)  # 19:50: credit about -0.83 kWh
    assert m.relay_connected
    m.advance(15 * 60)
    assert not m.relay_connected and m.credit_wh <= -1000
    assert m.in_friendly_period()


def test_outside_a_period_the_meter_trips_at_once():
    start = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
    m = meter(start=start, credit_kwh=0.1)
    m.advance(7 * 60)
    assert not m.relay_connected
    assert codes(m, EV_FRIENDLY_TRIP_DEFERRED) == []


def test_token_repays_the_friendly_debt_first():
    m = meter()
    m.advance(3 * 3600 + 1800)  # 22:00: about -3 kWh
    debt = m.credit_wh
    assert debt < -2900
    assert m.add_credit(1, 10000) == 0
    assert m.credit_wh == debt + 10000
    assert m.state()["friendly"] == "inside"
    m.advance(3600)
    assert m.relay_connected


def test_a_trip_deferred_then_repaid_then_tripped_outside_closes_on_the_next_token():
    m = meter()
    m.advance(13 * 3600)  # Saturday 07:30: tripped at 07:00
    assert not m.relay_connected
    debt = m.credit_wh
    m.add_credit(1, 2000)
    assert m.credit_wh == debt + 2000
    assert m.relay_connected == (m.credit_wh > 0)


def test_removing_the_schedule_trips_a_deferred_meter():
    m = meter()
    m.advance(3600)
    assert m.relay_connected
    m.set_friendly_schedule(windows=[])
    assert not m.relay_connected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"windows": [(7, 0, 60)]},
        {"windows": [(0, 60, 60)]},
        {"windows": [(0, 0, 1441)]},
        {"limit_wh": 1},
        {"offset_min": 900},
    ],
)
def test_bad_friendly_schedule_is_refused(kwargs):
    m = MeterModel(MeterConfig("S1"), start=FRIDAY_18_30)
    with pytest.raises(ValueError):
        m.set_friendly_schedule(**kwargs)
