# SPDX-License-Identifier: GPL-2.0-or-later
"""DLMS servers of the simulated meters and the socket loop that serves them all.

One gurux server object per *connection* (so association state never leaks between
clients). It serves the objects of its meter's profile that nothing changes
(objects.profile_objects) with identification and association objects of its own, an
ObjectSet that a connection of the meter that has ended gives back (its association object
reset). All connections of all meters share one selector thread. Values come from, and
writes/actions go to, the meter's `MeterModel`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import random
import selectors
import socket
import threading
import time
import weakref
from collections import Counter

from gurux_dlms.enums import (
    AccessMode,
    Authentication,
    ErrorCode,
    InterfaceType,
    MethodAccessMode,
)
from gurux_dlms.enums.SourceDiagnostic import SourceDiagnostic
from gurux_dlms.GXCiphering import GXCiphering
from gurux_dlms.GXDLMSServer import GXDLMSServer
from gurux_dlms.secure.GXDLMSSecureServer import GXDLMSSecureServer

from . import gurux_compat, objects
from .model import MeterModel

log = logging.getLogger(__name__)
gurux_compat.apply()
gurux_compat.apply_hls()

PUBLIC_CLIENT = 16
MANAGEMENT_CLIENT = 1
SERVER_LOGICAL = 1
MAX_PDU = 0xFFFF


ASSOCIATION_SECRET = 7  # Association LN attribute 7: the LLS secret


class _Target:
    """What attribute_access() looks at: the object and the attribute index."""

    def __init__(self, target, index):
        self.target, self.index = target, index


class ObjectSet:
    """The gurux objects one connection of a meter is served, once initialize()d: the
    collection (its profile's shared objects, objects.profile_objects, and this set's own
    identification and association objects). When the connection ends the set goes back to
    its meter and the next connection takes it, the association object put back as it was
    before its first association; a connection while another of the meter holds the set
    gets a new one. Building and initializing a set was 8-10 % of the simulator's CPU per
    HLS-GMAC billing read (bench/RESULTS.md). Nothing of one meter's state is in it: that
    is the model's, as for a new set."""

    __slots__ = ("model", "items", "association", "_state")

    _free: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> [ObjectSet]
    _lock = threading.Lock()  # the network loop and the serial meters' threads

    def __init__(self, model: MeterModel, items, own: list):
        self.model = model
        self.items = items
        self.association = own[-1]
        for obj in own:
            obj.start = None  # initialize()'s pointer to the server: read by nothing
        self._state = _state_of(self.association)

    @classmethod
    def take(cls, model: MeterModel) -> ObjectSet | None:
        """A free set of this meter's, reset; None if it has none free."""
        with cls._lock:
            free = cls._free.get(model)
            if not free:
                return None
            object_set = free.pop()
        object_set.reset()
        return object_set

    def give_back(self) -> None:
        with self._lock:
            self._free.setdefault(self.model, []).append(self)

    def reset(self) -> None:
        """The association object as the set was built: its status, context, mechanism,
        secret and users (what an AARQ, the HLS passes or a method 2 change)."""
        top, nested = self._state
        fields = vars(self.association)
        fields.clear()
        fields.update({k: list(v) if type(v) is list else v for k, v in top.items()})
        for name, state in nested.items():
            inner = vars(top[name])
            inner.clear()
            inner.update(state)


# the association object's parts that gurux changes in place (contextId, mechanismId, ...)
_NESTED = ("applicationContextName", "authenticationMechanismName", "xDLMSContextInfo")


def _state_of(association) -> tuple[dict, dict]:
    top = {k: list(v) if type(v) is list else v for k, v in vars(association).items()}
    return top, {name: dict(vars(top[name])) for name in _NESTED}


