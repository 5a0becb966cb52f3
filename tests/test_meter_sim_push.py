"""DLMS push from the simulated meter (docs/meter-contract.md, "Push"): a ciphered
DataNotification to the head end on every event and on the heartbeat, decoded here with
dlms-cosem (the simulator ciphers with gurux), and retried while the head end is away."""

from __future__ import annotations

import datetime as dt
import socket
import struct

import pytest
from dlms_cosem import security
from dlms_cosem.protocol import xdlms

from meter_bridge import codec
from meter_sim import push
from meter_sim.model import EV_COVER_OPENED, MeterConfig

pytestmark = pytest.mark.timeout(30)


def head_end(port=0):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    srv.settimeout(10)
    return srv


def read_frame(conn) -> bytes:
    """One TCP wrapper frame (IEC 62056-47): version, source, destination, length."""
    head = b""
    while len(head) < 8:
        chunk = conn.recv(8 - len(head))
        assert chunk, "line closed"
        head += chunk
    version, src, dst, length = struct.unpack(">HHHH", head)
    assert (version, src, dst) == (1, push.SERVER_WPORT, push.PUSH_CLIENT_WPORT)
    body = b""
    while len(body) < length:
        body += conn.recv(length - len(body))
    return body


def decode(apdu: bytes, cfg: MeterConfig):
    ciphered = xdlms.GeneralGlobalCipher.from_bytes(apdu)
    plain = security.decrypt(
        security_control=ciphered.security_control,
        system_title=ciphered.system_title,
        invocation_counter=ciphered.invocation_counter,
        key=bytes.fromhex(cfg.encryption_key),
        auth_key=bytes.fromhex(cfg.authentication_key),
        cipher_text=ciphered.ciphered_text,
    )
    note = xdlms.DataNotification.from_bytes(plain)
    return ciphered, note, codec.decode_data(note.body)


def test_cover_open_is_pushed_ciphered_with_the_meters_keys(sim_fleet):
    srv = head_end()
    port = srv.getsockname()[1]
    fleet = sim_fleet(MeterConfig("SIM00001", push_destination=f"127.0.0.1:{port}"))
    model = fleet.meter("SIM00001")
    model.tamper("cover_open")
    conn, _ = srv.accept()
    conn.settimeout(10)
    apdu = read_frame(conn)
    assert apdu[0] == 0xDB  # general-glo-ciphering
    ciphered, note, body = decode(apdu, model.config)
    assert bytes(ciphered.system_title) == b"SIM00001"
    assert ciphered.security_control.authenticated and ciphered.security_control.encrypted
    assert not note.long_invoke_id_and_priority.confirmed
    setup, name, clock, code, credit_wh, relay = body
    assert bytes(setup) == bytes([0, 2, 25, 9, 0, 255])  # the fraud event push
    assert bytes(name) == b"SIM00001"
    event = model.log_events("fraud")[-1]
    assert code == EV_COVER_OPENED == event.code
    assert codec.parse_datetime(bytes(clock)) == event.time.replace(
        microsecond=event.time.microsecond // 10000 * 10000
    )
    assert credit_wh == model.credit_wh and relay is True

    model.tamper("cover_close")  # on the same connection, a higher counter
    second, _note, body2 = decode(read_frame(conn), model.config)
    assert body2[3] == 41
    assert second.invocation_counter > ciphered.invocation_counter
    conn.close()
    srv.close()


def test_a_tampered_push_fails_the_gcm_check(sim_fleet):
    srv = head_end()
    fleet = sim_fleet(MeterConfig("SIM00001", push_destination=f"127.0.0.1:{srv.getsockname()[1]}"))
    fleet.meter("SIM00001").tamper("over_current")
    conn, _ = srv.accept()
    conn.settimeout(10)
    apdu = bytearray(read_frame(conn))
    apdu[-1] ^= 1
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidTag
        decode(bytes(apdu), fleet.meter("SIM00001").config)
    conn.close()
    srv.close()


def test_push_is_retried_until_the_head_end_is_back(sim_fleet):
    probe = head_end()
    port = probe.getsockname()[1]
    probe.close()  # nobody listens there now: connection refused
    fleet = sim_fleet(MeterConfig("SIM00001", push_destination=f"127.0.0.1:{port}"))
    model = fleet.meter("SIM00001")
    model.push.repetition_delay_s = 1
    model.tamper("cover_open")
    from odoo_e2e import wait_until

    wait_until(lambda: fleet.push.links["SIM00001"].outbox[0].attempts >= 1, 10, 0.05)
    assert fleet.push.pending("SIM00001") == 1
    srv = head_end(port)
    conn, _ = srv.accept()
    conn.settimeout(10)
    _c, _n, body = decode(read_frame(conn), model.config)
    assert body[3] == EV_COVER_OPENED
    wait_until(lambda: fleet.push.pending("SIM00001") == 0, 10, 0.05, "the outbox to empty")
    assert fleet.push.stats("SIM00001")["dropped"] == 0
    conn.close()
    srv.close()


def test_heartbeat_on_its_interval_in_meter_time(sim_fleet):
    srv = head_end()
    fleet = sim_fleet(
        MeterConfig(
            "SIM00001",
            push_destination=f"127.0.0.1:{srv.getsockname()[1]}",
            push_heartbeat_s=900,
        )
    )
    model = fleet.meter("SIM00001")
    from odoo_e2e import wait_until

    wait_until(lambda: fleet.push.links["SIM00001"].next_heartbeat is not None, 10, 0.05)
    model.advance(901)
    conn, _ = srv.accept()
    conn.settimeout(10)
    _c, _n, body = decode(read_frame(conn), model.config)
    setup, name, _clock, credit_wh, energy_wh, relay = body
    assert bytes(setup) == bytes([0, 0, 25, 9, 0, 255])
    assert (bytes(name), credit_wh, energy_wh) == (b"SIM00001", model.credit_wh, model.import_wh)
    conn.close()
    srv.close()


def test_no_push_without_a_destination(sim_fleet):
    fleet = sim_fleet(MeterConfig("SIM00001"))
    fleet.meter("SIM00001").tamper("cover_open")
    assert fleet.push.pending("SIM00001") == 0


def test_a_push_outside_the_communication_window_waits_for_it(sim_fleet):
    srv = head_end()
    srv.settimeout(0.5)
    fleet = sim_fleet(MeterConfig("SIM00001", push_destination=f"127.0.0.1:{srv.getsockname()[1]}"))
    model = fleet.meter("SIM00001")
    t = model.meter_time()
    model.advance_to(t.replace(hour=5, minute=0, second=0) + dt.timedelta(days=1))
    model.push.windows = [(360, 420)]  # 06:00-07:00 meter time (attribute 4)
    model.tamper("cover_open")
    with pytest.raises(TimeoutError):
        srv.accept()  # 05:00: the meter keeps its push
    assert fleet.push.pending("SIM00001") == 1
    model.advance(3600)  # 06:00: the window opens
    srv.settimeout(10)
    conn, _ = srv.accept()
    conn.settimeout(10)
    _c, _n, body = decode(read_frame(conn), model.config)
    assert body[3] == EV_COVER_OPENED
    conn.close()
    srv.close()
