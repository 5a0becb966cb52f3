"""Issue 21 §4: a bridge that could not reach Odoo until after its lease (an Odoo restart, a
network cut) still reports, or renews, the claim it ran, as long as no one claimed the job
since: the delivery is not run on the meter a second time. Everything else past a lease is
refused with nothing changed: a claim since, another bridge id or user, a job already
settled, a missing or wrong attempt, the same report again."""

from odoo.tests import new_test_user, tagged

from ..services import job_queue
from ..services.vending import vend
from .common import SmartpmCase

GROUPS = "base.group_user,smartpm_prepay.group_bridge_api"


@tagged("post_install", "-at_install")
class TestLateReport(SmartpmCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._clear_job_queue()
        cls.user_a = new_test_user(cls.env, "t_late_a", groups=GROUPS)
        cls.user_b = new_test_user(cls.env, "t_late_b", groups=GROUPS)
        cls.tariff = cls.env["smartpm.tariff"].create({"name": "Late", "price_per_kwh": 0.5})
        cls.meter = cls._meter(
            "LATE-1", state="active", tenant_id=cls._tenant("Lea").id, tariff_id=cls.tariff.id
        )

    def setUp(self):
        super().setUp()
        self.A = self.env["smartpm.meter.job"].with_user(self.user_a)
        self.B = self.env["smartpm.meter.job"].with_user(self.user_b)
        self.Cron = self.env["smartpm.meter.job"]

    # ------------------------------------------------------------ helpers
    def _sale(self, ref):
        """A sale whose delivery bridge A claimed (attempt 1), then lost touch with Odoo
        past its lease."""
        purchase = vend(self.env, self.meter, 10.0, "backoffice", ref)
        job = purchase.job_id
        claimed = self.A.claim("a", 1, 15)
        self.assertEqual([(j["id"], j["attempt_count"]) for j in claimed], [(job.id, 1)])
        self._expire(job)
        result = {"credit_kwh": 20.0, "transfer_number": purchase.transfer_number}
        return purchase, job, {"job_id": job.id, "result": result, "attempt": 1}

    def _state(self, purchase):
        self.env.invalidate_all()
        job = purchase.job_id
        return (
            job.state,
            job.attempt_count,
            job.bridge_id,
            job.bridge_user_id,
            job.lease_until,
            job.error,
            purchase.state,
            purchase.date_delivered,
            self.meter.credit_kwh,
            len(self.meter.message_ids),
        )

    def _refused(self, answers, count=1):
        self.assertEqual(len(answers), count)
        for answer in answers:
            self.assertEqual((answer["ok"], answer.get("refused")), (False, True), answer)

    def _delivered_once(self, purchase):
        self.env.invalidate_all()
        self.assertEqual((purchase.job_id.state, purchase.state), ("done", "delivered"))
        self.assertEqual(purchase.job_id.attempt_count, 1)
        self.assertEqual(self.meter.credit_kwh, 20.0)

    # ------------------------------------------------------------ taken
    def test_late_report_still_claimed_under_the_lapsed_lease_is_taken(self):
        purchase, _job, report = self._sale("LATE-CLAIMED")
        answer = self.A.report("a", [report])[0]
        self.assertEqual((answer["ok"], answer["state"]), (True, "done"))
        self._delivered_once(purchase)

    def test_late_report_of_a_job_the_cron_put_back_is_taken(self):
        purchase, job, report = self._sale("LATE-REQUEUED")
        self.assertEqual(self.Cron._cron_requeue_expired(), 1)
        # pending again, but no one claimed it: the lapsed claim is still A's
        self.assertEqual((job.state, job.bridge_id, job.attempt_count), ("pending", "a", 1))
        self.assertTrue(job.lease_until)
        self.assertTrue(self.A.report("a", [report])[0]["ok"])
        self._delivered_once(purchase)
        self.assertFalse(job.lease_until)
        # nothing left to run again
        self.assertNotIn(job.id, [j["id"] for j in self.B.claim("b", 5, 15)])

    def test_late_fail_report_is_taken_and_retried_later(self):
        _purchase, job, report = self._sale("LATE-FAIL")
        fail = {"job_id": job.id, "error": "meter timeout", "retryable": True, "attempt": 1}
        self.assertEqual(self.A.report("a", [fail])[0]["state"], "pending")
        self.assertEqual((job.state, job.error, job.attempt_count), ("pending", "meter timeout", 1))
        self.assertFalse(job.lease_until)
        # the back-off of that report holds, and its claim is over: the result is refused
        self._refused(self.A.report("a", [report]))
        self.assertEqual(job.state, "pending")

    def test_late_renewal_retakes_the_lease(self):
        """A bridge back in touch renews first: the job is its own again, no one claims it."""
        for requeue in (False, True):
            purchase, job, report = self._sale(f"LATE-RENEW-{requeue}")
            if requeue:
                self.Cron._cron_requeue_expired()
            # without the attempt a lapsed lease is not renewed
            self.assertEqual(self.A.extend_lease([job.id], "a", 15), [])
            self.assertEqual(self.A.extend_lease([job.id], "a", 15, [1]), [job.id])
            job.invalidate_recordset()
            self.assertEqual((job.state, job.bridge_id, job.attempt_count), ("claimed", "a", 1))
            self.assertFalse(job.is_stuck)
            # live again: not B's to take
            self.assertNotIn(job.id, [j["id"] for j in self.B.claim("b", 5, 15)])
            self.assertEqual(self.A.extend_lease([job.id], "a", 15, [1]), [job.id])
            self.assertTrue(self.A.report("a", [report])[0]["ok"])
            self._delivered_once(purchase)

    # ------------------------------------------------------------ refused
    def test_a_claim_since_wins_over_the_late_report(self):
        """B took the job over (attempt 2): A's late report and renewal, whatever attempt
        they name, change nothing; B delivers once."""
        purchase, job, report = self._sale("LATE-TAKEN")
        self.assertEqual([j["attempt_count"] for j in self.B.claim("b", 1, 15)], [2])
        before = self._state(purchase)
        for attempt in (1, 2, 3, 0, None):
            self._refused(self.A.report("a", [dict(report, attempt=attempt)]))
            self.assertEqual(self.A.extend_lease([job.id], "a", 15, [attempt]), [])
        self.assertEqual(self._state(purchase), before)
        # B's lease lapses too and the cron puts it back: still not A's
        self._expire(job)
        self.Cron._cron_requeue_expired()
        before = self._state(purchase)
        self._refused(self.A.report("a", [report]))
        self._refused(self.A.report("a", [dict(report, attempt=2)]))  # lying: B's claim
        self.assertEqual(self.A.extend_lease([job.id], "a", 15, [1]), [])
        self.assertEqual(self._state(purchase), before)
        self.assertTrue(self.B.report("b", [dict(report, attempt=2)])[0]["ok"])
        self.assertEqual((purchase.state, purchase.job_id.attempt_count), ("delivered", 2))
        self.assertEqual(self.meter.credit_kwh, 20.0)

    def test_a_second_process_under_the_same_bridge_id(self):
        """Two processes configured with one id: the second claimed the job again (attempt
        2) under that id. The first one's late report and renewal name attempt 1: refused."""
        purchase, job, report = self._sale("LATE-TWIN")
        self.assertEqual([j["attempt_count"] for j in self.A.claim("a", 1, 15)], [2])
        before = self._state(purchase)
        self._refused(self.A.report("a", [report]))
        self.assertEqual(self.A.extend_lease([job.id], "a", 15, [1]), [])
        self.assertEqual(self._state(purchase), before)
        # the second process's lease lapses as well: the first still cannot speak for it
        self._expire(job)
        before = self._state(purchase)
        self._refused(self.A.report("a", [report]))
        self.assertEqual(self.A.extend_lease([job.id], "a", 15, [1]), [])
        self.assertEqual(self._state(purchase), before)
        self.assertTrue(self.A.report("a", [dict(report, attempt=2)])[0]["ok"])
        self.assertEqual(self.meter.credit_kwh, 20.0)

    def test_another_bridge_or_user_cannot_report_the_lapsed_claim(self):
        for requeue in (False, True):
            purchase, job, report = self._sale(f"LATE-OTHER-{requeue}")
            if requeue:
                self.Cron._cron_requeue_expired()
            before = self._state(purchase)
            self._refused(self.A.report("a-other", [report]))  # same user, another id
            self._refused(self.B.report("a", [report]))  # another user, the same id
            self._refused(self.B.report("b", [report]))
            self.assertEqual(self.B.extend_lease([job.id], "a", 15, [1]), [])
            self.assertEqual(self.A.extend_lease([job.id], "a-other", 15, [1]), [])
            self.assertEqual(self._state(purchase), before)
            self.assertTrue(self.A.report("a", [report])[0]["ok"])
            self._delivered_once(purchase)

    def test_missing_or_wrong_attempt_is_refused(self):
        purchase, job, report = self._sale("LATE-ATTEMPT")
        before = self._state(purchase)
        no_attempt = {k: v for k, v in report.items() if k != "attempt"}
        for bad in (no_attempt, *(dict(report, attempt=a) for a in (0, 2, -1, True, "1", 1.0))):
            self._refused(self.A.report("a", [bad]))
        for attempts in ([0], [2], [None], [True], ["1"], None, [1, 1]):
            self.assertEqual(self.A.extend_lease([job.id], "a", 15, attempts), [])
        self.assertEqual(self._state(purchase), before)

    def test_a_settled_job_takes_no_late_report(self):
        """Done, failed or cancelled: a late report of the claim that ran is refused."""
        purchase, job, report = self._sale("LATE-DONE")
        self.assertTrue(self.A.report("a", [report])[0]["ok"])
        before = self._state(purchase)
        self._refused(self.A.report("a", [dict(report, result=dict(report["result"]))]))
        fail = {"job_id": job.id, "error": "x", "retryable": True, "attempt": 1}
        self._refused(self.A.report("a", [fail]))
        self.assertEqual(self.A.extend_lease([job.id], "a", 15, [1]), [])
        self.assertEqual(self._state(purchase), before)
        # failed for good: the cron ends a last attempt whose lease lapsed
        ping = self.env["smartpm.meter.job"].create(
            {"meter_id": self.meter.id, "job_type": "ping", "max_attempts": 1}
        )
        self.assertEqual([j["id"] for j in self.A.claim("a", 1, 15)], [ping.id])
        self._expire(ping)
        self.Cron._cron_requeue_expired()
        self.assertEqual((ping.state, ping.bridge_id), ("failed", "a"))
        ping_report = {"job_id": ping.id, "result": {"relay": "connected"}, "attempt": 1}
        self._refused(self.A.report("a", [ping_report]))
        self.assertEqual(self.A.extend_lease([ping.id], "a", 15, [1]), [])
        self.assertEqual(ping.state, "failed")
        # cancelled under its lapsed lease (a sale reversed meanwhile)
        other, other_job, other_report = self._sale("LATE-CANCEL")
        job_queue.cancel(self.env, other_job.ids, expired=True)  # as a reversal does
        other_job.invalidate_recordset()
        self.assertEqual(other_job.state, "cancelled")
        before = self._state(other)
        self._refused(self.A.report("a", [other_report]))
        self.assertEqual(self.A.extend_lease([other_job.id], "a", 15, [1]), [])
        self.assertEqual(self._state(other), before)

    def test_a_released_or_failed_job_takes_no_report_of_its_claim(self):
        """Pending for another reason than a lapsed lease: given back (release) or put back
        by a retryable fail. The same bridge id and attempt cannot report it again."""
        ping = self.env["smartpm.meter.job"].create({"meter_id": self.meter.id, "job_type": "ping"})
        self.A.claim("a", 1, 15)
        self.assertEqual(self.A.release([ping.id], "a"), [ping.id])
        for attempt in (0, 1):
            report = {"job_id": ping.id, "result": {"relay": "connected"}, "attempt": attempt}
            self._refused(self.A.report("a", [report]))
            self.assertEqual(self.A.extend_lease([ping.id], "a", 15, [attempt]), [])
        self.assertEqual((ping.state, ping.attempt_count), ("pending", 0))
        self.A.claim("a", 1, 15)
        fail = {"job_id": ping.id, "error": "meter timeout", "retryable": True, "attempt": 1}
        self.assertTrue(self.A.report("a", [fail])[0]["ok"])
        next_at = ping.next_attempt_at
        for again in (fail, {"job_id": ping.id, "result": {}, "attempt": 1}):
            self._refused(self.A.report("a", [again]))
        self.assertEqual(self.A.extend_lease([ping.id], "a", 15, [1]), [])
        self.assertEqual(
            (ping.state, ping.attempt_count, ping.next_attempt_at), ("pending", 1, next_at)
        )

    def test_the_late_report_six_times_at_once_delivers_once(self):
        """The bridge (or someone replaying its traffic) sends the late report six times,
        in one batch and then one call each: one is taken, the others change nothing."""
        purchase, job, report = self._sale("LATE-SIX")
        self.Cron._cron_requeue_expired()
        answers = self.A.report("a", [dict(report) for _ in range(6)])
        self.assertEqual([a["ok"] for a in answers], [True] + [False] * 5)
        self._refused(answers[1:], 5)
        self._delivered_once(purchase)
        after = self._state(purchase)
        for _ in range(6):
            self._refused(self.A.report("a", [report]))
            self.assertEqual(self.A.extend_lease([job.id], "a", 15, [1]), [])
        self.assertEqual(self._state(purchase), after)
        self.assertEqual(
            self.env["smartpm.credit.purchase"].search_count([("meter_id", "=", self.meter.id)]), 1
        )
