"""End to end: a standing charge over several simulated days on a money-mode meter (issue 17
leftovers, fix 1).

A real Odoo HTTP server on pytest's database, a `meter-bridge` process and an in-process
meter_sim fleet (real DLMS, HLS-GMAC). A time-of-use tariff with a standing charge of 1.25 a
day and a money-mode meter holding 10.00 of a back-office sale: first the meter collects it
(`set_charge` of 1.250 in milli-units of the currency, three midnights of its clock, a ping
reports what it collected), then Odoo collects it (money clear tokens, two days, one run
twice). After each, the meter's credit is Odoo's figure to the milli-unit, and the accounts
are exact: what left the credit moved from the tenant's prepayments to standing-charge
income, and the liability left is what the meter holds.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from odoo_e2e import run_odoo
from test_e2e_moveout import sell
from test_e2e_reversal import bridge, wait_for
from test_e2e_standing_charge import _jobs_done
from test_e2e_tou import _setup as tou_setup

from meter_sim.model import MeterConfig

pytestmark = pytest.mark.timeout(300)
SERIAL = "E2E-TOU-1"  # the TOU set-up's serial (its keys)
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


def _figures(env, ids):
    meter = env["smartpm.meter"].browse(ids["meter"])
    charges = env["smartpm.standing.charge"].search(
        [("meter_id", "=", ids["meter"]), ("state", "=", "collected")]
    )
    company = meter.company_id
    lines = env["account.move.line"].search(
        [("partner_id", "=", ids["tenant"]), ("parent_state", "=", "posted")]
    )

    def balance(account):
        return round(sum(lines.filtered(lambda x: x.account_id == account).mapped("balance")), 2)

    return {
        "credit": meter.credit_money,
        "meter": round(sum(charges.filtered(lambda c: c.collection == "meter").mapped("money")), 3),
        "odoo": round(sum(charges.filtered(lambda c: c.collection == "odoo").mapped("money")), 3),
        "value": round(sum(charges.mapped("value")), 2),
        "income": balance(company.smartpm_standing_charge_account_id),
        "liability": balance(company.smartpm_prepayment_account_id),
        "rows": len(charges),
    }


def test_money_meter_standing_charge_over_several_days_exact_to_the_milli_unit(odoo_db, sim_fleet):
    from test_e2e_vending import delete_committed

    from odoo import SUPERUSER_ID, api
    from odoo.addons.smartpm_prepay.services import local_time, standing_charge

    db, registry = odoo_db
    fleet = sim_fleet(MeterConfig(SERIAL, credit_mode="money", credit_kwh=0.0), start=START)
    model = fleet.meter(SERIAL)
    model.set_load(0)  # no consumption: the credit moves by the charges only
    login, key, ids = tou_setup(registry, fleet.port_of(SERIAL), label="msc")
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        tariff = env["smartpm.tariff"].browse(ids["tariff"])
        tariff.write({"standing_charge_amount": 1.25, "standing_charge_collection": "meter"})
        meter = env["smartpm.meter"].browse(ids["meter"])
        standing_charge.ensure_account(meter.company_id)
        purchase = sell(env, meter, 10.0, f"E2E-MSC-{os.getpid()}")
        ids["purchase"] = purchase.id
        company = meter.company_id
        today = local_time.local_today(company)
    try:
        with run_odoo(db) as server, bridge(db, login, key, server.url, f"e2e-msc-{os.getpid()}"):
            wait_for(lambda: _jobs_done(registry, ids["meter"], "add_credit"), what="the sale")
            wait_for(lambda: _jobs_done(registry, ids["meter"], "set_charge"), what="set_charge")
            assert model.credit_wh == 10_000
            assert model.charge_unit_wh == 1_250  # milli-units a day, the meter's unit

            # 1. by the meter: three midnights of its clock, a ping reports them
            model.advance(3 * 86400)
            assert model.credit_wh == 10_000 - 3 * 1_250
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                env["smartpm.meter"].browse(ids["meter"])._enqueue_job("ping", {}, priority=30)
            wait_for(lambda: _jobs_done(registry, ids["meter"], "ping"), what="the ping")
            with registry.cursor() as cr:
                first = _figures(api.Environment(cr, SUPERUSER_ID, {}), ids)

            # 2. by Odoo: the meter's charge goes to zero, money clear tokens take two days
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                env["smartpm.tariff"].browse(ids["tariff"]).standing_charge_collection = "odoo"
            wait_for(
                lambda: (
                    model.charge_unit_wh == 0 and _jobs_done(registry, ids["meter"], "set_charge")
                ),
                what="the zero charge",
            )
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                standing_charge.collect_due(env, company, today=today)
                standing_charge.collect_due(env, company, today=today + dt.timedelta(days=1))
                standing_charge.collect_due(env, company, today=today + dt.timedelta(days=1))
            wait_for(lambda: _jobs_done(registry, ids["meter"], "clear_credit"), what="clears")
            model.advance(2 * 86400)  # the meter's own charge is off: nothing more
            with registry.cursor() as cr:
                second = _figures(api.Environment(cr, SUPERUSER_ID, {}), ids)
    finally:
        with registry.cursor() as cr:
            for table in ("smartpm_credit_recognition", "smartpm_standing_charge"):
                cr.execute(f"DELETE FROM {table} WHERE meter_id = %s", (ids["meter"],))
            cr.execute(
                "DELETE FROM smartpm_tariff_tou_version WHERE tariff_id = %s", (ids["tariff"],)
            )
            delete_committed(cr, ids["meter"], ids["tariff"], [ids["user"]], [ids["tenant"]])

    # the meter's collection: 3.750, Odoo's figure the meter's, booked as income
    assert first["credit"] * 1000 == 6_250
    assert first["meter"] == 3.75 and first["rows"] == 1
    assert first["value"] == 3.75 and first["income"] == -3.75
    assert first["liability"] == -6.25  # the 10.00 sold less what the charge took
    # Odoo's: one charge per day, the duplicate run charged nothing more
    assert second["odoo"] == 2.5 and second["rows"] == 3
    assert model.charge_paid_wh == 3_750  # the meter collected nothing after the change
    assert model.credit_wh == 10_000 - 3_750 - 2_500 == round(second["credit"] * 1000)
    assert second["value"] == 6.25 and second["income"] == -6.25
    assert second["liability"] == -round(model.credit_wh / 1000, 2) == -3.75
