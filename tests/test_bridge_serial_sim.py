"""execute_job over a serial line (pyserial, HDLC) against a simulated meter on a
pseudo-terminal: read, add_credit, disconnect, and a silent line."""

from __future__ import annotations

import os
import time

import pytest

pytest.importorskip("gurux_dlms")
pytest.importorskip("serial")
fleet_mod = pytest.importorskip("meter_sim.fleet")

from meter_bridge.errors import MeterUnreachable  # noqa: E402
from meter_bridge.executors import execute_job  # noqa: E402
from meter_sim.model import MeterConfig  # noqa: E402
from meter_sim.testing import credit_token, hls_job_meter, pty_pair  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def serial_meter():
    """SIM00030 served on one end of a pty pair; yields (fleet, client device path)."""
    with pty_pair() as (meter_dev, client_dev):
        fleet = fleet_mod.Fleet(
            meters=[MeterConfig("SIM00030", framing="hdlc", serial_device=meter_dev)], speed=0
        )
        fleet.start()
        try:
            yield fleet, client_dev
        finally:
            fleet.stop()


def job(fleet, device, job_type, payload=None, **meter_kw):
    """A job for the fleet's (locked, HLS) serial meter, or, without a fleet, for a device
    nobody may answer on."""
    meter = {
        "id": 30,
        "serial_number": "SIM00030",
        "connection_type": "serial",
        "device": device,
        "baudrate": 9600,
        "framing": "hdlc",
        "client_address": 16,
        "server_logical_address": 1,
        "server_physical_address": 17,
        "auth": "none",
        "timeout_s": 3,
    }
    if fleet is not None:
        model = fleet.meter(fleet.serials()[0])
        meter = hls_job_meter(
            model,
            None,
            id=30,
            connection_type="serial",
            device=device,
            baudrate=9600,
            framing="hdlc",
            timeout_s=3,
        )
    meter.update(meter_kw)
    return {"id": 1, "job_type": job_type, "payload": payload or {}, "meter": meter}


def run(job_dict, **kw):
    """execute_job without the HLS counter in the result (test_hls_gmac_over_serial checks it)."""
    result = execute_job(job_dict, **kw)
    result.pop("invocation_counter", None)
    return result


def token(serial, transfer_number, kwh):
    return {"token": credit_token(transfer_number, round(kwh * 1000), serial).hex(), "kwh": kwh}


def test_read_over_serial(serial_meter):
    fleet, device = serial_meter
    fleet.meter("SIM00030").advance(2 * 3600)
    result = execute_job(
        job(
            fleet,
            device,
            "read",
            {
                "objects": [
                    {"obis": "0.0.42.0.0.255", "ic": 1, "attribute": 2},
                    {"obis": "1.0.32.7.0.255", "ic": 3, "attribute": 2},
                    {"obis": "1.0.99.1.0.255", "ic": 7, "attribute": 2},
                ]
            },
        ),
        deadline_s=20,
    )
    by_obis = {r["obis"]: r for r in result["readings"]}
    assert by_obis["0.0.42.0.0.255"]["value"] == "SIM00030"
    assert by_obis["1.0.32.7.0.255"]["unit"] == "V"
    assert len(result["profiles"]["1.0.99.1.0.255"]) >= 8  # a multi-frame HDLC answer


def test_add_credit_over_serial(serial_meter):
    fleet, device = serial_meter
    model = fleet.meter("SIM00030")
    before = model.credit_wh
    first = run(job(fleet, device, "add_credit", token("SIM00030", 3001, 4)))
    assert first["already_applied"] is False and model.credit_wh == before + 4000
    again = run(job(fleet, device, "add_credit", token("SIM00030", 3001, 4)))
    assert again["already_applied"] is True and model.credit_wh == before + 4000


def test_disconnect_over_serial(serial_meter):
    fleet, device = serial_meter
    assert run(job(fleet, device, "disconnect")) == {"relay": "disconnected", "control_state": 0}
    assert fleet.meter("SIM00030").relay_state == "disconnected"
    assert execute_job(job(fleet, device, "reconnect"))["relay"] == "connected"


def test_silent_serial_meter_is_unreachable_within_timeout():
    import pty
    import tty

    master, slave = pty.openpty()  # nobody answers on the other end
    tty.setraw(master)
    try:
        start = time.monotonic()
        with pytest.raises(MeterUnreachable):
            execute_job(job(None, os.ttyname(slave), "ping", timeout_s=1))
        assert time.monotonic() - start < 1.5
    finally:
        os.close(master)
        os.close(slave)


def test_serial_meter_gone_silent_is_unreachable_then_answers_again(serial_meter):
    fleet, device = serial_meter
    fleet.set_offline("SIM00030", True)
    try:
        start = time.monotonic()
        with pytest.raises(MeterUnreachable):
            execute_job(job(fleet, device, "ping", timeout_s=1))
        assert time.monotonic() - start < 1.5
    finally:
        fleet.set_offline("SIM00030", False)
    assert execute_job(job(fleet, device, "ping"))["relay"] in ("connected", "disconnected")


def test_missing_serial_device_is_unreachable():
    with pytest.raises(MeterUnreachable):
        execute_job(job(None, "/dev/does-not-exist-smartpm", "ping", timeout_s=1))


def test_hls_gmac_over_serial():
    keys = {"encryption_key": "000102030405060708090A0B0C0D0E0F", "auth_key": "D0" * 16}
    with pty_pair() as (meter_dev, client_dev):
        cfg = MeterConfig(
            "SIM00031",
            framing="hdlc",
            serial_device=meter_dev,
            auth="hls",
            encryption_key=keys["encryption_key"],
            authentication_key=keys["auth_key"],
        )
        with fleet_mod.Fleet(meters=[cfg], speed=0) as fleet:
            kw = {"auth": "hls_gmac", "client_address": 1, "invocation_counter": 10, **keys}
            first = execute_job(job(fleet, client_dev, "add_credit", token("SIM00031", 1, 1), **kw))
            assert first["already_applied"] is False and first["invocation_counter"] > 10
            kw["invocation_counter"] = first["invocation_counter"]
            second = execute_job(job(fleet, client_dev, "ping", **kw))
            assert second["invocation_counter"] > first["invocation_counter"]
            assert fleet.meter("SIM00031").client_invocation_counter == second["invocation_counter"]


def test_serial_meter_answers_a_client_that_writes_right_after_start(monkeypatch):
    # Setting the line raw flushes pending input: the fleet must not return from start()
    # before the serial meter is set up, or a client's first SNRM is lost.
    import meter_sim.server as server

    slow_raw = server._raw_tty

    def late_raw_tty(fd):
        time.sleep(0.3)
        slow_raw(fd)

    monkeypatch.setattr(server, "_raw_tty", late_raw_tty)
    with pty_pair() as (meter_dev, client_dev):
        cfg = MeterConfig("SIM00032", framing="hdlc", serial_device=meter_dev)
        with fleet_mod.Fleet(meters=[cfg], speed=0) as fleet:
            assert execute_job(job(fleet, client_dev, "ping", timeout_s=2))["relay"] == "connected"
