"""End to end: a tenant's debt recovered over several bank purchases to exactly zero, the
credit of each purchase (its amount less the debt's part) landing on the simulated meter.

A real Odoo HTTP server (subprocess), zeep as the bank's SOAP client on the WSDL, a
`meter-bridge` process and a simulated meter. Skipped when Odoo or the database is missing.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from meter_sim.model import MeterConfig

odoo = pytest.importorskip("odoo")
zeep = pytest.importorskip("zeep")

from odoo_e2e import wait_until  # noqa: E402
from test_e2e_bank import _posted, _setup  # noqa: E402  (the bank, its users, a sold meter)
from test_e2e_vending import _odoo_server, _run_bridge_until, delete_committed  # noqa: E402
from zeep.wsse.username import UsernameToken  # noqa: E402

SERIAL = f"E2E-DEBT-{os.getpid()}"


def _add_debt(registry, meter_id):
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        meter = env["smartpm.meter"].browse(meter_id)
        debt = env["smartpm.tenant.debt"].create(
            {
                "tenant_id": meter.tenant_id.id,
                "company_id": meter.company_id.id,
                "description": "Arrears before prepaid",
                "amount": 4.50,
                "recovery_rule": "fixed",
                "recovery_fixed": 2.00,
            }
        )
        debt.action_confirm()
        return debt.id


def _debt_state(registry, debt_id):
    with registry.cursor() as cr:
        cr.execute(
            """SELECT d.balance, d.state, m.amount_residual
                 FROM smartpm_tenant_debt d JOIN account_move m ON m.id = d.invoice_id
                WHERE d.id = %s""",
            (debt_id,),
        )
        return cr.fetchone()


def _cleanup(registry, ids, debt_id):
    with registry.cursor() as cr:
        cr.execute("DELETE FROM smartpm_debt_recovery WHERE debt_id = %s", (debt_id,))
        cr.execute("DELETE FROM smartpm_tenant_debt WHERE id = %s", (debt_id,))
        delete_committed(cr, ids["meter"], ids["tariff"], ids["users"], ids["partners"])


def test_debt_is_recovered_over_bank_purchases_to_zero_and_the_rest_reaches_the_meter(
    odoo_db, sim_fleet
):
    db, registry = odoo_db
    fleet = sim_fleet(MeterConfig(SERIAL, credit_kwh=1.0))
    model = fleet.meter(SERIAL)
    bridge_login, bridge_key, bank_login, bank_key, ids = _setup(
        registry, fleet.port_of(SERIAL), SERIAL
    )
    debt_id = _add_debt(registry, ids["meter"])
    refs = [f"E2E-DEBT-{os.getpid()}-{i}" for i in range(3)]
    try:
        with _odoo_server(db) as url:
            bank = zeep.Client(
                f"{url}/smartpm/soap/vending?wsdl", wsse=UsernameToken(bank_login, bank_key)
            ).service
            receipts = [
                bank.Purchase(
                    meterNumber=SERIAL,
                    amount=Decimal("5.00"),
                    bankReference=ref,
                    bankTime=datetime.now(timezone.utc),
                )
                for ref in refs
            ]
            # 2.00, 2.00, then the 0.50 left; the rest buys kWh at 0.50
            assert [r.debtRecovered for r in receipts] == [
                Decimal("2.00"),
                Decimal("2.00"),
                Decimal("0.50"),
            ]
            assert [r.debtBalance for r in receipts] == [
                Decimal("2.50"),
                Decimal("0.50"),
                Decimal("0.00"),
            ]
            assert [r.creditAmount for r in receipts] == [
                Decimal("3.00"),
                Decimal("3.00"),
                Decimal("4.50"),
            ]
            assert [r.kwh for r in receipts] == [
                Decimal("6.000"),
                Decimal("6.000"),
                Decimal("9.000"),
            ]
            # a repeated request recovers nothing more
            again = bank.Purchase(
                meterNumber=SERIAL,
                amount=Decimal("5.00"),
                bankReference=refs[0],
                bankTime=datetime.now(timezone.utc),
            )
            assert (again.reference, again.debtRecovered) == (
                receipts[0].reference,
                Decimal("2.00"),
            )
            # the debt's invoice is matched when the payments are posted, after the answers
            wait_until(
                lambda: _debt_state(registry, debt_id) == (0.0, "paid", 0.0),
                30,
                what="the debt's invoice matched by the posted payments",
            )

            delivered = _run_bridge_until(
                db,
                bridge_login,
                bridge_key,
                url,
                lambda: all(
                    bank.QueryPurchase(bankReference=ref).state == "delivered" for ref in refs
                ),
            )
            assert delivered
            # 1 kWh before + 6 + 6 + 9 kWh of the three purchases' credit parts
            assert model.credit_wh == pytest.approx(22000, abs=5)
            wait_until(lambda: all(_posted(registry, ref) for ref in refs), 30, what="posted")
    finally:
        _cleanup(registry, ids, debt_id)
