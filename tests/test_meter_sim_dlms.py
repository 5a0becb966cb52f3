"""A dlms-cosem client against the gurux-based simulated meters."""

from __future__ import annotations

import datetime as dt

import pytest
from dlms_cosem import enumerations
from dlms_cosem.client import ActionError
from dlms_cosem.cosem.capture_object import CaptureObject
from dlms_cosem.cosem.selective_access import RangeDescriptor
from dlms_cosem.utils import parse_as_dlms_data

from meter_sim import objects
from meter_sim.model import MeterConfig
from meter_sim.testing import attr, credit_token, dlms_client, management_client, method, pty_pair

pytestmark = pytest.mark.timeout(30)
START = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)


def read(c, ic, ln, index, **kw):
    return parse_as_dlms_data(c.get(attr(ic, ln, index), **kw))


def test_client_reads_every_object_of_the_contract(sim_fleet):  # noqa: F811
    fleet = sim_fleet(MeterConfig("SIM00001"), start=START)
    fleet.meter("SIM00001").advance(3600)
    with management_client(fleet, "SIM00001") as c:
        for ln, ic, attrs in objects.CONTRACT:
            for index in attrs:
                value = read(c, ic, ln, index)
                if index == 1:
                    assert bytes(value) == bytes(int(x) for x in ln.split("."))
        assert read(c, 1, objects.LOGICAL_DEVICE_NAME, 2) == b"SIM00001"
        assert read(c, 3, objects.ENERGY_IMPORT, 3) == [0, 30]
        assert read(c, 3, objects.VOLTAGE_L1, 3) == [-1, 35]
        assert read(c, 3, objects.CURRENT_L1, 3) == [-2, 33]
        assert read(c, 3, objects.POWER_IMPORT, 3) == [0, 27]
        assert read(c, 3, objects.VOLTAGE_L1, 2) == 2300
        model = fleet.meter("SIM00001")
        assert read(c, 3, objects.ENERGY_IMPORT, 2) == model.import_wh > 0
        assert read(c, 112, objects.CREDIT, 2) == model.credit_wh
        assert read(c, 70, objects.DISCONNECT_CONTROL, 2) is True
        assert read(c, 70, objects.DISCONNECT_CONTROL, 3) == 1
        profile = read(c, 7, objects.LOAD_PROFILE, 2)
        assert len(profile) == 4  # 4 quarter hours
        assert profile[-1][1] == model.profile[-1][1]
        assert read(c, 7, objects.LOAD_PROFILE, 4) == 900
        clock = read(c, 8, objects.CLOCK, 2)
        assert objects.datetime_from_bytes(clock) == START + dt.timedelta(hours=1)


def test_load_profile_is_readable_by_range(sim_fleet):  # noqa: F811
    fleet = sim_fleet(MeterConfig("SIM00001"), start=START)
    fleet.meter("SIM00001").advance(6 * 3600)
    clock_col = CaptureObject(cosem_attribute=attr(8, objects.CLOCK, 2), data_index=0)
    rng = RangeDescriptor(
        restricting_object=clock_col,
        from_value=START + dt.timedelta(hours=1),
        to_value=START + dt.timedelta(hours=2),
    )
    with management_client(fleet, "SIM00001") as c:
        rows = read(c, 7, objects.LOAD_PROFILE, 2, access_descriptor=rng)
    stamps = [objects.datetime_from_bytes(r[0]) for r in rows]
    assert stamps == [START + dt.timedelta(minutes=m) for m in (60, 75, 90, 105, 120)]


def test_set_thresholds_and_limiter_over_dlms(sim_fleet):  # noqa: F811
    from dlms_cosem.dlms_data import DoubleLongData, DoubleLongUnsignedData

    fleet = sim_fleet(MeterConfig("SIM00001"))
    model = fleet.meter("SIM00001")
    with management_client(fleet, "SIM00001") as c:
        c.set(attr(112, objects.CREDIT, 5), DoubleLongData(7000).to_bytes())
        c.set(attr(112, objects.CREDIT, 6), DoubleLongData(-500).to_bytes())
        c.set(attr(71, objects.LIMITER, 3), DoubleLongUnsignedData(4000).to_bytes())
        assert read(c, 112, objects.CREDIT, 5) == 7000
        assert read(c, 112, objects.CREDIT, 6) == -500
        assert read(c, 71, objects.LIMITER, 3) == 4000
    assert (model.low_credit_wh, model.trip_wh, model.load_limit_w) == (7000, -500, 4000)


