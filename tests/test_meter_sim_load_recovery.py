"""Load-trip recovery on the simulated meter: reconnect by itself after a delay, at most N
times in a rolling hour, then lockout until a remote reconnect (docs/meter-contract.md)."""

from __future__ import annotations

import datetime as dt

import pytest

from meter_sim.model import (
    EV_LOAD_AUTO_RECONNECT,
    EV_LOAD_LOCKOUT,
    EV_LOAD_TRIP,
    EV_REMOTE_RECONNECT,
    MeterConfig,
    MeterModel,
)

pytestmark = pytest.mark.timeout(10)
START = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


def meter(**kw):
    cfg = dict(
        load_limit_w=2000, control_mode=5, reconnect_delay_s=30, reconnect_attempts_per_hour=2
    )
    cfg.update(kw)
    return MeterModel(MeterConfig("S1", credit_kwh=100, **cfg), start=START)


def load_codes(m):
    codes = (EV_LOAD_TRIP, EV_LOAD_AUTO_RECONNECT, EV_LOAD_LOCKOUT, EV_REMOTE_RECONNECT)
    return [e.code for e in m.log_events("standard") if e.code in codes]


def test_meter_reconnects_by_itself_only_after_the_delay():
    m = meter()
    m.set_load(2500)
    assert not m.relay_connected and m.state()["load_recovery"] == "waiting"
    m.set_load(500)  # the tenant switched the heater off
    m.advance(29)
    assert not m.relay_connected
    m.advance(1)
    assert m.relay_connected and m.state()["load_recovery"] == "normal"
    reconnect = m.log_events("standard")[-1]
    assert reconnect.code == EV_LOAD_AUTO_RECONNECT
    assert reconnect.time == START + dt.timedelta(seconds=30)


def test_still_over_the_limit_trips_again_and_locks_out_after_n_per_hour():
    m = meter()
    m.set_load(2500)
    m.advance(30)  # reconnect 1, trips again at once
    m.advance(30)  # reconnect 2, trips again: the hour's two attempts are used
    assert load_codes(m) == [60, 80, 60, 80, 60, 81]
    assert not m.relay_connected and m.state()["load_recovery"] == "lockout"
    assert m.control_state() == 2
    m.set_load(500)
    m.advance(1800)
    assert not m.relay_connected, "a locked-out meter waits for the operator"


def test_rolling_hour_gives_attempts_back():
    m = meter(reconnect_attempts_per_hour=1)
    m.set_load(2500)
    m.set_load(500)
    m.advance(30)  # reconnection 1 of the hour
    assert m.relay_connected
    m.advance(3600)  # the reconnection leaves the rolling hour
    m.set_load(2500)
    assert m.state()["load_recovery"] == "waiting", "the hour starts again"
    m.set_load(500)
    m.advance(30)
    assert m.relay_connected
    m.advance(60)
    m.set_load(2500)  # within the hour of the last reconnection: lockout
    assert m.state()["load_recovery"] == "lockout"
    assert load_codes(m) == [60, 80, 60, 80, 60, 81]


def test_remote_reconnect_clears_the_lockout_and_the_count():
    m = meter(reconnect_attempts_per_hour=1)
    m.set_load(2500)
    m.advance(30)
    assert m.state()["load_recovery"] == "lockout"
    m.set_load(500)
    assert m.remote_reconnect()
    assert m.relay_connected and m.state()["load_recovery"] == "normal"
    assert m.state()["auto_reconnects_last_hour"] == 0
    m.set_load(2500)  # a new trip gets the hour's attempt again
    assert m.state()["load_recovery"] == "waiting"
    m.set_load(500)
    m.advance(30)
    assert m.relay_connected


def test_without_local_reconnection_mode_the_meter_stays_open():
    m = meter(control_mode=1)
    m.set_load(2500)
    m.set_load(500)
    m.advance(600)
    assert not m.relay_connected and m.state()["load_recovery"] == "normal"
    assert EV_LOAD_AUTO_RECONNECT not in load_codes(m)


def test_remote_disconnect_cancels_a_pending_reconnection():
    m = meter()
    m.set_load(2500)
    m.remote_disconnect()
    m.set_load(500)
    m.advance(120)
    assert not m.relay_connected and m.disconnect_reason == "remote"


def test_settings_are_validated_and_logged():
    m = meter()
    m.set_load_recovery(reconnect_delay_s=60, attempts_per_hour=3, control_mode=6)
    state = m.state()
    assert (state["reconnect_delay_s"], state["reconnect_attempts_per_hour"]) == (60, 3)
    assert state["control_mode"] == 6 and m.log_events("standard")[-1].code == 82
    with pytest.raises(ValueError):
        m.set_load_recovery(attempts_per_hour=256)
    with pytest.raises(ValueError):
        MeterConfig.from_dict({"serial": "S2", "control_mode": 7})
