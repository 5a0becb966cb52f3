"""The simulator against the Blue Book where it used to deviate (issue 19 §1): clock
daylight savings, the date-time attributes of Account / Credit / Token gateway, Account's
available credit, and the LLS meter's answer to a public-client AARQ with LLS."""

from __future__ import annotations

import datetime as dt

import pytest
from dlms_cosem import enumerations
from dlms_cosem.client import DlmsClient
from dlms_cosem.exceptions import DlmsClientException
from dlms_cosem.io import BlockingTcpIO, TcpTransport
from dlms_cosem.security import LowLevelSecurityAuthentication
from gurux_client import GuruxSession

from meter_bridge.codec import decode_data
from meter_bridge.describe import describe
from meter_bridge.dlms import MeterConnection
from meter_bridge.errors import MeterRefused
from meter_sim import objects
from meter_sim.model import MeterConfig
from meter_sim.testing import hls_job_meter

pytestmark = pytest.mark.timeout(60)
START = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone.utc)
NOT_SPECIFIED = objects.DATETIME_NOT_SPECIFIED


def _conn(fleet, serial="SIM00001") -> MeterConnection:
    return MeterConnection(hls_job_meter(fleet.meter(serial), fleet.port_of(serial)))


def _octets12(conn, ln, ic, index) -> bytes:
    value = decode_data(conn.get_raw(ln, ic, index))
    assert isinstance(value, bytes) and len(value) == 12, (ln, index, value)
    return value


def test_clock_serves_daylight_savings_begin_and_end(sim_fleet):
    fleet = sim_fleet(MeterConfig("SIM00001"), start=START)
    with _conn(fleet) as conn:
        begin = _octets12(conn, objects.CLOCK, 8, 5)
        end = _octets12(conn, objects.CLOCK, 8, 6)
        assert decode_data(conn.get_raw(objects.CLOCK, 8, 8)) is False  # the meter keeps UTC
        assert decode_data(conn.get_raw(objects.CLOCK, 8, 9)) == 1  # internal crystal
    # last Sunday (day 0xFE, weekday 7) of March / October, 01:00, any year
    assert (begin[2], begin[3], begin[4], begin[5]) == (3, 0xFE, 7, 1)
    assert (end[2], end[3], end[4], end[5]) == (10, 0xFE, 7, 1)
    assert describe(b"\x09\x0c" + begin, 8, 5)["text"].startswith("****-03-last 01:00:00")


def test_account_credit_and_token_gateway_times_are_date_times(sim_fleet):
    fleet = sim_fleet(MeterConfig("SIM00001"), start=START)
    model = fleet.meter("SIM00001")
    with _conn(fleet) as conn:
        activation = _octets12(conn, objects.ACCOUNT, 111, 13)
        assert objects.datetime_from_bytes(activation) == START
        assert _octets12(conn, objects.ACCOUNT, 111, 14) == NOT_SPECIFIED  # not closed
        assert _octets12(conn, objects.CREDIT, 112, 11) == NOT_SPECIFIED
        assert _octets12(conn, objects.EMERGENCY_CREDIT, 112, 11) == NOT_SPECIFIED
        assert _octets12(conn, objects.TOKEN_GATEWAY, 115, 3) == NOT_SPECIFIED  # no token yet
    model.advance(600)
    assert model.add_credit(7, 1000) == 0
    with _conn(fleet) as conn:
        token_time = objects.datetime_from_bytes(_octets12(conn, objects.TOKEN_GATEWAY, 115, 3))
    assert token_time == START + dt.timedelta(seconds=600)


def test_account_available_credit_follows_the_credit_objects(sim_fleet):
    config = MeterConfig(
        "SIM00001", credit_kwh=2, emergency_credit_kwh=3, emergency_threshold_kwh=5
    )
    fleet = sim_fleet(config, start=START)
    model = fleet.meter("SIM00001")

    def read():
        with _conn(fleet) as conn:
            return (
                decode_data(conn.get_raw(objects.ACCOUNT, 111, 5)),
                decode_data(conn.get_raw(objects.CREDIT, 112, 2)),
            )

    assert read() == (2000, 2000)
    assert model.add_credit(1, 500) == 0
    assert read() == (2500, 2500)
    assert model.take_emergency_credit()
    assert read() == (5500, 5500)  # emergency credit taken joins the available credit


def _dlms_cosem_lls(port: int, client: int, password: str) -> DlmsClient:
    io = BlockingTcpIO(host="127.0.0.1", port=port, timeout=3)
    transport = TcpTransport(
        client_logical_address=client, server_logical_address=1, io=io, timeout=3
    )
    return DlmsClient(
        transport=transport,
        authentication=LowLevelSecurityAuthentication(secret=password.encode()),
        timeout=3,
    )


def test_lls_meter_rejects_a_public_client_aarq_with_lls(sim_fleet):
    fleet = sim_fleet(MeterConfig("SIM00001", auth="lls", password="secret12"), start=START)
    port = fleet.port_of("SIM00001")
    client = _dlms_cosem_lls(port, 16, "secret12")
    client.connect()
    try:
        with pytest.raises(DlmsClientException, match="REJECTED_PERMANENT") as info:
            client.associate()
        assert "NOT_RECOGNIZED" in str(info.value)
    finally:
        client.transport.io.disconnect()
    # the bridge says "refused", not "no answer" (retrying would not help)
    meter = {"host": "127.0.0.1", "port": port, "auth": "lls", "password": "secret12"}
    with pytest.raises(MeterRefused, match="association refused"):
        MeterConnection({**meter, "client_address": 16, "timeout_s": 3}).open()
    # Gurux's client is told the same
    with pytest.raises(Exception, match="(?i)reject|authentication|not recognised"):
        GuruxSession(port, auth="lls", client_address=16, password="secret12").__enter__()
    # and the meter still serves its clients: the reader with LLS, the public client without
    with MeterConnection({**meter, "client_address": 1}) as conn:
        assert conn.get(objects.CREDIT, 112, 2) == 50000
    with MeterConnection({"host": "127.0.0.1", "port": port, "client_address": 16}) as conn:
        assert conn.get(objects.LOGICAL_DEVICE_NAME, 1, 2) == b"SIM00001"


def test_hls_meter_rejects_an_aarq_without_authentication_from_the_management_client(sim_fleet):
    fleet = sim_fleet(MeterConfig("SIM00001"), start=START)
    meter = {"host": "127.0.0.1", "port": fleet.port_of("SIM00001"), "client_address": 1}
    with pytest.raises(MeterRefused, match="REQUIRED"):
        MeterConnection({**meter, "timeout_s": 3}).open()
    assert enumerations.AcseServiceUserDiagnostics(12).name.endswith("NAME_REQUIRED")
