"""dlms-cosem==25.1.0 work-arounds: each bug has a canary (fails the day upstream fixes it,
then drop the work-around) and a test that the work-around holds. No sockets to meters."""

from __future__ import annotations

import socket
import subprocess
import sys
import types

import pytest
from dlms_cosem import a_xdr, dlms_data, exceptions, security
from dlms_cosem.client import DlmsClient
from dlms_cosem.connection import DlmsConnection, XDlmsApduFactory
from dlms_cosem.cosem.selective_access import EntryDescriptor
from dlms_cosem.hdlc import address, frames, state
from dlms_cosem.hdlc.connection import HdlcConnection
from dlms_cosem.io import BlockingTcpIO, HdlcTransport
from dlms_cosem.protocol import xdlms
from dlms_cosem.protocol.xdlms.conformance import Conformance
from dlms_cosem.security import HighLevelSecurityGmacAuthentication, NoSecurityAuthentication
from dlms_cosem.utils import parse_as_dlms_data

from meter_bridge import codec
from meter_bridge import dlms as bridge_dlms  # noqa: F401 - applies the strict decoders
from meter_bridge import dlms_compat as compat

pytestmark = pytest.mark.timeout(20)

SERVER = address.HdlcAddress(logical_address=1, physical_address=17, address_type="server")
CLIENT = address.HdlcAddress(logical_address=16, physical_address=None, address_type="client")
KEY = bytes(range(16))
AUTH_KEY = bytes(range(0xD0, 0xE0))
METER_TITLE = b"MMM\x00\x00\x01\x02\x03"


class WouldBlock(Exception):
    """A fake line was asked for bytes the meter never sent: a real read would hang."""


class FakeIO:
    def __init__(self, data: bytes = b""):
        self.data = bytearray(data)
        self.sent = bytearray()
        self.connected = False

    def connect(self):
        self.connected = True

    def disconnect(self):
        self.connected = False

    def send(self, data):
        self.sent += data

    def recv(self, amount=1):
        if len(self.data) < amount:
            raise WouldBlock
        out, self.data = bytes(self.data[:amount]), self.data[amount:]
        return out

    def recv_until(self, end):
        idx = self.data.find(end)
        if idx < 0:
            raise WouldBlock
        return self.recv(idx + len(end))


def response_frame(payload: bytes) -> bytes:
    return frames.InformationFrame(
        destination_address=CLIENT,
        source_address=SERVER,
        payload=b"\xe6\xe7\x00" + payload,
        send_sequence_number=0,
        receive_sequence_number=0,
    ).to_bytes()


def frame_with_fcs_ending_in_flag() -> bytes:
    for i in range(65536):
        frame = response_frame(b"\xc4\x01\xc1\x00\x12" + i.to_bytes(2, "big"))
        if frame[-2] == 0x7E and 0x7E not in frame[1:-2]:
            return frame
    raise AssertionError("no such frame")


def awaiting(conn):
    conn.state.current_state = state.AWAITING_RESPONSE
    return conn


# --- HDLC: 0x7E inside a frame ---
def test_canary_upstream_hdlc_takes_0x7e_in_information_for_frame_end():
    frame = response_frame(b"\xc4\x01\xc1\x00\x09\x02\x7e\x7e")
    conn = awaiting(HdlcConnection(SERVER, CLIENT))
    conn.receive_data(frame)
    assert conn.next_event() is state.NEED_DATA  # although the whole frame is buffered


def test_hdlc_frame_with_0x7e_in_information_is_parsed_whole():
    frame = response_frame(b"\xc4\x01\xc1\x00\x09\x02\x7e\x7e")
    conn = awaiting(compat.HdlcConnectionCompat(SERVER, CLIENT))
    conn.receive_data(frame)
    event = conn.next_event()
    assert isinstance(event, frames.InformationFrame)
    assert event.payload.endswith(b"\x09\x02\x7e\x7e")


