"""The owner's screens of a bank sale whose books wait (issue 21 §1), on the demo's data: the
demo bank (``demo_bank``) sells credit for amina's meter; the sale answers before its invoice
and payment are posted, so its form shows "Payment to post in" (the bank's journal); a
posting that fails leaves one activity for the owner naming the sale, the meter and the
error; once the cause is gone the cron posts it and closes the activity. The owner sees
both in the browser (tour ``smartpm_owner_bank_posting``, as ``admin``)."""

from unittest.mock import patch

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from ...services import bank_api
from .common import DemoJourneyCase


@tagged("post_install", "-at_install")
class TestOwnerBankPostingJourney(DemoJourneyCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bank_user = cls.env.ref("smartpm_prepay.demo_bank_user")
        cls.journal = cls.env.ref("smartpm_prepay.demo_bank_journal")
        cls.meter = cls.env.ref("smartpm_prepay.demo_meter_01")

    def _bank_sells(self, ref):
        now = fields.Datetime.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        receipt = bank_api.purchase(
            self.env(user=self.bank_user),
            "bank_xmlrpc",
            self.meter.serial_number,
            12.0,
            None,
            ref,
            now,
        )
        self.env.flush_all()
        self.env.invalidate_all()
        return self.env["smartpm.credit.purchase"].search([("name", "=", receipt["reference"])])

    def _post_bank_sales(self):
        self.env["smartpm.credit.purchase"].sudo()._cron_post_deferred_sales()
        self.env.invalidate_all()

    def test_owner_sees_the_payment_to_post_and_the_posting_failure(self):
        sale = self._bank_sells("JRN-POST-1")
        self.assertEqual((sale.channel, sale.meter_id), ("bank_xmlrpc", self.meter))
        self.assertEqual(sale.posting_journal_id, self.journal)
        self.assertFalse(sale.invoice_id)
        purchases = type(self.env["smartpm.credit.purchase"])
        refusal = UserError("no income account on the energy product")
        with patch.object(purchases, "_create_invoice_and_payment", side_effect=refusal):
            self._post_bank_sales()
            self._post_bank_sales()  # the cron's next run: still one activity
        summary = sale._posting_alert_summary()
        alert = sale.activity_ids.filtered(lambda a: a.summary == summary)
        self.assertEqual(len(alert), 1)
        self.assertEqual(alert.user_id, self.owner)
        # the owner reads the sale and the activity with their own rights
        seen = sale.with_user(self.owner).read(["posting_journal_id", "activity_ids"])[0]
        self.assertEqual(seen["posting_journal_id"][0], self.journal.id)
        [note] = alert.with_user(self.owner).read(["note"])
        for text in (sale.name, self.meter.serial_number, "no income account"):
            self.assertIn(text, note["note"])
        mine = (
            self.env["mail.activity"]
            .with_user(self.owner)
            .search(
                [
                    ("res_model", "=", sale._name),
                    ("res_id", "=", sale.id),
                    ("user_id", "=", self.owner.id),
                ]
            )
        )
        self.assertEqual(mine, alert)
        self.start_tour(
            f"/odoo/action-smartpm_prepay.action_credit_purchase/{sale.id}",
            "smartpm_owner_bank_posting",
            login="admin",
        )
        # the cause corrected: the cron posts it once and closes the activity
        self._post_bank_sales()
        self.assertFalse(sale.posting_journal_id)
        self.assertEqual(sale.invoice_id.state, "posted")
        self.assertFalse(sale.activity_ids.filtered(lambda a: a.summary == summary))
