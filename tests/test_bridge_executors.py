"""meter_bridge.executors without a meter: payload checks, token, result shaping."""

from __future__ import annotations

import datetime as dt

import pytest

from meter_bridge import executors as ex
from meter_bridge.errors import JobError, MeterRefused

pytestmark = pytest.mark.timeout(10)
UTC = dt.timezone.utc


TOKEN = bytes.fromhex("00000007000030d4" + "1a2b3c4d" + "0102030405060708")


def test_token_is_passed_through_as_is():
    checked = ex.validate_add_credit({"token": TOKEN.hex().upper(), "kwh": 12.5})
    assert checked == {"token": TOKEN, "transfer_number": 7}
    # the bridge needs nothing but the token (transfer number and kWh are for display)
    assert ex.validate_add_credit({"token": TOKEN.hex()})["transfer_number"] == 7


class _Conn:
    """Just enough of MeterConnection for run_add_credit."""

    def __init__(self, code):
        self.code, self.sent = code, []

    def action(self, obis, ic, method, data, accept=(0,)):
        self.sent.append((obis, ic, method, data))
        if self.code not in accept:
            raise MeterRefused(f"ACTION: code {self.code}", code=self.code)
        return self.code, None

    def get(self, obis, ic, attr):
        if obis == "0.0.19.10.1.255":  # a meter without emergency credit
            raise MeterRefused("GET: object-undefined", code=4)
        return {2: 12500, 3: 1}.get(attr, True) if ic != 112 else 12500


def test_add_credit_sends_the_opaque_token_in_an_octet_string(monkeypatch):
    monkeypatch.setattr(ex, "_credit_and_relay", lambda conn: (12.5, "connected"))
    conn = _Conn(0)
    result = ex.run_add_credit(conn, ex.validate_add_credit({"token": TOKEN.hex()}))
    assert conn.sent == [("0.0.19.40.0.255", 115, 1, b"\x09\x14" + TOKEN)]
    assert result == {
        "transfer_number": 7,
        "already_applied": False,
        "credit_kwh": 12.5,
        "relay": "connected",
    }
    conn = _Conn(3)
    assert ex.run_add_credit(conn, ex.validate_add_credit({"token": TOKEN.hex()}))[
        "already_applied"
    ]


@pytest.mark.parametrize(
    "code,words",
    [(13, "MAC does not verify"), (11, "another meter"), (12, "token format"), (250, "code 250")],
)
def test_token_refusals_are_final_with_a_clear_error(monkeypatch, code, words):
    monkeypatch.setattr(ex, "_credit_and_relay", lambda conn: (0.0, "connected"))
    with pytest.raises(MeterRefused) as err:
        ex.run_add_credit(_Conn(code), ex.validate_add_credit({"token": TOKEN.hex()}))
    assert not err.value.retryable and err.value.code == code
    assert words in str(err.value)
    if code != 250:
        assert "transfer 7" in str(err.value)


@pytest.mark.parametrize(
    "payload",
    [
        {"transfer_number": 7, "kwh": 1},  # the old clear payload: the bridge mints nothing
        {"token": ""},
        {"token": "xyz"},
        {"token": "00000007000030d"},
        {"token": "000000"},
        {"token": "00" * 65},
        {"token": 7},
        {"token": list(TOKEN)},
        {},
    ],
)
def test_bad_add_credit_payload_is_not_retryable(payload):
    with pytest.raises(JobError) as err:
        ex.validate_add_credit(payload)
    assert not err.value.retryable


def test_bad_payload_fails_before_touching_the_meter():
    job = {
        "job_type": "add_credit",
        "payload": {"transfer_number": 1, "kwh": 1},
        "meter": {"host": "192.0.2.1", "port": 1, "timeout_s": 30},
    }
    with pytest.raises(JobError) as err:
        ex.execute_job(job)
    assert not err.value.retryable


def test_unknown_job_type_is_not_retryable():
    with pytest.raises(JobError) as err:
        ex.execute_job({"job_type": "format_disk", "payload": {}, "meter": {}})
    assert not err.value.retryable


def test_every_documented_job_type_has_a_runner():
    assert set(ex.RUNNERS) == set(ex.JOB_TYPES)


def test_thresholds_in_wh_and_trip_not_above_low():
    assert ex.validate_set_thresholds({"low_credit_kwh": 5, "trip_kwh": -1.5}) == {
        "low_credit_wh": 5000,
        "trip_wh": -1500,
    }
    with pytest.raises(JobError):
        ex.validate_set_thresholds({"low_credit_kwh": 1, "trip_kwh": 2})
    with pytest.raises(JobError):
        ex.validate_set_thresholds({"low_credit_kwh": -1, "trip_kwh": -2})