def test_canary_upstream_hdlc_transport_hangs_when_fcs_ends_in_0x7e():
    transport = HdlcTransport(
        1, 16, io=FakeIO(frame_with_fcs_ending_in_flag()), server_physical_address=17
    )
    awaiting(transport.hdlc_connection)
    with pytest.raises(WouldBlock):
        transport.next_event()


def test_hdlc_transport_reads_frame_whose_fcs_ends_in_0x7e():
    frame = frame_with_fcs_ending_in_flag()
    transport = compat.HdlcTransportCompat(16, 1, io=FakeIO(frame), server_physical_address=17)
    awaiting(transport.hdlc_connection)
    assert isinstance(transport.next_event(), frames.InformationFrame)


def test_split_hdlc_frame_skips_garbage_and_bad_fcs():
    good = response_frame(b"\xc4\x01\xc1\x00\x11\x05")
    bad = bytearray(good)
    bad[-4] ^= 0xFF  # corrupt the information field: FCS no longer matches
    buffer = b"\x00garbage\x7e\x7e" + bytes(bad) + good
    frame, consumed = compat.split_hdlc_frame(buffer)
    assert frame == good
    assert consumed == len(buffer) - 1  # the closing flag may open the next frame


def test_split_hdlc_frame_waits_for_a_partial_frame():
    good = response_frame(b"\xc4\x01\xc1\x00\x11\x05")
    assert compat.split_hdlc_frame(good[:-3]) == (None, 0)
    assert compat.split_hdlc_frame(b"noise") == (None, 5)


def test_hdlc_transport_gives_up_on_endless_garbage():
    transport = compat.HdlcTransportCompat(
        16, 1, io=FakeIO(b"\x00" * 10_000), server_physical_address=17
    )
    awaiting(transport.hdlc_connection)
    with pytest.raises(compat.FramingError):
        transport.next_event()


# --- A-XDR: truncated data loops for ever ---
class Looping(Exception):
    pass


def test_canary_upstream_axdr_loops_on_truncated_data():
    calls = {"n": 0}

    def counting_get_bytes(self, length):
        calls["n"] += 1
        if calls["n"] > 10_000:
            raise Looping
        return compat.UPSTREAM_AXDR_GET_BYTES(self, length)

    decoder = a_xdr.AXdrDecoder(
        encoding_conf=a_xdr.EncodingConf(attributes=[a_xdr.Sequence(attribute_name="data")])
    )
    decoder.get_bytes = types.MethodType(counting_get_bytes, decoder)
    with pytest.raises(Looping):
        decoder.decode(b"\x01\x05\x06\x00")


@pytest.mark.parametrize(
    "garbage", [b"\x01\x05\x06\x00", b"\x02\x82\xff\xff", b"\x09\x40ab", b"\x06\x00"]
)
def test_truncated_axdr_raises_instead_of_looping(garbage):
    with pytest.raises(compat.TruncatedData):
        parse_as_dlms_data(garbage)


def test_strict_decoder_still_decodes_valid_data():
    assert parse_as_dlms_data(b"\x02\x02\x06\x00\x00\x00\x07\x09\x02ab") == [7, b"ab"]


# --- bit-string and UTF-8 ---
def test_canary_upstream_cannot_decode_bit_string_or_utf8():
    with pytest.raises(NotImplementedError):
        dlms_data.BitStringData.from_bytes(b"\x80")
    with pytest.raises(NotImplementedError):
        dlms_data.UTF8StringData.from_bytes("é".encode())


def test_bridge_decodes_bit_string_and_utf8():
    assert codec.decode_data(b"\x04\x0a\xa5\xc0") == "1010010111"
    assert codec.decode_data(b"\x0c\x02" + "é".encode()) == "é"


# --- selective access by entry ---
def test_canary_upstream_entry_descriptor_cannot_encode():
    with pytest.raises(NotImplementedError):
        EntryDescriptor(from_entry=1, to_entry=10).to_bytes()


