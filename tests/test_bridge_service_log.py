"""The bridge's job log (README "Logs"): one INFO line per report batch naming each job
done, per-job lines at DEBUG only, a WARNING per failed job; a result JSON cannot carry
fails its own job, not the batch."""

import logging

import pytest

from meter_bridge.errors import MeterRefused

try:
    from test_bridge_service_fakes import fake_odoo, running, settings_for, wait_until
except ImportError:  # tests/ turned into a package
    from tests.test_bridge_service_fakes import fake_odoo, running, settings_for, wait_until

pytestmark = pytest.mark.timeout(30)


def ok_or_refused(job, *, deadline_s=None):
    if job["job_type"] == "disconnect":
        raise MeterRefused("read-write-denied", code=3)
    return {"ok": True}


def records(caplog, name):
    return [r for r in caplog.records if getattr(r, "event", None) == name]


def test_done_jobs_are_one_info_line_per_batch_with_id_meter_type_and_ms(caplog):
    caplog.set_level(logging.INFO, logger="meter_bridge")
    with fake_odoo() as odoo:
        ids = [odoo.add_job("ping", serial=f"SIM0000{i}") for i in range(4)]
        failed = odoo.add_job("disconnect", serial="SIM00009")
        settings = settings_for(odoo.url, log_level="INFO", concurrency=4, prefetch=4)
        with running(settings, ok_or_refused):
            assert wait_until(lambda: all(odoo.state(i) == "done" for i in ids))
            assert wait_until(lambda: odoo.state(failed) == "failed")
    lines = records(caplog, "jobs_done")
    assert lines and all(r.levelno == logging.INFO for r in lines)
    logged = [job for r in lines for job in r.jobs]
    assert sum(r.count for r in lines) == len(logged) == 4
    assert sorted(j[:3] for j in logged) == [[i, f"SIM0000{n}", "ping"] for n, i in enumerate(ids)]
    assert all(isinstance(j[3], int) and j[3] >= 0 for j in logged)
    # no per-job line for a job done at INFO; a failed job has its own WARNING
    assert not records(caplog, "job_done") and not records(caplog, "job_started")
    (warning,) = records(caplog, "job_failed")
    assert warning.levelno == logging.WARNING and warning.job_id == failed


def test_at_debug_each_job_has_its_own_lines_too(caplog):
    caplog.set_level(logging.DEBUG, logger="meter_bridge")
    with fake_odoo() as odoo:
        job_id = odoo.add_job("ping")
        with running(settings_for(odoo.url), ok_or_refused):
            assert wait_until(lambda: odoo.state(job_id) == "done")
    (done,) = records(caplog, "job_done")
    assert done.job_id == job_id and done.levelno == logging.DEBUG
    assert done.duration_s >= 0
    assert [r.job_id for r in records(caplog, "job_started")] == [job_id]


def test_a_result_json_cannot_carry_fails_its_job_retried_and_the_others_are_reported():
    def executor(job, *, deadline_s=None):
        if job["meter"]["serial_number"] == "BAD":
            return {"value": object()}
        return {"ok": True}

    with fake_odoo() as odoo:
        bad = odoo.add_job("ping", serial="BAD")
        good = [odoo.add_job("ping", serial=f"SIM0000{i}") for i in range(3)]
        settings = settings_for(odoo.url, concurrency=4, prefetch=4)
        with running(settings, executor):
            assert wait_until(lambda: all(odoo.state(i) == "done" for i in good))
            assert wait_until(lambda: odoo.job(bad)["error"] is not None)
        job = odoo.job(bad)
        assert job["state"] == "pending" and job["result"] is None  # retried later
        assert "result not reportable: TypeError" in job["error"]
        assert all(odoo.job(i)["result"] == {"ok": True} for i in good)
