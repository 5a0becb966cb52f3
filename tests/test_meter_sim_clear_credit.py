"""Clear-credit tokens on the meter model (docs/meter-contract.md "Clear-credit token")."""

from __future__ import annotations

import datetime as dt

import pytest

from meter_sim import model as mm
from meter_sim import security
from meter_sim.model import MeterConfig, MeterModel

pytestmark = pytest.mark.timeout(10)
START = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
SERIAL = "SIM00001"


def _meter(credit_kwh=10.0, low_credit_kwh=1.0, **kw):
    cfg = MeterConfig(SERIAL, credit_kwh=credit_kwh, low_credit_kwh=low_credit_kwh, **kw)
    m = MeterModel(cfg, start=START)
    m.set_load(0)
    return m, bytes.fromhex(m.config.token_key)


def test_clear_token_removes_its_energy_once_and_logs_credit_cleared():
    m, _key = _meter(10.0)
    assert m.clear_credit(4, 7500) == mm.TOKEN_OK
    assert m.credit_wh == 2500
    assert m.events[-1].code == mm.EV_CREDIT_CLEARED and m.events[-1].log == "standard"
    assert m.transfer_status(4) == mm.TRANSFER_APPLIED
    assert m.transfer_energy(4) == -7500
    assert m.state()["token_log"][-1] == {
        "transfer_number": 4,
        "status": "applied",
        "time": START.isoformat(),
        "energy_wh": -7500,
    }
    assert m.last_transfer_number == 4 and m.last_token == m.mint_clear_token(4, 7500)


def test_duplicate_clear_token_answers_already_applied_and_removes_nothing():
    m, _key = _meter(10.0)
    token = m.mint_clear_token(4, 3000)
    assert m.apply_token(token) == mm.TOKEN_OK
    assert m.apply_token(token) == mm.TOKEN_DUPLICATE
    assert m.events[-1].code == mm.EV_TOKEN_DUPLICATE
    assert m.credit_wh == 7000


def test_clear_token_shares_the_credit_transfer_numbers():
    m, _key = _meter(10.0)
    assert m.add_credit(4, 1000) == mm.TOKEN_OK
    assert m.clear_credit(4, 1000) == mm.TOKEN_DUPLICATE
    assert m.credit_wh == 11000 and m.transfer_energy(4) == 1000


def test_cancelled_transfer_refuses_its_clear_token_with_result_15():
    m, _key = _meter(10.0)
    assert m.cancel_transfer(9) == mm.TRANSFER_CANCELLED
    assert m.clear_credit(9, 5000) == mm.TOKEN_CANCELLED
    assert (m.events[-1].log, m.events[-1].code) == ("fraud", mm.EV_TOKEN_CANCELLED)
    assert m.credit_wh == 10000 and m.transfer_status(9) == mm.TRANSFER_CANCELLED


def test_forged_other_meter_and_malformed_clear_tokens_are_refused_and_change_nothing():
    m, key = _meter(10.0)
    good = security.mint_clear_token(key, SERIAL, 5, 2000)
    cases = [
        (security.mint_clear_token(bytes(16), SERIAL, 5, 2000), 13, ("fraud", 93)),  # wrong key
        (good[:5] + (9000).to_bytes(4, "big") + good[9:], 13, ("fraud", 93)),  # altered Wh
        (security.mint_clear_token(key, "SIM00002", 5, 2000), 11, ("fraud", 94)),  # other meter
        (security.mint_clear_token(key, SERIAL, 5, 0), 12, ("standard", 70)),  # no energy
    ]
    for token, code, (log, event) in cases:
        assert m.apply_token(token) == code, (token.hex(), code)
        assert (m.events[-1].log, m.events[-1].code) == (log, event)
    assert m.credit_wh == 10000 and m.applied_transfers == set()
    assert m.transfer_status(5) == mm.TRANSFER_NOT_APPLIED


def test_credit_token_is_never_read_as_a_clear_token_nor_the_reverse():
    m, key = _meter(10.0)
    credit = security.mint_token(key, SERIAL, 6, 2000)
    clear = security.mint_clear_token(key, SERIAL, 6, 2000)
    # a credit token relabelled as a clear token, and a clear token stripped of its type
    assert m.apply_token(bytes([security.CLEAR_TOKEN_TYPE]) + credit) == mm.TOKEN_BAD_MAC
    assert m.apply_token(clear[1:]) == mm.TOKEN_BAD_MAC
    assert m.credit_wh == 10000 and m.applied_transfers == set()
    assert not security.clear_mac_valid(key, SERIAL, 6, 2000, credit[12:])
    assert not security.mac_valid(key, SERIAL, 6, 2000, clear[13:])


def test_clear_below_zero_trips_the_relay_as_consumption_does():
    m, _key = _meter(2.0, low_credit_kwh=1.0, trip_kwh=0.0)
    assert m.clear_credit(3, 2500) == mm.TOKEN_OK
    assert m.credit_wh == -500
    assert not m.relay_connected and m.disconnect_reason == "credit"
    codes = [e.code for e in m.events]
    assert codes[-4:] == [mm.EV_CREDIT_CLEARED, mm.EV_LOW_CREDIT, mm.EV_ZERO_CREDIT, 59]
    assert m.remote_reconnect() is False
    # new credit above the trip closes the relay again
    assert m.add_credit(4, 1000) == mm.TOKEN_OK and m.relay_connected
