"""End to end: a cashier's POS order reaches a simulated meter within seconds, once.

The order goes in as the POS sends it (``pos.order.sync_from_ui`` over RPC, as a cashier),
twice; a real Odoo HTTP server, a `meter-bridge` process and an in-process meter_sim fleet
deliver it. Same harness as test_e2e_vending.py; skipped when Odoo or the database is missing.
"""

from __future__ import annotations

import os
import time
import uuid
import xmlrpc.client

import pytest
from odoo_e2e import bridge, user_with_key
from test_e2e_vending import _odoo_server, delete_committed, sold_meter

from meter_sim.model import MeterConfig

odoo = pytest.importorskip("odoo")

SERIAL = "E2E-POS-1"
DELIVERY_SECONDS = 15


def _setup(registry, port):
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})

        bridge, bridge_key = user_with_key(env, "e2e_pos_bridge", f"e2e_pos_bridge_{os.getpid()}")
        cashier, cashier_key = user_with_key(
            env,
            "e2e_pos_cashier",
            f"e2e_pos_cashier_{os.getpid()}",
            ("point_of_sale.group_pos_user", "smartpm_prepay.group_cashier"),
        )
        tariff, tenant, meter = sold_meter(env, "E2E POS", SERIAL, port)
        cash_journal = env["account.journal"].search(
            [("type", "=", "cash"), ("company_id", "=", env.company.id)], limit=1
        )
        cash = env["pos.payment.method"].create(
            {"name": f"E2E cash {os.getpid()}", "journal_id": cash_journal.id}
        )
        config = env["pos.config"].create(
            {"name": f"E2E POS {os.getpid()}", "payment_method_ids": [(6, 0, cash.ids)]}
        )
        config.with_user(cashier).sudo().open_ui()
        session = config.current_session_id
        session.set_opening_control(0, None)
        ids = {
            "users": [bridge.id, cashier.id],
            "tariff": tariff.id,
            "tenant": tenant.id,
            "meter": meter.id,
            "config": config.id,
            "session": session.id,
            "cash": cash.id,
            "product": env.ref("smartpm_prepay.product_electricity_credit").id,
        }
        return (bridge.login, bridge_key), (cashier, cashier_key), ids


def _cleanup(registry, ids):
    with registry.cursor() as cr:
        # purchases first: they point at the POS orders
        cr.execute("DELETE FROM smartpm_credit_purchase WHERE meter_id = %s", (ids["meter"],))
        cr.execute("SELECT id FROM pos_order WHERE session_id = %s", (ids["session"],))
        order_ids = tuple(r[0] for r in cr.fetchall()) or (0,)
        cr.execute("DELETE FROM pos_payment WHERE pos_order_id IN %s", (order_ids,))
        cr.execute("DELETE FROM pos_order_line WHERE order_id IN %s", (order_ids,))
        cr.execute("DELETE FROM pos_order WHERE id IN %s", (order_ids,))
        cr.execute("DELETE FROM pos_session WHERE id = %s", (ids["session"],))
        cr.execute("UPDATE pos_config SET active = false WHERE id = %s", (ids["config"],))
        cr.execute("UPDATE pos_payment_method SET active = false WHERE id = %s", (ids["cash"],))
        delete_committed(cr, ids["meter"], ids["tariff"], ids["users"], [ids["tenant"]])


def _order(ids, cashier_id):
    """What the POS front end sends for a paid order with one 10.00 credit line."""
    order_uuid = str(uuid.uuid4())
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    return {
        "uuid": order_uuid,
        "name": f"Order {order_uuid[:13]}",
        "session_id": ids["session"],
        "user_id": cashier_id,
        "sequence_number": 1,
        "date_order": now,
        "amount_paid": 10.0,
        "amount_total": 10.0,
        "amount_tax": 0.0,
        "amount_return": 0.0,
        "partner_id": False,
        "to_invoice": False,
        "state": "paid",
        "lines": [
            [
                0,
                0,
                {
                    "uuid": str(uuid.uuid4()),
                    "product_id": ids["product"],
                    "qty": 1,
                    "price_unit": 10.0,
                    "price_subtotal": 10.0,
                    "price_subtotal_incl": 10.0,
                    "tax_ids": [[6, 0, []]],
                    "smartpm_meter_id": ids["meter"],
                    "smartpm_kwh": 20.0,
                },
            ]
        ],
        "payment_ids": [[0, 0, {"amount": 10.0, "payment_method_id": ids["cash"], "name": now}]],
    }


def test_pos_sale_reaches_the_meter_within_seconds_once(odoo_db, sim_fleet):
    db, registry = odoo_db
    fleet = sim_fleet(MeterConfig(SERIAL, credit_kwh=3.0))
    model = fleet.meter(SERIAL)
    (bridge_login, bridge_key), (cashier, cashier_key), ids = _setup(
        registry, fleet.port_of(SERIAL)
    )
    try:
        with _odoo_server(db) as url:
            with bridge(db, bridge_login, bridge_key, url, f"e2e-pos-{os.getpid()}"):
                rpc = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object", allow_none=True)

                def call(model_name, method, *args):
                    return rpc.execute_kw(
                        db, cashier.id, cashier_key, model_name, method, list(args)
                    )

                order = _order(ids, cashier.id)
                started = time.monotonic()
                first = call("pos.order", "sync_from_ui", [order])
                again = call("pos.order", "sync_from_ui", [order])  # offline retry
                order_id = first["pos.order"][0]["id"]
                assert again["pos.order"][0]["id"] == order_id
                assert first["pos.order.line"][0]["smartpm_purchase_ref"]

                status = []
                while time.monotonic() - started < DELIVERY_SECONDS:
                    status = call("pos.order", "smartpm_credit_status", order_id)
                    if status and status[0]["state"] == "delivered":
                        break
                    time.sleep(0.3)
                assert [s["state"] for s in status] == ["delivered"], status
                # 10.00 at 0.50 = 20 kWh on top of the 3 kWh the meter had, once
                assert model.credit_wh == pytest.approx(23000, abs=5)
                assert status[0]["credit_kwh"] == pytest.approx(23.0, abs=0.01)
        with registry.cursor() as cr:
            cr.execute(
                "SELECT count(*) FROM smartpm_credit_purchase WHERE meter_id = %s",
                (ids["meter"],),
            )
            assert cr.fetchone()[0] == 1
    finally:
        _cleanup(registry, ids)
