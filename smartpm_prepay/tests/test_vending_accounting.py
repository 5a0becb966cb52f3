from odoo.addons.account.tests.common import AccountTestInvoicingCommon
from odoo.exceptions import ValidationError
from odoo.tests import Form, new_test_user, tagged

from ..services.vending import vend


@tagged("post_install", "-at_install")
class TestVendingAccounting(AccountTestInvoicingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.company_data["company"]
        cls.env.user.groups_id += cls.env.ref("smartpm_prepay.group_manager")
        cls.company.write({"smartpm_min_amount": 1.0, "smartpm_max_amount": 1000.0})
        cls.vat = cls.env["account.tax"].create(
            {
                "name": "VAT 15% incl.",
                "amount": 15.0,
                "amount_type": "percent",
                "type_tax_use": "sale",
                "price_include_override": "tax_included",
                "company_id": cls.company.id,
            }
        )
        cls.tariff = cls.env["smartpm.tariff"].create(
            {"name": "Taxed", "price_per_kwh": 0.25, "tax_ids": [(6, 0, cls.vat.ids)]}
        )
        cls.tenant = cls.env["res.partner"].create(
            {"name": "Esi", "is_tenant": True, "email": "esi@example.com"}
        )
        cls.meter = cls.env["smartpm.meter"].create(
            {
                "serial_number": "ACC-1",
                "host": "127.0.0.1",
                "port": 4100,
                "state": "active",
                "tenant_id": cls.tenant.id,
                "tariff_id": cls.tariff.id,
            }
        )
        cls.operator = new_test_user(
            cls.env,
            "t_op_acc",
            groups="smartpm_prepay.group_operator,account.group_account_invoice",
            company_id=cls.company.id,
        )
        cls.cash = cls.company_data["default_journal_cash"]
        cls.bank_journal = cls.company_data["default_journal_bank"]

    def _sell(self, amount=115.0, journal=None):
        wizard = Form(
            self.env["smartpm.sell.credit.wizard"]
            .with_user(self.operator)
            .with_context(default_meter_id=self.meter.id)
        )
        wizard.amount = amount
        wizard.journal_id = journal or self.cash
        self.assertEqual(wizard.kwh, 400.0 if amount == 115.0 else wizard.kwh)
        action = wizard.save().action_confirm()
        return self.env["smartpm.credit.purchase"].browse(action["res_id"])

    def test_amount_is_split_into_untaxed_and_tax_before_conversion(self):
        quote = self.tariff._quote_amount(115.0)
        self.assertEqual((quote["amount_untaxed"], quote["amount_tax"]), (100.0, 15.0))
        self.assertEqual(quote["kwh"], 400.0)
        self.assertEqual(self.tariff._amount_for_kwh(400.0), 115.0)

    def test_odd_amount_rounds_tax_like_the_invoice(self):
        quote = self.tariff._quote_amount(10.0)
        # 10 / 1.15 = 8.6956... -> 8.70 untaxed, 1.30 tax; 8.70 buys 34.80 kWh
        self.assertEqual((quote["amount_untaxed"], quote["amount_tax"]), (8.70, 1.30))
        self.assertEqual(quote["kwh"], 34.8)
        purchase = vend(self.env, self.meter, 10.0, "backoffice", "ODD")
        invoice = purchase._create_invoice_and_payment(self.cash)
        self.assertEqual(invoice.amount_untaxed, purchase.amount_untaxed)
        self.assertEqual(invoice.amount_tax, purchase.amount_tax)

    def test_taxes_excluded_from_price_are_refused_on_a_tariff(self):
        excluded = self.vat.copy({"name": "VAT excl.", "price_include_override": "tax_excluded"})
        with self.assertRaisesRegex(ValidationError, "included in the price"):
            self.tariff.tax_ids = [(4, excluded.id)]

    def test_back_office_sale_posts_a_paid_invoice(self):
        purchase = self._sell(115.0)
        self.assertEqual(purchase.channel, "backoffice")
        self.assertEqual(purchase.state, "queued")
        self.assertEqual(purchase.kwh, 400.0)
        invoice = purchase.invoice_id
        self.assertEqual(invoice.state, "posted")
        self.assertEqual(invoice.move_type, "out_invoice")
        self.assertEqual(invoice.partner_id, self.tenant)
        self.assertEqual(invoice.amount_total, 115.0)
        self.assertEqual(invoice.amount_untaxed, 100.0)
        self.assertEqual(invoice.amount_tax, 15.0)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(
            invoice.invoice_line_ids.product_id,
            self.env.ref("smartpm_prepay.product_electricity_credit"),
        )
        # the journal entry: receivable 115 = revenue 100 + tax 15
        lines = invoice.line_ids
        receivable = lines.filtered(lambda line: line.display_type == "payment_term")
        self.assertEqual(receivable.debit, 115.0)
        self.assertTrue(receivable.reconciled)
        self.assertEqual(
            sum(lines.filtered(lambda line: line.display_type == "product").mapped("credit")), 100.0
        )
        self.assertEqual(
            sum(lines.filtered(lambda line: line.display_type == "tax").mapped("credit")), 15.0
        )
        self.assertEqual(
            lines.filtered(lambda line: line.display_type == "tax").tax_line_id, self.vat
        )
        payment = self.env["account.payment"].search(
            [("reconciled_invoice_ids", "in", invoice.ids)]
        )
        self.assertEqual(payment.journal_id, self.cash)
        self.assertEqual(payment.amount, 115.0)

    def test_invoicing_twice_returns_the_same_invoice(self):
        purchase = vend(self.env(su=True), self.meter, 23.0, "bank_xmlrpc", "BANK-1")
        invoice = purchase._create_invoice_and_payment(self.bank_journal)
        self.assertEqual(purchase._create_invoice_and_payment(self.bank_journal), invoice)
        self.assertEqual(
            self.env["account.move"].search_count(
                [("ref", "=", purchase.name), ("move_type", "=", "out_invoice")]
            ),
            1,
        )
        payment = self.env["account.payment"].search(
            [("reconciled_invoice_ids", "in", invoice.ids)]
        )
        self.assertEqual(payment.journal_id, self.bank_journal)

    def test_reversal_of_an_undelivered_sale_issues_a_credit_note(self):
        purchase = self._sell(115.0)
        purchase.with_user(self.operator).action_reverse()
        self.assertEqual(purchase.state, "reversed")
        self.assertEqual(purchase.job_id.state, "cancelled")
        refund = purchase.credit_note_id
        self.assertEqual(refund.move_type, "out_refund")
        self.assertEqual(refund.state, "posted")
        self.assertEqual(refund.reversed_entry_id, purchase.invoice_id)
        self.assertEqual(refund.amount_total, 115.0)
        self.assertEqual(refund.amount_tax, 15.0)
        # the tenant is owed the money back: an open credit of 115
        self.assertEqual(refund.amount_residual, 115.0)
        self.assertEqual(purchase.invoice_id.amount_residual, 0.0)
