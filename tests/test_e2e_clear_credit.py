"""End to end: Odoo clears a meter's credit on the meter, exactly once (issue 16 §3).

A real Odoo HTTP server on pytest's database, `meter-bridge` processes and an in-process
meter_sim fleet (real DLMS, HLS-GMAC). Odoo queues a clear through
``credit_clear.queue_clear``; a first bridge sends the clear-credit token and is killed
before it reports (the connection cut after the ACTION); once its lease has passed, a healthy
bridge runs the job again: the meter answers "already applied", the bridge reads what was
cleared from the token log, Odoo records it and tells the origin once. The meter's credit
fell by exactly the Wh asked, once.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from odoo_e2e import run_odoo, user_with_key
from test_e2e_reversal import bridge, wait_for

from meter_sim.model import EV_CREDIT_CLEARED, TRANSFER_APPLIED, MeterConfig

pytestmark = pytest.mark.timeout(240)
TESTS_DIR = Path(__file__).resolve().parent
SERIAL = "E2E-CLR-1"
CLEAR_WH = 30500


def doomed_executor(job, *, deadline_s=None):
    """Executor of the bridge that dies: sends the clear-credit token (the real DLMS
    executor), marks the job in MB_TEST_MARK_DIR and hangs, so that it never reports."""
    from meter_bridge.executors import execute_job

    execute_job(job, deadline_s=deadline_s)
    Path(os.environ["MB_TEST_MARK_DIR"], str(job["id"])).touch()
    time.sleep(3600)
    return {}


def _odoo_with_probe(db):
    """The Odoo server with the e2e probe (tests/e2e_addons) giving res.partner the origin
    hooks of credit_clear, counted in system parameters."""
    from odoo.tools import config

    os.environ.setdefault("SMARTPM_ODOO_CONF", config.rcfile)
    addons = ",".join([config["addons_path"], str(TESTS_DIR / "e2e_addons")])
    return run_odoo(db, [f"--addons-path={addons}", "--load=base,web,smartpm_e2e_probe"])


def _job_row(registry, job_id):
    with registry.cursor() as cr:
        cr.execute(
            "SELECT state, result, attempt_count FROM smartpm_meter_job WHERE id = %s",
            (job_id,),
        )
        return cr.fetchone()


def _probe_counts(registry, job_id):
    with registry.cursor() as cr:
        cr.execute(
            "SELECT key, value FROM ir_config_parameter WHERE key LIKE %s",
            (f"smartpm_e2e_probe.%.{job_id}",),
        )
        return {key.split(".")[1]: int(value) for key, value in cr.fetchall()}


def test_clear_credit_cut_after_the_action_and_retried_removes_the_credit_once(
    odoo_db, sim_fleet, tmp_path
):
    from test_e2e_vending import delete_committed, sold_meter

    from odoo import SUPERUSER_ID, api
    from odoo.addons.smartpm_prepay.services import credit_clear

    db, registry = odoo_db
    fleet = sim_fleet(MeterConfig(SERIAL, credit_kwh=42.0, low_credit_kwh=1.0))
    model = fleet.meter(SERIAL)
    model.set_load(0)  # no consumption: the credit moves by the clear only
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        user, key = user_with_key(env, "E2E clear bridge", f"e2e_clr_bridge_{os.getpid()}")
        tariff, tenant, meter = sold_meter(env, "E2E clear", SERIAL, fleet.port_of(SERIAL))
        job = credit_clear.queue_clear(meter, CLEAR_WH, tenant)
        ids = {"meter": meter.id, "tariff": tariff.id, "tenant": tenant.id, "job": job.id}
        number = job.payload["transfer_number"]
        login, user_id = user.login, user.id
    try:
        with _odoo_with_probe(db) as server:
            url = server.url
            marks = tmp_path / "marks"
            marks.mkdir()
            # 1. a bridge sends the clear token and dies before it reports
            with bridge(
                db,
                login,
                key,
                url,
                f"e2e-clr-doomed-{os.getpid()}",
                MB_EXECUTOR="test_e2e_clear_credit:doomed_executor",
                MB_TEST_MARK_DIR=str(marks),
                MB_LEASE_SECONDS="3",
            ) as doomed:
                wait_for(lambda: (marks / str(ids["job"])).exists(), what="the doomed bridge")
                doomed.send_signal(signal.SIGKILL)
                doomed.wait()
            assert model.credit_wh == 42000 - CLEAR_WH
            assert _job_row(registry, ids["job"])[0] == "claimed"
            assert _probe_counts(registry, ids["job"]) == {}

            # 2. past its lease, a healthy bridge runs it again
            with bridge(db, login, key, url, f"e2e-clr-heir-{os.getpid()}"):
                row = wait_for(
                    lambda: (r := _job_row(registry, ids["job"])) and r[0] == "done" and r,
                    what="the clear to be done",
                )
            counts = _probe_counts(registry, ids["job"])
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                odoo_meter = env["smartpm.meter"].browse(ids["meter"])
                odoo_credit = odoo_meter.credit_kwh
                last_number = odoo_meter.last_transfer_number
    finally:
        with registry.cursor() as cr:
            cr.execute("DELETE FROM ir_config_parameter WHERE key LIKE 'smartpm_e2e_probe.%%'")
            delete_committed(cr, ids["meter"], ids["tariff"], [user_id], [ids["tenant"]])

    _state, result, attempts = row
    # the meter: credit down by exactly the Wh asked, once; one credit-cleared event
    assert model.credit_wh == 42000 - CLEAR_WH
    assert sum(e.code == EV_CREDIT_CLEARED for e in model.events) == 1
    assert model.transfer_status(number) == TRANSFER_APPLIED
    assert model.transfer_energy(number) == -CLEAR_WH
    # the retry found it applied and still reports what was cleared
    assert attempts == 2
    assert result["already_applied"] is True
    assert result["cleared_kwh"] == CLEAR_WH / 1000
    assert result["transfer_number"] == number == last_number
    # Odoo: the meter's credit as the meter said; the origin told once
    assert odoo_credit == pytest.approx((42000 - CLEAR_WH) / 1000)
    assert counts == {"cleared": 1}
