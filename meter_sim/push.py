# SPDX-License-Identifier: GPL-2.0-or-later
"""DLMS push of the simulated meters (Push setup, IC 40; docs/meter-contract.md "Push").

A meter in push mode connects OUT to its head end (as GPRS meters behind NAT do), over the
TCP wrapper (IEC 62056-47), and sends an unsolicited DataNotification:

- on every event it logs (standard and fraud logs): push setup 0.1.25.9.0.255 (standard)
  or 0.2.25.9.0.255 (fraud), body = the push object list's values at the event;
- every heartbeat interval (manufacturer-specific 0.0.25.9.128.255, meter seconds): push
  setup 0.0.25.9.0.255.

Each DataNotification is ciphered with the meter's keys as a general-glo-ciphering APDU
(security control 0x30: authenticated and encrypted, suite 0) carrying the meter's system
title and its invocation counter, the same counter its associations use (never a GCM nonce
twice). gurux's GXDLMSNotify builds and ciphers it. A push that cannot be delivered
(head end away, connection refused or reset) is tried again after the repetition delay, up
to the number of retries; each attempt is ciphered afresh (a new counter), the content is
the same, so the head end stores it once.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import random
import select
import socket
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

PUSH_HEARTBEAT = "0.0.25.9.0.255"
PUSH_STANDARD_EVENTS = "0.1.25.9.0.255"
PUSH_FRAUD_EVENTS = "0.2.25.9.0.255"
PUSH_SETUPS = (PUSH_HEARTBEAT, PUSH_STANDARD_EVENTS, PUSH_FRAUD_EVENTS)
# Manufacturer-specific: the heartbeat interval in seconds (0 = no heartbeat). The Blue
# Book schedules periodic pushes with a Single action schedule (IC 22) running the push
# script table; one Data object does the same job here.
HEARTBEAT_INTERVAL = "0.0.25.9.128.255"
# The head end's wrapper port (client SAP) the meter sends to; its own is 1.
PUSH_CLIENT_WPORT = 0x66
SERVER_WPORT = 1
CONNECT_TIMEOUT_S = 2.0
POLL_S = 0.05
MAX_OUTBOX = 500  # a meter keeps at most this many undelivered pushes (oldest dropped)


@dataclass
class PushSettings:
    """The Push setup attributes the meter acts on (shared by its three push setups)."""

    destination: str = ""  # "host:port" (attribute 3, send_destination_and_method)
    heartbeat_s: int = 0
    # attribute 4: windows as (start, end) minutes of the day in the meter's time (UTC);
    # empty = always. A push outside every window waits for the next one.
    windows: list = field(default_factory=list)
    randomisation_s: int = 0  # attribute 5: random delay before the first attempt
    retries: int = 10  # attribute 6: attempts after the first
    repetition_delay_s: int = 2  # attribute 7: seconds between attempts

    @classmethod
    def from_config(cls, cfg) -> PushSettings:
        return cls(
            destination=getattr(cfg, "push_destination", "") or "",
            heartbeat_s=int(getattr(cfg, "push_heartbeat_s", 0) or 0),
        )

    def address(self) -> tuple[str, int] | None:
        host, sep, port = self.destination.rpartition(":")
        if not sep or not host or not port.isdigit():
            return None
        return host, int(port)

    def in_window(self, t: dt.datetime) -> bool:
        if not self.windows:
            return True
        minute = t.hour * 60 + t.minute
        return any(start <= minute < end for start, end in self.windows)


@dataclass
class Push:
    """One DataNotification to deliver: its plain body (values captured when triggered)."""

    setup: str
    body: bytes
    not_before: float
    attempts: int = 0


class _MeterLink:
    __slots__ = ("outbox", "sock", "next_heartbeat", "sent", "dropped")

    def __init__(self):
        self.outbox: collections.deque[Push] = collections.deque()
        self.sock: socket.socket | None = None
        self.next_heartbeat: dt.datetime | None = None
        self.sent = 0
        self.dropped = 0


def capture(model, setup: str, event=None) -> bytes:
    """The push object list's values (objects.PUSH_OBJECTS) as one A-XDR structure."""
    from . import objects

    return objects.push_body(model, setup, event)