def test_entry_descriptor_encodes_per_blue_book():
    raw = compat.EntryDescriptorCompat(from_entry=3, to_entry=10).to_bytes()
    assert raw == bytes.fromhex("0202040600000003060000000a120001120000")
    assert codec.decode_data(raw[1:]) == [3, 10, 1, 0]


# --- ciphered responses other than general-glo ---
def _glo_get_response(plain: bytes, ic: int) -> bytes:
    sc = security.SecurityControlField(0, authenticated=True, encrypted=True)
    ct = security.encrypt(sc, METER_TITLE, ic, KEY, plain, AUTH_KEY)
    body = sc.to_bytes() + ic.to_bytes(4, "big") + ct
    return bytes([204]) + dlms_data.encode_variable_integer(len(body)) + body


def test_canary_upstream_does_not_map_glo_get_response():
    with pytest.raises(KeyError):
        XDlmsApduFactory.apdu_from_bytes(_glo_get_response(b"\xc4\x01\xc1\x00\x11\x05", 9))


def test_glo_get_response_is_deciphered():
    conn = compat.DlmsConnectionCompat.with_pre_established_association(
        conformance=Conformance(get=True),
        global_encryption_key=KEY,
        global_authentication_key=AUTH_KEY,
        client_system_title=b"SPMBRIDG",
        meter_system_title=METER_TITLE,
        client_invocation_counter=1,
        meter_invocation_counter=0,
    )
    from dlms_cosem import cosem, enumerations

    conn.send(
        xdlms.GetRequestNormal(
            cosem.CosemAttribute(enumerations.CosemInterface.DATA, cosem.Obis(0, 0, 42, 0, 0), 2)
        )
    )
    conn.receive_data(_glo_get_response(b"\xc4\x01\xc1\x00\x11\x05", 9))
    event = conn.next_event()
    assert isinstance(event, xdlms.GetResponseNormal)
    assert event.data == b"\x11\x05"


# --- HLS-GMAC reply reuses the invocation counter ---
def _fake_connection(ic):
    return types.SimpleNamespace(
        meter_to_client_challenge=b"x" * 16,
        global_encryption_key=KEY,
        global_authentication_key=AUTH_KEY,
        security_suite=0,
        client_system_title=b"SPMBRIDG",
        client_invocation_counter=ic,
    )


def test_canary_upstream_hls_gmac_reply_does_not_advance_invocation_counter():
    conn = _fake_connection(5)
    HighLevelSecurityGmacAuthentication().hls_generate_reply_data(conn)
    assert conn.client_invocation_counter == 5


def test_hls_gmac_reply_consumes_its_invocation_counter():
    conn = _fake_connection(5)
    data = compat.HlsGmacCompat().hls_generate_reply_data(conn)
    assert data[1:5] == (5).to_bytes(4, "big")
    assert conn.client_invocation_counter == 6


# --- SET does not raise ---
class CannedTransport:
    def __init__(self, answer: bytes = b"", fail: Exception | None = None):
        self.answer, self.fail = answer, fail
        self.io = FakeIO()

    def connect(self):
        self.io.connect()

    def disconnect(self):
        self.io.disconnect()

    def send_request(self, data):
        if self.fail:
            raise self.fail
        return self.answer


def _client(transport):
    return DlmsClient(
        transport=transport,
        authentication=NoSecurityAuthentication(),
        dlms_connection=DlmsConnection.with_pre_established_association(
            conformance=Conformance(get=True, set=True)
        ),
    )


def test_canary_upstream_set_does_not_raise_when_refused():
    from dlms_cosem import cosem, enumerations

    refused = xdlms.SetResponseNormal(result=enumerations.DataAccessResult.READ_WRITE_DENIED)
    client = _client(CannedTransport(refused.to_bytes()))
    response = client.set(
        cosem.CosemAttribute(enumerations.CosemInterface.DATA, cosem.Obis(0, 0, 42, 0, 0), 2),
        b"\x11\x01",
    )
    assert compat.check_set_result(response) == 3  # returned, not raised


