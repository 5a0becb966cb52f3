"""POS tour in headless Chromium: a cashier sells 10.00 of credit to a meter."""

from unittest.mock import patch

from odoo.addons.point_of_sale.tests.test_frontend import TestPointOfSaleHttpCommon
from odoo.tests import tagged


@tagged("post_install", "-at_install")
class TestPosTour(TestPointOfSaleHttpCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pos_user.groups_id += cls.env.ref("smartpm_prepay.group_cashier")
        cls.credit = cls.env.ref("smartpm_prepay.product_electricity_credit")
        # the POS test set-up archives every product: bring the credit back, untaxed
        cls.credit.write({"active": True, "available_in_pos": True, "taxes_id": [(5, 0, 0)]})
        tariff = cls.env["smartpm.tariff"].sudo().create({"name": "Flat", "price_per_kwh": 0.5})
        site = cls.env["smartpm.site"].sudo().create({"name": "Tour Court", "code": "TOUR"})
        line = cls.env["smartpm.line"].sudo().create({"name": "Tour line", "site_id": site.id})
        transformer = (
            cls.env["smartpm.transformer"].sudo().create({"name": "TR-TOUR", "line_id": line.id})
        )
        tenant = cls.env["res.partner"].sudo().create({"name": "Pos Tenant", "is_tenant": True})
        common = {
            "host": "127.0.0.1",
            "port": 4100,
            "transformer_id": transformer.id,
            "tariff_id": tariff.id,
            "tenant_id": tenant.id,
        }
        cls.meter = (
            cls.env["smartpm.meter"]
            .sudo()
            .create({"serial_number": "POS-OK", "state": "active", **common})
        )
        cls.env["smartpm.meter"].sudo().create({"serial_number": "POS-DRAFT", **common})

    def test_cashier_sells_credit_to_a_meter(self):
        self.main_pos_config.with_user(self.pos_user).open_ui()
        self.start_pos_tour("smartpm_pos_sell_credit")
        purchase = self.meter.sudo().purchase_ids
        self.assertEqual(len(purchase), 1)
        self.assertEqual(purchase.amount, 10.0)
        self.assertAlmostEqual(purchase.kwh, 20.0)
        self.assertEqual(purchase.channel, "pos")
        self.assertEqual(purchase.pos_order_line_id.order_id.state, "paid")
        self.assertEqual(purchase.job_id.job_type, "add_credit")

    def test_cashier_refunds_undelivered_credit_at_the_register(self):
        self.main_pos_config.with_user(self.pos_user).open_ui()
        self.start_pos_tour("smartpm_pos_refund_credit")
        purchase = self.meter.sudo().purchase_ids
        self.assertEqual(purchase.state, "reversed")
        self.assertEqual(purchase.job_id.state, "cancelled")
        refund = purchase.pos_order_line_id.refund_orderline_ids.order_id
        self.assertEqual(refund.state, "paid")
        self.assertEqual(refund.payment_ids.mapped("amount"), [-10.0])

    def test_register_refuses_to_refund_credit_whose_delivery_was_attempted(self):
        self.main_pos_config.with_user(self.pos_user).open_ui()
        # the server runs in this process: as if a bridge had taken the delivery
        with patch("odoo.addons.smartpm_prepay.services.refunds._never_claimed", lambda p: False):
            self.start_pos_tour("smartpm_pos_refund_refused")
        purchase = self.meter.sudo().purchase_ids
        self.assertEqual(purchase.state, "queued")
        self.assertFalse(purchase.pos_order_line_id.refund_orderline_ids)
