"""Issue 21 §4: after an Odoo restart, a lease that lapsed while Odoo was down gets a grace
(job_queue.RESTART_GRACE_S) before another bridge may claim the job: the holder, still on
the meter, renews or reports first, and the job is not run twice. A lease that lapses while
Odoo serves is claimable at its end, as before (a killed bridge's job is retried then)."""

from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.tests import new_test_user, tagged

from ..services import engine, job_queue
from ..services.vending import vend
from .common import SmartpmCase

GROUPS = "base.group_user,smartpm_prepay.group_bridge_api"
GRACE = job_queue.RESTART_GRACE_S


@tagged("post_install", "-at_install")
class TestRestartGrace(SmartpmCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._clear_job_queue()
        cls.user_a = new_test_user(cls.env, "t_grace_a", groups=GROUPS)
        cls.user_b = new_test_user(cls.env, "t_grace_b", groups=GROUPS)
        cls.tariff = cls.env["smartpm.tariff"].create({"name": "Grace", "price_per_kwh": 0.5})
        cls.meter = cls._meter(
            "GRACE-1", state="active", tenant_id=cls._tenant("Gina").id, tariff_id=cls.tariff.id
        )

    def setUp(self):
        super().setUp()
        self.A = self.env["smartpm.meter.job"].with_user(self.user_a)
        self.B = self.env["smartpm.meter.job"].with_user(self.user_b)
        self.Cron = self.env["smartpm.meter.job"]

    # ------------------------------------------------------------ helpers
    def _serving_since(self, seconds_ago):
        """This Odoo (re)started ``seconds_ago``: what mark_serving() records at the end of
        a registry load."""
        since = fields.Datetime.now() - timedelta(seconds=seconds_ago)
        patcher = patch.object(self.registry, job_queue.SERVING_SINCE_ATTR, since)
        patcher.start()
        self.addCleanup(patcher.stop)

    def _sale(self, ref, lapsed_ago=10):
        """A sale whose delivery bridge A claimed (attempt 1); A's lease ended
        ``lapsed_ago`` seconds ago without a renewal."""
        purchase = vend(self.env, self.meter, 10.0, "backoffice", ref)
        job = purchase.job_id
        claimed = self.A.claim("a", 1, 15)
        self.assertEqual([(j["id"], j["attempt_count"]) for j in claimed], [(job.id, 1)])
        self._expire(job, seconds=lapsed_ago)
        result = {"credit_kwh": 20.0, "transfer_number": purchase.transfer_number}
        return purchase, job, {"job_id": job.id, "result": result, "attempt": 1}

    def _claimed_by_b(self):
        return [(j["id"], j["attempt_count"]) for j in self.B.claim("b", 5, 15)]

    def _delivered_once_by_a(self, purchase):
        self.env.invalidate_all()
        job = purchase.job_id
        self.assertEqual((job.state, job.bridge_id, job.attempt_count), ("done", "a", 1))
        self.assertEqual(purchase.state, "delivered")
        self.assertEqual(self.meter.credit_kwh, 20.0)

    # ------------------------------------------------------------ in the grace
    def test_lease_lapsed_while_odoo_was_down_is_not_claimed_by_another_bridge(self):
        """Odoo just restarted; A's lease ran out while it was down: B's claim gets nothing
        (nor the meter's next job: A may still be on the meter), A's renewal re-takes the
        lease and its report delivers the sale by attempt 1."""
        purchase, job, report = self._sale("GRACE-DOWN", lapsed_ago=10)
        behind = vend(self.env, self.meter, 4.0, "backoffice", "GRACE-DOWN-2")
        self._serving_since(0)
        self.assertEqual(self._claimed_by_b(), [])
        job.invalidate_recordset()
        self.assertEqual((job.state, job.bridge_id, job.attempt_count), ("claimed", "a", 1))
        self.assertEqual(behind.job_id.state, "pending")
        self.assertEqual(self.A.extend_lease([job.id], "a", 15, [1]), [job.id])
        self.assertTrue(self.A.report("a", [report])[0]["ok"])
        self._delivered_once_by_a(purchase)
        # the meter is free: the sale behind goes to whoever claims next
        self.assertEqual(self._claimed_by_b(), [(behind.job_id.id, 1)])

    def test_lease_lapsing_just_after_the_restart_gets_the_grace_too(self):
        """The lease ran out after Odoo came back but before the holder could renew (it
        retries on its own rhythm): B still waits; A's late report is taken."""
        purchase, _job, report = self._sale("GRACE-JUST-AFTER", lapsed_ago=1)
        self._serving_since(3)
        self.assertEqual(self._claimed_by_b(), [])
        self.assertTrue(self.A.report("a", [report])[0]["ok"])
        self._delivered_once_by_a(purchase)

    def test_cron_does_not_requeue_a_lease_in_the_grace(self):
        purchase, job, report = self._sale("GRACE-CRON", lapsed_ago=10)
        self._serving_since(0)
        self.assertEqual(self.Cron._cron_requeue_expired(), 0)
        job.invalidate_recordset()
        self.assertEqual((job.state, job.attempt_count, job.error), ("claimed", 1, False))
        self.assertTrue(self.A.report("a", [report])[0]["ok"])
        self._delivered_once_by_a(purchase)

    def test_last_attempt_in_the_grace_is_not_failed_by_a_claim(self):
        purchase, job, report = self._sale("GRACE-LAST", lapsed_ago=10)
        engine.as_engine(job).write({"max_attempts": 1})
        self._serving_since(0)
        self.assertEqual(self._claimed_by_b(), [])
        job.invalidate_recordset()
        self.assertEqual(job.state, "claimed")
        self.assertTrue(self.A.report("a", [report])[0]["ok"])
        self._delivered_once_by_a(purchase)

    def test_long_poll_wakes_at_the_end_of_the_grace(self):
        """No NOTIFY says the grace is over: an idle bridge's long-poll must wake then, or
        the job waits a whole long-poll."""
        self._sale("GRACE-WAKE", lapsed_ago=10)
        self._serving_since(0)
        self.env.flush_all()
        self.assertFalse(self.B.wait_for_jobs(0))
        job_queue._set_serving_since(self.env.cr, self.registry)
        left = job_queue._seconds_to_first_lease_end(self.env.cr)
        self.assertIsNotNone(left)
        self.assertLessEqual(left, GRACE)
        self.assertGreater(left, 0)

    # ------------------------------------------------------------ past the grace
    def test_after_the_grace_another_bridge_takes_the_job_over(self):
        """The holder never came back: once the grace is over B claims the job (attempt 2),
        and A's report of attempt 1 is refused with nothing changed."""
        purchase, job, report = self._sale("GRACE-OVER", lapsed_ago=GRACE * 3)
        self._serving_since(GRACE * 2)
        self.assertEqual(self._claimed_by_b(), [(job.id, 2)])
        answer = self.A.report("a", [report])[0]
        self.assertEqual((answer["ok"], answer.get("refused")), (False, True))
        self.env.invalidate_all()
        self.assertEqual((job.state, job.bridge_id, purchase.state), ("claimed", "b", "queued"))
        self.assertEqual(self.meter.credit_kwh, 0.0)

    def test_cron_requeues_after_the_grace(self):
        _purchase, job, _report = self._sale("GRACE-CRON-OVER", lapsed_ago=GRACE * 3)
        self._serving_since(GRACE * 2)
        self.assertEqual(self.Cron._cron_requeue_expired(), 1)
        job.invalidate_recordset()
        self.assertEqual(job.state, "pending")

    def test_lease_lapsed_while_odoo_serves_is_claimable_at_its_end(self):
        """No restart near the lapse (a killed bridge): no grace, B takes the job at once."""
        _purchase, job, _report = self._sale("GRACE-NONE", lapsed_ago=1)
        self._serving_since(3600)
        self.assertEqual(self._claimed_by_b(), [(job.id, 2)])

    def test_without_a_serving_time_there_is_no_grace(self):
        """A registry that never ran the hook (an odoo shell, say): leases end as before."""
        _purchase, job, _report = self._sale("GRACE-UNSET", lapsed_ago=1)
        patcher = patch.object(self.registry, job_queue.SERVING_SINCE_ATTR, None)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.assertEqual(self._claimed_by_b(), [(job.id, 2)])
