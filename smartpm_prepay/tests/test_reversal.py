"""Reversal only when the credit provably did not reach the meter (issue 14, part 4).

Never claimed: reversed at once. Claimed: the sale waits (pending_check) for a check_token
job, due after the delivery's lease, whose answer from the meter decides: not applied (and
cancelled on the meter) → reversed; applied → delivered, reversal refused."""

from datetime import timedelta

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from ..models.credit_purchase import CHECK_JOB_PRIORITY
from .test_vending import VendingCase

NOT_APPLIED = {"applied": False, "cancelled": True, "credit_kwh": 5.0, "relay": "connected"}
APPLIED = {"applied": True, "cancelled": False, "credit_kwh": 45.0, "relay": "connected"}


@tagged("post_install", "-at_install")
class TestReversal(VendingCase):
    def _invoiced(self, ref="R1"):
        purchase = self._vend(10.0, ref)
        journal = self.env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", self.company.id)], limit=1
        )
        purchase._create_invoice_and_payment(journal)
        return purchase

    def _lease_passes(self, *jobs):
        """The bridge holding these jobs died: their leases are over, the check is due."""
        self.env.flush_all()
        self.env.cr.execute(
            """UPDATE smartpm_meter_job SET lease_until = now() at time zone 'utc'
                      - interval '1 minute' WHERE id = ANY(%s) AND state = 'claimed';
               UPDATE smartpm_meter_job SET next_attempt_at = now() at time zone 'utc'
                      - interval '1 second' WHERE id = ANY(%s) AND state = 'pending'""",
            ([j.id for j in jobs], [j.id for j in jobs]),
        )
        self.env.invalidate_all()

    def _run_check(self, purchase, result):
        check = purchase.check_job_id
        self._lease_passes(purchase.job_id, check)
        claimed = [j["id"] for j in self.Job.claim("b2", 100, 60)]
        self.assertIn(check.id, claimed)
        self.assertNotIn(purchase.job_id.id, claimed)  # the check goes first
        self.Job.complete(check.id, "b2", dict(result, transfer_number=purchase.transfer_number))

    def _reverse(self, purchase):
        return purchase.with_user(self.operator).action_reverse()

    # ------------------------------------------------------------ never claimed
    def test_never_claimed_sale_is_reversed_at_once_with_a_credit_note(self):
        purchase = self._invoiced()
        self._reverse(purchase)
        self.assertEqual(purchase.state, "reversed")
        self.assertEqual(purchase.job_id.state, "cancelled")
        self.assertFalse(purchase.check_job_id)
        self.assertEqual(purchase.credit_note_id.state, "posted")
        self.assertEqual(purchase.credit_note_id.amount_total, purchase.amount)

    def test_job_released_unstarted_counts_as_never_claimed(self):
        purchase = self._vend(10.0)
        self._claim(purchase.job_id)
        self.Job.release([purchase.job_id.id], "b1")
        self._reverse(purchase)
        self.assertEqual(purchase.state, "reversed")
        self.assertFalse(purchase.check_job_id)

    def test_retried_delivery_is_not_taken_for_never_claimed(self):
        """A retry starts the job's attempts from 0: the token of the first attempts may be
        on the meter all the same."""
        purchase = self._vend(10.0)
        self._claim(purchase.job_id)
        self.Job.fail(purchase.job_id.id, "b1", "no answer after the token went out", False)
        purchase.with_user(self.operator).action_retry_delivery()
        self.assertEqual(purchase.job_id.attempt_count, 0)
        self._reverse(purchase)
        self.assertEqual(purchase.state, "pending_check")
        self.assertEqual(purchase.job_id.state, "cancelled")
        self.assertTrue(purchase.check_job_id)

    # ------------------------------------------------------------ claimed
    def test_running_delivery_waits_for_its_lease_then_the_meter_is_asked(self):
        purchase = self._invoiced()
        self._claim(purchase.job_id)
        job = purchase.job_id
        self._reverse(purchase)
        self.assertEqual(purchase.state, "pending_check")
        self.assertEqual(job.state, "claimed")  # a live lease: the bridge may be sending
        self.assertFalse(purchase.credit_note_id)
        check = purchase.check_job_id
        self.assertEqual(check.job_type, "check_token")
        self.assertEqual(check.state, "pending")
        self.assertEqual(check.payload, {"transfer_number": purchase.transfer_number})
        self.assertEqual(check.priority, CHECK_JOB_PRIORITY)
        self.assertLess(check.priority, job.priority)
        self.assertGreater(check.next_attempt_at, job.lease_until)
        self.assertIn("is asked first", str(purchase.message_ids[0].body))
        # nothing for a bridge while the lease runs (the meter is busy, the check not due)
        self.assertNotIn(check.id, [j["id"] for j in self.Job.claim("b2", 100, 60)])
        # asking again (double click, a bank retrying) changes nothing, makes no new job
        jobs = self.env["smartpm.meter.job"].search_count([])
        self._reverse(purchase)
        self.assertEqual(purchase.check_job_id, check)
        self.assertEqual(self.env["smartpm.meter.job"].search_count([]), jobs)

    def test_meter_says_not_applied_the_sale_is_reversed_with_a_credit_note(self):
        purchase = self._invoiced()
        self._claim(purchase.job_id)
        self._reverse(purchase)
        self._run_check(purchase, NOT_APPLIED)
        self.assertEqual(purchase.state, "reversed")
        self.assertEqual(purchase.credit_note_id.state, "posted")
        self.assertEqual(purchase.check_job_id.state, "done")
        # the delivery under its dead lease will not be handed out again
        self.assertEqual(purchase.job_id.state, "cancelled")
        self.assertEqual(self.meter.credit_kwh, 5.0)
        self.assertIn("did not apply transfer", str(purchase.message_ids.mapped("body")))
        with self.assertRaisesRegex(UserError, "only an undelivered sale"):
            self._reverse(purchase)

    def test_meter_says_applied_the_sale_is_delivered_and_never_reversed(self):
        purchase = self._invoiced()
        self._claim(purchase.job_id)
        self._reverse(purchase)
        self._run_check(purchase, APPLIED)
        self.assertEqual(purchase.state, "delivered")
        self.assertTrue(purchase.date_delivered)
        self.assertFalse(purchase.credit_note_id)
        self.assertEqual(self.meter.credit_kwh, 45.0)
        self.assertIn("Reversal refused", str(purchase.message_ids.mapped("body")))
        with self.assertRaisesRegex(UserError, "never reversed"):
            self._reverse(purchase)
        self.assertEqual(purchase.state, "delivered")

    def test_delivery_reported_while_the_check_waits_delivers_and_drops_the_check(self):
        purchase = self._vend(10.0)
        self._claim(purchase.job_id)
        self._reverse(purchase)
        self.Job.complete(
            purchase.job_id.id,
            "b1",
            {
                "transfer_number": 1,
                "already_applied": False,
                "credit_kwh": 40.0,
                "relay": "connected",
            },
        )
        self.assertEqual(purchase.state, "delivered")
        self.assertEqual(purchase.check_job_id.state, "cancelled")

    def test_failed_delivery_after_an_attempt_needs_the_meter_check(self):
        purchase = self._vend(10.0)
        self._claim(purchase.job_id)
        self.Job.fail(purchase.job_id.id, "b1", "timeout after the token went out", False)
        self.assertEqual(purchase.state, "failed")
        self._reverse(purchase)
        self.assertEqual(purchase.state, "pending_check")
        self.assertEqual(purchase.job_id.state, "cancelled")
        self.assertLessEqual(
            purchase.check_job_id.next_attempt_at,
            fields.Datetime.now() + timedelta(seconds=10),
        )

    def test_delivery_waiting_for_a_retry_is_stopped_and_checked(self):
        purchase = self._vend(10.0)
        self._claim(purchase.job_id)
        self.Job.fail(purchase.job_id.id, "b1", "link dropped", True)
        self.assertEqual(purchase.job_id.state, "pending")  # one attempt spent
        self._reverse(purchase)
        self.assertEqual(purchase.state, "pending_check")
        self.assertEqual(purchase.job_id.state, "cancelled")  # no further attempt
        with self.assertRaisesRegex(UserError, "waits for the meter"):
            purchase.job_id.with_user(self.operator).action_retry()
        self.assertEqual(purchase.job_id.state, "cancelled")

    def test_dead_bridge_delivery_is_cancelled_and_checked(self):
        purchase = self._vend(10.0)
        self._claim(purchase.job_id)
        self._lease_passes(purchase.job_id)  # the bridge died: claimed, lease over
        self._reverse(purchase)
        self.assertEqual(purchase.state, "pending_check")
        self.assertEqual(purchase.job_id.state, "cancelled")
        with self.assertRaises(UserError):  # its late report is refused
            self.Job.complete(purchase.job_id.id, "b1", {"credit_kwh": 40.0})

    def test_check_goes_before_the_meters_other_credit(self):
        first = self._vend(10.0, "A")
        self._claim(first.job_id)
        self._reverse(first)
        second = self._vend(10.0, "B")
        self._lease_passes(first.job_id, first.check_job_id)
        claimed = self.Job.claim("b2", 100, 60)
        mine = [j for j in claimed if j["meter"]["id"] == self.meter.id]
        self.assertEqual([j["id"] for j in mine], [first.check_job_id.id])
        self.assertEqual(second.job_id.state, "pending")

    def test_failed_check_alerts_and_can_be_asked_again(self):
        purchase = self._vend(10.0)
        self._claim(purchase.job_id)
        self._reverse(purchase)
        check = purchase.check_job_id
        self._lease_passes(purchase.job_id, check)
        self.assertIn(check.id, [j["id"] for j in self.Job.claim("b2", 100, 60)])
        self.Job.fail(check.id, "b2", "meter unreachable", False)
        self.assertEqual(purchase.state, "pending_check")
        self.assertEqual(len(purchase.activity_ids), 1)
        self.assertIn("meter unreachable", str(purchase.activity_ids.note))
        purchase.with_user(self.operator).action_check_token_again()
        self.assertEqual(check.state, "pending")
        self.assertEqual(purchase.check_job_id, check)
        self.assertFalse(purchase.activity_ids)
        with self.assertRaisesRegex(UserError, "waits for no meter check"):
            self._vend(5.0, "C").with_user(self.operator).action_check_token_again()

    def test_check_answer_for_another_transfer_changes_nothing(self):
        purchase = self._vend(10.0)
        self._claim(purchase.job_id)
        self._reverse(purchase)
        check = purchase.check_job_id
        self._lease_passes(purchase.job_id, check)
        self.Job.claim("b2", 100, 60)
        self.Job.complete(check.id, "b2", dict(NOT_APPLIED, transfer_number=999))
        self.assertEqual(purchase.state, "pending_check")

    def test_claim_tells_the_bridge_its_lease(self):
        purchase = self._vend(10.0)
        jobs = {j["id"]: j for j in self.Job.claim("b1", 100, 45)}
        job = jobs[purchase.job_id.id]
        self.assertEqual(job["lease_seconds"], 45)
        self.assertEqual(job["lease_until"], fields.Datetime.to_string(purchase.job_id.lease_until))