class _MeterServerBase(
    gurux_compat.ServerMixin, gurux_compat.ReleaseResponseMixin, gurux_compat.SnrmMixin
):
    """Gurux callbacks, shared by the plain and the secure (HLS) server."""

    model: MeterModel

    object_set: ObjectSet | None = None

    def _setup(self, model: MeterModel):
        self.model = model
        cfg = model.config
        # another vendor's object map: requests name the served OBIS, the model the contract's
        self._contract_ln = {v: k for k, v in cfg.object_map.items()}
        self.settings.maxServerPDUSize = MAX_PDU
        self.object_set = ObjectSet.take(model)
        if self.object_set is not None:
            # objects a connection of this meter that has ended was served, initialize()d
            # then (it does the same to them each time: 40 % of a connection's set-up)
            self.settings.objects = self.object_set.items
            self.initialized = True
            return
        own = objects.meter_objects(model.serial, cfg.object_map)
        # list.extend, not GXDLMSObjectCollection.append: that checks each object's type and
        # sets its `parent`, which nothing reads (47 Python calls per connection)
        list.extend(self.items, own)
        association = own[-1]
        if cfg.auth == "lls":
            association.secret = cfg.password.encode()
        gurux_compat.fill_association_object_list(self)
        self.initialize()
        self.object_set = ObjectSet(model, self.items, [own[0], own[1], association])

    def release(self) -> None:
        """The connection has ended: its objects may serve the meter's next connection."""
        object_set, self.object_set = self.object_set, None
        if object_set is not None:
            object_set.give_back()

    # --- association ---
    def isTarget(self, serverAddress, clientAddress):  # noqa: N802,N803
        if clientAddress not in (PUBLIC_CLIENT, MANAGEMENT_CLIENT) or self.model.offline:
            return False
        self.settings.serverAddress = serverAddress
        self.settings.clientAddress = clientAddress
        return True

    def onValidateAuthentication(self, authentication, password):  # noqa: N802
        auth = self.model.config.auth
        if self.settings.clientAddress == PUBLIC_CLIENT:
            auth = "none"  # the public client never authenticates (and may do little)
        want = {
            "none": Authentication.NONE,
            "lls": Authentication.LOW,
            "hls": Authentication.HIGH_GMAC,
        }[auth]
        if authentication != want:
            # Blue Book diagnostics: 12 authentication-mechanism-name-required when the
            # association needs one the AARQ lacks, else 11 ...-not-recognised (e.g. the
            # public client 16 offering LLS). Gurux spells 12 MECHANISM_NAME_REGUIRED; the
            # name used here before did not exist, the AttributeError made gurux answer 4
            # bytes that are no AARE, and clients saw no rejection.
            if authentication == Authentication.NONE:
                return SourceDiagnostic.MECHANISM_NAME_REGUIRED
            return SourceDiagnostic.NOT_RECOGNISED
        if auth == "lls" and bytes(password or b"") != self.model.config.password.encode():
            return SourceDiagnostic.AUTHENTICATION_FAILURE
        return SourceDiagnostic.NONE

    def onConnected(self, connectionInfo):  # noqa: N802,N803
        pass

    def onInvalidConnection(self, connectionInfo):  # noqa: N802,N803
        pass

    def onDisconnected(self, connectionInfo):  # noqa: N802,N803
        pass

    # --- access (docs/meter-contract.md, "Associations") ---
    def access_level(self) -> str:
        """public: client 16, GET of the identification objects only; reader: client 1 with
        LLS or no authentication, GET only; management: client 1 with HLS-GMAC, everything."""
        if self.settings.clientAddress != MANAGEMENT_CLIENT:
            return "public"
        return "management" if self.model.config.auth == "hls" else "reader"

    def contract_ln(self, target) -> str:
        """The contract OBIS of a gurux object this meter serves (its object map undone)."""
        return self._contract_ln.get(target.logicalName, target.logicalName)

    def attribute_access(self, arg):
        level = self.access_level()
        ln = self.contract_ln(arg.target)
        if ln == objects.ASSOCIATION_LN:
            # the association view is every client's to read (head ends read it first);
            # its secret (attribute 7) is write-only, and only the management client's
            if arg.index == ASSOCIATION_SECRET:
                return AccessMode.WRITE if level == "management" else AccessMode.NO_ACCESS
            return AccessMode.READ
        if level == "management":
            return AccessMode.READ_WRITE
        if arg.index == 1:
            return AccessMode.READ  # logical_name: every listed object's is readable
        if ln in objects.MANAGEMENT_OBJECTS:
            return AccessMode.NO_ACCESS
        if level == "reader" or ln in objects.PUBLIC_OBJECTS:
            return AccessMode.READ
        return AccessMode.NO_ACCESS  # gurux answers read-write-denied

    def onGetMethodAccess(self, arg):  # noqa: N802
        # Refused in onPreAction instead of NO_ACCESS here: see gurux_compat.deny_action.
        return MethodAccessMode.ACCESS

    def onFindObject(self, objectType, sn, ln):  # noqa: N802,N803
        return None

    def method_access(self, item, index) -> int:
        """What the object list states: methods are the management client's only."""
        if self.access_level() == "management":
            return MethodAccessMode.ACCESS
        return MethodAccessMode.NO_ACCESS

    def association_value(self, index: int) -> bytes | None:
        """Association LN attributes gurux cannot encode (gurux_compat, association view)."""
        if index == 2:
            return gurux_compat.object_list(
                list(self.items),
                lambda item, i: int(self.attribute_access(_Target(item, i))),
                lambda item, i: int(self.method_access(item, i)),
            )
        if index == 3:
            return gurux_compat.associated_partners(int(self.settings.clientAddress), 1)
        if index == 5:
            return gurux_compat.xdlms_context_info(self.settings)
        return None

    # --- GET / SET / ACTION, routed to the model ---
    def onPreRead(self, args):  # noqa: N802
        for e in args:
            if e.target.logicalName == objects.ASSOCIATION_LN:
                if e.index == ASSOCIATION_SECRET:
                    # write-only: gurux denies a GET only for NO_ACCESS, not for WRITE
                    e.error, e.value, e.byteArray, e.handled = (
                        ErrorCode.READ_WRITE_DENIED,
                        b"",
                        True,
                        True,
                    )
                    continue
                value = self.association_value(e.index)
                if value is not None:
                    e.value, e.byteArray, e.handled = value, True, True
                continue
            value = objects.read_attribute(
                self.settings,
                self.model,
                self.contract_ln(e.target),
                e.index,
                e.selector,
                e.parameters,
            )
            if value is not None:
                e.value = value
                e.byteArray = True
                e.handled = True

    def onPostRead(self, args=None):  # noqa: N802
        pass

    def onPreGet(self, args):  # noqa: N802
        self.onPreRead(args)

    def onPostGet(self, args):  # noqa: N802
        pass

    def onPreWrite(self, args):  # noqa: N802
        for e in args:
            ln = self.contract_ln(e.target)
            e.error = objects.write_attribute(self.model, ln, e.index, e.value)
            e.handled = True

    def onPostWrite(self, args):  # noqa: N802
        pass

    def onPreAction(self, args):  # noqa: N802
        for e in args:
            ln = self.contract_ln(e.target)
            if self.access_level() != "management":
                gurux_compat.deny_action(e)  # read-write-denied
                continue
            if ln == objects.ASSOCIATION_LN:
                continue  # HLS pass 3/4: gurux answers it
            if ln == objects.TOKEN_LOG:
                # the status goes back as the action's return data (gurux: a non-zero int)
                e.error, e.value = objects.invoke_token_log(self.model, e.index, e.parameters)
            else:
                e.error = objects.invoke_method(self.model, ln, e.index, e.parameters)
                e.value = 0
            e.handled = True

    def onPostAction(self, args):  # noqa: N802
        pass


