"""The bridge's push listener (meter_bridge/listener.py): many simulated meters pushing at
once, their ciphered DataNotifications forwarded to Odoo (a fake here) in batches; what is
not a ciphered push is dropped before Odoo; a batch Odoo could not take is kept and sent
again. Authentication, decryption and replay refusals are Odoo's (push_ingest):
smartpm_prepay/tests/test_push.py and tests/test_e2e_push.py."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest
from dlms_cosem import security
from dlms_cosem.protocol import xdlms
from odoo_e2e import wait_until

from meter_bridge import codec
from meter_bridge.listener import PushListener, system_title_of
from meter_bridge.odoo_client import OdooUnreachable
from meter_sim.model import MeterConfig

pytestmark = pytest.mark.timeout(60)


class FakeOdoo:
    def __init__(self, fail_first=0, answer_ok=True):
        self.batches = []
        self.fail_first = fail_first
        self.answer_ok = answer_ok
        self.lock = threading.Lock()

    def push_ingest(self, bridge_id, messages):
        with self.lock:
            if self.fail_first:
                self.fail_first -= 1
                raise OdooUnreachable("connection refused")
            self.batches.append((bridge_id, list(messages)))
        if self.answer_ok:
            return [{"ok": True} for _ in messages]
        return [{"ok": False, "error": "push not authenticated"} for _ in messages]

    def messages(self):
        with self.lock:
            return [m for _b, batch in self.batches for m in batch]


@pytest.fixture
def listener():
    """listener(client) -> a PushListener served on a thread's event loop."""
    loops = []

    def make(client, **kwargs):
        kwargs.setdefault("retry_s", 0.05)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        lst = PushListener(client, "listener-1", "127.0.0.1", 0, **kwargs)
        asyncio.run_coroutine_threadsafe(lst.start(), loop).result(10)
        loops.append((loop, thread, lst))
        return lst

    try:
        yield make
    finally:
        for loop, thread, lst in loops:
            asyncio.run_coroutine_threadsafe(lst.stop(drain_s=0), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)


def decode(message, cfg):
    apdu = bytes.fromhex(message["apdu"])
    g = xdlms.GeneralGlobalCipher.from_bytes(apdu)
    plain = security.decrypt(
        security_control=g.security_control,
        system_title=g.system_title,
        invocation_counter=g.invocation_counter,
        key=bytes.fromhex(cfg.encryption_key),
        auth_key=bytes.fromhex(cfg.authentication_key),
        cipher_text=g.ciphered_text,
    )
    return codec.decode_data(xdlms.DataNotification.from_bytes(plain).body)


def test_many_meters_push_at_once_and_reach_odoo_in_batches(listener, sim_fleet):
    odoo = FakeOdoo()
    lst = listener(odoo)
    n = 40
    configs = [
        MeterConfig(f"PSH{i:05d}", push_destination=f"127.0.0.1:{lst.port}") for i in range(n)
    ]
    fleet = sim_fleet(*configs)
    for cfg in configs:
        fleet.meter(cfg.serial).tamper("cover_open")
    wait_until(lambda: len(odoo.messages()) >= n, 30, 0.05, "every push forwarded")
    by_title = {m["system_title"]: m for m in odoo.messages()}
    assert len(by_title) == n == len(odoo.messages())
    from meter_sim.server import system_title

    for cfg in configs:
        body = decode(by_title[system_title(cfg).hex().upper()], cfg)
        assert bytes(body[1]) == cfg.serial.encode() and body[3] == 40
    assert len(odoo.batches) < n  # batched, not one call per push
    assert {b for b, _m in odoo.batches} == {"listener-1"}
    # the meters keep their lines open (as GPRS meters do): the listener holds them all
    wait_until(lambda: lst.stats.connections == n, 10, 0.05, "connections held")
    assert lst.stats.accepted == n and lst.stats.refused == 0


def test_what_is_not_a_ciphered_push_is_dropped_before_odoo(listener):
    odoo = FakeOdoo()
    lst = listener(odoo)
    plain_notification = bytes.fromhex(
        "0f4000000100020209085349 4d3030303031 1128".replace(" ", "")
    )
    with socket.create_connection(("127.0.0.1", lst.port), timeout=5) as s:
        s.sendall(
            bytes.fromhex("000100010066")
            + len(plain_notification).to_bytes(2, "big")
            + plain_notification
        )
        assert s.recv(10) == b""  # the listener hung up
    with socket.create_connection(("127.0.0.1", lst.port), timeout=5) as s:
        s.sendall(bytes.fromhex("0002000100660005") + b"hello")  # wrong wrapper version
        assert s.recv(10) == b""
    assert lst.stats.dropped_lines == 2
    assert odoo.messages() == [] and lst.stats.received == 0


