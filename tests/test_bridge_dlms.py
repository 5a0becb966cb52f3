"""meter_bridge.codec (the pure codec), and connection failures that need no simulator."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from meter_bridge import codec, dlms
from meter_bridge.errors import JobError, MeterUnreachable
from meter_bridge.obis import normalize_obis, parse_obis, unit_name

pytestmark = pytest.mark.timeout(30)
UTC = dt.timezone.utc


@pytest.mark.parametrize(
    "raw, value",
    [
        (b"\x06\x00\x00\x30\x39", 12345),
        (b"\x05\xff\xff\xff\xfe", -2),
        (b"\x12\x08\xfc", 2300),
        (b"\x0f\xfe", -2),
        (b"\x03\x01", True),
        (b"\x16\x1e", 30),
        (b"\x09\x08SIM00001", b"SIM00001"),
        (b"\x0a\x03abc", "abc"),
        (b"\x00", None),
        (b"\x02\x02\x0f\xff\x16\x1e", [-1, 30]),
        (b"\x01\x02\x11\x01\x11\x02", [1, 2]),
    ],
)
def test_decode_data_values(raw, value):
    assert codec.decode_data(raw) == value


def test_decode_datetime_is_utc_aware():
    raw = codec.datetime_to_bytes(dt.datetime(2025, 3, 1, 12, 30, tzinfo=UTC))
    assert codec.decode_data(b"\x19" + raw) == dt.datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
    assert codec.parse_datetime(raw) == dt.datetime(2025, 3, 1, 12, 30, tzinfo=UTC)


def test_datetime_deviation_is_minutes_from_local_to_utc():
    raw = bytearray(codec.datetime_to_bytes(dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC)))
    raw[9:11] = (-60).to_bytes(2, "big", signed=True)  # local time is UTC+1
    assert codec.iso(codec.parse_datetime(bytes(raw))) == "2025-03-01T11:00:00Z"


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\x06\x00",
        b"\x01\x05\x06\x00",
        b"\x02\x84\xff\xff\xff\xff",
        b"\x09\x40ab",
        b"\x13\x00",
        b"\x06\x00\x00\x00\x01\x00",
        b"\x01" * 100,
    ],
)
def test_decode_data_rejects_truncated_or_garbage(garbage):
    with pytest.raises(codec.DataError):
        codec.decode_data(garbage)


def test_decode_random_garbage_terminates_quickly():
    rng = os.urandom
    start = time.monotonic()
    for _ in range(2000):
        try:
            codec.decode_data(rng(64))
        except codec.DataError:
            pass
    assert time.monotonic() - start < 5


def test_decode_deep_nesting_is_refused():
    with pytest.raises(codec.DataError):
        codec.decode_data(b"\x01\x01" * 100 + b"\x00")


@pytest.mark.parametrize(
    "tag, value, raw",
    [
        (6, 3000, b"\x06\x00\x00\x0b\xb8"),
        (5, -1000, b"\x05\xff\xff\xfc\x18"),
        (15, 0, b"\x0f\x00"),
        (18, 7, b"\x12\x00\x07"),
        (9, b"\x01\x02", b"\x09\x02\x01\x02"),
        (3, True, b"\x03\x01"),
    ],
)
def test_encode_data(tag, value, raw):
    assert codec.encode_data(tag, value) == raw
    assert codec.decode_data(raw) == value


def test_encode_data_refuses_overflow():
    with pytest.raises(codec.DataError):
        codec.encode_data(17, 300)


def test_scale_keeps_integers_and_rounds_decimals():
    assert codec.scale(2301, -1) == 230.1
    assert codec.scale(5, 3) == 5000
    assert codec.scale(12, 0) == 12
    assert codec.scale(b"x", -1) == b"x"


def test_to_json_shapes_values():
    assert codec.to_json([b"SIM1", b"\x00\x01", dt.datetime(2025, 1, 1, tzinfo=UTC)]) == [
        "SIM1",
        "0001",
        "2025-01-01T00:00:00Z",
    ]


def test_obis_parsing():
    assert parse_obis("1-0:1.8.0.255") == (1, 0, 1, 8, 0, 255)
    assert normalize_obis("1.0.1.8.0") == "1.0.1.8.0.255"
    assert parse_obis("0.0.96.11.1.7") == (0, 0, 96, 11, 1, 7)
    assert unit_name(30) == "Wh" and unit_name(None) == ""
    with pytest.raises(ValueError):
        parse_obis("1.0.1.8")


# --- connection failures ----------------------------------------------------------------------
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _meter(port, **kw):
    return {
        "host": "127.0.0.1",
        "port": port,
        "framing": "wrapper",
        "auth": "none",
        "client_address": 16,
        "timeout_s": 1,
        **kw,
    }


def test_closed_port_is_unreachable_quickly():
    start = time.monotonic()
    with pytest.raises(MeterUnreachable):
        with dlms.MeterConnection.from_job_meter(_meter(_free_port())):
            pass
    assert time.monotonic() - start < 1


class SilentServer:
    """Accepts connections and answers nothing, or garbage, or closes."""

    def __init__(self, reply: bytes | None = None, close: bool = False):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.reply, self.close_after = reply, close
        self.conns = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            try:
                conn.recv(4096)
                if self.reply is not None:
                    conn.sendall(self.reply)
                if self.close_after:
                    conn.close()
            except OSError:
                pass

    def stop(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def server_factory():
    servers = []

    def make(**kw):
        s = SilentServer(**kw)
        servers.append(s)
        return s

    try:
        yield make
    finally:
        for s in servers:
            s.stop()


@pytest.mark.parametrize("framing", ["wrapper", "hdlc"])
def test_silent_meter_is_unreachable_within_its_timeout(server_factory, framing):
    server = server_factory()
    start = time.monotonic()
    with pytest.raises(MeterUnreachable):
        with dlms.MeterConnection.from_job_meter(_meter(server.port, framing=framing)):
            pass
    assert time.monotonic() - start < 2.5


def test_job_deadline_bounds_the_whole_exchange(server_factory):
    server = server_factory()
    start = time.monotonic()
    with pytest.raises(MeterUnreachable):
        with dlms.MeterConnection.from_job_meter(_meter(server.port, timeout_s=10), deadline_s=0.5):
            pass
    assert time.monotonic() - start < 1.5


@pytest.mark.parametrize(
    "reply, close",
    [
        (b"\x00\x01\x00\x01\x00\x10\x00\x05\x61\x03\x00", True),  # truncated AARE
        (os.urandom(300), True),
        (b"", True),
    ],
)
def test_garbage_or_hangup_fails_fast_without_leaking(server_factory, reply, close):
    server = server_factory(reply=reply, close=close)
    conn = dlms.MeterConnection.from_job_meter(_meter(server.port))
    start = time.monotonic()
    with pytest.raises(JobError):
        conn.open()
    assert time.monotonic() - start < 2.5
    assert conn._io.tcp_socket is None


@pytest.mark.parametrize(
    "meter, message",
    [
        ({"connection_type": "tcp", "host": None, "port": None}, "host"),
        ({"connection_type": "serial"}, "device"),
        ({"host": "h", "port": 1, "auth": "lls"}, "password"),
        ({"host": "h", "port": 1, "auth": "hls_gmac"}, "key"),
        ({"host": "h", "port": 1, "framing": "x"}, "framing"),
    ],
)
def test_bad_meter_configuration_is_not_retryable(meter, message):
    with pytest.raises(JobError) as err:
        with dlms.MeterConnection.from_job_meter(meter):
            pass
    assert not err.value.retryable
    assert message in str(err.value)


def test_invocation_counter_limit_is_read_from_its_decimal_string():
    conn = dlms.MeterConnection({"host": "h", "port": 1}, invocation_counter_limit="4294967295")
    assert conn.invocation_counter_limit == 2**32 - 1
    assert dlms.MeterConnection({"host": "h", "port": 1}).invocation_counter_limit is None
    with pytest.raises(JobError) as err:
        dlms.MeterConnection({"host": "h", "port": 1}, invocation_counter_limit="12x")
    assert not err.value.retryable


# --- meter-bridge read ---------------------------------------------------------------------------
def test_cli_read_parses_objects_and_targets():
    from meter_bridge import cli_read

    assert cli_read.parse_object("1.0.1.8.0.255") == ("1.0.1.8.0.255", 3, 2)
    assert cli_read.parse_object("0.0.1.0.0.255:8:2") == ("0.0.1.0.0.255", 8, 2)
    args = cli_read.build_parser().parse_args(
        ["h:4100", "1.0.1.8.0.255", "--hdlc", "--auth", "lls", "--password", "x"]
    )
    m = cli_read.meter_from_args(args)
    assert (m["host"], m["port"], m["framing"], m["client_address"]) == ("h", 4100, "hdlc", 1)


def test_cli_read_unreachable_meter_exits_3(capsys):
    from meter_bridge import cli_read

    assert cli_read.main_read([f"127.0.0.1:{_free_port()}", "1.0.1.8.0.255", "--timeout", "1"]) == 3
    assert "error:" in capsys.readouterr().err


def test_the_bridge_loads_the_openssl_backend_before_its_first_job():
    # else the first HLS-GMAC job after a start (a purchase's credit, say) loads it
    code = (
        "import sys, meter_bridge.service as s; s.load_executor(); "
        "print('cryptography.hazmat.backends.openssl.backend' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