class MeterServer(_MeterServerBase, GXDLMSServer):
    def __init__(self, model: MeterModel, hdlc: bool):
        GXDLMSServer.__init__(self, True, InterfaceType.HDLC if hdlc else InterfaceType.WRAPPER)
        self._setup(model)


class _MeterCiphering(gurux_compat.CounterCiphering, GXCiphering):
    pass


class SecureMeterServer(_MeterServerBase, GXDLMSSecureServer):
    """HLS-GMAC (client 1): per-meter block cipher key, authentication key and system title;
    every xDLMS APDU after the AARQ is glo-ciphered (authenticated and encrypted). The meter's
    invocation counter and the last one accepted from the client live on the model."""

    drop_connection = False  # a ciphered request replayed or forged: close the line
    _in_aarq = False

    def __init__(self, model: MeterModel, hdlc: bool):
        from gurux_dlms.enums import Security

        GXDLMSSecureServer.__init__(
            self, True, InterfaceType.HDLC if hdlc else InterfaceType.WRAPPER
        )
        cfg = model.config
        cipher = _MeterCiphering(bytearray(system_title(cfg)))
        cipher.store = model
        self.settings.ciphering = cipher
        gurux_compat.secure_server_cipher(self)
        cipher.blockCipherKey = bytearray.fromhex(cfg.encryption_key)
        cipher.authenticationKey = bytearray.fromhex(cfg.authentication_key)
        cipher.security = Security.AUTHENTICATION_ENCRYPTION
        self.settings.client_counter_check = self._check_client_counter
        self._setup(model)

    def _check_client_counter(self, ic, authenticated=True, tag_ok=True):
        from gurux_dlms.enums import AssociationResult
        from gurux_dlms.GXDLMSException import GXDLMSException

        if not tag_ok:
            log.info("%s: ciphered APDU with a bad GCM tag (wrong keys?)", self.model.serial)
        elif self.model.accept_client_counter(ic, record=authenticated):
            return
        else:
            log.info("%s: client invocation counter %s replayed", self.model.serial, ic)
        if not self._in_aarq:
            self.drop_connection = True
        # in the AARQ: AARE rejected-permanent (gurux turns any error in the user-information
        # into diagnostic no-reason-given)
        raise GXDLMSException(
            AssociationResult.PERMANENT_REJECTED, SourceDiagnostic.AUTHENTICATION_FAILURE
        )

    def handleAarqRequest(self, data, connectionInfo):  # noqa: N802,N803
        self._in_aarq = True
        try:
            return super().handleAarqRequest(data, connectionInfo)
        finally:
            self._in_aarq = False


