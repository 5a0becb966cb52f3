from datetime import datetime, timedelta
from unittest.mock import patch

from odoo import fields
from odoo.tests import TransactionCase, new_test_user

from ..services import daily_vending, engine, job_queue, local_time, refunds


def serving_for_long(case_cls):
    """For the test class: the registry has served for long, so a lease a test expires is
    claimable at its end (no grace after a restart, job_queue.RESTART_GRACE_S: the tests
    may run seconds after the registry was loaded)."""
    case_cls.startClassPatcher(
        patch.object(
            case_cls.registry, job_queue.SERVING_SINCE_ATTR, datetime(2000, 1, 1), create=True
        )
    )


class SmartpmCase(TransactionCase):
    """A small grid and helpers shared by the addon's tests."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        serving_for_long(cls)
        cls.site = cls.env["smartpm.site"].create({"name": "Test Court", "code": "TC"})
        cls.line = cls.env["smartpm.line"].create({"name": "Line A", "site_id": cls.site.id})
        cls.transformer = cls.env["smartpm.transformer"].create(
            {"name": "TR-A", "line_id": cls.line.id}
        )

    @classmethod
    def _clear_job_queue(cls):
        """The queue is shared with the database's other jobs: cancel the open ones, so that
        claims in these tests only see their own jobs (rolled back with the test class)."""
        engine.as_engine(
            cls.env["smartpm.meter.job"].search([("state", "in", ("pending", "claimed"))])
        ).write({"state": "cancelled"})

    @classmethod
    def _tenant(cls, name, **vals):
        return cls.env["res.partner"].create({"name": name, "is_tenant": True, **vals})

    @classmethod
    def _meter(cls, serial, **vals):
        return cls.env["smartpm.meter"].create(
            {
                "serial_number": serial,
                "host": "127.0.0.1",
                "port": 4100,
                "transformer_id": cls.transformer.id,
                **vals,
            }
        )

    def _expire(self, job, seconds=5):
        """The bridge holding ``job`` is gone: its lease ended ``seconds`` ago (no cron runs)."""
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE smartpm_meter_job SET lease_until = %s WHERE id = %s",
            (fields.Datetime.now() - timedelta(seconds=seconds), job.id),
        )
        job.invalidate_recordset()


class BridgeClaimCase(SmartpmCase):
    """claim() as a Bridge API user of its own (``BRIDGE_LOGIN``) on active meters of its
    own (``METERS``: serials, kept as ``m1``, ``m2``, ...), with the rest of the database's
    queue cancelled."""

    BRIDGE_LOGIN = "t_bridge"
    METERS = ()
    JOB_TYPE = "ping"  # what _job() creates by default

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bridge_user = new_test_user(
            cls.env, cls.BRIDGE_LOGIN, groups="base.group_user,smartpm_prepay.group_bridge_api"
        )
        for number, serial in enumerate(cls.METERS, 1):
            setattr(cls, f"m{number}", cls._meter(serial, state="active"))
        cls._clear_job_queue()

    def setUp(self):
        super().setUp()
        self.Job = self.env["smartpm.meter.job"].with_user(self.bridge_user)

    def _job(self, meter, job_type=None, **vals):
        return engine.create(
            self.env["smartpm.meter.job"],
            {"meter_id": meter.id, "job_type": job_type or self.JOB_TYPE, **vals},
        )

    def _bulk_jobs(self, meter, job_type, priority, count):
        """``count`` pending jobs of ``meter`` in one INSERT (more than a claim's scan chunk
        takes ORM creates too long)."""
        self.env.flush_all()
        self.env.cr.execute(
            """
            INSERT INTO smartpm_meter_job (meter_id, company_id, job_type, state, priority,
                attempt_count, max_attempts, next_attempt_at, create_date, write_date)
            SELECT %s, %s, %s, 'pending', %s, 0, 5, now() at time zone 'utc',
                   now() at time zone 'utc', now() at time zone 'utc'
              FROM generate_series(1, %s)
            """,
            (meter.id, meter.company_id.id, job_type, priority, count),
        )


def assert_payment_document(case, purchase, journal=None):
    """Issue 14 §3, no credit without payment: the sale's payment document, by channel (the
    POS order line of a paid order; else its invoice, posted and paid: by the portal's
    transaction, in the bank's settlement journal, in the back office's journal)."""
    purchase = purchase.sudo()
    case.assertEqual(len(purchase), 1)
    if purchase.channel == "pos":
        line = purchase.pos_order_line_id
        case.assertTrue(line, f"{purchase.name} has no POS order line")
        case.assertIn(line.order_id.state, ("paid", "done", "invoiced"))
        case.assertAlmostEqual(line.price_subtotal_incl, purchase.amount)
        return line
    invoice = purchase.invoice_id
    case.assertTrue(invoice, f"{purchase.name} has no invoice")
    case.assertEqual(invoice.state, "posted")
    case.assertIn(invoice.payment_state, ("paid", "in_payment"))
    case.assertAlmostEqual(invoice.amount_total, purchase.credit_amount)
    journals = invoice.matched_payment_ids.journal_id | (
        invoice.line_ids.matched_credit_ids.credit_move_id.journal_id
    )
    if purchase.channel == "portal":
        tx = purchase.env["payment.transaction"].search([("smartpm_purchase_id", "=", purchase.id)])
        case.assertEqual(tx.state, "done")
        case.assertAlmostEqual(tx.amount, purchase.amount)
        journals |= tx.payment_id.journal_id
        journal = journal or tx.provider_id.journal_id
    case.assertTrue(journals <= journals.filtered(lambda j: j.type in ("bank", "cash")))
    if journal:
        case.assertIn(journal, journals)
    return invoice


def assert_refunded_books(case, purchase, debt, refund_move=None):
    """The books of ``purchase`` (it recovered part of ``debt``) once reversed and refunded
    (by ``refund_move``, the refund payment's entry, where the refund is a payment to the
    tenant): the tenant's receivable is exactly the restored debt's balance and its only
    open item is the debt's invoice; the credit note, the sale's payment and the refund are
    matched with each other; the day's vending report gives back the whole amount paid."""
    company = purchase.company_id
    currency = company.currency_id
    lines = (
        purchase.env["account.move.line"]
        .sudo()
        .search(
            [
                ("partner_id", "=", purchase.tenant_id.commercial_partner_id.id),
                ("account_id.account_type", "=", "asset_receivable"),
                ("parent_state", "=", "posted"),
                ("company_id", "=", company.id),
            ]
        )
    )
    case.assertTrue(debt.balance)
    case.assertEqual(purchase.recovery_ids.debt_id, debt)
    case.assertAlmostEqual(sum(lines.mapped("balance")), debt.balance)
    open_lines = lines.filtered(lambda line: not currency.is_zero(line.amount_residual))
    case.assertEqual(open_lines.move_id, debt.invoice_id)
    case.assertAlmostEqual(debt.invoice_id.amount_residual, debt.balance)
    if refund_move:
        refund_lines = refund_move.line_ids & lines
        case.assertAlmostEqual(sum(refund_lines.mapped("balance")), purchase.amount)
        case.assertTrue(all(refund_lines.mapped("reconciled")))
        case.assertIn(purchase.credit_note_id.payment_state, ("paid", "in_payment"))
        # one full reconciliation: the sale's invoice and payment, the note and the refund
        case.assertEqual(
            refund_lines.full_reconcile_id.reconciled_line_ids.move_id,
            purchase.invoice_id
            | refunds.sale_payment_lines(purchase).move_id
            | purchase.credit_note_id
            | refund_move,
        )
    report = daily_vending.daily_vending(
        purchase.env, company, local_time.local_today(company), purchase.channel, None
    )
    case.assertAlmostEqual(report["total"]["reversal_amount"], purchase.amount)
    case.assertAlmostEqual(report["total"]["debt_restored"], purchase.debt_recovered)