def test_credit_depletes_and_relay_trips_at_threshold(sim_fleet):  # noqa: F811
    fleet = sim_fleet(MeterConfig("SIM00001", credit_kwh=2, low_credit_kwh=1, trip_kwh=0))
    model = fleet.meter("SIM00001")
    model.set_load(1000)
    model.advance(3600)  # 1 kWh used: at the low-credit threshold
    assert model.credit_wh == 1000 and model.relay_connected
    assert model.last_code("standard") == 64
    model.advance(3600 + 60)
    assert not model.relay_connected and model.credit_wh <= 0
    codes = [e.code for e in model.log_events("standard")]
    assert codes[-3:] == [64, 65, 59]
    with management_client(fleet, "SIM00001") as c:
        assert read(c, 70, objects.DISCONNECT_CONTROL, 2) is False
        assert read(c, 1, objects.STANDARD_EVENT_CODE, 2) == 59
        log = read(c, 7, objects.STANDARD_EVENT_LOG, 2)
        assert [r[1] for r in log][-3:] == [64, 65, 59]


def test_added_credit_reconnects_relay(sim_fleet):  # noqa: F811
    fleet = sim_fleet(MeterConfig("SIM00001", credit_kwh=0.5, trip_kwh=0))
    model = fleet.meter("SIM00001")
    model.set_load(1000)
    model.advance(3600)
    assert not model.relay_connected
    before = model.credit_wh
    with management_client(fleet, "SIM00001") as c:
        enter(c, credit_token(1001, 5000))
        assert read(c, 70, objects.DISCONNECT_CONTROL, 2) is True
        assert read(c, 115, objects.TOKEN_GATEWAY, 2) == credit_token(1001, 5000)
    assert model.relay_connected and model.last_transfer_number == 1001
    assert model.credit_wh == before + 5000
    assert [e.code for e in model.log_events("standard")][-2:] == [66, 61]


def test_duplicate_transfer_is_refused(sim_fleet):  # noqa: F811
    fleet = sim_fleet(MeterConfig("SIM00001", credit_kwh=10))
    model = fleet.meter("SIM00001")
    with management_client(fleet, "SIM00001") as c:
        enter(c, credit_token(7, 1000))
        credit = model.credit_wh
        with pytest.raises(ActionError) as dup:
            enter(c, credit_token(7, 1000))
        with pytest.raises(ActionError) as bad:
            c.action(method(115, objects.TOKEN_GATEWAY, 1), b"\x09\x04abcd")
        assert read(c, 112, objects.CREDIT, 2) == credit == 11000
    assert "READ_WRITE_DENIED" in str(dup.value)
    assert "TYPE_UNMATCHED" in str(bad.value)


def test_remote_disconnect_and_reconnect(sim_fleet):  # noqa: F811
    fleet = sim_fleet(MeterConfig("SIM00001"))
    with management_client(fleet, "SIM00001") as c:
        c.action(method(70, objects.DISCONNECT_CONTROL, 1), b"\x0f\x00")
        assert read(c, 70, objects.DISCONNECT_CONTROL, 2) is False
        assert read(c, 70, objects.DISCONNECT_CONTROL, 3) == 0
        c.action(method(70, objects.DISCONNECT_CONTROL, 2), b"\x0f\x00")
        assert read(c, 70, objects.DISCONNECT_CONTROL, 2) is True
    codes = [e.code for e in fleet.meter("SIM00001").log_events("standard")]
    assert codes[-3:] == [62, 63, 61]


def test_limiter_trips_relay(sim_fleet):  # noqa: F811
    fleet = sim_fleet(MeterConfig("SIM00001", load_limit_w=3000))
    model = fleet.meter("SIM00001")
    model.set_load(5000)
    assert not model.relay_connected and model.disconnect_reason == "load"
    with management_client(fleet, "SIM00001") as c:
        assert read(c, 70, objects.DISCONNECT_CONTROL, 2) is False
        assert read(c, 1, objects.STANDARD_EVENT_CODE, 2) == 60
        assert read(c, 3, objects.POWER_IMPORT, 2) == 0


@pytest.mark.parametrize(
    "kind,code", [("cover_open", 40), ("over_current", 91), ("reverse_connection", 92)]
)
def test_injected_tamper_is_in_fraud_log(sim_fleet, kind, code):  # noqa: F811
    fleet = sim_fleet(MeterConfig("SIM00001"), start=START)
    model = fleet.meter("SIM00001")
    model.advance(600)
    model.tamper(kind)
    with management_client(fleet, "SIM00001") as c:
        rows = read(c, 7, objects.FRAUD_EVENT_LOG, 2)
        assert read(c, 1, objects.FRAUD_EVENT_CODE, 2) == code
    assert [(objects.datetime_from_bytes(t), v) for t, v in rows] == [
        (START + dt.timedelta(seconds=600), code)
    ]