def system_title(cfg) -> bytes:
    """8-byte system title: configured, else 'SIM' + the last 5 characters of the serial."""
    if cfg.system_title:
        return bytes.fromhex(cfg.system_title)
    return (b"SIM" + cfg.serial.encode()[-5:]).ljust(8, b"0")


def make_server(model: MeterModel):
    hdlc = model.config.framing == "hdlc"
    if model.config.auth == "hls":
        return SecureMeterServer(model, hdlc)
    return MeterServer(model, hdlc)


def link_delay(cfg, rng) -> float:
    """Seconds an answer of this meter spends on its link: latency_ms +/- jitter_ms."""
    ms = cfg.latency_ms
    if cfg.jitter_ms:
        ms += rng.uniform(-cfg.jitter_ms, cfg.jitter_ms)
    return max(0.0, ms) / 1000.0


def split_frames(buf: bytearray, hdlc: bool) -> list[bytes]:
    """The whole frames at the start of `buf`, taken out of it; a partial frame stays for
    the next bytes. HDLC: flag 0x7E, then the format field's 11-bit length (the frame less
    its two flags); wrapper: an 8-byte header whose last two bytes give the APDU length.
    Bytes before an HDLC flag are line noise and go. Each HDLC frame is taken to carry both
    its flags, as dlms-cosem and Gurux clients send them."""
    frames = []
    while True:
        if hdlc:
            start = buf.find(0x7E)
            if start < 0:
                buf.clear()
                break
            del buf[:start]
            if len(buf) >= 2 and buf[1] == 0x7E:
                del buf[:1]  # the closing flag of a frame gone before, or a shared flag
                continue
            if len(buf) < 3:
                break
            size = ((buf[1] & 0x07) << 8 | buf[2]) + 2
        else:
            if len(buf) < 8:
                break
            size = 8 + int.from_bytes(buf[6:8], "big")
        if len(buf) < size:
            break
        frames.append(bytes(buf[:size]))
        del buf[:size]
    return frames


def lose_frames(cfg, rng, buf: bytearray, data: bytes):
    """What of `data` reaches a meter on a lossy link: each whole frame is lost with
    probability cfg.loss, as a link loses frames, not the chunks a socket read returns (a
    frame cut in two by TCP and half lost would leave the meter parsing garbage). Returns
    the bytes kept and the number of frames lost; a partial frame waits in `buf`."""
    buf += data
    kept, lost = [], 0
    for frame in split_frames(buf, cfg.framing == "hdlc"):
        if rng.random() < cfg.loss:
            lost += 1
        else:
            kept.append(frame)
    return b"".join(kept), lost


class _Conn:
    __slots__ = ("sock", "meter", "server", "out", "closed", "due", "inbuf", "events")

    def __init__(self, sock, meter):
        self.sock = sock
        self.meter = meter
        self.server = None  # created on first bytes: a port scan costs nothing
        self.out = bytearray()
        self.closed = False
        self.due = 0.0  # when the last delayed answer goes out: answers keep their order
        self.inbuf = bytearray()  # a lossy link's partial frame (lose_frames)
        self.events = selectors.EVENT_READ  # what the selector waits for on it


