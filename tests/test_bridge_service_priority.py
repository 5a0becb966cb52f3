"""The bridge's worker queue: a credit job claimed while a reading round fills every worker
runs before the reads waiting ahead of it (meter_bridge.service.PriorityPool)."""

import threading
import time

import pytest

from meter_bridge.service import BridgeService, PriorityPool, job_rank

try:
    from test_bridge_service_fakes import fake_odoo, gated_executor, settings_for, wait_until
except ImportError:  # tests/ turned into a package
    from tests.test_bridge_service_fakes import (
        fake_odoo,
        gated_executor,
        settings_for,
        wait_until,
    )

pytestmark = pytest.mark.timeout(60)
READS = 30


def slow_executor(job, *, deadline_s=None):
    time.sleep(0.15)  # a round trip to a slow meter
    return {"meter_time": "2025-01-01T00:00:00+00:00", "job": job["id"]}


def round_settings(url, **overrides):
    """Two workers and room to claim a whole reading round ahead of them."""
    values = dict(prefetch=40, batch_size=50, lease_seconds=30, log_level="WARNING")
    values.update(overrides)
    return settings_for(url, **values)


def test_a_credit_job_queued_during_a_reading_round_is_delivered_before_it_ends():
    with fake_odoo() as odoo:
        settings = round_settings(odoo.url)
        reads = [odoo.add_job("read", {"objects": []}, serial=f"R{i}") for i in range(READS)]
        service = BridgeService(settings, executor=slow_executor)
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        try:
            # the whole round is claimed: its reads wait in the bridge for the two workers
            assert wait_until(lambda: all(odoo.state(j) != "pending" for j in reads), timeout=10)
            credit = odoo.add_job("add_credit", {"token": "00", "kwh": 1}, serial="C1")
            assert wait_until(lambda: odoo.state(credit) == "done", timeout=30)
            reads_done = sum(odoo.state(j) == "done" for j in reads)
            assert wait_until(lambda: all(odoo.state(j) == "done" for j in reads), timeout=30)
        finally:
            service.request_stop()
            thread.join(10)
        order = [args[0] for args in odoo.calls_of("complete")]
    # FIFO would run it after all 30 reads; it waits for a worker and a claim only
    assert reads_done < READS - 10, order
    assert order.index(credit) < len(order) - 10


def test_pool_runs_the_lowest_rank_first_and_cancels_waiting_calls():
    pool = PriorityPool(1)
    gate, ran = threading.Event(), []
    first = pool.submit(gate.wait, rank=5)  # takes the only worker
    waiting = [
        pool.submit(ran.append, name, rank=rank)
        for name, rank in (("read-a", 51), ("read-b", 51), ("credit", 0), ("dropped", 51))
    ]
    assert waiting[3].cancel()
    gate.set()
    for f in waiting[:3]:
        f.result(5)
    assert first.result(5) is True
    assert ran == ["credit", "read-a", "read-b"]
    failing = pool.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(5)
    pool.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        pool.submit(ran.append, "late")


def test_job_rank_puts_credit_first_then_odoo_priority():
    credit = {"job_type": "add_credit", "priority": 10}
    assert job_rank(credit) < job_rank({"job_type": "read", "priority": -1000})
    # among credit jobs too, Odoo's priority decides
    assert job_rank({"job_type": "take_emergency_credit", "priority": 5}) < job_rank(credit)
    assert job_rank({"job_type": "read", "priority": -1000}) < job_rank({"job_type": "read"})
    assert job_rank({"job_type": "read", "priority": 20}) < job_rank({"job_type": "read"})
    assert job_rank({"job_type": "read", "priority": "x"}) == job_rank({"job_type": "read"})
    assert job_rank({"job_type": "read", "priority": True}) == job_rank({"job_type": "read"})


