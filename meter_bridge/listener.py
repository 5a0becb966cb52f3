"""The push listener (``meter-bridge listen``): meters connect to it and push DataNotifications.

Meters in push mode (docs/meter-contract.md, "Push") connect OUT to the head end over the
TCP wrapper (IEC 62056-47) and send ciphered DataNotifications (general-glo-ciphering). The
listener accepts many meters at once (asyncio, one coroutine per connection), checks the
framing, and forwards the *ciphered* APDUs to Odoo in batches (``push_ingest``, docs/job-
protocol.md), which authenticates and decrypts each with the meter's keys, refuses an
unknown system title, a bad GCM tag and a replayed invocation counter, and stores the
events and readings through the same idempotent ingest as event-log reads.

Why Odoo decrypts (docs/job-protocol.md, "Push"): the meters' HLS keys open their
management association (relay, settings); a listener faces the internet and holds them not
at all: a stolen listener or API key can neither read nor forge a push, and the replay
check lives in one place (the meter row in PostgreSQL), so several listeners behind one
address need no state of their own. The listener drops what is not a ciphered push before
it costs Odoo anything: bad framing, another APDU, an oversized frame, a silent line.

The meter gets no answer (a DataNotification is unconfirmed). A push the listener has
received but not yet handed to Odoo is lost if the listener dies: the meter's event log is
still read daily (reconciliation) and the same event is then stored, once.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from .odoo_client import OdooError, OdooUnreachable

log = logging.getLogger(__name__)

WRAPPER_VERSION = 1
WRAPPER_HEADER = 8
GENERAL_GLO_CIPHERING = 0xDB
MAX_APDU = 2048  # a push of this contract is ~100 bytes; bigger is not a meter of ours
SYSTEM_TITLE_LEN = 8


class FrameError(ValueError):
    """Not a ciphered push in a TCP wrapper frame: the line is dropped."""


def parse_wrapper_header(head: bytes) -> int:
    """Length of the APDU that follows an 8-byte wrapper header (version 1)."""
    version = int.from_bytes(head[0:2], "big")
    length = int.from_bytes(head[6:8], "big")
    if version != WRAPPER_VERSION:
        raise FrameError(f"wrapper version {version}")
    if not 0 < length <= MAX_APDU:
        raise FrameError(f"wrapper length {length}")
    return length


def system_title_of(apdu: bytes) -> str:
    """The sender's system title (hex, upper case) of a general-glo-ciphering APDU."""
    if len(apdu) < 2 + SYSTEM_TITLE_LEN + 6 or apdu[0] != GENERAL_GLO_CIPHERING:
        raise FrameError("not a general-glo-ciphering APDU")
    if apdu[1] != SYSTEM_TITLE_LEN:
        raise FrameError("system title is not 8 bytes")
    return apdu[2 : 2 + SYSTEM_TITLE_LEN].hex().upper()


@dataclass
class ListenerStats:
    connections: int = 0
    connections_max: int = 0
    connections_total: int = 0
    received: int = 0
    accepted: int = 0
    refused: int = 0
    dropped_lines: int = 0
    idle_closed: int = 0
    batches: int = 0
    refusals: dict = field(default_factory=dict)


class _MeterLine(asyncio.Protocol):
    """One meter's TCP line: frames cut from the bytes as they come (no task, no stream
    objects per connection: a held line costs its transport and this small object)."""

    __slots__ = ("listener", "transport", "buf", "last")

    def __init__(self, listener: PushListener):
        self.listener = listener
        self.transport = None
        self.buf = b""
        self.last = 0.0

    def connection_made(self, transport):
        self.transport = transport
        self.last = self.listener.loop.time()
        self.listener._line_up(self)

    def connection_lost(self, exc):
        self.listener._line_down(self)

    def data_received(self, data: bytes):
        lst = self.listener
        self.last = lst.loop.time()
        buf = self.buf + data if self.buf else data
        pos, end = 0, len(buf)
        try:
            while end - pos >= WRAPPER_HEADER:
                length = parse_wrapper_header(buf[pos : pos + WRAPPER_HEADER])
                if end - pos < WRAPPER_HEADER + length:
                    break
                apdu = buf[pos + WRAPPER_HEADER : pos + WRAPPER_HEADER + length]
                pos += WRAPPER_HEADER + length
                lst._received(system_title_of(apdu), apdu)
        except FrameError as exc:
            lst.stats.dropped_lines += 1
            log.info("push from %s dropped: %s", self.transport.get_extra_info("peername"), exc)
            self.buf = b""
            self.transport.close()
            return
        self.buf = buf[pos:] if pos < end else b""

    def eof_received(self):
        return False  # the meter hung up: close


