"""The meter-sim CLI (subprocess) and its HTTP control interface."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from dlms_cosem.exceptions import CommunicationError
from dlms_cosem.utils import parse_as_dlms_data

from meter_sim import objects
from meter_sim.testing import attr, dlms_client, run_cli

pytestmark = pytest.mark.timeout(60)


def http(url, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_cli_starts_n_meters_and_stops_on_sigterm():
    with run_cli(5) as sim:
        assert list(sim.ports) == [f"SIM{i:05d}" for i in range(1, 6)]
        for serial in ("SIM00001", "SIM00005"):
            c = dlms_client(sim.ports[serial])
            with c.session():
                value = parse_as_dlms_data(c.get(attr(1, objects.LOGICAL_DEVICE_NAME, 2)))
            assert value == serial.encode()
        sim.proc.send_signal(signal.SIGTERM)
        assert sim.proc.wait(10) == 0


def test_cli_help_explains_usage():
    out = subprocess.run(
        [sys.executable, "-m", "meter_sim.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for word in (
        "--meters",
        "--base-port",
        "--speed",
        "--seed",
        "--config",
        "--control-port",
        "SIGTERM",
        "client address",
    ):
        assert word in out


def test_cli_config_file(tmp_path):
    cfg = tmp_path / "fleet.json"
    cfg.write_text(
        json.dumps(
            {
                "meters": [
                    {"serial": "A1", "port": 0, "credit_kwh": 3},
                    {
                        "serial": "H1",
                        "port": 0,
                        "framing": "hdlc",
                        "auth": "lls",
                        "password": "pw123456",
                    },
                ]
            }
        )
    )
    with run_cli(config=str(cfg)) as sim:
        c = dlms_client(sim.ports["H1"], framing="hdlc", auth="lls", password="pw123456")
        with c.session():
            assert parse_as_dlms_data(c.get(attr(112, objects.CREDIT, 2))) == 50000
        status, state = http(f"{sim.control_url}/meters/A1")
        assert status == 200 and state["credit_kwh"] == 3


def test_cli_config_hls_meter(tmp_path):
    from meter_bridge.errors import MeterRefused
    from meter_bridge.executors import execute_job

    keys = {"encryption_key": "0F" * 16, "authentication_key": "A5" * 16}
    cfg = tmp_path / "fleet.json"
    cfg.write_text(
        json.dumps(
            {
                "meters": [
                    {
                        "serial": "HLS1",
                        "port": 0,
                        "auth": "hls",
                        "system_title": "4D54523030303031",
                        **keys,
                    }
                ]
            }
        )
    )
    with run_cli(config=str(cfg), speed=0) as sim:
        (m,) = sim.meters
        assert (m["auth"], m["client_address"], m["system_title"]) == ("hls", 1, "4D54523030303031")
        meter = {
            "host": "127.0.0.1",
            "port": sim.ports["HLS1"],
            "client_address": 1,
            "auth": "hls_gmac",
            "encryption_key": keys["encryption_key"],
            "auth_key": keys["authentication_key"],
            "invocation_counter": 1200,
            "timeout_s": 3,
        }
        for _ in range(3):  # gurux prints nothing on stdout per ciphered APDU any more
            result = execute_job({"job_type": "ping", "payload": {}, "meter": meter})
            assert result["invocation_counter"] > meter["invocation_counter"]
            meter["invocation_counter"] = result["invocation_counter"]
        status, state = http(f"{sim.control_url}/meters/HLS1")
        assert state["client_invocation_counter"] == result["invocation_counter"]
        with pytest.raises(MeterRefused):
            execute_job(
                {"job_type": "ping", "payload": {}, "meter": {**meter, "invocation_counter": 1200}}
            )
        sim.proc.send_signal(signal.SIGTERM)
        out, _ = sim.proc.communicate(timeout=10)
        assert "applied" not in out


def test_http_control_endpoints():
    with run_cli(2, speed=0) as sim:
        base = sim.control_url
        status, listing = http(f"{base}/meters")
        assert status == 200 and [m["serial"] for m in listing] == ["SIM00001", "SIM00002"]
        status, state = http(f"{base}/meters/SIM00001")
        assert status == 200
        for key in (
            "credit_kwh",
            "relay",
            "energy_kwh",
            "low_credit_kwh",
            "trip_kwh",
            "load_limit_w",
            "last_transfer_number",
            "power_w",
            "events",
        ):
            assert key in state
        assert state["relay"] == "connected"
        status, state = http(f"{base}/meters/SIM00001/tamper", {"kind": "cover_open"})
        assert status == 200 and state["events"][-1]["code"] == 40
        status, state = http(f"{base}/meters/SIM00001/load", {"watts": 2500})
        assert status == 200 and state["power_w"] == 2500
        assert http(f"{base}/meters/NOPE")[0] == 404
        assert http(f"{base}/meters/NOPE/tamper", {"kind": "cover_open"})[0] == 404
        assert http(f"{base}/meters/SIM00001/tamper", {"kind": "bogus"})[0] == 400
        assert http(f"{base}/meters/SIM00001/load", raw=b"{not json")[0] == 400
        # offline: the port stops answering, and comes back
        assert http(f"{base}/meters/SIM00002/offline", {"offline": True})[0] == 200
        c = dlms_client(sim.ports["SIM00002"], timeout=1)
        with pytest.raises((OSError, CommunicationError)):  # refused: the port is closed
            c.connect()
            c.associate()
        c.disconnect()
        assert http(f"{base}/meters/SIM00002/offline", {"offline": False})[0] == 200
        c = dlms_client(sim.ports["SIM00002"])
        with c.session():
            assert parse_as_dlms_data(c.get(attr(1, objects.LOGICAL_DEVICE_NAME, 2))) == b"SIM00002"


def test_cli_serves_200_meters_each_readable():
    with run_cli(200, control=False) as sim:
        assert len(sim.ports) == 200
        for serial, port in sim.ports.items():
            c = dlms_client(port)
            with c.session():
                value = parse_as_dlms_data(c.get(attr(1, objects.LOGICAL_DEVICE_NAME, 2)))
            assert value == serial.encode()


def test_demo_fleet_refuses_a_public_client_token_and_set():
    # issue 14: "a program on the meter network associates as the public client and enters
    # a made-up 8-byte token: the meter adds 50 kWh". As `make demo` runs the simulator.
    from dlms_cosem.client import ActionError
    from dlms_cosem.dlms_data import DoubleLongData

    from meter_sim.testing import credit_token, method

    with run_cli(2, "--seed", "1", speed=0) as sim:
        url = f"{sim.control_url}/meters/SIM00001"
        before = http(url)[1]
        c = dlms_client(sim.ports["SIM00001"])  # client 16, no authentication
        with c.session():
            for token in (
                (7).to_bytes(4, "big") + (50000).to_bytes(4, "big"),  # the old made-up token
                credit_token(7, 50000, "SIM00001"),  # even a genuine one
            ):
                with pytest.raises(ActionError, match="READ_WRITE_DENIED"):
                    c.action(
                        method(115, objects.TOKEN_GATEWAY, 1), b"\x09" + bytes([len(token)]) + token
                    )
            with pytest.raises(ActionError, match="READ_WRITE_DENIED"):
                c.action(method(70, objects.DISCONNECT_CONTROL, 1), b"\x0f\x00")
            resp = c.set(attr(112, objects.CREDIT, 6), DoubleLongData(-(10**6)).to_bytes())
            assert resp.result.name == "READ_WRITE_DENIED"
        after = http(url)[1]
        assert after["credit_wh"] == before["credit_wh"]
        assert (after["relay"], after["trip_kwh"]) == ("connected", before["trip_kwh"])
        assert after["last_transfer_number"] is None
        assert [m["client_address"] for m in sim.meters] == [1, 1]
        assert {m["auth"] for m in sim.meters} == {"hls"}


def test_cli_money_meters_start_in_money_mode_and_the_others_in_kwh():
    with run_cli(3, "--money-meters", "SIM00003", speed=0) as sim:
        modes = {
            serial: http(f"{sim.control_url}/meters/{serial}")[1]["credit_mode"]
            for serial in sim.ports
        }
    assert modes == {"SIM00001": "kwh", "SIM00002": "kwh", "SIM00003": "money"}


def test_cli_money_meters_refuses_a_serial_it_does_not_generate():
    done = subprocess.run(
        [sys.executable, "-m", "meter_sim.cli", "--meters", "2", "--money-meters", "SIM00025"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "SIM00025" in done.stderr