class Network:
    """Listening sockets and connections of many meters on one selector thread.

    Slow links (MeterConfig latency_ms, jitter_ms, loss): an answer is not sent at once but
    put on a timer heap that the same loop serves (its select() waits no longer than the
    next answer is due), so 10,000 meters 500 ms away cost one thread and a heap entry per
    answer in flight, not a sleeping thread each. A lost request is read and dropped
    unanswered. The TCP handshake itself is the kernel's and not delayed.
    """

    def __init__(self, host: str = "127.0.0.1", link_seed: int | None = None):
        self.host = host
        self._timers = []  # (due, seq, conn, answer bytes), a heap
        self._seq = itertools.count()
        self._link_rng = random.Random(link_seed)
        self.link_stats = Counter()  # "delayed", "dropped": answers held, requests lost
        self.sel = selectors.DefaultSelector()
        self.listeners: dict[str, socket.socket] = {}
        self.ports: dict[str, int] = {}
        self.models: dict[str, MeterModel] = {}
        self.conns: dict[str, set] = {}
        self._lock = threading.Lock()
        self._calls = []  # functions to run on the loop thread
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self.sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._thread = None
        self._stop = False

    # --- meter registration (any thread before start, or via call_soon) ---
    def add_meter(self, model: MeterModel, port: int) -> int:
        self.models[model.serial] = model
        self.conns[model.serial] = set()
        return self._listen(model.serial, port)

    def _listen(self, serial: str, port: int) -> int:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, port))
        s.listen(64)
        s.setblocking(False)
        self.listeners[serial] = s
        self.ports[serial] = s.getsockname()[1]
        self.sel.register(s, selectors.EVENT_READ, ("listen", serial))
        return self.ports[serial]

    def set_offline(self, serial: str, offline: bool) -> None:
        """Offline: close the port and every connection (clients see refused / reset)."""
        done = threading.Event()

        def run():
            try:
                model = self.models[serial]
                model.offline = offline
                if offline and serial in self.listeners:
                    s = self.listeners.pop(serial)
                    self.sel.unregister(s)
                    s.close()
                    for c in list(self.conns[serial]):
                        self._close(c)
                elif not offline and serial not in self.listeners:
                    self._listen(serial, self.ports[serial])
            finally:
                done.set()

        self.call_soon(run)
        done.wait(5)

    def call_soon(self, fn) -> None:
        with self._lock:
            self._calls.append(fn)
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread is None:
            self._run_calls()

    def run_on_loop(self, fn, timeout: float = 5.0):
        """Run `fn` on the loop thread (where the meters' associations cipher) and return its
        result; inline when the loop is not running or this is the loop thread."""
        if self._thread is None or threading.current_thread() is self._thread:
            return fn()
        done = threading.Event()
        box = {}

        def run():
            try:
                box["value"] = fn()
            except BaseException as e:  # handed back to the caller
                box["error"] = e
            finally:
                done.set()

        self.call_soon(run)
        if not done.wait(timeout):
            raise TimeoutError("meter-sim network loop did not answer")
        if "error" in box:
            raise box["error"]
        return box["value"]

    def _run_calls(self):
        with self._lock:
            calls, self._calls = self._calls, []
        for fn in calls:
            fn()

    # --- loop ---
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="meter-sim-net", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._stop:
            return
        self._stop = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread:
            self._thread.join(5)
        for key in list(self.sel.get_map().values()):
            try:
                key.fileobj.close()
            except OSError:
                pass
        self.sel.close()
        self._wake_w.close()

    def _loop(self) -> None:
        while not self._stop:
            timeout = 0.5
            if self._timers:
                timeout = min(timeout, max(0.0, self._timers[0][0] - time.monotonic()))
            for key, mask in self.sel.select(timeout=timeout):
                kind, obj = key.data
                try:
                    if kind == "wake":
                        try:
                            self._wake_r.recv(4096)
                        except BlockingIOError:
                            pass
                        self._run_calls()
                    elif kind == "listen":
                        self._accept(key.fileobj, obj)
                    elif mask & selectors.EVENT_READ:
                        self._read(obj)
                    elif mask & selectors.EVENT_WRITE:
                        self._flush(obj)
                except Exception:  # one bad connection must never stop the fleet
                    log.exception("meter-sim network error")
                    if kind == "conn":
                        self._close(obj)
            if self._timers:
                self._send_due(time.monotonic())

    def _send_due(self, now: float) -> None:
        """Answers whose link delay has passed go out (into the connection's buffer)."""
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, c, answer = heapq.heappop(timers)
            if c.closed:
                continue
            c.out += answer
            try:
                self._flush(c)
            except Exception:
                log.exception("meter-sim network error")
                self._close(c)

    def _accept(self, lsock, serial) -> None:
        try:
            sock, _ = lsock.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = _Conn(sock, serial)
        self.conns[serial].add(c)
        self.sel.register(sock, selectors.EVENT_READ, ("conn", c))

    def _read(self, c: _Conn) -> None:
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(c)
            return
        model = self.models[c.meter]
        if model.offline:
            self._close(c)
            return
        cfg = model.config
        if cfg.loss:
            data, lost = lose_frames(cfg, self._link_rng, c.inbuf, data)
            self.link_stats["dropped"] += lost  # lost on the link: the meter never saw them
            if not data:
                return
        if c.server is None:
            c.server = make_server(model)
        answer = b"".join(handle_bytes(c.server, data))
        if getattr(c.server, "drop_connection", False):
            self._close(c)  # a real meter drops a replayed or forged ciphered request
            return
        delay = link_delay(cfg, self._link_rng) if cfg.latency_ms or cfg.jitter_ms else 0.0
        if delay > 0 or c.due:
            if answer:
                c.due = max(time.monotonic() + delay, c.due)
                heapq.heappush(self._timers, (c.due, next(self._seq), c, answer))
                self.link_stats["delayed"] += 1
            return
        c.out += answer
        self._flush(c)

    def _flush(self, c: _Conn) -> None:
        if c.out:
            try:
                n = c.sock.send(c.out)
                del c.out[:n]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._close(c)
                return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.out else 0)
        if events != c.events:  # else one epoll_ctl system call per answer for nothing
            self.sel.modify(c.sock, events, ("conn", c))
            c.events = events

    def _close(self, c: _Conn) -> None:
        if c.server is not None and not c.closed:
            c.server.release()
        c.closed = True
        self.conns.get(c.meter, set()).discard(c)
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()


