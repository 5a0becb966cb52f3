"""End to end: a tariff's standing charge over several simulated days (issue 17 §4).

A real Odoo HTTP server on pytest's database, a `meter-bridge` process and an in-process
meter_sim fleet (real DLMS, HLS-GMAC). First the meter collects it: the tariff's change
queues `set_charge`, the bridge writes the time-based Charge, the meter's clock runs three
days, a ping reports what it collected and Odoo records it. Then Odoo collects it: the
change pushes a zero charge to the meter, Odoo's charge job takes two days (one missed and
caught up) with clear-credit tokens. After each, the meter's credit is Odoo's figure, unit
for unit, and the charges add up to what left the credit.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from odoo_e2e import run_odoo, user_with_key
from test_e2e_reversal import bridge, wait_for

from meter_sim.model import MeterConfig

pytestmark = pytest.mark.timeout(240)
SERIAL = "E2E-SC-1"
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


def _jobs_done(registry, meter_id, job_type):
    with registry.cursor() as cr:
        cr.execute(
            "SELECT state FROM smartpm_meter_job WHERE meter_id = %s AND job_type = %s",
            (meter_id, job_type),
        )
        states = [s for (s,) in cr.fetchall()]
    return states and all(s in ("done", "cancelled") for s in states) and "done" in states


def _odoo_figures(registry, meter_id):
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        meter = env["smartpm.meter"].browse(meter_id)
        charges = env["smartpm.standing.charge"].search(
            [("meter_id", "=", meter_id), ("state", "=", "collected")]
        )
        return meter.credit_kwh, {
            c: sum(charges.filtered(lambda x, c=c: x.collection == c).mapped("kwh"))
            for c in ("meter", "odoo")
        }


def test_standing_charge_over_several_days_meter_and_odoo_agree_unit_for_unit(odoo_db, sim_fleet):
    from test_e2e_vending import delete_committed, sold_meter

    from odoo import SUPERUSER_ID, api
    from odoo.addons.smartpm_prepay.services import local_time, standing_charge

    db, registry = odoo_db
    fleet = sim_fleet(MeterConfig(SERIAL, credit_kwh=20.0, low_credit_kwh=1.0), start=START)
    model = fleet.meter(SERIAL)
    model.set_load(0)  # no consumption: the credit moves by the charges only
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        user, key = user_with_key(env, "E2E charge bridge", f"e2e_sc_bridge_{os.getpid()}")
        tariff, tenant, meter = sold_meter(env, "E2E charge", SERIAL, fleet.port_of(SERIAL))
        # 0.75 a day at 0.5 per kWh: 1.5 kWh a day, collected by the meter
        tariff.write({"standing_charge_amount": 0.75, "standing_charge_collection": "meter"})
        ids = {"meter": meter.id, "tariff": tariff.id, "tenant": tenant.id, "user": user.id}
        login, company = user.login, meter.company_id
        today = local_time.local_today(company)
    try:
        with run_odoo(db) as server, bridge(db, login, key, server.url, f"e2e-sc-{os.getpid()}"):
            # 1. by the meter: set_charge, three midnights of its clock, a ping reports
            wait_for(lambda: _jobs_done(registry, ids["meter"], "set_charge"), what="set_charge")
            assert model.charge_unit_wh == 1500
            model.advance(3 * 86400)
            assert model.credit_wh == 20000 - 3 * 1500
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                env["smartpm.meter"].browse(ids["meter"])._enqueue_job("ping", {}, priority=30)
            wait_for(lambda: _jobs_done(registry, ids["meter"], "ping"), what="the ping")
            credit, by = _odoo_figures(registry, ids["meter"])
            assert credit * 1000 == model.credit_wh == 15500
            assert by["meter"] * 1000 == model.charge_paid_wh == 4500

            # 2. by Odoo: the meter's charge goes to zero, Odoo's job takes two days
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
                # the next day's run, and a duplicate run of it: one charge more
                standing_charge.collect_due(env, company, today=today + dt.timedelta(days=1))
                standing_charge.collect_due(env, company, today=today + dt.timedelta(days=1))
            wait_for(lambda: _jobs_done(registry, ids["meter"], "clear_credit"), what="clears")
            model.advance(2 * 86400)  # the meter's own charge is off: nothing more
            credit, by = _odoo_figures(registry, ids["meter"])
            with registry.cursor() as cr:
                cr.execute(
                    "SELECT count(*) FROM smartpm_standing_charge WHERE meter_id = %s "
                    "AND collection = 'odoo'",
                    (ids["meter"],),
                )
                odoo_rows = cr.fetchone()[0]
    finally:
        with registry.cursor() as cr:
            for table in ("smartpm_credit_recognition", "smartpm_standing_charge"):
                cr.execute(f"DELETE FROM {table} WHERE meter_id = %s", (ids["meter"],))
            delete_committed(cr, ids["meter"], ids["tariff"], [ids["user"]], [ids["tenant"]])

    assert odoo_rows == 2
    assert by["odoo"] == 3.0
    assert model.charge_paid_wh == 4500  # the meter collected nothing after the change
    assert model.credit_wh == 20000 - 4500 - 3000 == round(credit * 1000)
