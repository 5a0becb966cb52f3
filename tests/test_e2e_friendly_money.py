"""End to end (issue 17 §2, money mode): a money-mode meter in a friendly period goes below
zero, down to the company's friendly limit *in money*, without tripping, and trips when the
period ends; the next purchase repays the debt first, the receipt says so in money, and the
meter's credit is Odoo's figure to the milli-unit.

The company's kWh limit is set far away (50 kWh, which a money meter would read as 50.000 of
the currency): only the money limit may reach the meter. A real Odoo HTTP server, a
`meter-bridge` process and an in-process simulator (real DLMS, HLS-GMAC); the meter's clock
starts on a Wednesday afternoon (local) and is moved by the test.
"""

from __future__ import annotations

import os

import pytest
import pytz
from odoo_e2e import bridge, run_odoo
from odoo_e2e import wait_until as wait_for
from test_e2e_friendly import DEFER, _next_wednesday
from test_e2e_moveout import sell
from test_e2e_standing_charge import _jobs_done
from test_e2e_tou import SERIAL
from test_e2e_tou import _setup as tou_setup

from meter_sim.model import EV_CREDIT_TRIP, EV_FRIENDLY_TRIP_DEFERRED, MeterConfig

odoo = pytest.importorskip("odoo")
pytestmark = pytest.mark.timeout(300)
LIMIT_MONEY = 2.0
LIMIT_KWH = 50.0  # must not reach a money meter
LOAD_W = 1000


def _friendly_company(registry):
    """Friendly nights (18:00-07:00 local) for the company; returns what to restore and the
    meter clock's start (Wednesday 16:00 local, UTC)."""
    from odoo import SUPERUSER_ID, Command, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        company = env.company
        tz = pytz.timezone(company.partner_id.tz or "UTC")
        start_local, _thursday = _next_wednesday(tz)
        calendar = (
            env["resource.calendar"]
            .with_context(**DEFER)
            .create(
                {
                    "name": "E2E friendly money nights",
                    "company_id": company.id,
                    "attendance_ids": [
                        Command.create(
                            {"name": "night", "dayofweek": str(d), "hour_from": 0, "hour_to": 7}
                        )
                        for d in range(7)
                    ]
                    + [
                        Command.create(
                            {"name": "eve", "dayofweek": str(d), "hour_from": 18, "hour_to": 24}
                        )
                        for d in range(7)
                    ],
                }
            )
        )
        before = {
            "smartpm_friendly_enabled": company.smartpm_friendly_enabled,
            "smartpm_friendly_calendar_id": company.smartpm_friendly_calendar_id.id,
            "smartpm_friendly_limit_kwh": company.smartpm_friendly_limit_kwh,
            "smartpm_friendly_limit_money": company.smartpm_friendly_limit_money,
        }
        company.with_context(**DEFER).write(
            {
                "smartpm_friendly_enabled": True,
                "smartpm_friendly_calendar_id": calendar.id,
                "smartpm_friendly_limit_kwh": LIMIT_KWH,
                "smartpm_friendly_limit_money": LIMIT_MONEY,
            }
        )
        start = tz.localize(start_local).astimezone(pytz.utc)
        return {"company": company.id, "calendar": calendar.id, "before": before}, start


def _cleanup(registry, ids, friendly_ids):
    from test_e2e_vending import delete_committed

    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        env["res.company"].browse(friendly_ids["company"]).with_context(**DEFER).write(
            friendly_ids["before"]
        )
        env["resource.calendar"].browse(friendly_ids["calendar"]).with_context(**DEFER).unlink()
        if ids:
            cr.execute(
                "DELETE FROM mail_message WHERE model = 'smartpm.alarm' AND res_id IN "
                "(SELECT id FROM smartpm_alarm WHERE meter_id = %s)",
                (ids["meter"],),
            )
            cr.execute(
                "DELETE FROM smartpm_credit_recognition WHERE meter_id = %s", (ids["meter"],)
            )
            cr.execute(
                "DELETE FROM smartpm_tariff_tou_version WHERE tariff_id = %s", (ids["tariff"],)
            )
            delete_committed(cr, ids["meter"], ids["tariff"], [ids["user"]], [ids["tenant"]])


def _queue(registry, meter_id, job_type, payload=None):
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        return (
            env["smartpm.meter.job"]
            .create({"meter_id": meter_id, "job_type": job_type, "payload": payload or {}})
            .id
        )


