"""Emergency credit on the simulated meter (docs/meter-contract.md, "Emergency credit"):
a second Credit object, selectable at or below the level, taken once, repaid first by the
next credit token."""

from __future__ import annotations

import datetime as dt

import pytest

from meter_sim.model import (
    EV_CREDIT_TRIP,
    EV_EMERGENCY_REPAID,
    EV_EMERGENCY_TAKEN,
    EV_RELAY_RECONNECTED,
    MeterConfig,
    MeterModel,
)

pytestmark = pytest.mark.timeout(10)
START = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


def meter(credit_kwh=1.0, **kw):
    cfg = dict(emergency_credit_kwh=5.0, emergency_threshold_kwh=2.0, low_credit_kwh=3.0)
    cfg.update(kw)
    return MeterModel(MeterConfig("E1", credit_kwh=credit_kwh, **cfg), start=START)


def codes(m):
    return [e.code for e in m.log_events("standard")]


def test_emergency_credit_is_not_selectable_above_the_level():
    m = meter(credit_kwh=2.5)
    assert m.state()["emergency_status"] == "enabled"
    assert not m.take_emergency_credit()
    assert m.credit_wh == 2500 and EV_EMERGENCY_TAKEN not in codes(m)


def test_no_amount_configured_means_never_selectable():
    m = meter(emergency_credit_kwh=0.0)
    assert m.state()["emergency_status"] == "enabled" and not m.press_button()
    assert m.credit_wh == 1000


def test_emergency_credit_is_taken_once_and_adds_its_amount():
    m = meter()
    assert m.state()["emergency_status"] == "selectable"
    assert m.press_button()
    assert m.credit_wh == 6000
    state = m.state()
    assert state["emergency_status"] == "in_use" and state["emergency_in_use_kwh"] == 5.0
    assert not m.take_emergency_credit(), "in use: not a second time"
    assert m.credit_wh == 6000 and codes(m).count(EV_EMERGENCY_TAKEN) == 1


def test_taking_it_reconnects_a_meter_tripped_for_credit():
    m = meter(credit_kwh=0.1)
    m.set_load(1000)
    m.advance(600)  # 0.167 kWh: credit below 0, relay opens
    assert not m.relay_connected and m.disconnect_reason == "credit"
    assert EV_CREDIT_TRIP in codes(m)
    assert m.take_emergency_credit()
    assert m.relay_connected
    assert codes(m)[-2:] == [EV_EMERGENCY_TAKEN, EV_RELAY_RECONNECTED]


def test_next_token_repays_the_emergency_credit_first_then_adds_the_rest():
    m = meter()
    m.take_emergency_credit()
    m.set_load(1000)
    m.advance(3600)  # 1 kWh used: 5.0 left
    assert m.credit_wh == 5000
    assert m.add_credit(1, 8000) == 0
    assert m.credit_wh == 8000, "5 kWh repaid, 3 kWh added"
    assert m.transfer_emergency_repaid(1) == 5000
    assert m.state()["emergency_in_use_kwh"] == 0 and EV_EMERGENCY_REPAID in codes(m)
    assert m.state()["emergency_status"] == "enabled", "above the level again"


def test_a_small_token_repays_part_and_the_rest_stays_in_use():
    m = meter()
    m.take_emergency_credit()
    assert m.add_credit(1, 3000) == 0
    assert m.credit_wh == 6000 and m.transfer_emergency_repaid(1) == 3000
    assert m.state()["emergency_in_use_kwh"] == 2.0
    assert m.state()["emergency_status"] == "in_use"
    assert EV_EMERGENCY_REPAID not in codes(m)
    assert m.add_credit(2, 3000) == 0
    assert m.credit_wh == 7000 and m.transfer_emergency_repaid(2) == 2000
    assert m.add_credit(2, 3000) == 3, "a duplicate repays nothing more"
    assert m.credit_wh == 7000


def test_status_cycles_selectable_in_use_exhausted_and_back_to_selectable():
    m = meter(credit_kwh=0.5)
    m.set_load(1000)
    assert m.state()["emergency_status"] == "selectable"
    m.take_emergency_credit()
    assert m.state()["emergency_status"] == "in_use"
    m.advance(5.5 * 3600)  # the emergency credit is consumed too: trips for credit
    assert not m.relay_connected
    assert m.state()["emergency_status"] == "exhausted"
    m.add_credit(1, 6000)  # repays 5, adds 1 (credit ~1 kWh, below the level)
    assert m.state()["emergency_in_use_kwh"] == 0
    assert m.state()["emergency_status"] == "selectable"
    assert m.take_emergency_credit(), "a new cycle"


def test_settings_change_is_logged():
    m = meter()
    m.set_emergency_credit(amount_wh=7000, threshold_wh=500)
    state = m.state()
    assert state["emergency_credit_kwh"] == 7.0 and state["emergency_threshold_kwh"] == 0.5
    assert state["emergency_status"] == "enabled" and codes(m)[-1] == 85
    with pytest.raises(ValueError):
        m.set_emergency_credit(amount_wh=-1)


def test_negative_emergency_amount_in_the_fleet_file_is_refused():
    with pytest.raises(ValueError, match="emergency_credit_kwh"):
        MeterConfig.from_dict({"serial": "E2", "emergency_credit_kwh": -1})


def test_button_of_the_http_control_takes_emergency_credit_once(tmp_path):
    import json
    import urllib.request

    from meter_sim.testing import run_cli

    path = tmp_path / "fleet.json"
    meter_cfg = {"serial": "EB1", "port": 0, "credit_kwh": 1.0}
    meter_cfg.update(emergency_credit_kwh=4.0, emergency_threshold_kwh=2.0)
    path.write_text(json.dumps({"meters": [meter_cfg]}))

    def press(url):
        req = urllib.request.Request(url, data=b"{}", method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.load(r)

    with run_cli(config=str(path), speed=0) as sim:
        url = f"{sim.control_url}/meters/EB1/button"
        state = press(url)
        assert state["button_accepted"] is True and state["credit_kwh"] == 5.0
        assert state["emergency_status"] == "in_use"
        again = press(url)
        assert again["button_accepted"] is False and again["credit_kwh"] == 5.0
