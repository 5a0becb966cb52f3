"""The back-office Sell credit wizard: cashiers sell there too, warned and refused alike."""

from datetime import timedelta

from odoo import fields
from odoo.addons.account.tests.common import AccountTestInvoicingCommon
from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, new_test_user, tagged
from odoo.tools.misc import format_amount

from .common import assert_payment_document


@tagged("post_install", "-at_install")
class TestSellCreditWizard(AccountTestInvoicingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.company_data["company"]
        cls.company.write({"smartpm_min_amount": 2.0, "smartpm_max_amount": 1000.0})
        su = cls.env(su=True)
        cls.tariff = su["smartpm.tariff"].create({"name": "Flat", "price_per_kwh": 0.5})
        cls.tenant = su["res.partner"].create({"name": "Wiz Tenant", "is_tenant": True})
        cls.meter = su["smartpm.meter"].create(
            {
                "serial_number": "WIZ-1",
                "host": "127.0.0.1",
                "port": 4100,
                "state": "active",
                "tenant_id": cls.tenant.id,
                "tariff_id": cls.tariff.id,
                "company_id": cls.company.id,
            }
        )
        # a cashier of the office only: no Point of Sale, no accounting rights
        cls.cashier = new_test_user(
            cls.env,
            "t_wiz_cashier",
            groups="smartpm_prepay.group_cashier",
            company_id=cls.company.id,
        )
        cls.employee = new_test_user(
            cls.env, "t_wiz_employee", groups="base.group_user", company_id=cls.company.id
        )
        cls.cash = cls.company_data["default_journal_cash"]

    def _form(self, user=None, amount=None):
        wizard = Form(
            self.env["smartpm.sell.credit.wizard"]
            .with_user(user or self.cashier)
            .with_context(default_meter_id=self.meter.id)
        )
        if amount is not None:
            wizard.amount = amount
        wizard.journal_id = self.cash
        return wizard

    def _money(self, amount):
        return format_amount(self.env, amount, self.company.currency_id)

    def _purchases(self):
        return self.env["smartpm.credit.purchase"].sudo().search([("meter_id", "=", self.meter.id)])

    def test_cashier_sells_invoiced_and_paid_credit(self):
        self.meter.sudo().credit_kwh = 4.0
        wizard = self._form(amount=10.0)
        self.assertEqual(wizard.kwh, 20.0)
        self.assertEqual(wizard.price_info, f"{self._money(0.5)} per kWh")
        self.assertEqual(wizard.estimated_balance_kwh, 24.0)
        action = wizard.save().action_confirm()
        purchase = (
            self.env["smartpm.credit.purchase"].with_user(self.cashier).browse(action["res_id"])
        )
        self.assertEqual(purchase.channel, "backoffice")
        self.assertEqual(purchase.amount, 10.0)
        self.assertEqual(purchase.kwh, 20.0)
        self.assertEqual(purchase.create_uid, self.cashier)
        self.assertEqual(purchase.job_id.job_type, "add_credit")
        invoice = purchase.sudo().invoice_id
        self.assertEqual(invoice.state, "posted")
        self.assertEqual(invoice.amount_total, 10.0)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        assert_payment_document(self, purchase, self.cash)

    def test_the_sell_credit_menu_is_the_cashiers(self):
        menu = self.env.ref("smartpm_prepay.menu_sell_credit")
        self.assertIn(self.env.ref("smartpm_prepay.group_cashier"), menu.groups_id)
        visible = self.env["ir.ui.menu"].with_user(self.cashier)._visible_menu_ids()
        self.assertIn(menu.id, visible)

    def test_a_user_outside_the_cashier_group_cannot_sell(self):
        wizard = (
            self.env["smartpm.sell.credit.wizard"]
            .sudo()
            .create({"meter_id": self.meter.id, "amount": 10.0, "journal_id": self.cash.id})
        )
        with self.assertRaises(AccessError):
            wizard.with_user(self.employee).action_confirm()
        self.assertFalse(self._purchases())

    def test_limits_and_refusals_are_written_in_the_currency(self):
        wizard = self._form(amount=5000.0)
        limits = f"between {self._money(2.0)} and {self._money(1000.0)}"
        self.assertEqual(wizard.limits_info, limits)
        self.assertIn(limits, wizard.refusal)
        self.assertEqual(wizard.kwh, 0.0)
        with self.assertRaisesRegex(UserError, "10,000|5,000"):
            wizard.save().action_confirm()
        self.assertFalse(self._purchases())

    def test_negative_amount_is_refused_and_sells_nothing(self):
        wizard = self._form(amount=-10.0)
        self.assertIn("cannot be negative", wizard.refusal)
        with self.assertRaisesRegex(UserError, "cannot be negative"):
            wizard.save().action_confirm()
        self.assertFalse(self._purchases())
        self.assertEqual(self.meter.sudo().last_transfer_number, 0)

    def test_meter_never_seen_is_sold_with_a_warning(self):
        self.meter.sudo().last_seen = False
        wizard = self._form(amount=10.0)
        self.assertIn("never answered", wizard.warning)
        self.assertFalse(wizard.refusal)

    def test_meter_silent_for_a_day_warns_and_seen_today_does_not(self):
        self.meter.sudo().last_seen = fields.Datetime.now() - timedelta(days=2)
        self.assertIn("has not answered since", self._form(amount=10.0).warning)
        self.meter.sudo().last_seen = fields.Datetime.now() - timedelta(hours=1)
        self.assertFalse(self._form(amount=10.0).warning)

    def test_last_purchase_is_shown(self):
        self._form(amount=10.0).save().action_confirm()
        purchase = self._purchases()
        wizard = self._form(amount=4.0)
        self.assertIn(purchase.name, wizard.last_purchase_info)
        self.assertIn(self._money(10.0), wizard.last_purchase_info)
        self.assertIn("20.00 kWh", wizard.last_purchase_info)
