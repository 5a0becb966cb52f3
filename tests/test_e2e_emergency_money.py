"""End to end (issue 17 §1, money mode): emergency credit on a money-mode meter. The tariff's
emergency credit in currency reaches the meter (milli-units); the tenant takes it on the
meter (the simulator's button); the next purchase repays it first, Odoo records what it
repaid in money, the receipt says "Emergency credit repaid" in the currency, and the meter's
credit is Odoo's figure to the milli-unit.

A real Odoo HTTP server, a `meter-bridge` process and an in-process simulator (real DLMS,
HLS-GMAC), no consumption: the credit moves by the tokens and the emergency credit only.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from odoo_e2e import bridge, run_odoo
from odoo_e2e import wait_until as wait_for
from test_e2e_moveout import sell
from test_e2e_standing_charge import _jobs_done
from test_e2e_tou import SERIAL
from test_e2e_tou import _cleanup as tou_cleanup
from test_e2e_tou import _setup as tou_setup

from meter_sim.model import MeterConfig

odoo = pytest.importorskip("odoo")
pytestmark = pytest.mark.timeout(300)
START = dt.datetime(2026, 3, 4, 9, 0, tzinfo=dt.timezone.utc)


def _done(registry, job_id):
    with registry.cursor() as cr:
        cr.execute("SELECT state FROM smartpm_meter_job WHERE id = %s", (job_id,))
        return cr.fetchone()[0] == "done"


def test_money_emergency_credit_taken_on_the_meter_is_repaid_first_by_the_next_purchase(
    odoo_db, sim_fleet
):
    from odoo import SUPERUSER_ID, api

    db, registry = odoo_db
    fleet = sim_fleet(MeterConfig(SERIAL, credit_mode="money", credit_kwh=0.0), start=START)
    model = fleet.meter(SERIAL)
    model.set_load(0)
    login, key, ids = tou_setup(registry, fleet.port_of(SERIAL), label="emm")
    try:
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["smartpm.tariff"].browse(ids["tariff"]).write(
                {"emergency_credit_money": 3.0, "emergency_threshold_money": 1.5}
            )
            meter = env["smartpm.meter"].browse(ids["meter"])
            first = sell(env, meter, 1.0, f"E2E-EMM-1-{os.getpid()}")
            first_money = first.credit_money
        with run_odoo(db) as server, bridge(db, login, key, server.url, f"e2e-emm-{os.getpid()}"):
            for job_type in ("set_emergency_credit", "add_credit"):
                wait_for(lambda t=job_type: _jobs_done(registry, ids["meter"], t), what=job_type)
            # the meter holds the tariff's money figures in milli-units
            assert (model.emergency_amount_wh, model.emergency_threshold_wh) == (3000, 1500)
            assert model.credit_wh == round(first_money * 1000) <= 1500

            # the tenant presses the meter's button: 3.000 of emergency credit
            assert model.press_button()
            assert model.emergency_owed_wh == 3000
            taken = model.credit_wh
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                ping = (
                    env["smartpm.meter"].browse(ids["meter"])._enqueue_job("ping", {}, priority=30)
                )
                ping_id = ping.id
            wait_for(lambda: _done(registry, ping_id), what="the ping")

            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                meter = env["smartpm.meter"].browse(ids["meter"])
                second = sell(env, meter, 5.0, f"E2E-EMM-2-{os.getpid()}")
                second_id, second_money, job_id = second.id, second.credit_money, second.job_id.id
            wait_for(lambda: _done(registry, job_id), what="the second sale")
            # the meter kept 3.000 of the token to repay the emergency credit
            assert model.emergency_owed_wh == 0
            assert model.credit_wh == taken + round(second_money * 1000) - 3000
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                purchase = env["smartpm.credit.purchase"].browse(second_id)
                odoo_credit = purchase.meter_id.credit_money
                repaid = purchase.emergency_repaid_money
                rows = {r["key"]: r for r in purchase._receipt()["split"]["lines"]}
                expected_text = purchase.currency_id.format(3.0)
                html = (
                    env["ir.actions.report"]
                    ._render_qweb_html(
                        "smartpm_prepay.action_report_purchase_receipt", purchase.ids
                    )[0]
                    .decode()
                )
    finally:
        with registry.cursor() as cr:
            cr.execute("DELETE FROM smartpm_credit_purchase WHERE meter_id = %s", (ids["meter"],))
        tou_cleanup(registry, ids)

    assert repaid == 3.0
    assert round(odoo_credit * 1000) == model.credit_wh  # Odoo = meter, milli-unit for unit
    assert rows["emergency_repaid_money"]["label"] == "Emergency credit repaid"
    assert rows["emergency_repaid_money"]["value"] == expected_text
    assert (
        "Emergency credit repaid" in html and "kWh" not in rows["emergency_repaid_money"]["value"]
    )