def test_reverse_connection_counts_export(sim_fleet):  # noqa: F811
    fleet = sim_fleet(MeterConfig("SIM00001"))
    model = fleet.meter("SIM00001")
    model.set_load(1000)
    model.tamper("reverse_connection")
    model.advance(3600)
    assert model.export_wh == 1000 and model.import_wh == 0


def test_unknown_obis_gets_dlms_error_and_meter_keeps_running(sim_fleet):  # noqa: F811
    from dlms_cosem.client import DataResultError

    fleet = sim_fleet(MeterConfig("SIM00001"))
    with management_client(fleet, "SIM00001") as c:
        with pytest.raises(DataResultError) as err:
            c.get(attr(3, "1.0.99.99.0.255", 2))
        assert "OBJECT_UNDEFINED" in str(err.value)
        assert read(c, 1, objects.LOGICAL_DEVICE_NAME, 2) == b"SIM00001"


def test_lls_password(sim_fleet):  # noqa: F811
    from dlms_cosem.exceptions import DlmsClientException

    fleet = sim_fleet(MeterConfig("SIM00001", auth="lls", password="secret12"))
    port = fleet.port_of("SIM00001")
    c = dlms_client(port, auth="lls", password="wrong")
    c.connect()
    try:
        with pytest.raises(DlmsClientException):
            c.associate()
    finally:
        c.disconnect()
    c = dlms_client(port, auth="lls", password="secret12")
    with c.session():
        assert read(c, 1, objects.LOGICAL_DEVICE_NAME, 2) == b"SIM00001"


def test_hdlc_over_tcp(sim_fleet):  # noqa: F811
    fleet = sim_fleet(MeterConfig("SIM00001", framing="hdlc"))
    with management_client(fleet, "SIM00001") as c:
        assert read(c, 1, objects.LOGICAL_DEVICE_NAME, 2) == b"SIM00001"
        assert read(c, 112, objects.CREDIT, 2) == 50000


def test_hdlc_over_pty(sim_fleet):  # noqa: F811
    with pty_pair() as (meter_dev, client_dev):
        fleet = sim_fleet(MeterConfig("SIM00001", framing="hdlc", serial_device=meter_dev))
        try:
            with management_client(
                fleet, "SIM00001", connection_type="serial", device=client_dev
            ) as c:
                assert read(c, 1, objects.LOGICAL_DEVICE_NAME, 2) == b"SIM00001"
                c.action(method(70, objects.DISCONNECT_CONTROL, 1), b"\x0f\x00")
            assert not fleet.meter("SIM00001").relay_connected
        finally:
            fleet.stop()


def test_many_meters_on_one_process(sim_fleet):  # noqa: F811
    fleet = sim_fleet(*(MeterConfig(f"SIM{i:05d}") for i in range(1, 21)))
    for serial in ("SIM00001", "SIM00020"):
        with management_client(fleet, serial) as c:
            assert read(c, 1, objects.LOGICAL_DEVICE_NAME, 2) == serial.encode()


def test_error_codes_are_documented():
    assert enumerations.ActionResultStatus(3).name == "READ_WRITE_DENIED"


def enter(c, token: bytes):
    return c.action(method(115, objects.TOKEN_GATEWAY, 1), b"\x09" + bytes([len(token)]) + token)


@pytest.mark.parametrize("framing", ["wrapper", "hdlc"])
def test_public_client_gets_identification_only(sim_fleet, framing):  # noqa: F811
    from dlms_cosem.client import DataResultError

    fleet = sim_fleet(MeterConfig("SIM00001", framing=framing), start=START)
    model = fleet.meter("SIM00001")
    before = model.state()
    c = dlms_client(fleet.port_of("SIM00001"), framing=framing)  # client 16, no auth
    with c.session():
        assert read(c, 1, objects.LOGICAL_DEVICE_NAME, 2) == b"SIM00001"
        assert read(c, 1, objects.SERIAL_NUMBER, 2) == b"SIM00001"
        assert objects.datetime_from_bytes(read(c, 8, objects.CLOCK, 2)) == START
        for ln, ic, attrs in objects.CONTRACT:
            if ln in objects.PUBLIC_OBJECTS:
                continue
            with pytest.raises(DataResultError) as err:
                c.get(attr(ic, ln, attrs[-1]))
            assert "READ_WRITE_DENIED" in str(err.value), ln
        # the association is still usable after the refusals
        assert read(c, 1, objects.LOGICAL_DEVICE_NAME, 2) == b"SIM00001"
    assert model.state() == before


