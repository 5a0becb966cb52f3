"""End to end (issue 17 §6): a public holiday charged as a special day on a money-mode meter.

A TOU tariff (off-peak 0.10, peak 0.40 from 17:00 to 21:00) charges public holidays all day
off-peak; the company's friendly-period calendar holds a holiday (the one list of public
holidays). A `meter-bridge` process pushes the calendar with its special days table to the
simulated meter over real DLMS; the test moves the simulator's clock through the holiday
(charged off-peak, the evening included) and the next working day (peak at peak price), reads
the per-rate registers and the Charge through the bridge, and Odoo's per-band figures equal
the meter's unit for unit. Skipped when Odoo or the database is missing.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from test_e2e_tou import _calendar_jobs_done, _cleanup, _job_done, _queue_read, _setup
from test_e2e_vending import _odoo_server, _run_bridge_until

from meter_sim.model import MeterConfig

odoo = pytest.importorskip("odoo")

SERIAL = "E2E-TOU-HOL-1"


def test_a_holiday_is_charged_at_its_band_and_the_next_day_at_peak_odoo_agrees(odoo_db, sim_fleet):
    db, registry = odoo_db
    from odoo import SUPERUSER_ID, api
    from odoo.addons.smartpm_prepay.services.local_time import day_start_utc, local_today

    with registry.cursor() as cr:
        company = api.Environment(cr, SUPERUSER_ID, {}).company
        today = local_today(company)
        # the next Wednesday (a working day that is a holiday), followed by a Thursday
        holiday = today + dt.timedelta(days=(2 - today.weekday()) % 7 or 7)
        # the holiday's local midnight (naive UTC from Odoo)
        start = day_start_utc(company, holiday).replace(tzinfo=dt.timezone.utc)
    fleet = sim_fleet(MeterConfig(SERIAL, credit_mode="money", credit_kwh=0.0), start=start)
    model = fleet.meter(SERIAL)
    model.set_load(0)
    login, key, ids = _setup(
        registry, fleet.port_of(SERIAL), label="hol", serial=SERIAL, holiday_off_peak=holiday
    )
    try:
        with _odoo_server(db) as url:

            def run_until(done):
                assert _run_bridge_until(db, login, key, url, done)

            # the calendar, its holiday profile and the special days table reached the meter
            run_until(lambda: _calendar_jobs_done(registry, ids["meter"]))
            assert model.tou_special_days == [((holiday.year, holiday.month, holiday.day), 2)]
            assert model.charges_active == {1: 1000, 2: 4000}

            from odoo.addons.smartpm_prepay.services import tou
            from odoo.addons.smartpm_prepay.services.vending import vend

            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                meter = env["smartpm.meter"].browse(ids["meter"])
                purchase = vend(env, meter, 20.0, "backoffice", f"E2E-TOU-HOL-{os.getpid()}")
                job_id = purchase.job_id.id
                receipt = purchase._receipt()
            off_peak = next(b for b in receipt["bands"] if b["name"] == "Off-peak")
            assert "public holidays all day" in off_peak["hours"]
            run_until(lambda: _job_done(registry, job_id))
            assert model.credit_wh == 20_000

            # 1 kW: the holiday (its 17:00-21:00 too) off-peak, then the next day by its bands
            model.set_load(1000)
            seen = []
            for hours in (17, 4, 3, 17, 4):
                model.advance(hours * 3600)
                read_id = _queue_read(registry, ids["meter"])
                run_until(lambda rid=read_id: _job_done(registry, rid))
                seen.append((model.rate_wh.get(1, 0), model.rate_wh.get(2, 0), model.charge_total))
            assert seen == [
                (17_000, 0, 1_700),
                (21_000, 0, 2_100),  # the holiday's evening at the off-peak price
                (24_000, 0, 2_400),
                (41_000, 0, 4_100),
                (41_000, 4_000, 5_700),  # the working day's peak at the peak price
            ]

            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                meter = env["smartpm.meter"].browse(ids["meter"])
                end = model.meter_time().replace(tzinfo=None) + dt.timedelta(hours=1)
                bands = tou.band_consumption(meter, dt.datetime(2000, 1, 1), end)
                # Odoo's per-band consumption and money are the meter's own figures
                assert [(b["name"], b["kwh"]) for b in bands] == [
                    ("Off-peak", 41.0),
                    ("Peak", 4.0),
                ]
                assert round(sum(b["amount"] for b in bands) * 1000) == model.charge_total
                assert meter.credit_money == pytest.approx(model.credit_wh / 1000)
    finally:
        _cleanup(registry, ids)
