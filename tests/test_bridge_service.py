"""The bridge's worker loop against a fake Odoo, with fake executors (no meters)."""

import threading
import time

import pytest

from meter_bridge.errors import JobError, MeterRefused
from meter_bridge.odoo_client import OdooAuthError, OdooUnreachable
from meter_bridge.service import BridgeService, HeldJob

try:
    from test_bridge_service_fakes import (
        expire_lease,
        fake_odoo,
        free_port,
        running,
        settings_for,
        wait_until,
    )
except ImportError:  # tests/ turned into a package
    from tests.test_bridge_service_fakes import (
        expire_lease,
        fake_odoo,
        free_port,
        running,
        settings_for,
        wait_until,
    )

pytestmark = pytest.mark.timeout(30)


def echo_executor(job, *, deadline_s=None):
    return {"meter_time": "2025-01-01T00:00:00+00:00", "job": job["id"], "deadline_s": deadline_s}


def test_jobs_are_claimed_and_completed_with_the_executor_result():
    with fake_odoo() as odoo:
        ids = [odoo.add_job("ping", serial=f"SIM0000{i}") for i in range(5)]
        with running(settings_for(odoo.url), echo_executor):
            assert wait_until(lambda: all(odoo.state(i) == "done" for i in ids))
        for job_id in ids:
            job = odoo.job(job_id)
            assert job["result"] == {
                "meter_time": "2025-01-01T00:00:00+00:00",
                "job": job_id,
                "deadline_s": 5.0,
            }
            assert job["attempt_count"] == 1
        # Never more in flight than the free worker slots.
        assert all(args[1] <= 2 for args in odoo.calls_of("claim"))


def test_non_retryable_job_error_is_reported_as_final_failure():
    def refuse(job, *, deadline_s=None):
        raise MeterRefused("read-write-denied", code=3)

    with fake_odoo() as odoo:
        job_id = odoo.add_job("set_load_limit", {"load_limit_w": 5000})
        with running(settings_for(odoo.url), refuse):
            assert wait_until(lambda: odoo.state(job_id) == "failed")
        assert odoo.calls_of("fail") == [[job_id, "bridge-1", "read-write-denied", False]]
        assert odoo.job(job_id)["error"] == "read-write-denied"


def test_failed_hls_job_reports_the_invocation_counter_it_used():
    def refuse_after_association(job, *, deadline_s=None):
        exc = MeterRefused("temporary-failure", code=2)
        exc.invocation_counter = 4711
        raise exc

    with fake_odoo() as odoo:
        job_id = odoo.add_job("reconnect")
        with running(settings_for(odoo.url), refuse_after_association):
            assert wait_until(lambda: odoo.state(job_id) == "failed")
        assert odoo.calls_of("fail") == [[job_id, "bridge-1", "temporary-failure", False, 4711]]
        assert odoo.job(job_id)["meter"]["invocation_counter"] == 4711


def test_retryable_and_unexpected_errors_are_reported_retryable():
    def flaky(job, *, deadline_s=None):
        if job["payload"]["kind"] == "timeout":
            raise JobError("no answer from meter", retryable=True)
        raise KeyError("bug")

    with fake_odoo() as odoo:
        a = odoo.add_job("ping", {"kind": "timeout"})
        b = odoo.add_job("ping", {"kind": "bug"})
        with running(settings_for(odoo.url), flaky):
            assert wait_until(lambda: len(odoo.calls_of("fail")) == 2)
        fails = {args[0]: args for args in odoo.calls_of("fail")}
        assert fails[a][2:] == ["no answer from meter", True]
        assert fails[b][3] is True and "KeyError" in fails[b][2]
        assert odoo.state(a) == odoo.state(b) == "pending"


def test_bridge_backs_off_while_odoo_is_down_and_proceeds_when_it_comes_up():
    port = free_port()
    with fake_odoo() as odoo:
        odoo.stop()
        job_id = odoo.add_job("ping")
        with running(settings_for(f"http://127.0.0.1:{port}"), echo_executor) as service:
            time.sleep(1.2)
            errors = service.stats["odoo_errors"]
            # Backing off: a few attempts, not a busy loop.
            assert 2 <= errors <= 8
            odoo.start(port)
            assert wait_until(lambda: odoo.state(job_id) == "done")