def test_load_limit_must_be_whole_watts():
    assert ex.validate_set_load_limit({"load_limit_w": 3000}) == {"load_limit_w": 3000}
    with pytest.raises(JobError):
        ex.validate_set_load_limit({"load_limit_w": 1.5})


def test_read_payload_normalizes_obis_and_defaults():
    checked = ex.validate_read(
        {
            "objects": [{"obis": "1-0:1.8.0.255"}, {"obis": "0.0.96.11.0"}],
            "from": "2025-01-01T00:00:00Z",
        }
    )
    assert checked["objects"] == [
        {"obis": "1.0.1.8.0.255", "ic": 3, "attribute": 2},
        {"obis": "0.0.96.11.0.255", "ic": 1, "attribute": 2},
    ]
    assert checked["from"] == dt.datetime(2025, 1, 1, tzinfo=UTC)
    for bad in (
        {},
        {"objects": []},
        {"objects": [{"obis": "x"}]},
        {"objects": [{"obis": "1.0.1.8.0.255"}], "from": "yesterday"},
    ):
        with pytest.raises(JobError):
            ex.validate_read(bad)


def test_events_from_rows_filters_and_sorts():
    t0 = dt.datetime(2025, 1, 1, tzinfo=UTC)
    rows = [[t0 + dt.timedelta(hours=2), 66], [t0, 2], [t0 - dt.timedelta(days=1), 1], [None, 5]]
    assert ex.events_from_rows("standard", rows, t0) == [
        {"log": "standard", "code": 2, "time": "2025-01-01T00:00:00Z"},
        {"log": "standard", "code": 66, "time": "2025-01-01T02:00:00Z"},
    ]


def test_profile_rows_are_scaled_and_iso():
    t0 = dt.datetime(2025, 1, 1, tzinfo=UTC)
    assert ex.profile_rows_to_json([[t0, 1234, 5]], [None, -1, None]) == [
        ["2025-01-01T00:00:00Z", 123.4, 5]
    ]


def test_relay_and_kwh_shaping():
    assert ex.relay_name(True) == "connected" and ex.relay_name(False) == "disconnected"
    assert ex.wh_to_kwh(-1500) == -1.5


def test_add_credit_checks_the_lease_right_before_the_action():
    job = {"id": 4, "lease_deadline": 1000.0, "lease_seconds": 60}
    ex.check_lease(job, now=990.0)  # 10 s left: more than the 5 s margin
    with pytest.raises(JobError) as err:
        ex.check_lease(job, now=996.0)  # 4 s left: about to go
    assert err.value.retryable and "job 4" in str(err.value) and "ends in 4.0 s" in str(err.value)
    with pytest.raises(JobError, match="lease gone"):
        ex.check_lease(job, now=1001.0)
    # a short lease: a quarter of it is the margin
    ex.check_lease({"lease_deadline": 10.0, "lease_seconds": 4}, now=8.5)
    ex.check_lease({"id": 1}, now=1e9)  # outside the service (no lease known): no check

    conn = _Conn(0)
    gone = {"id": 5, "lease_deadline": float("-inf")}
    checked = ex.validate_add_credit({"token": TOKEN.hex()})
    checked["lease_check"] = lambda: ex.check_lease(gone)
    with pytest.raises(JobError, match="dropped before sending"):
        ex.run_add_credit(conn, checked)
    assert conn.sent == []  # the token never went out


def test_add_credit_of_an_expired_lease_opens_no_association(monkeypatch):
    opened = []
    monkeypatch.setattr(
        ex.MeterConnection, "from_job_meter", classmethod(lambda cls, *a, **k: opened.append(a))
    )
    job = {
        "id": 6,
        "job_type": "add_credit",
        "payload": {"token": TOKEN.hex()},
        "meter": {"host": "127.0.0.1", "port": 1},
        "lease_deadline": 0.0,  # on time.monotonic(): long gone
    }
    with pytest.raises(JobError, match="lease gone"):
        ex.execute_job(job)
    assert opened == []


def test_check_token_payload_needs_a_uint32_transfer_number():
    assert ex.validate_check_token({"transfer_number": 7}) == {"transfer_number": 7}
    for bad in (None, -1, 2**32, True, "7", 1.5):
        with pytest.raises(JobError) as err:
            ex.validate_check_token({"transfer_number": bad})
        assert not err.value.retryable
