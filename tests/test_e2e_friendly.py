"""End to end (issue 17 §2): a friendly period keeps a simulated meter on at zero credit
through a night and a public holiday, and it trips the next working day; a purchase repays
the debt and reconnects it.

The company's friendly calendar (nights 18:00-07:00) and a public holiday are set up in
Odoo; the meter created active gets the schedule from a `meter-bridge` process over real
DLMS (HLS-GMAC); the in-process simulator's clock starts on a Wednesday afternoon (local)
and is moved by the test. Skipped when Odoo or the database is missing.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
import pytz
from odoo_e2e import public_holiday, user_with_key
from test_e2e_vending import _odoo_server, _run_bridge_until, delete_committed, sold_meter

from meter_sim.model import EV_CREDIT_TRIP, EV_FRIENDLY_TRIP_DEFERRED, MeterConfig

odoo = pytest.importorskip("odoo")

SERIAL = "E2E-FRIENDLY-1"
DEFER = {"smartpm_friendly_defer": True}  # set up without pushing to other tests' meters
LOAD_W = 500
LIMIT_KWH = 50.0


def _next_wednesday(tz):
    """Wednesday 16:00 local (naive local) after today, and the Thursday after it."""
    today = dt.datetime.now(tz).date()
    wednesday = today + dt.timedelta(days=(2 - today.weekday()) % 7 or 7)
    return dt.datetime.combine(wednesday, dt.time(16, 0)), wednesday + dt.timedelta(days=1)


def _setup(registry, port_of):
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        company = env.company
        tz = pytz.timezone(company.partner_id.tz or "UTC")
        start_local, holiday = _next_wednesday(tz)
        calendar = (
            env["resource.calendar"]
            .with_context(**DEFER)
            .create(
                {
                    "name": "E2E friendly nights",
                    "company_id": company.id,
                    "attendance_ids": [
                        (0, 0, {"name": "night", "dayofweek": str(d), "hour_from": 0, "hour_to": 7})
                        for d in range(7)
                    ]
                    + [
                        (0, 0, {"name": "eve", "dayofweek": str(d), "hour_from": 18, "hour_to": 24})
                        for d in range(7)
                    ],
                }
            )
        )

        leave = public_holiday(calendar, holiday, "E2E public holiday")  # calendar: DEFER
        before = {
            "smartpm_friendly_enabled": company.smartpm_friendly_enabled,
            "smartpm_friendly_calendar_id": company.smartpm_friendly_calendar_id.id,
            "smartpm_friendly_limit_kwh": company.smartpm_friendly_limit_kwh,
        }
        company.with_context(**DEFER).write(
            {
                "smartpm_friendly_enabled": True,
                "smartpm_friendly_calendar_id": calendar.id,
                "smartpm_friendly_limit_kwh": LIMIT_KWH,
            }
        )
        user, key = user_with_key(env, "E2E friendly bridge", f"e2e_fr_bridge_{os.getpid()}")
        port = port_of(tz.localize(start_local).astimezone(pytz.utc))
        # created active: the meter gets the schedule at once (services/friendly.push)
        tariff, tenant, meter = sold_meter(env, "E2E friendly", SERIAL, port)
        tenant.email = "friendly-tenant@example.com"
        ids = {
            "user": user.id,
            "tariff": tariff.id,
            "tenant": tenant.id,
            "meter": meter.id,
            "calendar": calendar.id,
            "leave": leave.id,
            "company": company.id,
            "before": before,
            "holiday": holiday.isoformat(),
        }
        return user.login, key, ids


def _cleanup(registry, ids):
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        env["res.company"].browse(ids["company"]).with_context(**DEFER).write(ids["before"])
        env["resource.calendar.leaves"].browse(ids["leave"]).with_context(**DEFER).unlink()
        env["resource.calendar"].browse(ids["calendar"]).with_context(**DEFER).unlink()
        cr.execute(
            "DELETE FROM mail_message WHERE model = 'smartpm.alarm' AND res_id IN "
            "(SELECT id FROM smartpm_alarm WHERE meter_id = %s)",
            (ids["meter"],),
        )
        cr.execute("DELETE FROM smartpm_credit_purchase WHERE meter_id = %s", (ids["meter"],))
        delete_committed(cr, ids["meter"], ids["tariff"], [ids["user"]], [ids["tenant"]])


def _jobs(registry, meter_id, job_type):
    with registry.cursor() as cr:
        cr.execute(
            "SELECT state, payload, result FROM smartpm_meter_job "
            "WHERE meter_id = %s AND job_type = %s ORDER BY id",
            (meter_id, job_type),
        )
        return cr.fetchall()


def _queue(registry, meter_id, job_type, payload=None):
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        job = env["smartpm.meter.job"].create(
            {"meter_id": meter_id, "job_type": job_type, "payload": payload or {}}
        )
        return job.id


def _job_done(registry, job_id):
    with registry.cursor() as cr:
        cr.execute("SELECT state FROM smartpm_meter_job WHERE id = %s", (job_id,))
        return cr.fetchone()[0] == "done"


def _odoo_meter(registry, meter_id):
    with registry.cursor() as cr:
        cr.execute("SELECT credit_kwh, relay_state FROM smartpm_meter WHERE id = %s", (meter_id,))
        credit, relay = cr.fetchone()
        cr.execute(
            "SELECT alarm_type, state FROM smartpm_alarm WHERE meter_id = %s "
            "AND alarm_type IN ('friendly_deferred', 'credit_trip') ORDER BY meter_time, id",
            (meter_id,),
        )
        return credit, relay, cr.fetchall()


def test_no_trip_through_a_night_and_a_public_holiday_then_a_trip_and_a_purchase_reconnects(
    odoo_db, sim_fleet
):
    db, registry = odoo_db
    fleets = {}

    def port_of(start_utc):
        fleet = sim_fleet(MeterConfig(SERIAL, credit_kwh=0.4), start=start_utc)
        fleets["fleet"] = fleet
        fleet.meter(SERIAL).set_load(0)
        return fleet.port_of(SERIAL)

    login, key, ids = _setup(registry, port_of)
    model = fleets["fleet"].meter(SERIAL)
    try:
        with _odoo_server(db) as url:

            def run(job_id):
                assert _run_bridge_until(db, login, key, url, lambda: _job_done(registry, job_id))

            # the schedule reached the meter (pushed when the meter was created)
            pushed = _jobs(registry, ids["meter"], "set_friendly_schedule")
            assert len(pushed) == 1, pushed
            assert _run_bridge_until(
                db,
                login,
                key,
                url,
                lambda: _jobs(registry, ids["meter"], "set_friendly_schedule")[0][0] == "done",
            )
            state = model.state()
            assert ids["holiday"] in state["friendly_days"]
            assert len(state["friendly_windows"]) == 14
            assert state["friendly_limit_kwh"] == -LIMIT_KWH

            # Wednesday 18:00 local on: the tenant uses 500 W, credit runs out at 18:48
            model.advance(2 * 3600)
            model.set_load(LOAD_W)
            model.advance(13 * 3600)  # Thursday 07:00 local: the public holiday
            assert model.relay_connected and model.credit_wh < 0
            model.advance(11 * 3600)  # Thursday 18:00: still the holiday
            assert model.relay_connected
            model.advance(13 * 3600 - 120)  # Friday 06:58: the night's friendly hours
            assert model.relay_connected
            debt_wh = model.credit_wh
            assert debt_wh < -15000  # ~36 h at 500 W, within the 50 kWh limit
            codes = [e.code for e in model.events]
            assert EV_FRIENDLY_TRIP_DEFERRED in codes and EV_CREDIT_TRIP not in codes

            # Odoo shows it: the meter's friendly alarm, the tenant mailed
            run(_queue(registry, ids["meter"], "read_events", {"since": None}))
            credit, relay, alarms = _odoo_meter(registry, ids["meter"])
            assert ("friendly_deferred", "new") in alarms
            with registry.cursor() as cr:
                cr.execute(
                    "SELECT count(*) FROM mail_mail m JOIN mail_message g "
                    "ON g.id = m.mail_message_id WHERE g.model = 'smartpm.alarm' AND g.res_id IN "
                    "(SELECT id FROM smartpm_alarm WHERE meter_id = %s "
                    "AND alarm_type = 'friendly_deferred')",
                    (ids["meter"],),
                )
                assert cr.fetchone()[0] == 1

            # Friday 07:00, a working day: the meter trips
            model.advance(240)
            assert not model.relay_connected and model.disconnect_reason == "credit"
            run(_queue(registry, ids["meter"], "read_events", {"since": None}))
            credit, relay, alarms = _odoo_meter(registry, ids["meter"])
            assert ("friendly_deferred", "cleared") in alarms
            assert ("credit_trip", "new") in alarms

            # a purchase repays the debt first and reconnects
            from odoo import SUPERUSER_ID, api
            from odoo.addons.smartpm_prepay.services.vending import vend

            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                meter = env["smartpm.meter"].browse(ids["meter"])
                purchase = vend(env, meter, 20.0, "backoffice", f"E2E-FR-{os.getpid()}")
                purchase_id, kwh, job_id = purchase.id, purchase.kwh, purchase.job_id.id
            debt_now = model.credit_wh
            run(job_id)
            assert model.credit_wh == debt_now + round(kwh * 1000)
            assert model.relay_connected
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                purchase = env["smartpm.credit.purchase"].browse(purchase_id)
                receipt = purchase._receipt()
                odoo_credit = purchase.meter_id.credit_kwh
                relay = purchase.meter_id.relay_state
            assert receipt["state"] == "delivered"
            assert odoo_credit == pytest.approx((debt_now + kwh * 1000) / 1000, abs=0.01)
            assert 0 < odoo_credit < kwh
            assert relay == "connected"
            assert receipt["debt_repaid_kwh"] == pytest.approx(kwh - odoo_credit, abs=0.01)
            # the receipt of every channel (services/receipt.py) says the same
            split = receipt["split"]
            assert split["from_meter"]
            assert split["negative_repaid_kwh"] == receipt["debt_repaid_kwh"]
            assert split["net_kwh"] == pytest.approx(odoo_credit, abs=0.001)
            assert split["new_balance_kwh"] == pytest.approx(odoo_credit, abs=0.001)
    finally:
        _cleanup(registry, ids)