def test_result_that_could_not_be_reported_is_reported_when_odoo_returns():
    release = threading.Event()
    started = threading.Event()

    def blocking(job, *, deadline_s=None):
        started.set()
        release.wait(10)
        return {"relay": "disconnected", "control_state": 0}

    with fake_odoo() as odoo:
        job_id = odoo.add_job("disconnect")
        with running(settings_for(odoo.url), blocking) as service:
            assert started.wait(5)
            odoo.stop()
            release.set()
            assert wait_until(lambda: service.stats["odoo_errors"] >= 2)
            assert odoo.state(job_id) == "claimed"
            odoo.start()
            assert wait_until(lambda: odoo.state(job_id) == "done")
        assert odoo.job(job_id)["result"] == {"relay": "disconnected", "control_state": 0}
        assert len(odoo.calls_of("complete")) >= 1


def test_leases_are_extended_while_a_long_job_runs():
    def slow(job, *, deadline_s=None):
        time.sleep(3.5)
        return {"meter_time": "now"}

    with fake_odoo() as odoo:
        job_id = odoo.add_job("read")
        with running(settings_for(odoo.url, lease_seconds=2), slow):
            assert wait_until(lambda: odoo.state(job_id) == "done", timeout=8)
        # Without renewals the 2 s lease would lapse and the result be refused.
        assert len(odoo.calls_of("extend_lease")) >= 2
        assert odoo.job(job_id)["attempt_count"] == 1


def test_backoff_from_an_unreachable_odoo_stays_within_the_lease_of_running_jobs():
    """Odoo away (restarting) while a job runs: the lease runs on in Odoo, so the bridge
    tries again in time to renew it however long its back-off has grown; an idle bridge
    backs off as far as backoff_max."""
    settings = settings_for("http://127.0.0.1:9", lease_seconds=12, backoff_max=30.0)
    service = BridgeService(settings, client=object(), executor=echo_executor, rng=lambda: 1.0)
    down = OdooUnreachable("connection refused")
    for _ in range(8):
        service._mark_down(100.0, down)
    assert service._down_until == 130.0  # idle: the full back-off
    service._held[1] = HeldJob({"id": 1})
    service._mark_down(100.0, down)
    assert service._down_until == 102.0  # half the renewal interval (12 s / 3 / 2)
    service._mark_down(100.0, OdooAuthError("bad key"), auth=True)
    assert service._down_until == 130.0  # a wrong key is not fixed by trying sooner


def gated_executor(gate):
    """An executor that holds jobs whose payload says "gate" until ``gate`` is set."""

    def gated(job, *, deadline_s=None):
        if job["payload"].get("gate"):
            gate.wait(10)
        return {"ok": True}

    return gated


def test_idle_bridge_is_woken_by_long_poll():
    with fake_odoo() as odoo:
        with running(settings_for(odoo.url, poll_interval=30, long_poll_timeout=10), echo_executor):
            time.sleep(0.5)
            job_id = odoo.add_job("ping")
            assert wait_until(lambda: odoo.state(job_id) == "done", timeout=2)
        assert odoo.calls_of("wait_for_jobs")


def test_next_purchase_is_taken_without_waiting_out_the_poll_gap(monkeypatch):
    # The gap between long-polls stops a server that answers at once from spinning the
    # bridge; after a wake-up that brought a job, the next long-poll starts at once (the gap
    # held each purchase after the first back by up to a second).
    monkeypatch.setattr("meter_bridge.service.MIN_POLL_GAP", 60.0)
    with fake_odoo() as odoo:
        with running(settings_for(odoo.url, poll_interval=60, long_poll_timeout=20), echo_executor):
            time.sleep(0.3)
            first = odoo.add_job("add_credit")
            assert wait_until(lambda: odoo.state(first) == "done", timeout=5)
            second = odoo.add_job("add_credit", serial="SIM00002")
            assert wait_until(lambda: odoo.state(second) == "done", timeout=5)
        assert len(odoo.calls_of("wait_for_jobs")) >= 2


