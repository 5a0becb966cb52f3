"""End to end (issue 17 §7): free basic electricity reaches the simulated meter as a token,
once a month, even when the cron runs twice (and again after the delivery).

The grant cron runs as Odoo's scheduler runs it (``ir.cron`` ``method_direct_trigger``) in
committed transactions; a real Odoo HTTP server and a `meter-bridge` process deliver the
token to an in-process meter_sim meter. Skipped when Odoo or the database is missing.
"""

from __future__ import annotations

import os

import pytest
from odoo_e2e import user_with_key
from test_e2e_vending import _odoo_server, _run_bridge_until, delete_committed, sold_meter

from meter_sim.model import TRANSFER_APPLIED, MeterConfig

odoo = pytest.importorskip("odoo")

SERIAL = "E2E-FBE-1"
FREE_KWH = 12.5


def _setup(registry, port):
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        user, key = user_with_key(env, "E2E FBE bridge", f"e2e_fbe_bridge_{os.getpid()}")
        tariff, tenant, meter = sold_meter(env, "E2E FBE", SERIAL, port)
        tariff.write({"fbe_social": True, "fbe_kwh_month": FREE_KWH})
        ids = {"user": user.id, "tariff": tariff.id, "tenant": tenant.id, "meter": meter.id}
        return user.login, key, ids


def _run_cron(registry):
    """One run of the grant cron, committed, as the scheduler runs it."""
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        env.ref("smartpm_prepay.cron_grant_fbe").method_direct_trigger()


def _grants(registry, ids):
    with registry.cursor() as cr:
        cr.execute(
            """SELECT p.state, p.amount, p.kwh, p.transfer_number, p.external_ref, j.state
                 FROM smartpm_credit_purchase p JOIN smartpm_meter_job j ON j.id = p.job_id
                WHERE p.meter_id = %s AND p.channel = 'fbe' ORDER BY p.id""",
            (ids["meter"],),
        )
        return cr.fetchall()


def test_free_basic_electricity_reaches_the_meter_once_when_the_cron_runs_twice(odoo_db, sim_fleet):
    db, registry = odoo_db
    fleet = sim_fleet(MeterConfig(SERIAL, credit_kwh=2.0))
    model = fleet.meter(SERIAL)
    login, key, ids = _setup(registry, fleet.port_of(SERIAL))
    try:
        _run_cron(registry)
        _run_cron(registry)  # a second scheduler run (or a duplicate) grants nothing more
        grants = _grants(registry, ids)
        assert len(grants) == 1, grants
        state, amount, kwh, number, ref, _job = grants[0]
        assert (amount, kwh, number) == (0, FREE_KWH, 1)
        assert ref.startswith(f"FBE-{ids['tenant']}-")
        with _odoo_server(db) as url:
            delivered = _run_bridge_until(
                db, login, key, url, lambda: _grants(registry, ids)[0][0] == "delivered"
            )
            assert delivered, _grants(registry, ids)
            # the free kWh are on the meter, as its own token (transfer 1), once
            assert model.credit_wh == pytest.approx(2000 + FREE_KWH * 1000, abs=5)
            assert model.transfer_status(1) == TRANSFER_APPLIED
            _run_cron(registry)  # the next day's run: the month is granted already
            assert len(_grants(registry, ids)) == 1
            assert model.credit_wh == pytest.approx(2000 + FREE_KWH * 1000, abs=5)
            assert model.applied_transfers == {1}
    finally:
        with registry.cursor() as cr:
            delete_committed(cr, ids["meter"], ids["tariff"], [ids["user"]], [ids["tenant"]])