class PushAgent:
    """Delivers the pushes of every meter of a fleet, in one thread.

    Building and ciphering run on the network thread (`net.call_soon`), where the meter's
    associations cipher too: the meter's invocation counter is never used twice."""

    def __init__(self, net, models: dict):
        self.net = net
        self.models = models
        self.links = {serial: _MeterLink() for serial in models}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = None
        for model in models.values():
            model.event_hooks.append(self._on_event)

    # --- triggers ---
    def _on_event(self, model, event) -> None:
        """Called under the model's lock when the meter logs an event."""
        if not model.push.address():
            return
        from .model import FRAUD_LOG

        setup = PUSH_FRAUD_EVENTS if event.log == FRAUD_LOG else PUSH_STANDARD_EVENTS
        self._queue(model, setup, capture(model, setup, event))

    def _queue(self, model, setup: str, body: bytes) -> None:
        delay = random.uniform(0, model.push.randomisation_s) if model.push.randomisation_s else 0
        with self._lock:
            outbox = self.links[model.serial].outbox
            if len(outbox) >= MAX_OUTBOX:
                outbox.popleft()
                self.links[model.serial].dropped += 1
            outbox.append(Push(setup, body, time.monotonic() + delay))
        self._wake.set()

    def heartbeat(self, serial: str) -> None:
        """Queue a heartbeat now (tests; the loop queues them on the interval)."""
        model = self.models[serial]
        with model.lock:
            body = capture(model, PUSH_HEARTBEAT)
        self._queue(model, PUSH_HEARTBEAT, body)

    def pending(self, serial: str) -> int:
        with self._lock:
            return len(self.links[serial].outbox)

    def stats(self, serial: str) -> dict:
        link = self.links[serial]
        with self._lock:
            return {"pending": len(link.outbox), "sent": link.sent, "dropped": link.dropped}

    # --- loop ---
    def start(self) -> PushAgent:
        self._thread = threading.Thread(target=self._loop, name="meter-sim-push", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(5)
        for link in self.links.values():
            _close(link)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(POLL_S)
            self._wake.clear()
            links = self.links
            for serial, model in self.models.items():
                # most meters push nothing: skipped here, not in _service, for at 10,000
                # meters the pass over them all took 8 ms of the simulator's GIL every
                # POLL_S, beside the network loop that answers the meters' clients
                if not model.push.destination and links[serial].sock is None:
                    links[serial].next_heartbeat = None
                    continue
                try:
                    self._service(serial, model)
                except Exception:  # one meter must never stop the others
                    log.exception("%s: push failed", serial)

    def _service(self, serial: str, model) -> None:
        link = self.links[serial]
        settings = model.push
        addr = settings.address()
        if addr is None:
            _close(link)
            link.next_heartbeat = None
            return
        if model.offline:  # no mains, no modem: nothing leaves the meter
            _close(link)
            return
        now_meter = model.meter_time()
        if settings.heartbeat_s > 0:
            if link.next_heartbeat is None:
                link.next_heartbeat = now_meter + dt.timedelta(seconds=settings.heartbeat_s)
            elif now_meter >= link.next_heartbeat:
                link.next_heartbeat = now_meter + dt.timedelta(seconds=settings.heartbeat_s)
                self.heartbeat(serial)
        else:
            link.next_heartbeat = None
        if not settings.in_window(now_meter):
            return
        now = time.monotonic()
        while True:
            with self._lock:
                push = link.outbox[0] if link.outbox else None
            if push is None or push.not_before > now:
                return
            if self._deliver(model, link, addr, push):
                with self._lock:
                    link.outbox.popleft()
                    link.sent += 1
                continue
            push.attempts += 1
            if push.attempts > settings.retries:
                log.info("%s: push %s dropped after %s attempts", serial, push.setup, push.attempts)
                with self._lock:
                    link.outbox.popleft()
                    link.dropped += 1
                continue
            push.not_before = now + settings.repetition_delay_s
            return

    def _deliver(self, model, link: _MeterLink, addr, push: Push) -> bool:
        if link.sock is not None and _peer_closed(link.sock):
            _close(link)
        if link.sock is None:
            try:
                link.sock = socket.create_connection(addr, timeout=CONNECT_TIMEOUT_S)
                link.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                link.sock = None
                return False
        frames = self.net.run_on_loop(lambda: cipher_push(model, push.body))
        try:
            for frame in frames:
                link.sock.sendall(frame)
        except OSError:
            _close(link)
            return False
        return True


def cipher_push(model, body: bytes) -> list[bytes]:
    """The wrapper frame(s) of a ciphered DataNotification of `body` (A-XDR data)."""
    from gurux_dlms.enums import InterfaceType, Security, ServiceClass
    from gurux_dlms.GXByteBuffer import GXByteBuffer
    from gurux_dlms.GXDLMSNotify import GXDLMSNotify

    from .server import _MeterCiphering, system_title

    notify = GXDLMSNotify(True, PUSH_CLIENT_WPORT, SERVER_WPORT, InterfaceType.WRAPPER)
    notify.serviceClass = ServiceClass.UN_CONFIRMED  # nobody answers a push
    cfg = model.config
    if cfg.auth == "hls":
        cipher = _MeterCiphering(bytearray(system_title(cfg)))
        cipher.store = model
        cipher.blockCipherKey = bytearray.fromhex(cfg.encryption_key)
        cipher.authenticationKey = bytearray.fromhex(cfg.authentication_key)
        cipher.security = Security.AUTHENTICATION_ENCRYPTION
        notify.settings.cipher = cipher
    bb = GXByteBuffer()
    bb.set(body)
    return [bytes(m) for m in notify.generateDataNotificationMessages(None, bb)]


def _peer_closed(sock: socket.socket) -> bool:
    """The head end closed (or reset) the line: readable with nothing to read."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(4096, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _close(link: _MeterLink) -> None:
    if link.sock is not None:
        try:
            link.sock.close()
        except OSError:
            pass
        link.sock = None