def test_a_batch_odoo_could_not_take_is_sent_again_once(listener, sim_fleet):
    odoo = FakeOdoo(fail_first=2)
    lst = listener(odoo)
    cfg = MeterConfig("SIM00001", push_destination=f"127.0.0.1:{lst.port}")
    fleet = sim_fleet(cfg)
    fleet.meter("SIM00001").tamper("reverse_connection")
    wait_until(lambda: odoo.messages(), 10, 0.05, "the push forwarded")
    wait_until(lambda: lst.stats.accepted == 1, 10, 0.05)
    assert len(odoo.messages()) == 1 and odoo.fail_first == 0
    assert decode(odoo.messages()[0], cfg)[3] == 92


def test_refusals_are_counted_by_reason(listener, sim_fleet):
    odoo = FakeOdoo(answer_ok=False)
    lst = listener(odoo)
    fleet = sim_fleet(MeterConfig("SIM00001", push_destination=f"127.0.0.1:{lst.port}"))
    fleet.meter("SIM00001").tamper("cover_open")
    wait_until(lambda: lst.stats.refused == 1, 10, 0.05)
    assert lst.stats.refusals == {"push not authenticated": 1} and lst.stats.accepted == 0


def test_system_title_of_a_general_glo_ciphering_apdu():
    apdu = bytes.fromhex("db0853494d3030303031253000000005") + bytes(20)
    assert system_title_of(apdu) == b"SIM00001".hex().upper()


class SlowOdoo(FakeOdoo):
    """push_ingest waits until ``go`` is set: Odoo behind."""

    def __init__(self):
        super().__init__()
        self.go = threading.Event()

    def push_ingest(self, bridge_id, messages):
        self.go.wait(30)
        return super().push_ingest(bridge_id, messages)


def push_frame(n: int, title: bytes = b"SIM00001") -> bytes:
    """A wrapper frame of the shape of a ciphered push (the listener checks no more)."""
    apdu = bytes([0xDB, 8]) + title + bytes([20, 0x30]) + n.to_bytes(4, "big") + bytes(15)
    return bytes.fromhex("000100010066") + len(apdu).to_bytes(2, "big") + apdu


def test_odoo_behind_pauses_the_meters_lines_and_loses_nothing(listener):
    odoo = SlowOdoo()
    lst = listener(odoo, max_buffer=5, batch_size=2, flushers=1, batch_wait_s=0)
    with socket.create_connection(("127.0.0.1", lst.port), timeout=5) as s:
        for n in range(30):
            s.sendall(push_frame(n))
            if n < 15:
                threading.Event().wait(0.02)  # separate reads while the buffer fills
        wait_until(lambda: lst.stats.received >= 5, 10, 0.02, "the buffer full")
        # the listener reads no more from the meters while Odoo is behind: TCP holds the rest
        assert lst.stats.received < 30
        odoo.go.set()
        wait_until(lambda: lst.stats.accepted == 30, 20, 0.05, "every push forwarded")
    counters = [int(m["apdu"][24:32], 16) for m in odoo.messages()]
    assert counters == list(range(30))  # each once, in order


def test_a_silent_line_is_closed_after_the_idle_timeout(listener):
    lst = listener(FakeOdoo(), idle_timeout_s=0.3)
    with socket.create_connection(("127.0.0.1", lst.port), timeout=10) as s:
        wait_until(lambda: lst.stats.connections == 1, 5, 0.02)
        assert s.recv(10) == b""  # the listener hung up
    wait_until(lambda: lst.stats.connections == 0, 5, 0.02)
    assert lst.stats.idle_closed == 1


def test_a_meters_pushes_reach_odoo_in_order_whatever_the_flushers(listener):
    odoo = FakeOdoo()
    lst = listener(odoo, batch_size=3, flushers=4, batch_wait_s=0)
    titles = [f"SIM{i:05d}".encode() for i in range(6)]
    lines = [socket.create_connection(("127.0.0.1", lst.port), timeout=5) for _ in titles]
    for n in range(20):
        for line, title in zip(lines, titles, strict=True):
            line.sendall(push_frame(n, title))
    wait_until(lambda: lst.stats.accepted == 120, 20, 0.05, "every push forwarded")
    for line in lines:
        line.close()
    by_title = {}
    for m in odoo.messages():
        by_title.setdefault(m["system_title"], []).append(int(m["apdu"][24:32], 16))
    # Odoo refuses a counter below one it accepted: each meter's in the order it sent them
    assert by_title == {t.hex().upper(): list(range(20)) for t in titles}