class PushListener:
    """Accepts meters' pushes on ``host:port`` and forwards them to ``client.push_ingest``.

    client: anything with ``push_ingest(bridge_id, messages) -> [answer]`` (OdooClient); it is
    called in a worker thread, up to ``flushers`` batches at a time. Up to ``max_buffer``
    pushes wait for Odoo; beyond, the listener stops reading the meters' lines (TCP pushes
    back on the meters) until half of them are gone."""

    def __init__(
        self,
        client,
        bridge_id: str,
        host: str = "0.0.0.0",
        port: int = 4059,
        batch_size: int = 500,
        batch_wait_s: float = 0.05,
        idle_timeout_s: float = 3600.0,
        max_buffer: int = 50000,
        flushers: int = 2,
        retry_s: float = 1.0,
    ):
        self.client = client
        self.bridge_id = bridge_id
        self.host, self.port = host, port
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self.idle_timeout_s = idle_timeout_s
        self.max_buffer = max_buffer
        self.flushers = flushers
        self.retry_s = retry_s
        self.stats = ListenerStats()
        # one queue per flusher, a meter always in the same one: a meter's pushes reach Odoo
        # in order (its replay check refuses a counter below one accepted) and two batches
        # in flight never update the same meter row (no serialization failure)
        self.queues: list[collections.deque[dict]] = [collections.deque() for _ in range(flushers)]
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server = None
        self.lines: set[_MeterLine] = set()
        self._paused: set[_MeterLine] = set()
        self._arrived: list[asyncio.Event] = []
        self._busy = 0  # batches being handed to Odoo
        self._tasks: list[asyncio.Task] = []
        self._stopping = False

    # --- lifecycle ---
    async def start(self) -> PushListener:
        self.loop = asyncio.get_running_loop()
        self._arrived = [asyncio.Event() for _ in self.queues]
        self.server = await self.loop.create_server(
            lambda: _MeterLine(self), self.host, self.port, reuse_address=True, backlog=4096
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self._tasks = [asyncio.create_task(self._flush_loop(i)) for i in range(self.flushers)]
        self._tasks.append(asyncio.create_task(self._sweep_loop()))
        log.info("push listener on %s:%s (bridge %s)", self.host, self.port, self.bridge_id)
        return self

    async def stop(self, drain_s: float = 5.0) -> None:
        """Stop accepting, hand what was received to Odoo (up to ``drain_s``), stop."""
        self._stopping = True
        if self.server:
            self.server.close()
        for line in list(self.lines):
            line.transport.close()
        deadline = time.monotonic() + drain_s
        while (self.waiting() or self._busy) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def serve_forever(self, stop_event: asyncio.Event) -> None:
        await self.start()
        await stop_event.wait()
        await self.stop()

    # --- meters ---
    def _line_up(self, line: _MeterLine) -> None:
        s = self.stats
        if self._stopping:
            line.transport.close()
            return
        self.lines.add(line)
        s.connections = len(self.lines)
        s.connections_total += 1
        s.connections_max = max(s.connections_max, s.connections)
        if self.waiting() >= self.max_buffer:
            self._pause(line)

    def _line_down(self, line: _MeterLine) -> None:
        self.lines.discard(line)
        self._paused.discard(line)
        self.stats.connections = len(self.lines)

    def _pause(self, line: _MeterLine) -> None:
        if line not in self._paused and not line.transport.is_closing():
            line.transport.pause_reading()
            self._paused.add(line)

    def _received(self, title: str, apdu: bytes) -> None:
        self.stats.received += 1
        i = hash(title) % len(self.queues)
        self.queues[i].append(
            {
                "system_title": title,
                "apdu": apdu.hex(),
                "received_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            }
        )
        self._arrived[i].set()
        if self.waiting() >= self.max_buffer:  # Odoo is behind: stop reading
            for line in self.lines:
                self._pause(line)

    async def _sweep_loop(self) -> None:
        """Close the lines silent longer than the idle timeout (one pass for all lines)."""
        every = max(0.05, min(60.0, self.idle_timeout_s / 4))
        while True:
            await asyncio.sleep(every)
            oldest = self.loop.time() - self.idle_timeout_s
            for line in [ln for ln in self.lines if ln.last < oldest]:
                self.stats.idle_closed += 1
                line.transport.close()

    # --- Odoo ---
    def waiting(self) -> int:
        """Pushes received, not yet handed to Odoo."""
        return sum(len(q) for q in self.queues)

    async def _next_batch(self, i: int) -> list[dict]:
        pending = self.queues[i]
        while True:
            while not pending:
                self._arrived[i].clear()
                await self._arrived[i].wait()
            if len(pending) < self.batch_size and self.batch_wait_s > 0:
                await asyncio.sleep(self.batch_wait_s)  # let a burst fill the batch
            if pending:
                break
        batch = [pending.popleft() for _ in range(min(self.batch_size, len(pending)))]
        if self._paused and self.waiting() < self.max_buffer // 2:
            for line in self._paused:
                if not line.transport.is_closing():
                    line.transport.resume_reading()
            self._paused.clear()
        return batch

    async def _flush_loop(self, i: int) -> None:
        while True:
            batch = await self._next_batch(i)
            self._busy += 1
            try:
                answers = await self._hand_over(batch)
            finally:
                self._busy -= 1
            self.stats.batches += 1
            for msg, answer in zip(batch, answers or [], strict=False):
                if answer.get("ok"):
                    self.stats.accepted += 1
                else:
                    self.stats.refused += 1
                    reason = str(answer.get("error") or "refused")
                    self.stats.refusals[reason] = self.stats.refusals.get(reason, 0) + 1
                    log.info("push of %s refused: %s", msg["system_title"], reason)

    async def _hand_over(self, batch: list[dict]) -> list[dict]:
        while True:
            try:
                return await asyncio.to_thread(self.client.push_ingest, self.bridge_id, batch)
            except OdooUnreachable as exc:  # keep the batch, try again
                log.warning("Odoo unreachable, %s pushes kept: %s", len(batch), exc)
                await asyncio.sleep(self.retry_s)
            except OdooError as exc:  # the whole call refused: nothing to retry
                log.error("Odoo refused a batch of %s pushes: %s", len(batch), exc)
                return [{"ok": False, "error": str(exc)} for _ in batch]


def run(settings, listen: str) -> int:
    """``meter-bridge listen``: serve until SIGTERM / Ctrl-C."""
    import signal

    from .odoo_client import OdooClient

    host, _, port = listen.rpartition(":")
    client = OdooClient(
        settings.odoo_url,
        settings.db,
        settings.login,
        settings.api_key,
        timeout=settings.rpc_timeout,
    )

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        listener = PushListener(client, settings.bridge_id, host or "0.0.0.0", int(port))
        await listener.serve_forever(stop)

    asyncio.run(main())
    return 0
