"""End to end: a bank that knows only the WSDL buys credit and sees it delivered.

A real Odoo HTTP server (subprocess), zeep as the bank's SOAP client, a `meter-bridge`
process and a simulated meter. Skipped when Odoo or the database is missing. The sale's
invoice and payment stay in the (disposable) test database; everything else is removed.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from meter_sim.model import MeterConfig

odoo = pytest.importorskip("odoo")
zeep = pytest.importorskip("zeep")

from test_e2e_vending import (  # noqa: E402  (helpers shared with the vending e2e test)
    _odoo_server,
    _run_bridge_until,
    delete_committed,
    odoo_db,  # noqa: F401  (fixture)
    sold_meter,
)
from zeep.wsse.username import UsernameToken  # noqa: E402

SERIAL = f"E2E-BANK-{os.getpid()}"


def _setup(registry, port):
    from odoo import SUPERUSER_ID, api, fields

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        company = env.ref("base.main_company")
        journal = env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", company.id)], limit=1
        )
        if not journal:
            pytest.skip("the main company has no bank journal (no chart of accounts)")
        expiry = fields.Datetime.add(fields.Datetime.now(), days=1)
        bank = env["res.partner"].create(
            {
                "name": f"E2E Bank {os.getpid()}",
                "is_company": True,
                "smartpm_is_bank": True,
                "smartpm_bank_journal_id": journal.id,
            }
        )
        users = {}
        for role, group in (("bridge", "group_bridge_api"), ("bank", "group_bank_api")):
            user = env["res.users"].create(
                {
                    "name": f"E2E {role}",
                    "login": f"e2e_{role}_{os.getpid()}",
                    "groups_id": [
                        (
                            6,
                            0,
                            [env.ref("base.group_user").id, env.ref(f"smartpm_prepay.{group}").id],
                        )
                    ],
                }
            )
            key = env["res.users.apikeys"].with_user(user)._generate(None, "e2e", expiry)
            users[role] = (user, key)
        users["bank"][0].partner_id.parent_id = bank
        tariff, tenant, meter = sold_meter(env, "E2E bank", SERIAL, port)
        ids = {
            "users": [u.id for u, _key in users.values()],
            "partners": [bank.id, tenant.id],
            "tariff": tariff.id,
            "meter": meter.id,
        }
        return (
            users["bridge"][0].login,
            users["bridge"][1],
            users["bank"][0].login,
            users["bank"][1],
            ids,
        )


def _cleanup(registry, ids):
    with registry.cursor() as cr:
        delete_committed(cr, ids["meter"], ids["tariff"], ids["users"], ids["partners"])


def test_bank_buys_credit_with_the_wsdl_and_sees_it_delivered(odoo_db, sim_fleet):  # noqa: F811
    db, registry = odoo_db
    fleet = sim_fleet(MeterConfig(SERIAL, credit_kwh=1.0))
    model = fleet.meter(SERIAL)
    bridge_login, bridge_key, bank_login, bank_key, ids = _setup(registry, fleet.port_of(SERIAL))
    try:
        with _odoo_server(db) as url:
            bank = zeep.Client(
                f"{url}/smartpm/soap/vending?wsdl", wsse=UsernameToken(bank_login, bank_key)
            ).service
            customer = bank.QueryCustomer(meterNumber=SERIAL)
            assert customer.sellable and customer.tenantName == "E2E bank tenant"

            receipt = bank.Purchase(
                meterNumber=SERIAL,
                amount=Decimal("5.00"),
                bankReference=f"E2E-{os.getpid()}",
                bankTime=datetime.now(timezone.utc),
            )
            assert (receipt.state, receipt.kwh) == ("queued", Decimal("10.000"))

            delivered = _run_bridge_until(
                db,
                bridge_login,
                bridge_key,
                url,
                lambda: bank.QueryPurchase(bankReference=f"E2E-{os.getpid()}").state == "delivered",
            )
            assert delivered
            # 5.00 at 0.50 = 10 kWh on top of the 1 kWh the meter had
            assert model.credit_wh == pytest.approx(11000, abs=5)
    finally:
        _cleanup(registry, ids)
