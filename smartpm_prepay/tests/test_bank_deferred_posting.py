"""Issue 21 §1: a bank purchase answers before its invoice and payment are posted; they are
posted after the commit (by the cron workers, or in a threaded Odoo by the process's poster
once the sale is on the meter and the process quiet), or by the cron if Odoo stops in
between, exactly once."""

import queue
from datetime import timedelta
from unittest.mock import Mock, patch

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import BaseCase, tagged
from odoo.tools import config

from ..models import credit_purchase
from ..services import bank_api, daily_vending, deferred_posting, engine, job_queue
from ..services.deferred_posting import MAX_WAIT_S, QUIET_S, UNDELIVERED_S, Waiting, due
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

    def _cron_triggers(self):
        cron = self.env.ref("smartpm_prepay.cron_post_deferred_sales")
        return self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)], order="id")

    def test_threaded_odoo_gives_the_sale_to_its_poster_once_answered_and_once_delivered(self):
        poster = Mock()
        before = fields.Datetime.now()
        with patch.object(credit_purchase, "POSTER", poster):
            _receipt, sale = self._buy(ref="DP-POSTER")
            self.env.cr.postcommit.run()  # the answer's commit
            poster.answered.assert_called_once_with(self.env.cr.dbname, sale.ids)
            poster.delivered.assert_not_called()
            # the cron is the safety net only, after the poster's latest time
            self.assertGreater(
                self._cron_triggers()[-1].call_at, before + timedelta(seconds=MAX_WAIT_S)
            )
            # the bridge claims the job and reports it done: the report's commit tells
            self._claim_delivery(sale)
            env = engine.as_engine(self.env["smartpm.meter.job"]).env
            job_queue.complete(env, sale.job_id.id, "bank-test-bridge", {"credit_kwh": 80.0})
            self.env.cr.postcommit.run()
        poster.delivered.assert_called_once_with(self.env.cr.dbname, sale.ids)
        self.assertEqual(sale.state, "delivered")
        self.assertEqual(sale.posting_journal_id, self.journal)  # still the record of it

    def test_odoo_with_cron_workers_leaves_the_posting_to_the_cron_due_at_once(self):
        poster = Mock()
        options = {"workers": 2, "max_cron_threads": 1}
        with patch.dict(config.options, options), patch.object(credit_purchase, "POSTER", poster):
            _receipt, sale = self._buy(ref="DP-WORKERS")
            self.env.cr.postcommit.run()
        poster.answered.assert_not_called()
        self.assertLessEqual(self._cron_triggers()[-1].call_at, fields.Datetime.now())
        self._post_bank_sales()
        self.assertEqual(sale.invoice_id.state, "posted")
        self.assertFalse(sale.posting_journal_id)


@tagged("post_install", "-at_install")
class TestPoster(BaseCase):
    """When the poster of a threaded Odoo posts (services/deferred_posting.py)."""

    def test_a_sale_waits_for_its_delivery_and_a_quiet_process(self):
        pending = {"a": Waiting(since=100.0)}
        # just answered: the bridge's claim of its job comes now
        self.assertEqual(due(pending, 100.0 + QUIET_S / 2, last_activity=100.0), [])
        # quiet, but not on the meter yet (nor waiting for it long)
        quiet_undelivered = 100.0 + (QUIET_S + UNDELIVERED_S) / 2
        self.assertEqual(due(pending, quiet_undelivered, last_activity=100.0), [])
        pending["a"].delivered = True
        # delivered, and another sale answered right now
        now = 100.0 + QUIET_S * 3
        self.assertEqual(due(pending, now, last_activity=now), [])
        self.assertEqual(due(pending, now + QUIET_S, last_activity=now), ["a"])

    def test_an_undelivered_sale_is_posted_when_quiet_and_any_at_the_latest(self):
        pending = {"old": Waiting(since=0.0), "new": Waiting(since=UNDELIVERED_S)}
        # an offline meter: posted once it waited UNDELIVERED_S, the process quiet
        self.assertEqual(
            due(pending, UNDELIVERED_S, last_activity=UNDELIVERED_S - QUIET_S), ["old"]
        )
        # never quiet: still posted after MAX_WAIT_S, oldest first
        busy = MAX_WAIT_S + UNDELIVERED_S
        self.assertEqual(due(pending, busy, last_activity=busy), ["old", "new"])

    def test_the_poster_thread_posts_a_delivered_sale_once(self):
        posted = queue.Queue()
        constants = {"QUIET_S": 0.01, "UNDELIVERED_S": 3600.0, "MAX_WAIT_S": 3600.0}
        with patch.multiple(deferred_posting, **constants):
            poster = deferred_posting.Poster(lambda dbname, sale_id: posted.put((dbname, sale_id)))
            poster.answered("db", [7])
            self.assertEqual(set(poster.waiting()), {("db", 7)})  # not before its delivery
            poster.delivered("db", [7, 8])  # 8: a sale of another channel, not waiting
            self.assertEqual(posted.get(timeout=30), ("db", 7))
            self.assertEqual(poster.waiting(), {})
            poster.delivered("db", [7])  # a report again: nothing more
            with self.assertRaises(queue.Empty):
                posted.get(timeout=0.2)