def test_public_client_set_and_action_are_refused(sim_fleet):  # noqa: F811
    from dlms_cosem.dlms_data import DoubleLongData

    fleet = sim_fleet(MeterConfig("SIM00001", credit_kwh=10), start=START)
    model = fleet.meter("SIM00001")
    c = dlms_client(fleet.port_of("SIM00001"))
    with c.session():
        for target, data in (
            (
                attr(8, objects.CLOCK, 2),
                b"\x09\x0c" + objects.datetime_bytes(START.replace(year=2030)),
            ),
            (attr(112, objects.CREDIT, 6), DoubleLongData(-100000).to_bytes()),
            (attr(1, objects.LOGICAL_DEVICE_NAME, 2), b"\x09\x03ABC"),
        ):
            resp = c.set(target, data)
            assert resp.result.name == "READ_WRITE_DENIED"
        for m, data in (
            (method(70, objects.DISCONNECT_CONTROL, 1), b"\x0f\x00"),
            (method(115, objects.TOKEN_GATEWAY, 1), b"\x09\x14" + credit_token(1, 50000)),
            (method(1, objects.TOKEN_LOG, objects.TOKEN_LOG_CANCEL), DoubleLongData(1).to_bytes()),
            (method(1, objects.TOKEN_LOG, objects.TOKEN_LOG_QUERY), DoubleLongData(1).to_bytes()),
        ):
            with pytest.raises(ActionError) as err:
                c.action(m, data)
            assert "READ_WRITE_DENIED" in str(err.value)
    assert model.credit_wh == 10000 and model.relay_connected
    assert model.trip_wh == 0 and model.meter_time() == START
    assert model.last_transfer_number is None
    assert model.token_log == {}


def test_lls_and_unauthenticated_management_client_may_only_read(sim_fleet):  # noqa: F811
    from dlms_cosem.client import DataResultError

    fleet = sim_fleet(
        MeterConfig("SIM00001", auth="lls", password="secret12"),
        MeterConfig("SIM00002", auth="none"),
    )
    for serial, kw in (("SIM00001", {"auth": "lls", "password": "secret12"}), ("SIM00002", {})):
        c = dlms_client(fleet.port_of(serial), **kw)
        if not kw:  # client 1 without authentication
            c.transport.client_logical_address = 1
        with c.session():
            assert read(c, 112, objects.CREDIT, 2) == 50000
            with pytest.raises(ActionError) as err:
                c.action(method(70, objects.DISCONNECT_CONTROL, 1), b"\x0f\x00")
            assert "READ_WRITE_DENIED" in str(err.value)
            # the token log is the management association's only, not even readable here
            with pytest.raises(DataResultError) as denied:
                c.get(attr(1, objects.TOKEN_LOG, 2))
            assert "READ_WRITE_DENIED" in str(denied.value)
            with pytest.raises(ActionError) as err:
                c.action(
                    method(1, objects.TOKEN_LOG, objects.TOKEN_LOG_CANCEL), b"\x06\x00\x00\x00\x01"
                )
            assert "READ_WRITE_DENIED" in str(err.value)
        assert fleet.meter(serial).relay_connected
        assert fleet.meter(serial).token_log == {}


def test_token_refusals_have_distinct_codes_and_events(sim_fleet):  # noqa: F811
    fleet = sim_fleet(MeterConfig("SIM00001", credit_kwh=10), MeterConfig("SIM00002"))
    model = fleet.meter("SIM00001")
    forged = credit_token(5, 9000, token_key=bytes(16))  # right format, wrong key
    other = credit_token(5, 9000, serial="SIM00002")  # the other meter's genuine token
    with management_client(fleet, "SIM00001") as c:
        results = {}
        for name, token in (
            ("forged", forged),
            ("other", other),
            ("short", credit_token(5, 9000)[:16]),
            ("good", credit_token(5, 9000)),
            ("replayed", credit_token(5, 9000)),
        ):
            try:
                enter(c, token)
                results[name] = "SUCCESS"
            except ActionError as e:
                results[name] = str(e).rsplit(" ", 1)[-1]
        assert read(c, 112, objects.CREDIT, 2) == 19000
    assert results == {
        "forged": "SCOPE_OF_ACCESS_VIOLATED",
        "other": "OBJECT_UNAVAILABLE",
        "short": "TYPE_UNMATCHED",
        "good": "SUCCESS",
        "replayed": "READ_WRITE_DENIED",
    }
    assert [e.code for e in model.log_events("fraud")] == [93, 94]
    assert [e.code for e in model.log_events("standard")][-3:] == [70, 66, 69]
    assert fleet.meter("SIM00002").credit_wh == 50000
