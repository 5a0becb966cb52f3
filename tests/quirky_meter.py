"""A small DLMS/COSEM server with another vendor's habits, for the bridge's interop tests.

Not the simulator (gurux-based) and not the bridge's code: a hand-written server over the
IEC 62056-47 wrapper that answers the way meters in the field do and the way the bridge
once refused. Each quirk is a field of `Quirks`:

- trailing: OBIS -> stray bytes appended after the value of a GET answer;
- garble: OBIS codes whose answer (the first `garble_times` times) is a malformed APDU
  (a GET-response last-block-with-error with two error bytes: dlms-cosem asserts);
- counter_start: the meter's first invocation counter (HLS-GMAC), 0 by default;
- client_challenge_length: the only length of client challenge (CtoS) the meter takes,
  None for any; server_challenge_length: the length of its own challenge (StoC);
- refuse_gbt: an AARQ proposing general-block-transfer is rejected (AARE rejected-permanent);
- general_protection: granted or not; without it the meter takes only service-specific
  glo-get/set/action-requests and closes the line on a general-glo-ciphering APDU.

Objects: `objects` maps (class id, OBIS, attribute) -> encoded Data. Each connection is one
association; the server counts them (`associations`) and what it refused (`refusals`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
from dataclasses import dataclass, field

from dlms_cosem import dlms_data, enumerations, security
from dlms_cosem.protocol import acse, xdlms
from dlms_cosem.protocol.xdlms.conformance import Conformance

SYSTEM_TITLE = b"QRK\x00\x00\x00\x00\x01"
ENC_KEY = bytes(range(16))
AUTH_KEY = bytes(range(16, 32))
SC = security.SecurityControlField(security_suite=0, authenticated=True, encrypted=True)
# xDLMS request tag -> (response tag, glo-request tag, glo-response tag)
GLO_REQUEST = {200: 192, 201: 193, 203: 195}
GLO_RESPONSE = {196: 204, 197: 205, 199: 207}


@dataclass
class Quirks:
    auth: str = "none"  # "none" or "hls_gmac"
    trailing: dict = field(default_factory=dict)
    garble: set = field(default_factory=set)
    garble_times: int = 1
    counter_start: int = 0
    client_challenge_length: int | None = None
    server_challenge_length: int = 16
    refuse_gbt: bool = True
    general_protection: bool = False


def _clock_bytes() -> bytes:
    # 2026-03-29 02:30:00.00, deviation -60 (local = UTC+1), status 0x80 (daylight saving)
    return b"\x07\xea\x03\x1d\x07\x02\x1e\x00\x00\xff\xc4\x80"


DEFAULT_OBJECTS = {
    (8, "0.0.1.0.0.255", 2): b"\x09\x0c" + _clock_bytes(),
    (3, "1.0.1.8.0.255", 2): b"\x06\x00\x00\x30\x39",  # 12345 * 10^1 Wh
    (3, "1.0.1.8.0.255", 3): b"\x02\x02\x0f\x01\x16\x1e",
    (3, "1.0.32.7.0.255", 2): b"\x12\x08\xfc",
    (3, "1.0.32.7.0.255", 3): b"\x02\x02\x0f\xff\x16\x23",
    (112, "0.0.19.10.0.255", 2): b"\x05\x00\x00\x13\x88",  # 5000 Wh of credit
    (70, "0.0.96.3.10.255", 2): b"\x03\x01",
    (70, "0.0.96.3.10.255", 3): b"\x16\x01",
    (1, "0.0.96.1.0.255", 2): b"\x09\x08QRK00001",
    # daylight savings begin: last Sunday of March, 02:00, as a pattern
    (8, "0.0.1.0.0.255", 5): b"\x09\x0c\xff\xff\x03\xfe\x07\x02\x00\x00\x00\x80\x00\xff",
    (8, "0.0.1.0.0.255", 9): b"\x16\x02",  # clock base: mains 50 Hz
    (111, "0.0.19.0.0.255", 2): b"\x02\x02\x16\x02\x16\x02",  # prepayment, active
}


def _obis(instance) -> str:
    return ".".join(
        str(x) for x in (instance.a, instance.b, instance.c, instance.d, instance.e, instance.f)
    )


class QuirkyMeter:
    """Use as a context manager: `with QuirkyMeter(Quirks(...)) as meter: meter.port`."""

    def __init__(self, quirks: Quirks | None = None, objects: dict | None = None):
        self.quirks = quirks or Quirks()
        self.objects = dict(DEFAULT_OBJECTS if objects is None else objects)
        self.associations = 0
        self.refusals: list[str] = []
        self.requests: list[str] = []  # "glo-get", "general-glo", "get"... as received
        self._garbled: dict[str, int] = {}
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        with contextlib.suppress(OSError):
            self._sock.close()
        self._thread.join(5)

    def meter(self, **extra) -> dict:
        """The job's meter dict (docs/job-protocol.md) for this server."""
        m = {"host": "127.0.0.1", "port": self.port, "timeout_s": 3, "auth": self.quirks.auth}
        if self.quirks.auth == "hls_gmac":
            m.update(client_address=1, encryption_key=ENC_KEY.hex(), auth_key=AUTH_KEY.hex())
        m.update(extra)
        return m

    # -- line ----------------------------------------------------------------------------
    def _serve(self):
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    @staticmethod
    def _recv(conn, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def _session(self, conn):
        state = {"associated": False, "hls_pending": False, "counter": self.quirks.counter_start}
        with conn:
            conn.settimeout(10)
            try:
                while True:
                    head = self._recv(conn, 8)
                    _v, src, dst, length = struct.unpack(">HHHH", head)
                    apdu = self._recv(conn, length)
                    answer = self._answer(apdu, state)
                    if answer is None:
                        return  # close the line, as such meters do
                    conn.sendall(struct.pack(">HHHH", 1, dst, src, len(answer)) + answer)
            except (ConnectionError, OSError, TimeoutError):
                return

    # -- APDUs ---------------------------------------------------------------------------
    def _answer(self, apdu: bytes, state: dict) -> bytes | None:
        tag = apdu[0]
        if tag == 0x60:
            return self._aare(apdu, state)
        if tag == 0x62:  # RLRQ
            return acse.ReleaseResponse(reason=enumerations.ReleaseResponseReason.NORMAL).to_bytes()
        if not state["associated"]:
            return None
        hls = self.quirks.auth == "hls_gmac"
        if hls:
            if tag == 219:
                self.requests.append("general-glo")
                if not self.quirks.general_protection:
                    self.refusals.append("general-glo-ciphering without general-protection")
                    return None
                plain = self._decrypt_general(apdu, state)
            elif tag in GLO_REQUEST:
                self.requests.append("glo")
                plain = self._decrypt_glo(apdu, state)
            else:
                self.refusals.append(f"plain APDU {tag} in a ciphered association")
                return None
            if plain is None:
                return None
            answer = self._xdlms(plain, state)
            return self._cipher(answer, state)
        self.requests.append("plain")
        return self._xdlms(apdu, state)

    def _aare(self, apdu: bytes, state: dict) -> bytes:
        q = self.quirks
        aarq = acse.ApplicationAssociationRequest.from_bytes(apdu)
        hls = q.auth == "hls_gmac"
        info = aarq.user_information.content if aarq.user_information else None
        if isinstance(info, xdlms.GlobalCipherInitiateRequest):
            state["client_title"] = aarq.system_title
            state["client_counter"] = info.invocation_counter
            plain = security.decrypt(
                info.security_control,
                system_title=aarq.system_title,
                invocation_counter=info.invocation_counter,
                key=ENC_KEY,
                auth_key=AUTH_KEY,
                cipher_text=info.ciphered_text,
            )
        else:
            plain = info.to_bytes()
        # not InitiateRequest.from_bytes: upstream reads the conformance from 3 of its 4
        # bytes and loses the first (general-protection, general-block-transfer...)
        at = plain.find(b"\x5f\x1f\x04")
        proposed = Conformance.from_bytes(plain[at + 3 : at + 7])
        reason = None
        if q.refuse_gbt and proposed.general_block_transfer:
            reason = "general-block-transfer proposed"
        if hls and aarq.authentication != enumerations.AuthenticationMechanism.HLS_GMAC:
            reason = "not HLS-GMAC"
        challenge = aarq.authentication_value or b""
        if hls and q.client_challenge_length and len(challenge) != q.client_challenge_length:
            reason = f"client challenge of {len(challenge)} bytes"
        if reason:
            self.refusals.append(reason)
            return acse.ApplicationAssociationResponse(
                result=enumerations.AssociationResult.REJECTED_PERMANENT,
                result_source_diagnostics=enumerations.AcseServiceUserDiagnostics.NO_REASON_GIVEN,
            ).to_bytes()
        negotiated = Conformance(
            general_protection=hls and q.general_protection and proposed.general_protection,
            get=True,
            set=True,
            action=True,
            selective_access=True,
            block_transfer_with_get_or_read=True,
        )
        response = xdlms.InitiateResponse(
            negotiated_conformance=negotiated, server_max_receive_pdu_size=1024
        )
        self.associations += 1
        if not hls:
            state["associated"] = True
            return acse.ApplicationAssociationResponse(
                result=enumerations.AssociationResult.ACCEPTED,
                result_source_diagnostics=enumerations.AcseServiceUserDiagnostics.NULL,
                user_information=acse.UserInformation(content=response),
            ).to_bytes()
        state["ctos"] = challenge
        state["stoc"] = os.urandom(q.server_challenge_length)
        counter = self._next_counter(state)
        ciphered = security.encrypt(
            SC, SYSTEM_TITLE, counter, ENC_KEY, response.to_bytes(), AUTH_KEY
        )
        state["associated"] = True
        state["hls_pending"] = True
        return acse.ApplicationAssociationResponse(
            result=enumerations.AssociationResult.ACCEPTED,
            result_source_diagnostics=enumerations.AcseServiceUserDiagnostics.AUTHENTICATION_REQUIRED,
            ciphered=True,
            authentication=enumerations.AuthenticationMechanism.HLS_GMAC,
            system_title=SYSTEM_TITLE,
            authentication_value=state["stoc"],
            user_information=acse.UserInformation(
                content=xdlms.GlobalCipherInitiateResponse(
                    security_control=SC, invocation_counter=counter, ciphered_text=ciphered
                )
            ),
        ).to_bytes()

    def _next_counter(self, state) -> int:
        counter = state["counter"]
        state["counter"] += 1
        return counter

    def _decrypt(self, body: bytes, state: dict) -> bytes | None:
        sc = security.SecurityControlField.from_bytes(body[:1])
        counter = int.from_bytes(body[1:5], "big")
        if counter < state.get("client_counter", -1):
            self.refusals.append("replayed client counter")
            return None
        state["client_counter"] = counter
        try:
            return security.decrypt(sc, state["client_title"], counter, ENC_KEY, body[5:], AUTH_KEY)
        except Exception:  # noqa: BLE001 - a bad tag: drop the line
            self.refusals.append("bad GCM tag")
            return None

    def _decrypt_general(self, apdu: bytes, state: dict) -> bytes | None:
        title_len, rest = dlms_data.decode_variable_integer(apdu[1:])
        rest = rest[title_len:]
        length, rest = dlms_data.decode_variable_integer(rest)
        return self._decrypt(bytes(rest[:length]), state)

    def _decrypt_glo(self, apdu: bytes, state: dict) -> bytes | None:
        length, rest = dlms_data.decode_variable_integer(apdu[1:])
        return self._decrypt(bytes(rest[:length]), state)

    def _cipher(self, plain: bytes, state: dict) -> bytes:
        counter = self._next_counter(state)
        ciphered = security.encrypt(SC, SYSTEM_TITLE, counter, ENC_KEY, plain, AUTH_KEY)
        content = SC.to_bytes() + counter.to_bytes(4, "big") + ciphered
        if self.quirks.general_protection:
            return (
                b"\xdb"
                + dlms_data.encode_variable_integer(len(SYSTEM_TITLE))
                + SYSTEM_TITLE
                + dlms_data.encode_variable_integer(len(content))
                + content
            )
        return (
            bytes([GLO_RESPONSE[plain[0]]])
            + dlms_data.encode_variable_integer(len(content))
            + content
        )

    def _xdlms(self, apdu: bytes, state: dict) -> bytes:
        tag = apdu[0]
        if tag == 192:  # GET
            req = xdlms.GetRequestNormal.from_bytes(apdu)
            attr = req.cosem_attribute
            obis = _obis(attr.instance)
            key = (int(attr.interface), obis, int(attr.attribute))
            invoke = req.invoke_id_and_priority.to_bytes()
            if obis in self.quirks.garble:
                done = self._garbled.get(obis, 0)
                if done < self.quirks.garble_times:
                    self._garbled[obis] = done + 1
                    # last-block-with-error whose error is two bytes: not a valid APDU
                    return b"\xc4\x02" + invoke + b"\x01\x00\x00\x00\x01\x01\x04\x04"
            value = self.objects.get(key)
            if value is None:
                return b"\xc4\x01" + invoke + b"\x01\x04"  # object-undefined
            return b"\xc4\x01" + invoke + b"\x00" + value + self.quirks.trailing.get(obis, b"")
        if tag == 195:  # ACTION
            req = xdlms.ActionRequestNormal.from_bytes(apdu)
            invoke = req.invoke_id_and_priority.to_bytes()
            method = req.cosem_method
            if state.get("hls_pending") and _obis(method.instance) == "0.0.40.0.0.255":
                return self._hls_reply(req, invoke, state)
            return b"\xc7\x01" + invoke + b"\x0b\x00"  # object-unavailable
        return b"\xd8\x01\x02"  # exception-response: service not supported

    def _hls_reply(self, req, invoke: bytes, state: dict) -> bytes:
        raw = bytes(req.data)
        if raw[0] != 9:
            return b"\xc7\x01" + invoke + b"\x0b\x00"
        length, body = dlms_data.decode_variable_integer(raw[1:])
        body = bytes(body[:length])
        sc = security.SecurityControlField.from_bytes(body[:1])
        counter = int.from_bytes(body[1:5], "big")
        expected = security.gmac(
            sc, state["client_title"], counter, ENC_KEY, AUTH_KEY, state["stoc"]
        )
        if body[5:] != expected:
            self.refusals.append("client GMAC wrong")
            return b"\xc7\x01" + invoke + b"\x0b\x00"
        state["hls_pending"] = False
        auth_sc = security.SecurityControlField(
            security_suite=0, authenticated=True, encrypted=False
        )
        counter = self._next_counter(state)
        tag = security.gmac(auth_sc, SYSTEM_TITLE, counter, ENC_KEY, AUTH_KEY, state["ctos"])
        reply = auth_sc.to_bytes() + counter.to_bytes(4, "big") + tag
        return b"\xc7\x01" + invoke + b"\x00\x01\x00\x09" + bytes([len(reply)]) + reply
