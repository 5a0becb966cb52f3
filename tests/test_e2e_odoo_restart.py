"""End to end, issue 21 §4: Odoo restarted while a bridge delivers credit to a slow meter,
down for longer than the job's lease has left. The bridge finishes on the meter meanwhile,
keeps the result and reports it when Odoo answers again; Odoo takes that late report (no
one claimed the job since): the sale is delivered by its first attempt, the credit on the
meter once, the meter not visited again. With a second, idle bridge that reaches the
restarted Odoo first, the holder's late report still wins (the restart grace)."""

import os
import time
from types import SimpleNamespace

import pytest
from odoo_e2e import run_bridge, sim_control, sim_meters, wait_until
from stall_link import StallLink
from test_e2e_jobs import all_finished, jobs_state, make_meters, sell

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not os.environ.get("SMARTPM_E2E_DB"),
        reason="needs the e2e database that `make test` prepares (SMARTPM_E2E_DB)",
    ),
]


def lease_until(db, job_id):
    """The job's lease end, read in PostgreSQL (Odoo is down)."""
    from odoo.sql_db import db_connect

    with db_connect(db).cursor() as cr:
        cr.execute(
            "SELECT lease_until, (now() at time zone 'utc') FROM smartpm_meter_job WHERE id = %s",
            [job_id],
        )
        return cr.fetchone()


def _credit_on_meter_and_lease_lapsed(odoo, sim, serial, before, job_id):
    """While Odoo is down: wait until the job's credit is on the meter and its lease has
    lapsed."""
    wait_until(
        lambda: sim_control(sim, serial)["credit_kwh"] > before,
        timeout=60,
        interval=0.1,
        what="the credit on the meter",
    )
    wait_until(
        lambda: (lambda lease, now: lease < now)(*lease_until(odoo.db, job_id)),
        timeout=30,
        what="the lease to lapse",
    )


def test_credit_delivered_while_odoo_restarts_is_reported_late_and_not_run_again(odoo):
    serial = "E2ER-00001"
    # 400 ms per round trip: the delivery lasts seconds, Odoo goes down in the middle of it
    with sim_meters({"serial": serial, "latency_ms": 400}) as sim:
        meters = make_meters(odoo, sim, "E2ER")
        before = sim_control(sim, serial)["credit_kwh"]
        first = sell(odoo, meters[serial], 3.0, "E2ER-1")
        with run_bridge(odoo, odoo.api_key, "e2e-restart", "--lease", "6"):
            wait_until(
                lambda: jobs_state(odoo, [first])[0]["state"] == "claimed",
                interval=0.05,
                what="the bridge to claim the delivery",
            )

            # down until the credit is on the meter and the lease has lapsed
            odoo.restart(
                lambda: _credit_on_meter_and_lease_lapsed(odoo, sim, serial, before, first)
            )
            rows = wait_until(
                lambda: all_finished(odoo, [first]), timeout=120, what="the late report"
            )
            time.sleep(1.0)  # a claim again, if any, would come now
            rows = jobs_state(odoo, [first])
        state = sim_control(sim, serial)
    assert [(r["state"], r["attempt_count"]) for r in rows] == [("done", 1)], rows
    assert rows[0]["bridge_id"] == "e2e-restart"
    assert state["credit_kwh"] == pytest.approx(before + 3.0)
    assert sum(e["code"] == 66 for e in state["events"]) == 1  # the token applied once
    purchase = odoo.call(
        "smartpm.credit.purchase", "search_read", [("job_id", "=", first)], fields=["state"]
    )
    assert [p["state"] for p in purchase] == ["delivered"]


def test_idle_bridge_first_at_the_restarted_odoo_does_not_take_the_lapsed_job(odoo, monkeypatch):
    """Bridge A delivers credit to a slow meter; Odoo goes down until the credit is on the
    meter and A's lease has lapsed; idle bridge B (retrying every 0.2 s) reaches the new Odoo
    while A is still cut off from it for a second. B must not claim the job (it would run it
    again, and A's report be refused): A's late report delivers it by attempt 1."""
    serial = "E2EG-00001"
    with (
        sim_meters({"serial": serial, "latency_ms": 400}) as sim,
        StallLink(odoo.port) as gate,
    ):
        meters = make_meters(odoo, sim, "E2EG")
        before = sim_control(sim, serial)["credit_kwh"]
        first = sell(odoo, meters[serial], 3.0, "E2EG-1")
        via_gate = SimpleNamespace(url=f"http://127.0.0.1:{gate.port}", db=odoo.db)
        with run_bridge(via_gate, odoo.api_key, "e2e-grace-a", "--lease", "6"):
            wait_until(
                lambda: jobs_state(odoo, [first])[0]["state"] == "claimed",
                interval=0.05,
                what="bridge A to claim the delivery",
            )
            monkeypatch.setenv("MB_BACKOFF_MAX", "0.2")
            with run_bridge(odoo, odoo.api_key, "e2e-grace-b", "--lease", "6"):
                monkeypatch.delenv("MB_BACKOFF_MAX")
                time.sleep(1.0)  # B finds the meter busy and waits on its long-poll

                def outage():
                    _credit_on_meter_and_lease_lapsed(odoo, sim, serial, before, first)
                    gate.refuse(True)  # A stays cut off when Odoo is back

                odoo.restart(outage)
                time.sleep(1.0)  # B's claims reach the new Odoo alone
                gate.refuse(False)
                wait_until(lambda: all_finished(odoo, [first]), timeout=120, what="the report")
                time.sleep(1.0)  # a claim again, if any, would come now
                rows = jobs_state(odoo, [first])
        state = sim_control(sim, serial)
    assert [(r["state"], r["attempt_count"]) for r in rows] == [("done", 1)], rows
    assert rows[0]["bridge_id"] == "e2e-grace-a"
    assert state["credit_kwh"] == pytest.approx(before + 3.0)
    assert sum(e["code"] == 66 for e in state["events"]) == 1  # the token applied once
