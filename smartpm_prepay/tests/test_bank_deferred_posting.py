"""Issue 21 §1: a bank purchase answers before its invoice and payment are posted; they are
posted right after the commit, or by the cron if Odoo stops in between, exactly once."""

from unittest.mock import patch

from odoo.exceptions import UserError
from odoo.tests import tagged

from ..services import bank_api, daily_vending
from .common import assert_payment_document
from .common_bank import BankChannelCase

BANK_TIME = "2026-11-26T09:30:00Z"


@tagged("post_install", "-at_install")
class TestBankDeferredPosting(BankChannelCase):
    def _buy(self, ref="DP-1", amount=20.0):
        receipt = bank_api.purchase(
            self.env(user=self.bank_user), "bank_xmlrpc", "BNK-001", amount, None, ref, BANK_TIME
        )
        self.env.flush_all()
        self.env.invalidate_all()
        return receipt, self._purchases().filtered(lambda p: p.name == receipt["reference"])

    def _books(self):
        """(invoices, payments) of the tenant."""
        moves = self.env["account.move"].search(
            [("partner_id", "=", self.tenant.id), ("move_type", "=", "out_invoice")]
        )
        payments = self.env["account.payment"].search(
            [("partner_id", "=", self.tenant.id), ("payment_type", "=", "inbound")]
        )
        return moves, payments

    def test_answer_commits_the_sale_its_job_and_a_trigger_not_yet_the_books(self):
        cron = self.env.ref("smartpm_prepay.cron_post_deferred_sales")
        triggers = self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])
        receipt, sale = self._buy()
        self.assertEqual(receipt["state"], "queued")
        self.assertEqual(sale.job_id.state, "pending")
        self.assertEqual(sale.posting_journal_id, self.journal)
        self.assertFalse(sale.invoice_id)
        self.assertEqual(self._books(), (self.env["account.move"], self.env["account.payment"]))
        # the safety net is due with the sale: same transaction, survives a crash after it
        self.assertEqual(
            self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)]), triggers + 1
        )

    def test_crash_between_answer_and_posting_then_the_cron_posts_exactly_once(self):
        receipt, sale = self._buy(amount=20.0)
        # Odoo stopped after the answer's commit: the post-commit step never ran (a test
        # never commits); the cron, run twice (and the step arriving late), posts once
        self._post_bank_sales()
        self._post_bank_sales()
        sale._post_deferred()
        invoices, payments = self._books()
        self.assertEqual(len(invoices), 1)
        self.assertEqual(len(payments), 1)
        self.assertEqual(sale.invoice_id, invoices)
        self.assertFalse(sale.posting_journal_id)
        assert_payment_document(self, sale, self.journal)
        self.assertEqual(invoices.state, "posted")
        self.assertAlmostEqual(invoices.amount_total, 20.0)
        self.assertAlmostEqual(payments.amount, 20.0)
        self.assertEqual(payments.journal_id, self.journal)
        self.assertEqual(payments.memo, receipt["reference"])
        receivable = invoices.line_ids.filtered(lambda ml: ml.account_type == "asset_receivable")
        self.assertEqual(receivable.account_id, self.tenant.property_account_receivable_id)
        self.assertTrue(receivable.reconciled)
        self.assertEqual(receivable.matched_credit_ids.credit_move_id.move_id, payments.move_id)
        liquidity = payments.move_id.line_ids.filtered(lambda ml: ml.debit)
        self.assertAlmostEqual(sum(liquidity.mapped("debit")), 20.0)
        self.assertEqual(receipt, bank_api.query_purchase(self.env(user=self.bank_user), "DP-1"))

    def test_daily_vending_report_counts_the_posted_sale_once(self):
        _receipt, sale = self._buy(amount=12.5)
        self._post_bank_sales()
        day = sale.invoice_id.invoice_date
        report = daily_vending.daily_vending(self.env, self.company, day)
        self.assertEqual(report["sales"], sale)
        self.assertAlmostEqual(report["total"]["amount"], 12.5)

    def test_reversal_of_a_sale_not_yet_posted_posts_it_first_then_refunds_it(self):
        _receipt, sale = self._buy(ref="DP-REV", amount=10.0)
        answer = bank_api.reverse_purchase(self.env(user=self.bank_user), "DP-REV")
        self.env.invalidate_all()
        self.assertEqual(answer["state"], "reversed")
        self.assertFalse(sale.posting_journal_id)
        self.assertEqual(sale.invoice_id.state, "posted")
        self.assertIn(sale.invoice_id.payment_state, ("paid", "in_payment", "reversed"))
        self.assertAlmostEqual(sale.credit_note_id.amount_total, 10.0)
        self.assertIn(sale.credit_note_id.payment_state, ("paid", "in_payment"))
        self._post_bank_sales()  # nothing left to post: no second invoice
        invoices, payments = self._books()
        self.assertEqual(invoices, sale.invoice_id)
        self.assertEqual(len(payments), 1)

    def test_repeated_request_before_posting_returns_the_receipt_and_posts_once(self):
        first, sale = self._buy(ref="DP-AGAIN")
        for _ in range(6):
            again, _sale = self._buy(ref="DP-AGAIN")
            self.assertEqual(again["reference"], first["reference"])
        self._post_bank_sales()
        invoices, payments = self._books()
        self.assertEqual((len(invoices), len(payments)), (1, 1))
        self.assertEqual(len(self._purchases()), 1)

    def test_a_posting_that_fails_alerts_the_operators_once_and_is_posted_later(self):
        _receipt, sale = self._buy(ref="DP-FAIL", amount=20.0)
        purchases = type(self.env["smartpm.credit.purchase"])
        refusal = UserError("no income account on the energy product")
        with patch.object(purchases, "_create_invoice_and_payment", side_effect=refusal):
            self._post_bank_sales()
            self._post_bank_sales()  # the cron's next run: no second activity
        summary = sale._posting_alert_summary()
        alerts = sale.activity_ids.filtered(lambda a: a.summary == summary)
        self.assertEqual(len(alerts), 1)
        self.assertIn("no income account on the energy product", alerts.note)
        self.assertIn(sale.meter_id.serial_number, alerts.note)
        self.assertEqual(sale.posting_journal_id, self.journal)  # still waiting, not lost
        self.assertEqual(self._books(), (self.env["account.move"], self.env["account.payment"]))
        # the cause corrected: the next run posts it, once, and closes the activity
        self._post_bank_sales()
        invoices, payments = self._books()
        self.assertEqual((len(invoices), len(payments)), (1, 1))
        self.assertFalse(sale.posting_journal_id)
        self.assertFalse(sale.activity_ids.filtered(lambda a: a.summary == summary))