def test_busy_bridge_takes_new_jobs_without_holding_a_long_poll():
    # In prefork Odoo a long-poll holds a whole worker: only an idle bridge may wait in one.
    gate = threading.Event()
    gated = gated_executor(gate)

    with fake_odoo() as odoo:
        long_job = odoo.add_job("read", {"gate": True})
        settings = settings_for(odoo.url, poll_interval=30, long_poll_timeout=10)
        try:
            with running(settings, gated):
                assert wait_until(lambda: odoo.state(long_job) == "claimed")
                time.sleep(0.3)
                vend = odoo.add_job("add_credit", serial="SIM00002")
                assert wait_until(lambda: odoo.state(vend) == "done", timeout=3)
                assert odoo.calls_of("wait_for_jobs") == []
                gate.set()
                assert wait_until(lambda: odoo.state(long_job) == "done")
        finally:
            gate.set()


def test_bridge_polls_when_odoo_has_no_long_poll():
    with fake_odoo() as odoo:
        odoo.has_wait_for_jobs = False
        with running(settings_for(odoo.url, poll_interval=0.3), echo_executor):
            time.sleep(0.5)
            job_id = odoo.add_job("ping")
            assert wait_until(lambda: odoo.state(job_id) == "done", timeout=3)


def test_refused_report_is_dropped_and_the_bridge_goes_on():
    gate = threading.Event()
    gated = gated_executor(gate)

    with fake_odoo() as odoo:
        lost = odoo.add_job("ping", {"gate": True})
        with running(settings_for(odoo.url), gated) as service:
            assert wait_until(lambda: odoo.state(lost) == "claimed")
            expire_lease(odoo, lost)
            gate.set()
            assert wait_until(lambda: service.stats["reports_refused"] == 1)
            later = odoo.add_job("ping")
            assert wait_until(lambda: odoo.state(later) == "done")
        assert odoo.job(lost)["bridge_id"] == "other-bridge"


def test_stop_finishes_running_jobs_and_releases_unstarted_ones():
    started = threading.Event()

    def slow(job, *, deadline_s=None):
        started.set()
        time.sleep(0.8)
        return {"job": job["id"]}

    with fake_odoo() as odoo:
        ids = [odoo.add_job("ping") for _ in range(3)]
        service = BridgeService(settings_for(odoo.url, concurrency=1, prefetch=2), executor=slow)
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        try:
            assert started.wait(5)
            service.request_stop()
            thread.join(10)
        finally:
            service.request_stop(now=True)
            thread.join(5)
        assert not thread.is_alive()
        assert service.exit_code == 0
        states = sorted(odoo.state(i) for i in ids)
        assert states == ["done", "pending", "pending"]
        released = [i for i in ids if odoo.state(i) == "pending"]
        assert all(odoo.job(i)["attempt_count"] == 0 for i in released)


def test_lease_of_a_job_stuck_past_its_deadline_is_left_to_lapse():
    release = threading.Event()

    def stuck(job, *, deadline_s=None):
        release.wait(10)  # ignores its deadline, like a hung socket
        return {"late": True}

    with fake_odoo() as odoo:
        job_id = odoo.add_job("ping")
        settings = settings_for(odoo.url, lease_seconds=2, job_timeout=0.2, concurrency=1)
        try:
            with running(settings, stuck) as service:
                assert wait_until(lambda: odoo.state(job_id) == "claimed")
                assert wait_until(lambda: odoo.job(job_id)["lease_until"] < time.time(), 8)
                assert service.stats["overdue"] == 1
                release.set()
        finally:
            release.set()


