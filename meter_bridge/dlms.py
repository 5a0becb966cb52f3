"""DLMS/COSEM connections over dlms-cosem.

Layering as in dlms-cosem: an I/O (TCP socket or serial port) under a transport (IEC
62056-47 wrapper or HDLC) under the DLMS client (association, GET/SET/ACTION). The COSEM
data codec is apart, pure and tested without sockets (``codec.py``). Every read is bounded in time
(the meter's timeout_s and the job's deadline) and in size.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
import time
from typing import Any

# cryptography loads its OpenSSL backend (and its x509 modules) on the first cipher: ~0.1 s
# of CPU in the first HLS-GMAC job after a start (py-spy: 8 % of a 1,000-meter bench read),
# a purchase's credit included. Loaded with the bridge instead.
from cryptography.hazmat.backends.openssl import backend as _openssl_backend  # noqa: F401
from dlms_cosem import cosem, enumerations, exceptions
from dlms_cosem.client import DlmsClient, HLSError
from dlms_cosem.connection import default_system_title
from dlms_cosem.cosem.capture_object import CaptureObject
from dlms_cosem.cosem.selective_access import RangeDescriptor
from dlms_cosem.exceptions import DecryptionError
from dlms_cosem.hdlc.exceptions import HdlcException
from dlms_cosem.io import TcpTransport
from dlms_cosem.protocol import xdlms
from dlms_cosem.security import LowLevelSecurityAuthentication, NoSecurityAuthentication

from . import dlms_compat as compat
from .codec import (
    DataError,
    data_tag,
    decode_data_prefix,
    encode_data,
    parse_datetime,
    scale,
)
from .errors import InvocationCountersUsedUp, JobError, MeterRefused, MeterUnreachable
from .obis import SCALED_CLASSES, obis_str, parse_obis, unit_name
from .object_map import ObjectMap

_log = logging.getLogger(__name__)

compat.apply_strict_decoders()

MAX_RESPONSE_BYTES = 4 * 1024 * 1024  # one GET (all its blocks together)
MAX_BLOCKS = 10_000
CLIENT_SYSTEM_TITLE = b"SPMBRIDG"
UTC = dt.timezone.utc
# A protocol error leaves dlms-cosem's state machine where it was (e.g. AWAITING_GET_RESPONSE):
# the next request is then refused. The connection opens a fresh association instead, at most
# this many times per MeterConnection (a meter answering only garbage ends the job).
MAX_FRESH_ASSOCIATIONS = 3
DEFAULT_CHALLENGE_LENGTH = 32
MAX_TRAILING_LOGGED = 32  # bytes of stray data shown in the warning


class ScalerCache:
    """(scaler, unit) per meter and object, shared by the connections of one process.

    A Register's scaler_unit (IC 3/4/5 attribute 3) is a static attribute (Blue Book 4.3.2):
    fixed for a meter object, so a bridge reading the same meter every day need not GET it
    at every read (two of a billing read's five GETs, on the bridge and on the meter). Only
    successful reads are kept; a meter is known by its serial and its address (a serial
    that moves to another line or address is read again). A cache, not state: a restarted
    bridge reads the scalers again. Bounded, least recently used out first."""

    def __init__(self, max_entries: int = 100_000):
        self.max_entries = max_entries
        self._entries: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key, value) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


SCALERS = ScalerCache()


def _key(hex_or_none, name: str) -> bytes | None:
    if not hex_or_none:
        return None
    try:
        key = bytes.fromhex(str(hex_or_none))
    except ValueError as e:
        raise JobError(f"meter {name} is not hex", retryable=False) from e
    return key


def _challenge_length(value) -> int:
    """The meter's ``hls_challenge_length``: bytes of the client's HLS challenge (CtoS),
    8..64 (Green Book 9.2.7.4); 32 when the job has none."""
    if value is None or value == "":
        return DEFAULT_CHALLENGE_LENGTH
    try:
        length = int(value)
    except (TypeError, ValueError) as e:
        raise JobError(f"hls_challenge_length {value!r} is not a number", retryable=False) from e
    if not 8 <= length <= 64:
        raise JobError(
            f"hls_challenge_length {length} is outside 8..64 bytes (Green Book)", retryable=False
        )
    return length


def _counter_limit(value) -> int | None:
    """The job's ``invocation_counter_limit`` (a decimal string: XML-RPC carries no integer
    above 2**31 - 1), or None when the job has none."""
    if value is None or value == "":
        return None
    try:
        return int(str(value))
    except ValueError as e:
        raise JobError(
            f"invocation_counter_limit {value!r} is not a number", retryable=False
        ) from e


class _CounterLimitedConnection(compat.DlmsConnectionCompat):
    """The DLMS connection that never ciphers an APDU with an invocation counter above the
    job's limit (docs/job-protocol.md, "Invocation counters"): Odoo refuses a report of a
    higher counter, so the meter would then know a counter Odoo does not."""

    invocation_counter_limit: int | None = None

    def encrypt(self, plain_text: bytes):
        limit = self.invocation_counter_limit
        if limit is not None and self.client_invocation_counter > limit:
            raise InvocationCountersUsedUp(self.client_invocation_counter - 1, limit)
        return super().encrypt(plain_text)


# ---------------------------------------------------------------------------------------
# Connection
# ---------------------------------------------------------------------------------------


class MeterConnection:
    """One association with one meter; use as a context manager.

    from_job_meter() takes job['meter'] (docs/job-protocol.md). Entering connects and
    associates; leaving releases and always closes the socket or serial port. Errors are
    meter_bridge.errors: MeterUnreachable (no answer, timeouts), MeterRefused (the meter
    said no), JobError (protocol garbage, bad configuration), InvocationCountersUsedUp
    (HLS-GMAC: the job's ``invocation_counter_limit`` reached; nothing above it is sent).
    """

    def __init__(
        self,
        meter: dict,
        *,
        deadline_s: float | None = None,
        debug: bool = False,
        invocation_counter_limit=None,
    ):
        self.meter = dict(meter or {})
        self.timeout_s = float(self.meter.get("timeout_s") or 10)
        budget = deadline_s if deadline_s is not None else self.timeout_s * 6
        self.deadline = time.monotonic() + max(0.1, float(budget))
        self.debug = debug
        self.client: DlmsClient | None = None
        self._io = None
        self._associated = False
        self._scalers: dict[tuple, tuple[int | None, int | None]] = {}
        self._captures: dict[str, list[tuple[int, str, int]]] = {}
        self.auth = (self.meter.get("auth") or "none").lower()
        self._start_ic = int(self.meter.get("invocation_counter") or 0) + 1
        self.invocation_counter_limit = _counter_limit(invocation_counter_limit)
        self.challenge_length = _challenge_length(self.meter.get("hls_challenge_length"))
        self.objects = ObjectMap.from_meter(self.meter)  # where this meter holds each function
        self._needs_fresh = False  # a protocol error: the next service re-associates first
        self.fresh_associations = 0
        self.warnings: list[str] = []  # what was tolerated (trailing bytes...), for the read tool

    @classmethod
    def from_job_meter(
        cls,
        meter: dict,
        *,
        deadline_s: float | None = None,
        debug=False,
        invocation_counter_limit=None,
    ):
        return cls(
            meter,
            deadline_s=deadline_s,
            debug=debug,
            invocation_counter_limit=invocation_counter_limit,
        )

    # -- life cycle ------------------------------------------------------------------
    def _build_client(self) -> DlmsClient:
        """The dlms-cosem client: I/O under a transport, under the association."""
        m = self.meter
        timeout = max(1, int(round(self.timeout_s)))
        io, framing = self._build_io(timeout)
        io.deadline = self.deadline
        self._io = io
        transport = self._build_transport(io, framing, timeout)
        authentication, enc_key, auth_key = self._build_authentication()
        client_title = _key(m.get("client_system_title"), "client_system_title")
        client_title = client_title or (CLIENT_SYSTEM_TITLE if enc_key else default_system_title())
        connection = _CounterLimitedConnection(
            client_system_title=client_title,
            authentication=authentication,
            global_encryption_key=enc_key,
            global_authentication_key=auth_key,
            client_invocation_counter=self._start_ic,
            meter_system_title=_key(m.get("system_title"), "system_title"),
            conformance=compat.bridge_conformance(bool(enc_key)),
        )
        connection.invocation_counter_limit = self.invocation_counter_limit
        return DlmsClient(
            transport=transport,
            authentication=authentication,
            encryption_key=enc_key,
            authentication_key=auth_key,
            client_system_title=client_title,
            client_initial_invocation_counter=self._start_ic,
            timeout=timeout,
            dlms_connection=connection,
        )

    def _build_io(self, timeout: int):
        """The socket or serial port, and the framing it implies."""
        m = self.meter
        conn_type = (m.get("connection_type") or "tcp").lower()
        framing = (m.get("framing") or "wrapper").lower()
        if conn_type == "serial":
            if not m.get("device"):
                raise JobError("serial meter without a device", retryable=False)
            io = compat.SerialIOCompat(
                port_name=m["device"], baud_rate=int(m.get("baudrate") or 9600), timeout=timeout
            )
            return io, "hdlc"
        if conn_type == "tcp":
            if not m.get("host") or not m.get("port"):
                raise JobError("TCP meter without host/port", retryable=False)
            return compat.TcpIOCompat(host=m["host"], port=int(m["port"]), timeout=timeout), framing
        raise JobError(f"unknown connection_type {conn_type!r}", retryable=False)

    def _build_transport(self, io, framing: str, timeout: int):
        """IEC 62056-47 wrapper or HDLC over ``io``."""
        m = self.meter
        client_address = int(m.get("client_address") or 16)
        logical = int(m.get("server_logical_address") or 1)
        if framing == "hdlc":
            physical = m.get("server_physical_address")
            return compat.HdlcTransportCompat(
                client_logical_address=client_address,
                server_logical_address=logical,
                server_physical_address=int(physical) if physical is not None else 17,
                io=io,
                timeout=timeout,
            )
        if framing == "wrapper":
            return TcpTransport(
                client_logical_address=client_address,
                server_logical_address=logical,
                io=io,
                timeout=timeout,
            )
        raise JobError(f"unknown framing {framing!r}", retryable=False)

    def _build_authentication(self):
        """(authentication, encryption key, authentication key) of the meter's auth."""
        m = self.meter
        if self.auth == "none":
            return NoSecurityAuthentication(), None, None
        if self.auth == "lls":
            password = m.get("password")
            if not password:
                raise JobError("LLS meter without a password", retryable=False)
            return LowLevelSecurityAuthentication(secret=str(password).encode()), None, None
        if self.auth == "hls_gmac":
            enc_key = _key(m.get("encryption_key"), "encryption_key")
            auth_key = _key(m.get("auth_key"), "auth_key")
            if not enc_key or not auth_key:
                raise JobError("HLS-GMAC meter needs encryption_key and auth_key", retryable=False)
            return compat.HlsGmacCompat(challenge_length=self.challenge_length), enc_key, auth_key
        raise JobError(f"unknown auth {self.auth!r}", retryable=False)

    def open(self) -> MeterConnection:
        compat.quiet_logging(self.debug)
        self.client = self._build_client()
        try:
            with self._errors("connect"):
                self.client.connect()
            with self._errors("associate"):
                self._associate()
            self._associated = True
        except BaseException as exc:
            self._attach_counter(exc)
            self._close_line()
            raise
        return self

    def _associate(self):
        try:
            self.client.associate()
        except exceptions.DlmsClientException as e:
            raise MeterRefused(f"association refused: {e}") from e
        except HLSError as e:
            raise MeterRefused(f"HLS authentication failed: {e}") from e

    def _close_line(self):
        client = self.client
        if client is None:
            return
        try:
            if hasattr(client.transport, "hdlc_connection"):
                # HDLC link may be up without an association: say DISC, bounded by deadline
                try:
                    client.transport.disconnect()
                except Exception:  # noqa: BLE001 - closing anyway
                    pass
        finally:
            if self._io is not None:
                self._io.disconnect()

    def close(self):
        if self.client is None:
            return
        try:
            if self._associated and not self._needs_fresh:
                # give the release its own short time bound even when the job ran late
                self._io.deadline = max(self.deadline, time.monotonic() + min(2.0, self.timeout_s))
                compat.close_quietly(self.client)
            else:
                self._close_line()
        finally:
            if self._io is not None:
                self._io.disconnect()
            self._associated = False

    def __enter__(self):
        return self.open()

    def __exit__(self, exc_type, exc, tb):
        if exc is not None:
            self._attach_counter(exc)
        self.close()
        return False

    @property
    def invocation_counter(self) -> int | None:
        """Last client invocation counter used (HLS-GMAC), for Odoo to keep."""
        if self.auth != "hls_gmac" or self.client is None:
            return None
        return max(self._start_ic - 1, self.client.dlms_connection.client_invocation_counter - 1)

    def _attach_counter(self, exc):
        # a failed job must still report the counters it used (see executors)
        if self.invocation_counter is not None and isinstance(exc, Exception):
            exc.invocation_counter = self.invocation_counter

    # -- error mapping ----------------------------------------------------------------
    class _errors:
        """Map what dlms-cosem (or the line) raises to meter_bridge.errors. Inside a service
        (``conn`` given), any error but a refusal marks the association for a fresh start."""

        def __init__(self, what: str, conn: MeterConnection | None = None):
            self.what = what
            self.conn = conn

        def __enter__(self):
            return self

        def __exit__(self, exc_type, exc, tb):
            if exc is None:
                return False
            conn = self.conn
            if isinstance(exc, JobError):
                if conn is not None and not isinstance(exc, MeterRefused):
                    conn._needs_fresh = True  # e.g. an answer of the wrong type mid-exchange
                return False
            if not isinstance(exc, Exception):
                return False  # KeyboardInterrupt, SystemExit: not the meter's doing
            if conn is not None:
                conn._needs_fresh = True
            what = self.what
            if isinstance(exc, (compat.ReadTimeout, TimeoutError)):
                raise MeterUnreachable(f"{what}: no answer from the meter ({exc})") from exc
            if isinstance(exc, (exceptions.CommunicationError, OSError)):
                raise MeterUnreachable(f"{what}: {exc or type(exc).__name__}") from exc
            if isinstance(exc, DecryptionError):
                raise JobError(
                    f"{what}: cannot decrypt the meter's answer (keys?)", retryable=False
                ) from exc
            if isinstance(
                exc,
                (
                    ValueError,
                    KeyError,
                    IndexError,
                    HdlcException,
                    exceptions.LocalDlmsProtocolError,
                    compat.TruncatedData,
                    exceptions.DlmsClientException,
                ),
            ):
                raise JobError(f"{what}: protocol error: {type(exc).__name__}: {exc}") from exc
            # anything else dlms-cosem raises on an answer it cannot parse (AssertionError,
            # TypeError, attrs validators, struct.error...): a protocol error of this object
            raise JobError(
                f"{what}: protocol error: {type(exc).__name__}: {str(exc) or 'malformed answer'}"
            ) from exc

    # -- services ----------------------------------------------------------------------
    def _check_open(self):
        if self._needs_fresh and self.client is not None:
            self._reassociate()
        if not self._associated:
            raise RuntimeError("MeterConnection is not open")

    def _reassociate(self):
        """A fresh association after a protocol error: drop the line (no release: the old
        association's state is unknown), connect and associate again, going on with the
        invocation counters (HLS-GMAC) where the old association stopped."""
        if self.fresh_associations >= MAX_FRESH_ASSOCIATIONS:
            raise JobError(
                f"the meter's answers could not be parsed {self.fresh_associations + 1} times; "
                f"gave up after {MAX_FRESH_ASSOCIATIONS} fresh associations"
            )
        counter = self.invocation_counter
        self.fresh_associations += 1
        self._needs_fresh = False
        _log.warning(
            "meter %s: fresh association after a protocol error (%d of at most %d)",
            self.meter.get("serial") or self.meter.get("host") or self.meter.get("device"),
            self.fresh_associations,
            MAX_FRESH_ASSOCIATIONS,
        )
        self._associated = False
        try:
            self._close_line()
        finally:
            if self._io is not None:
                self._io.disconnect()
        if counter is not None:
            self._start_ic = counter + 1
        self.open()

    @staticmethod
    def _attribute(obis, ic: int, attr: int) -> cosem.CosemAttribute:
        parts = parse_obis(obis) if isinstance(obis, str) else tuple(obis)
        return cosem.CosemAttribute(
            interface=enumerations.CosemInterface(int(ic)),
            instance=cosem.Obis(*parts),
            attribute=int(attr),
        )

    def get_raw(self, obis, ic: int, attr: int, access=None) -> bytes:
        """GET one attribute, all blocks; returns the encoded Data."""
        self._check_open()
        target = f"GET {obis_str(parse_obis(obis))}/{ic}/{attr}"
        with self._errors(target, self):
            self.client.send(
                xdlms.GetRequestNormal(
                    cosem_attribute=self._attribute(obis, ic, attr), access_selection=access
                )
            )
            data = bytearray()
            for _ in range(MAX_BLOCKS):
                resp = self.client.next_event()
                if isinstance(
                    resp, (xdlms.GetResponseNormalWithError, xdlms.GetResponseLastBlockWithError)
                ):
                    code = int(resp.error)
                    raise MeterRefused(f"{target}: {_result_name(code)}", code=code)
                if isinstance(resp, xdlms.ExceptionResponse):
                    raise MeterRefused(
                        f"{target}: exception {resp.state_error.name}/{resp.service_error.name}"
                    )
                if not isinstance(
                    resp,
                    (
                        xdlms.GetResponseNormal,
                        xdlms.GetResponseWithBlock,
                        xdlms.GetResponseLastBlock,
                    ),
                ):
                    raise JobError(f"{target}: unexpected answer {type(resp).__name__}")
                data += resp.data
                if len(data) > MAX_RESPONSE_BYTES:
                    raise JobError(f"{target}: answer larger than {MAX_RESPONSE_BYTES} bytes")
                if isinstance(resp, xdlms.GetResponseWithBlock):
                    self.client.send(
                        xdlms.GetRequestNext(
                            invoke_id_and_priority=resp.invoke_id_and_priority,
                            block_number=resp.block_number,
                        )
                    )
                    continue
                return bytes(data)
            raise JobError(f"{target}: more than {MAX_BLOCKS} blocks")

    def get(self, obis, ic: int, attr: int, access=None) -> Any:
        raw = self.get_raw(obis, ic, attr, access)
        try:
            value, trailing = decode_data_prefix(raw)
        except DataError as e:
            raise JobError(f"GET {obis}/{ic}/{attr}: undecodable answer: {e}") from e
        if trailing:
            # Gurux's client and most head ends read one value and ignore the rest: keep it
            warning = (
                f"GET {obis}/{ic}/{attr}: {len(trailing)} trailing bytes after the value "
                f"ignored ({trailing[:MAX_TRAILING_LOGGED].hex()})"
            )
            _log.warning("%s", warning)
            self.warnings.append(warning)
        return value

    def _meter_identity(self) -> tuple | None:
        """What names this meter for ScalerCache: its serial and where it answers (None
        without a serial: nothing is shared)."""
        m = self.meter
        serial = m.get("serial_number")
        if not serial:
            return None
        return (
            str(serial),
            m.get("connection_type") or "tcp",
            m.get("host"),
            m.get("port"),
            m.get("device"),
            m.get("client_address"),
            m.get("server_logical_address"),
            m.get("server_physical_address"),
        )

    def scaler_unit(self, obis, ic: int) -> tuple[int | None, int | None]:
        """(scaler, unit code) of a Register-like object, cached per connection and, once
        read, per meter in the process (ScalerCache)."""
        key = (obis_str(parse_obis(obis)), int(ic))
        if key not in self._scalers:
            attr = SCALED_CLASSES.get(int(ic))
            if attr is None:
                self._scalers[key] = (None, None)
                return self._scalers[key]
            identity = self._meter_identity()
            shared = SCALERS.get((identity, key)) if identity is not None else None
            if shared is not None:
                self._scalers[key] = shared
                return shared
            value = self.get(obis, ic, attr)
            if isinstance(value, list) and len(value) == 2:
                self._scalers[key] = (int(value[0]), int(value[1]))
                if identity is not None:
                    SCALERS.put((identity, key), self._scalers[key])
            else:
                self._scalers[key] = (None, None)
        return self._scalers[key]

    def get_scaled(self, obis, ic: int = 3, attr: int = 2) -> tuple[Any, str]:
        """Value with its scaler applied, and its unit ('' when there is none)."""
        value = self.get(obis, ic, attr)
        if attr == 2 and int(ic) in SCALED_CLASSES:
            scaler, unit = self.scaler_unit(obis, ic)
            return scale(value, scaler), unit_name(unit)
        return value, ""

    def set(self, obis, ic: int, attr: int, data: bytes) -> None:
        """SET one attribute to encoded data; MeterRefused unless the meter says success."""
        self._check_open()
        target = f"SET {obis_str(parse_obis(obis))}/{ic}/{attr}"
        with self._errors(target, self):
            self.client.send(
                xdlms.SetRequestNormal(
                    cosem_attribute=self._attribute(obis, ic, attr), data=bytes(data)
                )
            )
            resp = self.client.next_event()
            if isinstance(resp, xdlms.ExceptionResponse):
                raise MeterRefused(f"{target}: exception {resp.state_error.name}")
            code = compat.check_set_result(resp)
            if code != 0:
                raise MeterRefused(f"{target}: {_result_name(code)}", code=code)

    def set_value(self, obis, ic: int, attr: int, value: Any, tag: int | None = None) -> None:
        """SET a simple value, encoded with `tag`, or with the type the meter uses now."""
        if tag is None:
            tag = data_tag(self.get_raw(obis, ic, attr))
        try:
            data = encode_data(tag, value)
        except DataError as e:
            raise JobError(f"SET {obis}/{ic}/{attr}: {e}", retryable=False) from e
        self.set(obis, ic, attr, data)

    def action(
        self,
        obis,
        ic: int,
        method: int,
        data: bytes | None = None,
        *,
        accept: tuple[int, ...] = (0,),
    ) -> tuple[int, bytes | None]:
        """ACTION; returns (result code, return data). Codes outside `accept` raise
        MeterRefused(code=...)."""
        self._check_open()
        target = f"ACTION {obis_str(parse_obis(obis))}/{ic}/{method}"
        parts = parse_obis(obis)
        with self._errors(target, self):
            self.client.send(
                xdlms.ActionRequestNormal(
                    cosem_method=cosem.CosemMethod(
                        enumerations.CosemInterface(int(ic)), cosem.Obis(*parts), int(method)
                    ),
                    data=data,
                )
            )
            resp = self.client.next_event()
            if isinstance(resp, xdlms.ExceptionResponse):
                raise MeterRefused(f"{target}: exception {resp.state_error.name}")
            if isinstance(resp, xdlms.ActionResponseNormalWithError):
                code = int(resp.status) or int(resp.error)
                payload = None
            elif isinstance(resp, (xdlms.ActionResponseNormal, xdlms.ActionResponseNormalWithData)):
                code = int(resp.status)
                payload = getattr(resp, "data", None)
            else:
                raise JobError(f"{target}: unexpected answer {type(resp).__name__}")
            if code not in accept:
                raise MeterRefused(f"{target}: {_result_name(code)}", code=code)
            return code, (bytes(payload) if payload is not None else None)

    # -- profiles ------------------------------------------------------------------------
    def capture_objects(self, obis) -> list[tuple[int, str, int]]:
        """[(class id, OBIS, attribute)] of a profile's columns, cached per connection."""
        key = obis_str(parse_obis(obis))
        if key not in self._captures:
            value = self.get(obis, 7, 3)
            cols = []
            for item in value or []:
                if not isinstance(item, list) or len(item) < 3 or len(item[1]) != 6:
                    raise JobError(f"profile {key}: bad capture object {item!r}")
                cols.append((int(item[0]), obis_str(item[1]), int(item[2])))
            self._captures[key] = cols
        return self._captures[key]

    def get_profile(
        self,
        obis,
        from_dt: dt.datetime | None = None,
        to_dt: dt.datetime | None = None,
        *,
        entries=None,
    ) -> list[list]:
        """Rows of a profile's buffer, clock columns as aware datetimes.

        from_dt/to_dt: selective access by range on the first clock column (to_dt
        defaults to now). entries: (from_entry, to_entry), 1-based, or an int N for the
        last N entries. Neither: the whole buffer.
        """
        columns = self.capture_objects(obis)
        access = None
        if from_dt is not None or to_dt is not None:
            clock = next(((c, o, a) for c, o, a in columns if c == 8), None)
            if clock is None:
                raise JobError(
                    f"profile {obis} has no clock column for a range read", retryable=False
                )
            access = RangeDescriptor(
                restricting_object=CaptureObject(self._attribute(clock[1], 8, clock[2])),
                from_value=(from_dt or dt.datetime(2000, 1, 1, tzinfo=UTC)).astimezone(UTC),
                to_value=(to_dt or dt.datetime.now(UTC)).astimezone(UTC),
            )
        elif entries is not None:
            if isinstance(entries, int):
                in_use = int(self.get(obis, 7, 7) or 0)
                if in_use == 0 or entries <= 0:
                    return []
                first, last = max(1, in_use - entries + 1), in_use
            else:
                first, last = (int(entries[0]), int(entries[1]))
            access = compat.EntryDescriptorCompat(from_entry=first, to_entry=last)
        buffer = self.get(obis, 7, 2, access)
        return self._shape_rows(obis, columns, buffer)

    def _shape_rows(self, obis, columns, buffer) -> list[list]:
        rows = []
        period = None
        last_time: list[dt.datetime | None] = [None] * len(columns)
        for entry in buffer or []:
            if not isinstance(entry, list) or len(entry) != len(columns):
                raise JobError(f"profile {obis}: entry does not match its capture objects")
            row = []
            for i, ((cls, _o, attr), value) in enumerate(zip(columns, entry, strict=True)):
                if cls == 8 and attr == 2:
                    if isinstance(value, (bytes, bytearray)) and len(value) == 12:
                        value = parse_datetime(bytes(value))
                    elif value is None and last_time[i] is not None:
                        # compressed buffer: a null clock is the previous one + period
                        if period is None:
                            period = int(self.get(obis, 7, 4) or 0)
                        value = last_time[i] + dt.timedelta(seconds=period)
                    last_time[i] = value if isinstance(value, dt.datetime) else last_time[i]
                row.append(value)
            rows.append(row)
        return rows


_RESULT_NAMES = {int(e): e.name.lower().replace("_", "-") for e in enumerations.DataAccessResult}


def _result_name(code: int) -> str:
    return f"{_RESULT_NAMES.get(code, 'result')} ({code})"
