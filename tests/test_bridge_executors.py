"""meter_bridge.executors without a meter: payload checks, token, result shaping."""

from __future__ import annotations

import datetime as dt

import pytest

from meter_bridge import executors as ex
from meter_bridge.errors import JobError

pytestmark = pytest.mark.timeout(10)
UTC = dt.timezone.utc


def test_token_is_transfer_number_then_energy_big_endian():
    assert ex.build_token(7, 12500) == bytes.fromhex("00000007000030d4")


def test_add_credit_rounds_kwh_to_wh():
    assert ex.validate_add_credit({"transfer_number": 7, "kwh": 12.5})["energy_wh"] == 12500
    assert ex.validate_add_credit({"transfer_number": 1, "kwh": 0.0016})["energy_wh"] == 2


@pytest.mark.parametrize(
    "payload",
    [
        {"transfer_number": -1, "kwh": 1},
        {"transfer_number": 2**32, "kwh": 1},
        {"transfer_number": "7", "kwh": 1},
        {"transfer_number": True, "kwh": 1},
        {"transfer_number": 1, "kwh": 0},
        {"transfer_number": 1, "kwh": -5},
        {"transfer_number": 1, "kwh": float("nan")},
        {"transfer_number": 1},
        {"transfer_number": 1, "kwh": 5_000_000},
    ],
)
def test_bad_add_credit_payload_is_not_retryable(payload):
    with pytest.raises(JobError) as err:
        ex.validate_add_credit(payload)
    assert not err.value.retryable


def test_bad_payload_fails_before_touching_the_meter():
    job = {
        "job_type": "add_credit",
        "payload": {"transfer_number": 1, "kwh": 0},
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