def handle_bytes(server, data: bytes):
    """Feed received bytes to a gurux server; yield the reply frames."""
    sr = gurux_compat.ServerReply(bytearray(data))
    server.handleRequest(sr)
    if sr.reply:
        yield bytes(sr.reply)
    # GBT streaming: gurux wants to be called again while sr.count != 0.
    while sr.isStreaming():
        server.handleRequest(sr)
        if not sr.reply:
            break
        yield bytes(sr.reply)


def serve_serial(model: MeterModel, device: str, stop: threading.Event) -> threading.Thread:
    """HDLC on a serial device (or one end of a pty), in its own thread."""

    ready = threading.Event()
    link_rng = random.Random()

    def run():
        try:
            fd = os.open(device, os.O_RDWR | os.O_NOCTTY)
        except OSError:
            ready.set()
            raise
        try:
            _raw_tty(fd)
            ready.set()
            server = None
            inbuf = bytearray()  # a lossy line's partial frame (lose_frames)
            sel = selectors.DefaultSelector()
            sel.register(fd, selectors.EVENT_READ)
            while not stop.is_set():
                if not sel.select(0.2):
                    continue
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data or model.offline:
                    continue
                cfg = model.config
                if cfg.loss:
                    data, _ = lose_frames(cfg, link_rng, inbuf, data)
                    if not data:
                        continue  # lost on the line
                if server is None:
                    server = make_server(model)
                replies = list(handle_bytes(server, data))
                if cfg.latency_ms or cfg.jitter_ms:
                    time.sleep(link_delay(cfg, link_rng))  # this meter's own thread
                for reply in replies:
                    os.write(fd, reply)
                if getattr(server, "drop_connection", False):
                    server.release()
                    server = None  # drop the association, as a TCP meter drops the line
        finally:
            os.close(fd)

    t = threading.Thread(target=run, name=f"meter-sim-serial-{model.serial}", daemon=True)
    t.start()
    # Setting raw mode flushes pending input: a client that wrote before this (the fleet
    # just started) lost its SNRM and timed out. Return once the line is set up.
    ready.wait(5)
    return t


def _raw_tty(fd) -> None:
    try:
        import termios
        import tty

        tty.setraw(fd)
        attrs = termios.tcgetattr(fd)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except Exception:  # not a tty (a plain file in tests): nothing to configure
        pass