# --- session() leaks its socket ---
def test_canary_upstream_session_leaks_line_on_error():
    transport = CannedTransport(fail=exceptions.CommunicationError("boom"))
    client = DlmsClient(transport=transport, authentication=NoSecurityAuthentication())
    with pytest.raises(exceptions.CommunicationError), client.session():
        pass
    assert transport.io.connected


def test_close_quietly_closes_line_after_error():
    transport = CannedTransport(fail=exceptions.CommunicationError("boom"))
    client = DlmsClient(transport=transport, authentication=NoSecurityAuthentication())
    client.connect()
    compat.close_quietly(client)
    assert not transport.io.connected


# --- TCP: EOF loop ---
class CountingSocket:
    def __init__(self, sock):
        self.sock, self.calls = sock, 0

    def recv(self, n):
        self.calls += 1
        if self.calls > 1000:
            raise Looping
        return self.sock.recv(n)

    def settimeout(self, t):
        self.sock.settimeout(t)


def test_canary_upstream_tcp_recv_loops_when_meter_closes():
    a, b = socket.socketpair()
    try:
        b.close()
        io = BlockingTcpIO(host="x", port=1)
        io.tcp_socket = CountingSocket(a)
        with pytest.raises(Looping):
            io.recv(8)
    finally:
        a.close()


def test_tcp_recv_raises_when_meter_closes():
    a, b = socket.socketpair()
    try:
        b.close()
        io = compat.TcpIOCompat(host="x", port=1, timeout=2)
        io.tcp_socket = CountingSocket(a)
        with pytest.raises(exceptions.CommunicationError):
            io.recv(8)
    finally:
        a.close()


def test_tcp_recv_is_bounded_by_deadline():
    import time

    a, b = socket.socketpair()
    try:
        io = compat.TcpIOCompat(host="x", port=1, timeout=10)
        io.tcp_socket = a
        io.deadline = time.monotonic() + 0.3
        start = time.monotonic()
        with pytest.raises(compat.ReadTimeout):
            io.recv(8)
        assert time.monotonic() - start < 2
    finally:
        a.close()
        b.close()


# --- noisy structlog ---
_LOG_SNIPPET = """
import sys
from dlms_cosem.connection import DlmsConnection
from dlms_cosem.security import NoSecurityAuthentication
if sys.argv[1] == "quiet":
    from meter_bridge.dlms_compat import quiet_logging
    quiet_logging()
c = DlmsConnection(authentication=NoSecurityAuthentication(), client_system_title=None)
c.send(c.get_aarq())
"""


def _run_snippet(mode):
    return subprocess.run(
        [sys.executable, "-c", _LOG_SNIPPET, mode], capture_output=True, text=True, timeout=30
    )


def test_canary_upstream_logs_every_request_to_stdout():
    assert "Sending DLMS Request" in _run_snippet("default").stdout


def test_quiet_logging_silences_dlms_cosem():
    out = _run_snippet("quiet")
    assert "Sending DLMS Request" not in out.stdout + out.stderr


def _glo(ciphered_len):
    return xdlms.GeneralGlobalCipher(
        system_title=b"SPMBRIDG",
        security_control=security.SecurityControlField(
            security_suite=0, authenticated=True, encrypted=True
        ),
        invocation_counter=7,
        ciphered_text=bytes(ciphered_len),
    )


def test_canary_upstream_glo_ciphering_length_is_one_byte():
    # 150 bytes of content: upstream writes 0x96, a long form that announces 22 more length
    # bytes; from 256 it cannot write the APDU at all
    assert _glo(145).to_bytes()[10] == 150
    with pytest.raises(ValueError):
        _glo(300).to_bytes()


@pytest.mark.parametrize("ciphered_len", [10, 122, 123, 145, 300, 2000])
def test_long_glo_ciphering_has_an_axdr_length(ciphered_len):
    apdu = compat.long_glo_ciphering(_glo(ciphered_len))
    raw = apdu.to_bytes()
    content = 5 + ciphered_len
    assert raw[:10] == b"\xdb\x08SPMBRIDG"
    length, rest = dlms_data.decode_variable_integer(raw[10:])
    assert length == content and len(rest) == content
    if content < 128:
        assert raw == _glo(ciphered_len).to_bytes(), "same bytes as upstream below 128"


