"""The pure-Python meter model: no sockets, simulated time."""

from __future__ import annotations

import datetime as dt

import pytest

from meter_sim.model import LoadModel, MeterConfig, MeterModel

pytestmark = pytest.mark.timeout(10)
START = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)


def test_load_model_is_deterministic_for_a_seed():
    a, b, c = LoadModel(seed=1), LoadModel(seed=1), LoadModel(seed=2)
    times = [START + dt.timedelta(minutes=15 * i) for i in range(96)]
    assert [a.power_w("X", t) for t in times] == [b.power_w("X", t) for t in times]
    assert [a.power_w("X", t) for t in times] != [c.power_w("X", t) for t in times]
    evening, night = a.power_w("X", START.replace(hour=19)), a.power_w("X", START.replace(hour=3))
    assert evening > night


def test_same_seed_same_consumption_whatever_the_step():
    m1 = MeterModel(MeterConfig("S1"), seed=5, start=START)
    m2 = MeterModel(MeterConfig("S1"), seed=5, start=START)
    m1.advance(86400)
    for _ in range(24 * 4):
        m2.advance(900)
    assert m1.import_wh == m2.import_wh > 0
    assert m1.credit_wh == 50000 - m1.import_wh
    assert len(m1.profile) == 96


def test_thresholds_fire_once_each():
    m = MeterModel(MeterConfig("S1", credit_kwh=1, low_credit_kwh=0.5, trip_kwh=-0.2), start=START)
    m.set_load(1000)
    m.advance(3 * 3600)
    codes = [e.code for e in m.log_events("standard")]
    assert codes == [2, 64, 65, 59]
    assert m.credit_wh <= -200 and m.relay_state == "disconnected"
    assert m.control_state() == 2


def test_duplicate_token_is_refused_and_malformed_is_distinct():
    m = MeterModel(MeterConfig("S1", credit_kwh=0))
    assert m.add_credit(1, 1000) == 0
    assert m.add_credit(1, 1000) == 3
    assert m.apply_token(b"short") == 12
    assert m.add_credit(2, 0) == 12
    assert m.credit_wh == 1000 and m.last_transfer_number == 1


def test_limiter_trips_after_min_over_duration():
    m = MeterModel(MeterConfig("S1", load_limit_w=2000), start=START)
    m.min_over_threshold_s = 120
    m.set_load(2500)
    assert m.relay_connected
    m.advance(180)
    assert not m.relay_connected and m.disconnect_reason == "load"
    assert m.last_code("standard") == 60


def test_reconnect_refused_without_credit():
    m = MeterModel(MeterConfig("S1", credit_kwh=0))
    assert not m.relay_connected
    assert m.remote_reconnect() is False
    m.add_credit(9, 2000)
    assert m.relay_connected


def test_tamper_logged_in_fraud_log_with_time():
    m = MeterModel(MeterConfig("S1"), start=START)
    m.advance(42)
    m.tamper("over_current")
    ev = m.log_events("fraud")
    assert [(e.code, e.time) for e in ev] == [(91, START + dt.timedelta(seconds=42))]
    with pytest.raises(ValueError):
        m.tamper("bogus")


def test_hls_config_accepted_with_hex_keys():
    cfg = MeterConfig.from_dict(
        {
            "serial": "X",
            "auth": "hls",
            "system_title": "4D54523030303031",
            "encryption_key": "00" * 16,
            "authentication_key": "11" * 16,
        }
    )
    assert cfg.auth == "hls"


@pytest.mark.parametrize(
    "bad",
    [
        {"encryption_key": "zz" * 16},
        {"authentication_key": "00"},
        {"system_title": "00" * 7},
        {"auth": "hls-gmac"},
    ],
)
def test_bad_hls_config_is_refused_clearly(bad):
    with pytest.raises(ValueError, match="X: "):
        MeterConfig.from_dict({"serial": "X", "auth": "hls", **bad})


def test_client_invocation_counter_must_increase():
    m = MeterModel(MeterConfig("X", auth="hls"))
    assert m.accept_client_counter(10, record=False) and m.client_invocation_counter is None
    assert m.accept_client_counter(10) and m.client_invocation_counter == 10
    assert not m.accept_client_counter(10) and not m.accept_client_counter(3)
    assert m.accept_client_counter(11) and m.state()["client_invocation_counter"] == 11


