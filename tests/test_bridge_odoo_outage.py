"""Issue 21 §4: Odoo unreachable (restarting) for longer than the lease a running job has
left. The bridge keeps the job's result and reports it, naming its claim, when Odoo answers
again; Odoo takes it since no one claimed the job meanwhile: the job is not run again. A job
still running then re-takes its lease by its first renewal."""

import threading
import time

import pytest

try:
    from test_bridge_service_fakes import fake_odoo, running, settings_for, wait_until
except ImportError:  # tests/ turned into a package
    from tests.test_bridge_service_fakes import fake_odoo, running, settings_for, wait_until

pytestmark = pytest.mark.timeout(30)


class Gated:
    """An executor that holds each job until ``release`` is set; counts its runs."""

    def __init__(self):
        self.release = threading.Event()
        self.started = threading.Event()
        self.runs = []

    def __call__(self, job, *, deadline_s=None):
        self.runs.append((job["id"], job.get("attempt_count")))
        self.started.set()
        self.release.wait(20)
        return {"credit_kwh": 20.0, "transfer_number": 7}


def lapsed(odoo, job_id):
    with odoo.cond:
        return odoo.jobs[job_id]["lease_until"] < time.time()


def test_result_of_a_job_done_while_odoo_was_away_past_its_lease_is_reported_once():
    gated = Gated()
    with fake_odoo() as odoo:
        job_id = odoo.add_job("add_credit")
        with running(settings_for(odoo.url, lease_seconds=2), gated) as service:
            assert gated.started.wait(5)
            odoo.stop()  # an Odoo restart: connections refused
            gated.release.set()  # the credit reaches the meter meanwhile
            assert wait_until(lambda: service.stats["odoo_errors"] >= 3, timeout=10)
            assert wait_until(lambda: lapsed(odoo, job_id), timeout=5)
            assert odoo.state(job_id) == "claimed"
            odoo.start()
            assert wait_until(lambda: odoo.state(job_id) == "done", timeout=10)
            assert service.stats["reports_refused"] == 0
        job = odoo.job(job_id)
    assert job["attempt_count"] == 1  # not claimed again
    assert job["result"] == {"credit_kwh": 20.0, "transfer_number": 7}
    assert gated.runs == [(job_id, 1)]  # run on the meter once
    assert len(odoo.calls_of("complete")) == 1
    sent = [r for _bridge, batch in odoo.calls_of("report") for r in batch]
    assert [(r["job_id"], r["attempt"]) for r in sent] == [(job_id, 1)]


def test_a_job_still_running_when_odoo_returns_re_takes_its_lapsed_lease():
    gated = Gated()
    with fake_odoo() as odoo:
        job_id = odoo.add_job("read")
        with running(settings_for(odoo.url, lease_seconds=2), gated) as service:
            assert gated.started.wait(5)
            odoo.stop()
            assert wait_until(lambda: service.stats["odoo_errors"] >= 3, timeout=10)
            assert wait_until(lambda: lapsed(odoo, job_id), timeout=5)
            renewals = len(odoo.calls_of("extend_lease"))
            odoo.start()
            # the first renewal after the outage names attempt 1 and gets the job back
            assert wait_until(lambda: len(odoo.calls_of("extend_lease")) > renewals, timeout=5)
            assert odoo.calls_of("extend_lease")[renewals][3] == [1]
            assert wait_until(lambda: not lapsed(odoo, job_id), timeout=5)
            held = service._held[job_id]
            assert not held.lease_lost
            # the executor sees its lease alive again (a credit token may still go out)
            assert wait_until(lambda: held.job["lease_deadline"] > time.monotonic(), timeout=5)
            gated.release.set()
            assert wait_until(lambda: odoo.state(job_id) == "done", timeout=10)
        job = odoo.job(job_id)
    assert job["attempt_count"] == 1
    assert gated.runs == [(job_id, 1)]