# --- 15. a new AES-GCM context per APDU -------------------------------------------------------
def _security_control(encrypted=True):
    return security.SecurityControlField(security_suite=0, authenticated=True, encrypted=encrypted)


def test_canary_upstream_builds_a_cipher_context_per_apdu(monkeypatch):
    built = []
    upstream_cipher = security.Cipher

    def counting_cipher(*args, **kwargs):
        built.append(args)
        return upstream_cipher(*args, **kwargs)

    monkeypatch.setattr(security, "Cipher", counting_cipher)
    for counter in (1, 2):
        security.encrypt(_security_control(), METER_TITLE, counter, KEY, b"plain", AUTH_KEY)
    assert len(built) == 2  # fixed upstream (one context per key): drop ConnectionGcm


@pytest.mark.parametrize("plain", [b"", b"x", bytes(range(256)) * 3])
def test_connection_gcm_ciphers_as_upstream(plain):
    gcm = compat.ConnectionGcm(0, KEY)
    sc = _security_control()
    ciphered = gcm.encrypt(sc, METER_TITLE, 7, plain, AUTH_KEY)
    assert ciphered == security.encrypt(sc, METER_TITLE, 7, KEY, plain, AUTH_KEY)
    assert gcm.decrypt(sc, METER_TITLE, 7, ciphered, AUTH_KEY) == plain


def test_connection_gcm_refuses_a_tampered_apdu():
    gcm = compat.ConnectionGcm(0, KEY)
    sc = _security_control()
    ciphered = bytearray(gcm.encrypt(sc, METER_TITLE, 7, b"credit 50 kWh", AUTH_KEY))
    for where in (0, -1):  # the cipher text, the tag
        tampered = bytearray(ciphered)
        tampered[where] ^= 1
        with pytest.raises(exceptions.DecryptionError):
            gcm.decrypt(sc, METER_TITLE, 7, bytes(tampered), AUTH_KEY)
    with pytest.raises(exceptions.DecryptionError):  # another counter: another IV
        gcm.decrypt(sc, METER_TITLE, 8, bytes(ciphered), AUTH_KEY)
    with pytest.raises(exceptions.DecryptionError):
        gcm.decrypt(sc, METER_TITLE, 7, b"short", AUTH_KEY)


def test_connection_gcm_gmac_as_upstream():
    gcm = compat.ConnectionGcm(0, KEY)
    sc = _security_control(encrypted=False)
    challenge = b"challenge-from-the-meter"
    assert gcm.gmac(sc, METER_TITLE, 9, AUTH_KEY, challenge) == security.gmac(
        sc, METER_TITLE, 9, KEY, AUTH_KEY, challenge
    )


def test_connection_gcm_refuses_a_key_of_the_wrong_length():
    with pytest.raises(ValueError):
        compat.ConnectionGcm(0, KEY[:15])


def test_connection_ciphers_with_one_gcm_per_key():
    conn = compat.DlmsConnectionCompat(
        client_system_title=b"SPMBRIDG",
        authentication=HighLevelSecurityGmacAuthentication(challenge_length=32),
        global_encryption_key=KEY,
        global_authentication_key=AUTH_KEY,
        client_invocation_counter=5,
        meter_system_title=b"SPMBRIDG",
    )
    first, counter = conn.encrypt(b"get")
    gcm = conn._compat_gcm
    second, _ = conn.encrypt(b"get")
    assert counter == 5 and conn.client_invocation_counter == 7
    assert conn._compat_gcm is gcm and first != second  # one context, a new IV
    assert first == security.encrypt(conn.security_control, b"SPMBRIDG", 5, KEY, b"get", AUTH_KEY)
    conn.meter_invocation_counter = 5
    assert conn.decrypt(first) == b"get"
