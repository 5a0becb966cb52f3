"""End to end (issue 17 §6): a time-of-use day charged band by band on a money-mode meter.

A TOU tariff (off-peak 0.10, peak 0.40 from 17:00 to 21:00) and a money-mode meter are set
up in Odoo; a `meter-bridge` process pushes the activity calendar and the charge table to
the simulated meter over real DLMS (HLS-GMAC), then delivers a money token; the test moves
the simulator's clock through a day, reads the per-rate registers and the Charge through
the bridge, and Odoo's figures (consumption per band, money consumed, revenue recognised)
equal the meter's unit for unit. Skipped when Odoo or the database is missing.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from odoo_e2e import locked_meter_vals, public_holiday, user_with_key
from test_e2e_vending import _odoo_server, _run_bridge_until, delete_committed

from meter_sim.model import MeterConfig

odoo = pytest.importorskip("odoo")

SERIAL = "E2E-TOU-1"
MIDNIGHT = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)  # the simulator's day (Monday)
READ = [
    {"obis": "1.0.1.8.1.255", "ic": 3, "attribute": 2},
    {"obis": "1.0.1.8.2.255", "ic": 3, "attribute": 2},
    {"obis": "0.0.19.20.0.255", "ic": 113, "attribute": 2},
    {"obis": "0.0.19.10.0.255", "ic": 112, "attribute": 2},
]


def _setup(registry, port, label="tou", serial=SERIAL, holiday_off_peak=None):
    """A TOU tariff (off-peak 0.10, peak 0.40 from 17:00 to 21:00), its tenant and a
    money-mode meter created active (it gets its calendar at once, services/tou.py), with a
    bridge user. With ``holiday_off_peak`` (a date): the company's friendly-period calendar
    (the one list of public holidays) is a new one holding that public holiday, and the
    tariff charges public holidays all day off-peak; ``_cleanup`` puts the former back."""
    from odoo import SUPERUSER_ID, Command, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        what = "TOU holiday" if holiday_off_peak else "TOU"
        user, key = user_with_key(env, f"E2E {what} bridge", f"e2e_{label}_bridge_{os.getpid()}")
        ids = {"user": user.id}
        if holiday_off_peak:
            company = env.company
            calendar = env["resource.calendar"].create(
                {"name": "E2E public holidays", "company_id": company.id, "attendance_ids": []}
            )
            ids["former_calendar"] = company.smartpm_friendly_calendar_id.id
            company.smartpm_friendly_calendar_id = calendar
            ids["calendar"] = calendar.id
            ids["leave"] = public_holiday(calendar, holiday_off_peak, "E2E Founders' Day").id
        tariff = env["smartpm.tariff"].create(
            {"name": "E2E TOU holidays" if holiday_off_peak else "E2E TOU", "price_per_kwh": 1.0}
        )
        version = env["smartpm.tariff.tou.version"].create(
            {
                "tariff_id": tariff.id,
                "date_start": dt.date(2026, 1, 1),
                "band_ids": [
                    Command.create({"name": "Off-peak", "rate": 1, "price_per_kwh": 0.10}),
                    Command.create({"name": "Peak", "rate": 2, "price_per_kwh": 0.40}),
                ],
            }
        )
        off, peak = version.band_ids.sorted("rate")
        version.write(
            {
                "rule_ids": [
                    Command.create({"band_id": off.id, "start_hour": 0, "end_hour": 17}),
                    Command.create({"band_id": peak.id, "start_hour": 17, "end_hour": 21}),
                    Command.create({"band_id": off.id, "start_hour": 21, "end_hour": 24}),
                ],
                **({"holiday_mode": "band", "holiday_band_id": off.id} if holiday_off_peak else {}),
            }
        )
        tariff.pricing_mode = "tou"
        tenant = env["res.partner"].create({"name": f"E2E {what} tenant", "is_tenant": True})
        # created active in money mode: the meter gets its calendar at once (services/tou.py)
        meter = env["smartpm.meter"].create(
            {
                "serial_number": serial,
                "host": "127.0.0.1",
                "port": port,
                "state": "active",
                "tenant_id": tenant.id,
                "tariff_id": tariff.id,
                "credit_mode": "money",
                **locked_meter_vals(serial),
            }
        )
        ids.update(tariff=tariff.id, tenant=tenant.id, meter=meter.id)
        return user.login, key, ids


def _cleanup(registry, ids):
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        cr.execute("DELETE FROM smartpm_credit_recognition WHERE meter_id = %s", (ids["meter"],))
        cr.execute("DELETE FROM smartpm_tariff_tou_version WHERE tariff_id = %s", (ids["tariff"],))
        delete_committed(cr, ids["meter"], ids["tariff"], [ids["user"]], [ids["tenant"]])
    if "calendar" in ids:  # the holiday's calendar: the company's former one back
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env.company.smartpm_friendly_calendar_id = ids["former_calendar"] or False
            env["resource.calendar.leaves"].browse(ids["leave"]).exists().unlink()
            env["resource.calendar"].browse(ids["calendar"]).exists().unlink()


def _job_done(registry, job_id):
    with registry.cursor() as cr:
        cr.execute("SELECT state FROM smartpm_meter_job WHERE id = %s", (job_id,))
        return cr.fetchone()[0] == "done"


def _calendar_jobs_done(registry, meter_id):
    with registry.cursor() as cr:
        cr.execute(
            "SELECT state FROM smartpm_meter_job WHERE meter_id = %s AND job_type = %s",
            (meter_id, "set_tariff_calendar"),
        )
        states = [r[0] for r in cr.fetchall()]
        return bool(states) and all(s in ("done", "cancelled") for s in states)


def _queue_read(registry, meter_id):
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        meter = env["smartpm.meter"].browse(meter_id)
        return meter._enqueue_job("read", {"objects": READ}).id


def test_a_tou_day_is_charged_band_by_band_and_odoo_agrees_unit_for_unit(odoo_db, sim_fleet):
    db, registry = odoo_db
    from odoo import SUPERUSER_ID, api
    from odoo.addons.smartpm_prepay.services import friendly

    with registry.cursor() as cr:  # the calendar runs on the company's local time
        offset = friendly.utc_offset_min(
            api.Environment(cr, SUPERUSER_ID, {}).company, MIDNIGHT.replace(tzinfo=None)
        )
    start = MIDNIGHT - dt.timedelta(minutes=offset)  # local midnight
    fleet = sim_fleet(MeterConfig(SERIAL, credit_mode="money", credit_kwh=0.0), start=start)
    model = fleet.meter(SERIAL)
    model.set_load(0)
    login, key, ids = _setup(registry, fleet.port_of(SERIAL))
    try:
        with _odoo_server(db) as url:

            def run_until(done):
                assert _run_bridge_until(db, login, key, url, done)

            # the calendar and the charge table reached the meter
            run_until(lambda: _calendar_jobs_done(registry, ids["meter"]))
            state = model.state()
            assert state["calendar_active"] == f"T{ids['tariff']}-20260101"
            assert model.charges_active == {1: 1000, 2: 4000}

            # a money sale: the token carries 20.000 of the currency, the meter takes it
            from odoo import SUPERUSER_ID, api
            from odoo.addons.smartpm_prepay.services import prepayment, tou
            from odoo.addons.smartpm_prepay.services.vending import vend

            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                meter = env["smartpm.meter"].browse(ids["meter"])
                purchase = vend(env, meter, 20.0, "backoffice", f"E2E-TOU-{os.getpid()}")
                purchase_id, job_id = purchase.id, purchase.job_id.id
                receipt = purchase._receipt()
            assert receipt["credit_money"] == 20.0
            assert [b["name"] for b in receipt["bands"]] == ["Off-peak", "Peak"]
            run_until(lambda: _job_done(registry, job_id))
            assert model.credit_wh == 20_000

            # the day, band by band: 1 kW all day; read through the bridge after each band
            model.set_load(1000)
            expected = []  # (off-peak Wh, peak Wh, charged milli-units) after each band
            for hours in (17, 4, 3):
                model.advance(hours * 3600)
                read_id = _queue_read(registry, ids["meter"])
                run_until(lambda rid=read_id: _job_done(registry, rid))
                expected.append((model.rate_wh.get(1, 0), model.rate_wh.get(2, 0)))
            assert expected == [(17_000, 0), (17_000, 4_000), (20_000, 4_000)]
            assert model.charge_total == 1_700 + 1_600 + 300

            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                meter = env["smartpm.meter"].browse(ids["meter"])
                purchase = env["smartpm.credit.purchase"].browse(purchase_id)
                now = dt.datetime.utcnow() + dt.timedelta(minutes=1)
                bands = tou.band_consumption(meter, dt.datetime(2000, 1, 1), now)
                # Odoo's per-band consumption and money are the meter's own figures
                assert [(b["name"], b["kwh"]) for b in bands] == [("Off-peak", 20.0), ("Peak", 4.0)]
                odoo_money = sum(b["amount"] for b in bands)
                assert round(odoo_money * 1000) == model.charge_total
                assert meter.credit_money == pytest.approx(model.credit_wh / 1000)
                assert purchase.charge_total_at_delivery == 0.0
                # revenue recognised by money consumed, once
                tomorrow = dt.date.today() + dt.timedelta(days=1)
                move = prepayment.recognise(meter.company_id, tomorrow)
                assert move.amount_total == pytest.approx(model.charge_total / 1000)
                assert purchase.money_remaining == pytest.approx(20.0 - model.charge_total / 1000)
                assert not prepayment.recognise(meter.company_id, tomorrow)
                cr.rollback()  # the journal entry stays out of the shared database
    finally:
        _cleanup(registry, ids)
