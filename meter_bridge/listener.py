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
    refusals: dict = field(default_factory=dict)


class PushListener:
    """Accepts meters' pushes on ``host:port`` and forwards them to ``client.push_ingest``.

    client: anything with ``push_ingest(bridge_id, messages) -> [answer]`` (OdooClient); it is
    called in a worker thread, up to ``flushers`` batches at a time."""

    def __init__(
        self,
        client,
        bridge_id: str,
        host: str = "0.0.0.0",
        port: int = 4059,
        batch_size: int = 200,
        batch_wait_s: float = 0.02,
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
        self.queue: asyncio.Queue | None = None
        self.server = None
        self._tasks: list[asyncio.Task] = []
        self._stopping = False

    # --- lifecycle ---
    async def start(self) -> PushListener:
        self.queue = asyncio.Queue(self.max_buffer)
        self.server = await asyncio.start_server(
            self._handle, self.host, self.port, reuse_address=True, backlog=4096
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self._tasks = [asyncio.create_task(self._flush_loop()) for _ in range(self.flushers)]
        log.info("push listener on %s:%s (bridge %s)", self.host, self.port, self.bridge_id)
        return self

    async def stop(self, drain_s: float = 5.0) -> None:
        """Stop accepting, hand what was received to Odoo (up to ``drain_s``), stop."""
        self._stopping = True
        if self.server:
            self.server.close()
        deadline = time.monotonic() + drain_s
        while self.queue is not None and not self.queue.empty() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def serve_forever(self, stop_event: asyncio.Event) -> None:
        await self.start()
        await stop_event.wait()
        await self.stop()

    # --- meters ---
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        s = self.stats
        s.connections += 1
        s.connections_total += 1
        s.connections_max = max(s.connections_max, s.connections)
        peer = writer.get_extra_info("peername")
        try:
            while not self._stopping:
                head = await asyncio.wait_for(
                    reader.readexactly(WRAPPER_HEADER), self.idle_timeout_s
                )
                apdu = await asyncio.wait_for(
                    reader.readexactly(parse_wrapper_header(head)), self.idle_timeout_s
                )
                title = system_title_of(apdu)
                s.received += 1
                await self.queue.put(
                    {
                        "system_title": title,
                        "apdu": apdu.hex(),
                        "received_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                    }
                )
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError):
            pass  # the meter hung up, or went silent for too long
        except FrameError as exc:
            s.dropped_lines += 1
            log.info("push from %s dropped: %s", peer, exc)
        finally:
            s.connections -= 1
            writer.close()

    # --- Odoo ---
    async def _next_batch(self) -> list[dict]:
        batch = [await self.queue.get()]
        deadline = time.monotonic() + self.batch_wait_s
        while len(batch) < self.batch_size:
            try:
                batch.append(self.queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), left))
            except asyncio.TimeoutError:
                break
        return batch

    async def _flush_loop(self) -> None:
        while True:
            batch = await self._next_batch()
            while True:
                try:
                    answers = await asyncio.to_thread(
                        self.client.push_ingest, self.bridge_id, batch
                    )
                    break
                except OdooUnreachable as exc:  # keep the batch, try again
                    log.warning("Odoo unreachable, %s pushes kept: %s", len(batch), exc)
                    await asyncio.sleep(self.retry_s)
                except OdooError as exc:  # the whole call refused: nothing to retry
                    log.error("Odoo refused a batch of %s pushes: %s", len(batch), exc)
                    answers = [{"ok": False, "error": str(exc)} for _ in batch]
                    break
            for msg, answer in zip(batch, answers or [], strict=False):
                if answer.get("ok"):
                    self.stats.accepted += 1
                else:
                    self.stats.refused += 1
                    reason = str(answer.get("error") or "refused")
                    self.stats.refusals[reason] = self.stats.refusals.get(reason, 0) + 1
                    log.info("push of %s refused: %s", msg["system_title"], reason)


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
