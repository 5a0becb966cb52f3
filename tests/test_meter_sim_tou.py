"""Simulator: time-of-use on a money-mode meter (docs/meter-contract.md, "Time-of-use and
money mode"): consumption charged band by band as the clock moves through the day, the
passive calendar switched on at its activation time, and tokens of the other unit refused."""

import datetime as dt

from meter_sim import model as m
from meter_sim.model import MeterConfig, MeterModel

MIDNIGHT = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)  # a Monday
# Off-peak (rate 1) all day but 17:00-21:00 peak (rate 2), every day, all year
CALENDAR = {
    "name": "T1-20260101",
    "seasons": [{"name": "S1", "start_month": 1, "start_day": 1, "week": "W1"}],
    "weeks": [{"name": "W1", "days": [1] * 7}],
    "days": [
        {
            "day_id": 1,
            "schedule": [
                {"start_min": 0, "rate": 1},
                {"start_min": 17 * 60, "rate": 2},
                {"start_min": 21 * 60, "rate": 1},
            ],
        }
    ],
}
CHARGES = {1: 1000, 2: 4000}  # 0.10 and 0.40 per kWh (charge_per_unit at price scale -4)


def money_meter(credit=20.0, **kw):
    cfg = MeterConfig(serial="TOU00001", credit_mode="money", credit_kwh=credit, **kw)
    meter = MeterModel(cfg, start=MIDNIGHT)
    meter.set_load(1000)  # 1 kW: 1 kWh an hour
    meter.set_tariff_calendar(passive=CALENDAR, charges=CHARGES)
    meter.activate_passive_calendar()
    return meter


def test_a_tou_day_is_charged_band_by_band():
    meter = money_meter()
    start_credit = meter.credit_wh  # 20.000 in milli-units
    assert start_credit == 20_000
    meter.advance(17 * 3600)  # 00:00-17:00 off-peak: 17 kWh at 0.10
    assert meter.rate_wh == {1: 17_000}
    assert meter.credit_wh == start_credit - 1_700
    assert meter.active_rate() == 2
    meter.advance(4 * 3600)  # 17:00-21:00 peak: 4 kWh at 0.40
    assert meter.rate_wh == {1: 17_000, 2: 4_000}
    assert meter.credit_wh == start_credit - 1_700 - 1_600
    meter.advance(3 * 3600)  # 21:00-24:00 off-peak again
    assert meter.rate_wh == {1: 20_000, 2: 4_000}
    assert meter.charge_total == 3_600
    assert meter.credit_wh == start_credit - 3_600
    # the money charged is the rates' energy at their prices, unit for unit
    assert meter.charge_total == sum(wh * CHARGES[r] for r, wh in meter.rate_wh.items()) // 10_000


def test_the_passive_calendar_switches_on_by_itself_at_its_activation_time():
    meter = money_meter()
    dearer = dict(CALENDAR, name="T1-20260303")
    activate = MIDNIGHT + dt.timedelta(hours=12)
    meter.set_tariff_calendar(passive=dearer, charges={1: 2000, 2: 4000}, activate_at=activate)
    meter.advance(12 * 3600)  # still the old prices up to noon
    assert meter.charge_total == 1_200
    assert meter.state()["calendar_active"] == "T1-20260303"
    meter.advance(3600)  # 12:00-13:00 at the new off-peak price 0.20
    assert meter.charge_total == 1_200 + 200
    assert m.EV_TARIFF_CALENDAR_ACTIVATED in [e.code for e in meter.events]


def test_money_runs_out_and_trips_in_the_peak():
    meter = money_meter(credit=2.0)  # 2.00: 17 kWh off-peak cost 1.70, 0.30 is 0.75 kWh peak
    meter.advance(18 * 3600)
    assert not meter.relay_connected
    assert meter.disconnect_reason == "credit"
    assert meter.credit_wh <= 0


def test_a_kwh_token_is_refused_by_a_money_meter_and_the_reverse():
    money = money_meter()
    kwh_token = money.mint_token(1, 5_000)
    assert money.apply_token(kwh_token) == m.TOKEN_MALFORMED
    assert money.credit_wh == 20_000
    assert money.events[-1].code == m.EV_TOKEN_WRONG_UNIT
    assert money.apply_token(money.mint_money_token(1, 5_000)) == m.TOKEN_OK
    assert money.credit_wh == 25_000
    assert money.apply_token(money.mint_money_token(1, 5_000)) == m.TOKEN_DUPLICATE
    # a money token with a kWh token's MAC (domain separation) fails the MAC check
    forged = bytes([0x03]) + kwh_token[:12] + kwh_token[12:]
    assert money.apply_token(forged) == m.TOKEN_BAD_MAC

    kwh_meter = MeterModel(MeterConfig(serial="KWH00001"), start=MIDNIGHT)
    before = kwh_meter.credit_wh
    assert kwh_meter.apply_token(kwh_meter.mint_money_token(1, 5_000)) == m.TOKEN_MALFORMED
    assert kwh_meter.credit_wh == before
    assert kwh_meter.events[-1].code == m.EV_TOKEN_WRONG_UNIT
    assert kwh_meter.apply_token(kwh_meter.mint_token(1, 5_000)) == m.TOKEN_OK


# Off-peak all day (day_id 2): how the owner charges a public holiday
HOLIDAY_CALENDAR = dict(
    CALENDAR,
    days=[*CALENDAR["days"], {"day_id": 2, "schedule": [{"start_min": 0, "rate": 1}]}],
)


def test_a_special_day_is_charged_at_its_own_day_profile_then_the_weekdays_again():
    meter = money_meter()
    meter.set_tariff_calendar(passive=HOLIDAY_CALENDAR, charges=CHARGES)
    meter.activate_passive_calendar()
    meter.set_tou_special_days([((2026, 3, 2), 2)])  # Monday 2 March: a public holiday
    start_credit = meter.credit_wh
    meter.advance(24 * 3600)  # the holiday: 24 kWh, all off-peak at 0.10
    assert meter.rate_wh == {1: 24_000}
    assert meter.credit_wh == start_credit - 2_400
    meter.advance(17 * 3600)  # Tuesday until 17:00: off-peak
    assert meter.active_rate() == 2  # the next working day's peak is peak again
    meter.advance(4 * 3600)
    assert meter.rate_wh == {1: 41_000, 2: 4_000}
    assert meter.credit_wh == start_credit - 4_100 - 1_600


def test_a_special_day_with_wildcards_recurs_and_an_unknown_day_id_is_ignored():
    meter = money_meter()
    meter.set_tariff_calendar(passive=HOLIDAY_CALENDAR, charges=CHARGES)
    meter.activate_passive_calendar()
    meter.set_tou_special_days([((None, 3, 2), 2)])  # 2 March, every year
    meter.advance(18 * 3600)
    assert meter.active_rate() == 1
    meter.set_tou_special_days([((2026, 3, 2), 9)])  # no day profile 9: the weekday's
    assert meter.active_rate() == 2
