"""The demo cashier sells credit, as he would, on the demo's data.

In headless Chromium as ``cashier`` (the demo's user, password and rights): he opens the
register of a demo shop from the Point of Sale dashboard, sells credit to a demo meter with
the *Sell credit* button, reads the receipt and closes the register; then in the back
office with the *Sell credit* wizard. What the screens showed (logged by the tours) is
compared with the purchase, the POS order, the job and the meter, figure for figure.
"""

import json
import logging
import uuid

from odoo.tests import tagged

from ...services.sale_info import describe_price, format_money
from .common import DemoJourneyCase

SCREEN_PREFIX = "SMARTPM_SCREEN "


class _ScreenLog(logging.Handler):
    """Collects what the tour logged of its screens (``SMARTPM_SCREEN <name> <json>``)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.screens = {}

    def emit(self, record):
        message = record.getMessage()
        if SCREEN_PREFIX in message:
            name, _sep, data = message.split(SCREEN_PREFIX, 1)[1].partition(" ")
            self.screens[name] = json.loads(data.splitlines()[0])


def _plain(text):
    """Screen text with the non-breaking spaces of amounts as plain spaces."""
    return " ".join((text or "").replace("\N{NO-BREAK SPACE}", " ").split())


class ScreenLogMixin:
    """What the tour logged of its screens: ``self._screen(name)``."""

    def setUp(self):
        super().setUp()
        self.screen_log = _ScreenLog()
        # the browser's console is logged under the test's logger
        logger = logging.getLogger(type(self).__module__)
        logger.addHandler(self.screen_log)
        self.addCleanup(logger.removeHandler, self.screen_log)
        # console.log arrives at INFO, which the test run's log level may drop
        self.addCleanup(logger.setLevel, logger.level)
        logger.setLevel(logging.INFO)

    def _screen(self, name):
        self.assertIn(name, self.screen_log.screens, f"the tour did not show the {name} screen")
        return self.screen_log.screens[name]


@tagged("post_install", "-at_install")
class TestCashierJourney(ScreenLogMixin, DemoJourneyCase):
    def test_demo_cashier_has_what_odoo_needs_of_a_user(self):
        # the register posts its opening and closing in the session's chatter as the user
        self.assertTrue(self.cashier.email, "the register cannot open for a user without e-mail")
        self.assertTrue(self.cashier.has_group("smartpm_prepay.group_cashier"))
        self.assertTrue(self.cashier.has_group("point_of_sale.group_pos_user"))

    def test_every_demo_shop_opens_sells_credit_and_closes_for_the_cashier(self):
        """Each shop of the demo, as the cashier, through the calls the register makes."""
        credit = self.env.ref("smartpm_prepay.product_electricity_credit")
        meter = self.env.ref("smartpm_prepay.demo_meter_02")
        configs = self.env["pos.config"].with_user(self.cashier).search([])
        self.assertGreaterEqual(len(configs), 3, "the demo has three shops")
        for config in configs:
            with self.subTest(shop=config.name):
                config.open_ui()
                session = config.current_session_id
                if session.state == "opening_control":
                    self.assertEqual(session.user_id, self.cashier)
                    session.set_opening_control(session.cash_register_balance_start, "")
                self.assertEqual(session.state, "opened")
                sold_before = session._smartpm_credit_summary()
                data = session.load_data([])
                self.assertIn(
                    credit.id,
                    [p["id"] for p in data["product.product"]["data"]],
                    f"{config.name} does not offer the credit product",
                )
                self.assertTrue(data["pos.session"]["data"][0]["_smartpm_can_sell"])
                self.assertEqual(
                    data["pos.session"]["data"][0]["_smartpm_quick_amounts"],
                    self.env.company._smartpm_get_quick_amounts(),
                )
                cash = config.payment_method_ids.filtered("is_cash_count")[:1]
                self.assertTrue(cash, f"{config.name} has no cash payment method")
                order_uuid = str(uuid.uuid4())
                self.env["pos.order"].with_user(self.cashier).sync_from_ui(
                    [self._ui_order(session, cash, meter, credit, 5.0, order_uuid)]
                )
                order = self.env["pos.order"].search([("uuid", "=", order_uuid)])
                self.assertEqual(order.state, "paid")
                self.assertEqual(order.partner_id, meter.tenant_id)
                purchase = order.lines.smartpm_purchase_ids
                self.assertEqual(purchase.amount, 5.0)
                self.assertEqual(purchase.channel, "pos")
                closing = session.with_user(self.cashier).get_closing_control_data()
                sold = closing["smartpm_credit"]
                self.assertEqual(sold["count"], sold_before["count"] + 1)
                self.assertEqual(sold["amount"], sold_before["amount"] + 5.0)
                self.assertAlmostEqual(sold["kwh"], sold_before["kwh"] + purchase.kwh)
                expected_cash = closing["default_cash_details"]["amount"]
                session = session.with_user(self.cashier)
                session.post_closing_cash_details(expected_cash)
                session.update_closing_control_state_session("")
                result = session.close_session_from_ui()
                self.assertTrue(result.get("successful"), result)
                self.assertEqual(session.state, "closed")

    def _ui_order(self, session, cash, meter, credit, amount, order_uuid):
        return {
            "uuid": order_uuid,
            "name": f"Order {order_uuid[:8]}",
            "session_id": session.id,
            "company_id": session.company_id.id,
            "pricelist_id": session.config_id.pricelist_id.id,
            "user_id": self.cashier.id,
            "sequence_number": 1,
            "amount_paid": amount,
            "amount_total": amount,
            "amount_tax": 0.0,
            "amount_return": 0.0,
            "state": "paid",
            "date_order": "2026-01-01 10:00:00",
            "fiscal_position_id": False,
            "to_invoice": False,
            "lines": [
                [
                    0,
                    0,
                    {
                        "uuid": str(uuid.uuid4()),
                        "product_id": credit.id,
                        "qty": 1,
                        "price_unit": amount,
                        "price_subtotal": amount,
                        "price_subtotal_incl": amount,
                        "discount": 0,
                        "tax_ids": [[6, 0, []]],
                        "smartpm_meter_id": meter.id,
                    },
                ]
            ],
            "payment_ids": [
                [0, 0, {"amount": amount, "payment_method_id": cash.id, "name": "Cash"}]
            ],
        }

    def test_demo_cashier_opens_sells_and_closes_a_register(self):
        shop = self.env["pos.config"].search([("name", "=", "Furniture Shop")])
        self.assertTrue(shop, "the demo has a Furniture Shop")
        self.assertFalse(shop.current_session_id, "the shop is closed when the journey starts")
        meter = self.env.ref("smartpm_prepay.demo_meter_02")  # SIM00002 (the tour's)
        currency = shop.currency_id
        last = meter._smartpm_last_purchase()
        warning = meter._smartpm_contact_warning()
        balance_before = meter._smartpm_estimated_balance_kwh()
        before = meter.purchase_ids

        self.start_tour(
            "/odoo/action-point_of_sale.action_pos_config_kanban",
            "smartpm_cashier_journey",
            login="cashier",
            timeout=600,
        )

        # ---- the sale the cashier made
        purchase = meter.purchase_ids - before
        self.assertEqual(len(purchase), 1)
        self.assertEqual(purchase.amount, 10.0)  # the quick amount tapped
        self.assertEqual(purchase.channel, "pos")
        self.assertEqual(purchase.create_uid, self.cashier)
        self.assertEqual(purchase.tenant_id, meter.tenant_id)
        line = purchase.pos_order_line_id
        order = line.order_id
        self.assertEqual(order.partner_id, meter.tenant_id)
        self.assertIn(order.state, ("paid", "done"))
        self.assertEqual(order.amount_paid, 10.0)
        self.assertEqual(order.user_id, self.cashier)
        self.assertEqual(order.config_id, shop)
        session = order.session_id
        self.assertEqual(session.state, "closed")
        self.assertEqual(session.user_id, self.cashier)
        # the job that takes the credit to the meter
        job = purchase.job_id
        self.assertEqual(job.job_type, "add_credit")
        self.assertEqual(job.meter_id, meter)
        self.assertEqual(job.state, "pending")
        self.assertEqual(purchase.state, "queued")

        # ---- the popup, before the sale
        shown = self._screen("meter")
        if last:
            self.assertIn(last["reference"], shown["last_purchase"])
            self.assertEqual(
                _plain(shown["last_amount"]),
                _plain(format_money(self.env, last["amount"], currency)),
            )
            self.assertEqual(shown["last_kwh"], f"{last['kwh']:.2f} kWh")
        self.assertEqual(
            _plain(shown["warning"]) if shown["warning"] else None, _plain(warning) or None
        )
        limits = meter._smartpm_amount_limits()[2]
        self.assertIn(_plain(limits), _plain(shown["limits"]))
        negative = self._screen("negative")["refusal"]
        self.assertIn("cannot be negative", negative)
        self.assertIn(_plain(limits), _plain(negative))
        preview = self._screen("preview")
        self.assertEqual(preview["kwh"], f"{purchase.kwh:.2f} kWh")
        self.assertEqual(preview["balance"], f"{balance_before + purchase.kwh:.2f} kWh")
        price = describe_price(purchase.tariff_id, purchase.price_per_kwh, purchase.tier_breakdown)
        self.assertEqual(_plain(preview["price"]), _plain(price))
        self.assertEqual(self._screen("customer")["partner"], meter.tenant_id.name)

        # ---- the receipt: the purchase's figures
        receipt = self._screen("receipt")
        self.assertEqual(receipt["meter"], f"Meter: {meter.serial_number}")
        self.assertIn(meter.tenant_id.name, receipt["tenant"])
        self.assertEqual(receipt["kwh"], f"Energy: {purchase.kwh:.2f} kWh")
        self.assertEqual(_plain(receipt["price"]), _plain(f"Price: {price}"))
        self.assertEqual(line.smartpm_price_info, price)
        self.assertAlmostEqual(line.smartpm_balance_kwh, balance_before + purchase.kwh)
        self.assertEqual(
            receipt["balance"], f"Estimated new balance: {line.smartpm_balance_kwh:.2f} kWh"
        )
        self.assertEqual(receipt["reference"], f"Purchase: {purchase.name}")

        # ---- the closing: what the session sold
        closing = self._screen("closing")
        sold = self.env["smartpm.credit.purchase"].search(
            [("pos_order_line_id.order_id.session_id", "=", session.id)]
        )
        self.assertEqual(sold, purchase)
        self.assertEqual(int(closing["count"]), len(sold))
        self.assertEqual(
            _plain(closing["amount"]),
            _plain(format_money(self.env, sum(sold.mapped("amount")), currency)),
        )
        self.assertEqual(closing["kwh"], f"{sum(sold.mapped('kwh')):.2f} kWh")

    def test_demo_cashier_sells_in_the_back_office(self):
        meter = self.env.ref("smartpm_prepay.demo_meter_03")  # SIM00003 (the tour's)
        before = meter.purchase_ids
        balance_before = meter._smartpm_estimated_balance_kwh()
        self.start_tour("/odoo", "smartpm_cashier_backoffice_sale", login="cashier", timeout=300)
        purchase = meter.purchase_ids - before
        self.assertEqual(len(purchase), 1)
        self.assertEqual(purchase.amount, 12.0)
        self.assertEqual(purchase.channel, "backoffice")
        self.assertEqual(purchase.create_uid, self.cashier)
        self.assertEqual(purchase.state, "queued")
        self.assertEqual(purchase.job_id.job_type, "add_credit")
        invoice = purchase.invoice_id
        self.assertEqual(invoice.state, "posted")
        self.assertEqual(invoice.partner_id, meter.tenant_id)
        self.assertEqual(invoice.amount_total, 12.0)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        # what the wizard showed before the sale is the purchase's
        shown = self._screen("wizard")
        self.assertEqual(shown["kwh"], f"{purchase.kwh:.3f}")  # as the purchase form writes it
        self.assertEqual(shown["balance"], f"{balance_before + purchase.kwh:.2f}")
        price = describe_price(purchase.tariff_id, purchase.price_per_kwh, purchase.tier_breakdown)
        self.assertEqual(_plain(shown["price"]), _plain(price))
        warning = meter._smartpm_contact_warning()
        self.assertEqual(
            _plain(shown["warning"]) if shown["warning"] else None, _plain(warning) or None
        )
        self.assertIn(_plain(meter._smartpm_amount_limits()[2]), _plain(shown["limits"]))
        self.assertIn("cannot be negative", self._screen("wizard_negative")["refusal"])