def test_finished_jobs_wake_the_loop_only_when_it_has_work_to_do():
    now = [100.0]
    service = BridgeService(
        settings_for("http://odoo.invalid", concurrency=8, prefetch=8),
        executor=echo_executor,
        clock=lambda: now[0],
    )
    service._armed_until = now[0] + 0.02  # the loop wakes by itself in 20 ms
    for _ in range(service._wake_batch - 1):
        service._job_finished(None)
        assert not service._wake.is_set()
    service._job_finished(None)  # a batch of results: worth a wake
    assert service._wake.is_set()

    service._wake.clear()
    service._collect_finished(now[0])
    service._armed_until = now[0] + 30.0  # asleep for long: a lone result must wake it
    service._job_finished(None)
    assert service._wake.is_set()

    no_prefetch = BridgeService(
        settings_for("http://odoo.invalid", concurrency=8), executor=echo_executor
    )
    no_prefetch._armed_until = no_prefetch._clock() + 0.02
    no_prefetch._job_finished(None)  # a free worker wants a claim at once
    assert no_prefetch._wake.is_set()


def test_running_job_sees_its_lease_end_renewed_and_lost():
    """The executor finds where its lease ends on the job (lease_deadline, time.monotonic):
    set at claim, moved on by each renewal, gone (-inf) once Odoo says the lease is lost, so
    that a credit token is never sent after it."""
    seen, gate = [], threading.Event()

    def watch(job, *, deadline_s=None):
        seen.append(job["lease_deadline"] - time.monotonic())
        gate.wait(10)
        seen.append(job["lease_deadline"] - time.monotonic())
        return {"ok": True}

    with fake_odoo() as odoo:
        job_id = odoo.add_job("add_credit")
        with running(settings_for(odoo.url, lease_seconds=3), watch) as service:
            assert wait_until(lambda: seen, timeout=5)
            assert 2.0 < seen[0] <= 3.0
            # a renewal keeps it about 3 s ahead
            assert wait_until(lambda: len(odoo.calls_of("extend_lease")) >= 2, timeout=5)
            expire_lease(odoo, job_id)  # another bridge took it: the next renewal says so
            calls = len(odoo.calls_of("extend_lease"))
            assert wait_until(lambda: len(odoo.calls_of("extend_lease")) > calls, timeout=5)
            # the call is recorded when it arrives: wait for the bridge to read its answer
            assert wait_until(lambda: service._held[job_id].lease_lost, timeout=5)
            gate.set()
            assert wait_until(lambda: len(seen) == 2, timeout=5)
    assert seen[1] == float("-inf")


def test_a_run_handed_back_its_own_expired_claim_reports_for_the_new_attempt():
    """The lease of a running job lapses and Odoo hands the job back to this same bridge
    (attempt 2) while the first run goes on: that run's report names attempt 2, so Odoo
    takes it, once; a report naming attempt 1 would be refused as of a claim that is over."""
    release = threading.Event()

    def blocking(job, *, deadline_s=None):
        release.wait(10)
        return echo_executor(job, deadline_s=deadline_s)

    with fake_odoo() as odoo:
        job_id = odoo.add_job()
        with running(settings_for(odoo.url, lease_seconds=10), blocking):
            assert wait_until(lambda: odoo.state(job_id) == "claimed", timeout=5)
            # right after a renewal: the claim (every BUSY_POLL) comes before the next one,
            # which would re-take the lapsed lease for attempt 1 instead
            assert wait_until(lambda: odoo.calls_of("extend_lease"), timeout=6)
            with odoo.cond:
                odoo.jobs[job_id]["lease_until"] = time.time() - 1  # lapsed, still ours
            assert wait_until(lambda: odoo.job(job_id)["attempt_count"] == 2, timeout=5)
            release.set()
            assert wait_until(lambda: odoo.state(job_id) == "done", timeout=5)
        reports = [args for name, args in odoo.calls if name == "report"]
    sent = [r for _bridge, batch in reports for r in batch if r["job_id"] == job_id]
    assert [r.get("attempt") for r in sent] == [2]
    assert len(odoo.calls_of("complete")) == 1