def test_token_checks_mac_serial_and_transfer_number_each_with_its_code_and_event():
    from meter_sim import security

    m = MeterModel(MeterConfig("SIM00001", credit_kwh=1))
    key = bytes.fromhex(m.config.token_key)
    good = security.mint_token(key, "SIM00001", 7, 2000)
    assert security.mac_valid(key, "SIM00001", 7, 2000, good[12:])
    cases = [
        (security.mint_token(bytes(16), "SIM00001", 7, 2000), 13, ("fraud", 93)),  # wrong key
        (good[:4] + (9000).to_bytes(4, "big") + good[8:], 13, ("fraud", 93)),  # altered Wh
        (security.mint_token(key, "SIM00002", 7, 2000), 11, ("fraud", 94)),  # other meter
        (good[:8] + (0).to_bytes(4, "big") + good[12:], 11, ("fraud", 94)),  # tag removed
        (good + b"\x00", 12, ("standard", 70)),  # not 20 bytes
        (security.mint_token(key, "SIM00001", 8, 0), 12, ("standard", 70)),  # no energy
        (good, 0, ("standard", 66)),
        (good, 3, ("standard", 69)),  # replayed
    ]
    for token, code, (log, event) in cases:
        assert m.apply_token(token) == code, (token.hex(), code)
        assert m.events[-1].log == log and m.events[-1].code == event
    assert m.credit_wh == 3000 and m.last_transfer_number == 7
    assert m.applied_transfers == {7}


def test_token_log_records_applied_and_cancelled_transfers():
    from meter_sim import model as mm

    m = MeterModel(MeterConfig("S1", credit_kwh=0), start=START)
    assert m.transfer_status(5) == mm.TRANSFER_NOT_APPLIED
    assert m.add_credit(5, 1000) == mm.TOKEN_OK
    assert m.transfer_status(5) == mm.TRANSFER_APPLIED
    assert m.cancel_transfer(6) == mm.TRANSFER_CANCELLED
    assert m.transfer_status(6) == mm.TRANSFER_CANCELLED
    assert m.events[-1].code == mm.EV_TRANSFER_CANCELLED
    assert m.state()["token_log"] == [
        {"transfer_number": 5, "status": "applied", "time": START.isoformat(), "energy_wh": 1000},
        {"transfer_number": 6, "status": "cancelled", "time": START.isoformat(), "energy_wh": 0},
    ]


def test_cancelled_transfer_token_is_refused_for_ever_with_its_own_code():
    from meter_sim import model as mm

    m = MeterModel(MeterConfig("S1", credit_kwh=0), start=START)
    assert m.cancel_transfer(9) == mm.TRANSFER_CANCELLED
    assert m.cancel_transfer(9) == mm.TRANSFER_CANCELLED  # again: same answer, one event
    assert sum(e.code == mm.EV_TRANSFER_CANCELLED for e in m.events) == 1
    for _ in range(2):
        assert m.add_credit(9, 4000) == mm.TOKEN_CANCELLED == 15
        assert m.events[-1].log == "fraud" and m.events[-1].code == mm.EV_TOKEN_CANCELLED
    assert m.credit_wh == 0 and m.last_transfer_number is None
    assert m.transfer_status(9) == mm.TRANSFER_CANCELLED
    # a forged token for that number is still a bad MAC, not "cancelled"
    from meter_sim import security

    assert m.apply_token(security.mint_token(bytes(16), "S1", 9, 4000)) == mm.TOKEN_BAD_MAC
    # other transfer numbers are not affected
    assert m.add_credit(10, 1000) == mm.TOKEN_OK and m.credit_wh == 1000


def test_cancel_of_an_applied_transfer_answers_applied_and_changes_nothing():
    from meter_sim import model as mm

    m = MeterModel(MeterConfig("S1", credit_kwh=0), start=START)
    assert m.add_credit(3, 2000) == mm.TOKEN_OK
    events = len(m.events)
    assert m.cancel_transfer(3) == mm.TRANSFER_APPLIED
    assert len(m.events) == events and m.credit_wh == 2000
    assert m.add_credit(3, 2000) == mm.TOKEN_DUPLICATE  # still "already applied"