def test_a_batch_submitted_to_a_pool_with_one_idle_thread_runs_all_at_once():
    pool = PriorityPool(4)
    pool.submit(lambda: None).result(5)  # one thread started, now idle
    assert wait_until(lambda: pool._idle == 1)
    # every call waits for all four: they finish only if four threads run them together
    barrier = threading.Barrier(4, timeout=10)
    futures = [pool.submit(barrier.wait) for _ in range(4)]
    assert sorted(f.result(15) for f in futures) == [0, 1, 2, 3]
    assert not barrier.broken
    assert len(pool._threads) == 4
    pool.shutdown(wait=True)


def test_the_bridge_runs_waiting_jobs_by_the_priority_odoo_sends():
    gate, started, order = threading.Event(), threading.Event(), []

    def executor(job, *, deadline_s=None):
        if job["payload"].get("gate"):
            started.set()
            gate.wait(10)
        order.append(job["id"])
        return {"meter_time": "2025-01-01T00:00:00+00:00"}

    with fake_odoo() as odoo:
        first = odoo.add_job("read", {"gate": True}, serial="G")
        # no credit lane: the credit job waits for the worker, ahead of the reads
        settings = round_settings(odoo.url, concurrency=1, credit_lane=0)
        service = BridgeService(settings, executor=executor)
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        try:
            assert started.wait(10)  # the only worker is busy
            later = [odoo.add_job("read", serial=f"R{i}", priority=50) for i in range(3)]
            urgent = odoo.add_job("read", serial="U", priority=20)
            credit = odoo.add_job("add_credit", {"token": "00"}, serial="C", priority=10)
            jobs = [*later, urgent, credit]
            # all claimed (in id order) while the worker is still busy
            assert wait_until(lambda: all(odoo.state(j) == "claimed" for j in jobs), timeout=10)
            gate.set()
            assert wait_until(lambda: all(odoo.state(j) == "done" for j in jobs), timeout=10)
        finally:
            service.request_stop()
            thread.join(10)
    assert order == [first, credit, urgent, *later]


def test_pool_runs_an_urgent_call_on_a_reserved_thread_while_every_worker_is_busy():
    pool = PriorityPool(2, reserved=1)
    gate, ran = threading.Event(), []
    busy = [pool.submit(gate.wait, rank=51) for _ in range(2)]  # both workers
    waiting = pool.submit(ran.append, "read", rank=51)
    urgent = pool.submit(ran.append, "credit", rank=0, urgent=True)
    urgent.result(5)  # while both workers still wait on the gate
    assert ran == ["credit"] and not waiting.done()
    # the reserved thread, free again, is not for the waiting read either
    assert wait_until(lambda: pool._idle == 1)
    assert not waiting.done()
    gate.set()
    waiting.result(5)
    assert ran == ["credit", "read"] and all(f.result(5) for f in busy)
    assert len(pool._threads) == 3
    pool.shutdown(wait=True)


def test_a_credit_job_claimed_while_every_worker_reads_starts_before_any_further_read():
    executor, gate, reading, order = gated_executor()
    with fake_odoo() as odoo:
        first = odoo.add_job("read", {"gate": True}, serial="G")
        settings = round_settings(odoo.url, concurrency=1, prefetch=3, credit_lane=1)
        service = BridgeService(settings, executor=executor)
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        try:
            assert reading.wait(10)  # the only worker is busy
            reads = [odoo.add_job("read", serial=f"R{i}") for i in range(3)]
            assert wait_until(lambda: all(odoo.state(j) == "claimed" for j in reads), timeout=10)
            credit = odoo.add_job("add_credit", {"token": "00"}, serial="C", priority=10)
            # delivered on the credit lane while the worker still reads and reads wait
            assert wait_until(lambda: odoo.state(credit) == "done", timeout=10)
            assert odoo.state(first) == "claimed"
            assert all(odoo.state(j) == "claimed" for j in reads)
            gate.set()
            assert wait_until(lambda: all(odoo.state(j) == "done" for j in reads), timeout=10)
        finally:
            gate.set()
            service.request_stop()
            thread.join(10)
    assert order == [credit, first, *reads]