def _done(registry, job_id):
    with registry.cursor() as cr:
        cr.execute("SELECT state FROM smartpm_meter_job WHERE id = %s", (job_id,))
        return cr.fetchone()[0] == "done"


def test_money_meter_defers_down_to_the_money_limit_trips_after_and_a_purchase_repays(
    odoo_db, sim_fleet
):
    from odoo import SUPERUSER_ID, api
    from odoo.addons.smartpm_prepay.services import friendly

    db, registry = odoo_db
    friendly_ids, start = _friendly_company(registry)
    ids = {}
    try:
        fleet = sim_fleet(MeterConfig(SERIAL, credit_mode="money", credit_kwh=0.0), start=start)
        model = fleet.meter(SERIAL)
        model.set_load(0)
        login, key, ids = tou_setup(registry, fleet.port_of(SERIAL), label="frm")
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            meter = env["smartpm.meter"].browse(ids["meter"])
            first = sell(env, meter, 1.0, f"E2E-FRM-1-{os.getpid()}")
            first_money = first.credit_money
        with run_odoo(db) as server, bridge(db, login, key, server.url, f"e2e-frm-{os.getpid()}"):
            for job_type in ("set_friendly_schedule", "set_tariff_calendar", "add_credit"):
                wait_for(lambda t=job_type: _jobs_done(registry, ids["meter"], t), what=job_type)
            # the meter holds the limit in its own unit: milli-units of the currency
            assert model.friendly_limit_wh == -round(LIMIT_MONEY * 1000)
            state = model.state()
            assert len(state["friendly_windows"]) == 14
            assert model.credit_wh == round(first_money * 1000) > 0

            # Wednesday 16:00 local on: 1 kW; the credit runs out in the evening's friendly
            # hours, the meter stays on below zero through the night
            seen = len(model.events)  # the meter started at zero: a trip before the sale
            model.set_load(LOAD_W)
            model.advance(15 * 3600 - 120)  # Thursday 06:58 local
            assert model.relay_connected
            assert -round(LIMIT_MONEY * 1000) < model.credit_wh < -500  # below zero, not past
            codes = [e.code for e in model.events[seen:]]
            assert EV_FRIENDLY_TRIP_DEFERRED in codes and EV_CREDIT_TRIP not in codes

            job = _queue(registry, ids["meter"], "read_events", {"since": None})
            wait_for(lambda: _done(registry, job), what="read_events")
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                meter = env["smartpm.meter"].browse(ids["meter"])
                notice = friendly.portal_notice(meter.sudo())
                currency = meter.company_id.currency_id
                # the tenant's notice says the money limit, not kWh
                assert notice and currency.format(-LIMIT_MONEY) in notice[1]
                assert "kWh" not in notice[1]

            # Thursday 07:00, a working day: the period ends, the meter trips
            model.advance(240)
            assert not model.relay_connected and model.disconnect_reason == "credit"
            debt = model.credit_wh
            assert -round(LIMIT_MONEY * 1000) < debt < 0

            # a purchase repays the debt first and reconnects
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                meter = env["smartpm.meter"].browse(ids["meter"])
                second = sell(env, meter, 5.0, f"E2E-FRM-2-{os.getpid()}")
                second_id, second_money, job_id = second.id, second.credit_money, second.job_id.id
            wait_for(lambda: _done(registry, job_id), what="the second sale")
            assert model.credit_wh == debt + round(second_money * 1000)
            wait_for(lambda: model.relay_connected, what="the reconnection")
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                purchase = env["smartpm.credit.purchase"].browse(second_id)
                odoo_credit = purchase.meter_id.credit_money
                repaid = purchase.debt_repaid_money
                rows = {r["key"]: r for r in purchase._receipt()["split"]["lines"]}
                repaid_text = purchase.currency_id.format(-debt / 1000)
    finally:
        _cleanup(registry, ids, friendly_ids)

    # Odoo's figures are the meter's, milli-unit for milli-unit
    assert round(odoo_credit * 1000) == model.credit_wh
    assert round(repaid * 1000) == -debt
    assert rows["negative_repaid_money"]["label"] == "Negative credit repaid"
    assert rows["negative_repaid_money"]["value"] == repaid_text
    assert "kWh" not in rows["negative_repaid_money"]["value"]
