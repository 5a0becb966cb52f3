"""The claim's options: the credit lane asks Odoo for credit jobs only (job_types), every
claim names the meters this bridge still runs a job on whose lease lapsed (busy_meter_ids),
and an Odoo from before the options still gets claims it takes."""

import threading
import time

import pytest

from meter_bridge.service import CREDIT_JOB_TYPES

try:
    from test_bridge_service_fakes import (
        fake_odoo,
        gated_executor,
        running,
        settings_for,
        wait_until,
    )
except ImportError:  # tests/ turned into a package
    from tests.test_bridge_service_fakes import (
        fake_odoo,
        gated_executor,
        running,
        settings_for,
        wait_until,
    )

pytestmark = pytest.mark.timeout(60)
METER = 777  # the meter of the stuck job


def lane_settings(url, **overrides):
    values = dict(concurrency=1, prefetch=3, batch_size=50, credit_lane=1, lease_seconds=30)
    values.update(log_level="WARNING", **overrides)
    return settings_for(url, **values)


def claim_options(odoo):
    return [args[3] for args in odoo.calls_of("claim") if len(args) > 3]


def test_the_lane_claim_asks_for_credit_jobs_only():
    executor, gate, reading, order = gated_executor()
    with fake_odoo() as odoo:
        first = odoo.add_job("read", {"gate": True}, serial="G")
        try:
            with running(lane_settings(odoo.url), executor):
                assert reading.wait(10)  # the only worker is busy
                reads = [odoo.add_job("read", serial=f"R{i}") for i in range(3)]
                assert wait_until(lambda: all(odoo.state(j) == "claimed" for j in reads), 10)
                # every slot is taken: a read due before the credit job is for the lane
                # only if the lane's claim cannot say "credit jobs only"
                late = odoo.add_job("read", serial="LATE")
                credit = odoo.add_job("add_credit", {"token": "00"}, serial="C", priority=10)
                assert wait_until(lambda: odoo.state(credit) == "done", timeout=10)
                assert odoo.state(late) == "pending"
                assert odoo.state(first) == "claimed"
                gate.set()
                assert wait_until(lambda: odoo.state(late) == "done", timeout=10)
        finally:
            gate.set()
    lane = [o for o in claim_options(odoo) if "job_types" in o]
    assert lane and all(o["job_types"] == sorted(CREDIT_JOB_TYPES) for o in lane)
    assert order.index(credit) == 0


def test_an_odoo_without_claim_options_still_gets_the_lane_claim_once_refused():
    executor, gate, reading, order = gated_executor()
    with fake_odoo() as odoo:
        odoo.has_claim_options = False
        first = odoo.add_job("read", {"gate": True}, serial="G")
        try:
            with running(lane_settings(odoo.url), executor) as service:
                assert reading.wait(10)
                reads = [odoo.add_job("read", serial=f"R{i}") for i in range(3)]
                assert wait_until(lambda: all(odoo.state(j) == "claimed" for j in reads), 10)
                credit = odoo.add_job("add_credit", {"token": "00"}, serial="C", priority=10)
                assert wait_until(lambda: odoo.state(credit) == "done", timeout=10)
                assert odoo.state(first) == "claimed"  # delivered on the lane meanwhile
                # more lane claims while the worker still reads: none sends the options
                time.sleep(2.5)
                gate.set()
                assert wait_until(lambda: all(odoo.state(j) == "done" for j in reads), 10)
                assert service._claim_options_ok is False
        finally:
            gate.set()
    claims = odoo.calls_of("claim")
    # the one refused (recorded before the fake refused it), then none with options
    assert [len(args) for args in claims].count(4) == 1
    refused = next(i for i, args in enumerate(claims) if len(args) == 4)
    assert len(claims) > refused + 2  # the fallback right after it, and more claims
    assert order[0] == credit


def stuck_executor():
    release, stuck_started, ran = threading.Event(), threading.Event(), []

    def executor(job, *, deadline_s=None):
        ran.append(job["id"])
        if job["payload"].get("stuck"):
            stuck_started.set()
            release.wait(20)  # ignores its deadline, like a hung socket
        return {"meter_time": "2025-01-01T00:00:00+00:00"}

    return executor, release, stuck_started, ran


def _stuck_run(odoo):
    """A job stuck on METER past its deadline (its lease left to lapse), then that meter's
    next job, more urgent, due: what the bridge ran and claimed while the job was stuck."""
    executor, release, stuck_started, ran = stuck_executor()
    stuck = odoo.add_job("read", {"stuck": True}, meter_id=METER)
    settings = settings_for(
        odoo.url, lease_seconds=2, job_timeout=0.2, concurrency=2, log_level="WARNING"
    )
    try:
        with running(settings, executor) as service:
            assert stuck_started.wait(10)
            credit = odoo.add_job("add_credit", {"token": "00"}, meter_id=METER, priority=10)
            other = odoo.add_job("read", serial="OTHER")
            assert wait_until(lambda: odoo.state(other) == "done", timeout=10)
            # the stuck job's lease lapses (no longer renewed)...
            assert wait_until(lambda: odoo.job(stuck)["lease_until"] < time.time(), 10)
            # ...and the bridge goes on claiming for its free worker
            before = len(odoo.calls_of("claim"))
            assert wait_until(lambda: len(odoo.calls_of("claim")) >= before + 3, timeout=10)
            ran_while_stuck = list(ran)
            credit_state = odoo.state(credit)
            stats = dict(service.stats)
            release.set()
    finally:
        release.set()
    return stuck, credit, other, ran_while_stuck, credit_state, stats


def test_a_claim_does_not_hand_out_a_meter_this_bridge_still_runs_a_job_on():
    with fake_odoo() as odoo:
        stuck, credit, other, ran, credit_state, _stats = _stuck_run(odoo)
        # never a second association on the meter from this bridge; the job stays for a
        # healthy bridge, not taken back by this one
        assert ran == [stuck, other]
        assert credit_state == "pending"
        assert odoo.job(stuck)["attempt_count"] == 1
    assert [METER] in [o.get("busy_meter_ids") for o in claim_options(odoo)]


def test_a_job_of_a_busy_meter_from_an_odoo_without_options_is_released_unstarted():
    with fake_odoo() as odoo:
        odoo.has_claim_options = False
        stuck, credit, other, ran, credit_state, stats = _stuck_run(odoo)
        assert ran == [stuck, other]  # handed out, but not run next to the stuck job
        assert credit_state in ("pending", "claimed")  # claimed for the moment it is given back
        assert stats.get("meter_busy_released", 0) >= 1
        assert any(credit in args[0] for args in odoo.calls_of("release"))


def test_only_a_refusal_of_the_argument_or_a_key_reads_as_an_odoo_without_options():
    from meter_bridge.odoo_client import OdooError
    from meter_bridge.service import _options_unknown

    sent = {"job_types": ["add_credit"], "busy_meter_ids": [3]}
    older = OdooError(
        "SmartpmMeterJob.claim() takes from 2 to 4 positional arguments but 5 were given",
        "builtins.TypeError",
    )
    assert _options_unknown(older, sent)
    unknown = OdooError("claim: option inconnue 'busy_meter_ids'", "odoo.exceptions.UserError")
    assert _options_unknown(unknown, sent)  # translated: the quoted key tells
    for message in (
        "claim: job_types: 7 is not a job type",
        "claim: busy_meter_ids must be a list of at most 10000 meter ids",
    ):
        assert not _options_unknown(OdooError(message, "odoo.exceptions.UserError"), sent)
    assert not _options_unknown(OdooError("could not serialize access", "psycopg2.errors"), sent)
