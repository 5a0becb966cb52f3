"""The bridge's worker queue: a credit job claimed while a reading round fills every worker
runs before the reads waiting ahead of it (meter_bridge.service.PriorityPool)."""

import threading
import time

import pytest

from meter_bridge.config import Settings
from meter_bridge.service import BridgeService, PriorityPool, job_rank

try:
    from test_bridge_service_fakes import fake_odoo, wait_until
except ImportError:  # tests/ turned into a package
    from tests.test_bridge_service_fakes import fake_odoo, wait_until

pytestmark = pytest.mark.timeout(60)
READS = 30


def slow_executor(job, *, deadline_s=None):
    time.sleep(0.15)  # a round trip to a slow meter
    return {"meter_time": "2025-01-01T00:00:00+00:00", "job": job["id"]}


def settings_for(url):
    return Settings(
        odoo_url=url,
        db="testdb",
        login="bridge",
        api_key="secret",
        bridge_id="bridge-1",
        concurrency=2,
        prefetch=40,
        batch_size=50,
        poll_interval=0.2,
        long_poll_timeout=1.0,
        lease_seconds=30,
        job_timeout=5.0,
        rpc_timeout=2.0,
        grace_seconds=5.0,
        backoff_max=0.4,
        log_level="WARNING",
        log_format="text",
    )


def test_a_credit_job_queued_during_a_reading_round_is_delivered_before_it_ends():
    with fake_odoo() as odoo:
        settings = settings_for(odoo.url)
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
    assert job_rank({"job_type": "add_credit"}) < job_rank({"job_type": "read", "priority": 0})
    assert job_rank({"job_type": "read", "priority": 20}) < job_rank({"job_type": "read"})
    assert job_rank({"job_type": "read", "priority": "x"}) == job_rank({"job_type": "read"})
