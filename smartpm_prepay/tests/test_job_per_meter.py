from unittest.mock import patch

from odoo import SUPERUSER_ID, api
from odoo.exceptions import UserError
from odoo.tests import tagged

from ..services import job_queue
from .common import BridgeClaimCase


@tagged("post_install", "-at_install")
class TestJobPerMeter(BridgeClaimCase):
    """claim() hands out one job per meter at a time (a meter takes one association)."""

    BRIDGE_LOGIN = "t_bridge_pm"
    METERS = ("PM-1", "PM-2")

    def _ids(self, claimed):
        return [j["id"] for j in claimed]

    def test_two_jobs_of_one_meter_are_not_claimed_together(self):
        first = self._job(self.m1, "add_credit", payload={"transfer_number": 1, "kwh": 1.0})
        second = self._job(self.m1, "read")
        other = self._job(self.m2)
        self.assertEqual(self._ids(self.Job.claim("b1", 10, 60)), [first.id, other.id])
        self.assertEqual(second.state, "pending")
        self.assertEqual(self.Job.claim("b2", 10, 60), [])  # m1 and m2 both busy

    def test_second_job_is_claimed_after_the_first_completes(self):
        first, second = self._job(self.m1), self._job(self.m1)
        self.assertEqual(self._ids(self.Job.claim("b1", 10, 60)), [first.id])
        self.Job.complete(first.id, "b1", {"relay": "connected"})
        self.assertEqual(self._ids(self.Job.claim("b2", 10, 60)), [second.id])
        self.assertEqual(second.bridge_id, "b2")

    def test_failed_job_frees_the_meter_for_its_next_job(self):
        first, second = self._job(self.m1), self._job(self.m1)
        self.Job.claim("b1", 10, 60)
        self.Job.fail(first.id, "b1", "no answer", True)  # back-off: first is not due
        self.assertEqual(self._ids(self.Job.claim("b1", 10, 60)), [second.id])

    def test_expired_lease_frees_the_meter(self):
        first, second = self._job(self.m1), self._job(self.m1, priority=60)
        self.Job.claim("b1", 10, 60)
        self._expire(first)
        # the expired job comes first again (priority); never both
        self.assertEqual(self._ids(self.Job.claim("b2", 10, 60)), [first.id])
        self.assertEqual(second.state, "pending")

    def test_busy_meter_does_not_block_other_meters(self):
        busy = [self._job(self.m1, priority=1) for _i in range(30)]
        other = self._job(self.m2, priority=99)
        self.assertEqual(self._ids(self.Job.claim("b1", 10, 60)), [busy[0].id, other.id])

    def test_claim_fills_limit_past_a_long_run_of_one_meter(self):
        # more jobs of m1 than one scan chunk ahead of m2's job
        self._bulk_jobs(self.m1, "ping", 1, job_queue.CLAIM_SCAN_CHUNK + 10)
        other = self._job(self.m2, priority=99)
        claimed = self.Job.claim("b1", 10, 60)
        self.assertEqual(len(claimed), 2)
        self.assertEqual(claimed[-1]["id"], other.id)

    def test_wait_for_jobs_ignores_due_jobs_of_a_busy_meter(self):
        self._job(self.m1)
        second = self._job(self.m1)
        self.Job.claim("b1", 10, 60)
        self.assertEqual(second.state, "pending")
        self.assertFalse(self.Job.wait_for_jobs(0))  # nothing claim() would hand out
        self._job(self.m2)
        self.assertTrue(self.Job.wait_for_jobs(0))

    def test_finishing_a_job_wakes_bridges_only_if_its_meter_has_more(self):
        first, second, alone = self._job(self.m1), self._job(self.m1), self._job(self.m2)
        self.Job.claim("b1", 10, 60)
        with patch.object(job_queue, "notify") as notify:
            self.Job.complete(alone.id, "b1", {})
            notify.assert_not_called()
            self.Job.fail(first.id, "b1", "meter said no", False)
            notify.assert_called_once()
        self.assertEqual(self._ids(self.Job.claim("b2", 10, 60)), [second.id])

    def test_failed_job_keeps_the_invocation_counter_it_used(self):
        # HLS-GMAC: the meter refuses an association at or below a counter it has seen, so
        # the counters a failed job spent must reach the next job of the meter.
        reserve = job_queue.INVOCATION_COUNTER_RESERVE
        job = self._job(self.m1)
        handed = int(self.Job.claim("b1", 1, 60)[0]["meter"]["invocation_counter"])
        used = handed + reserve - 70  # within its reserved block
        self.Job.fail(job.id, "b1", "temporary-failure", False, used)
        job = self._job(self.m1)
        self.Job.claim("b1", 1, 60)
        self.Job.fail(job.id, "b1", "temporary-failure", False, 30)  # never lowered
        self.assertEqual(self.m1.sudo().invocation_counter, used + reserve)
        self._job(self.m1)
        self.assertEqual(
            self.Job.claim("b1", 1, 60)[0]["meter"]["invocation_counter"], str(used + 2 * reserve)
        )

    def test_a_report_refused_for_a_lost_lease_still_keeps_its_counters(self):
        job = self._job(self.m1)
        used = int(self.Job.claim("b1", 1, 60)[0]["meter"]["invocation_counter"]) + 90
        answers = self.Job.report(
            "b2",  # not the holder: refused, yet the meter saw these counters
            [{"job_id": job.id, "result": {"invocation_counter": used, "credit_kwh": 1.0}}],
        )
        self.assertFalse(answers[0]["ok"])
        self.assertEqual(job.state, "claimed")
        self.assertEqual(self.m1.sudo().invocation_counter, used)
        self.assertNotEqual(self.m1.sudo().credit_kwh, 1.0)
        self.Job.report("b2", [{"job_id": job.id, "error": "late", "invocation_counter": 40}])
        self.assertEqual(self.m1.sudo().invocation_counter, used)  # never lowered

    def test_fail_refuses_a_counter_that_is_not_an_integer(self):
        job = self._job(self.m1)
        self.Job.claim("b1", 1, 60)
        for bad in ("x", "7.1", "-1", 7.0, True, -1, 2**32):
            with self.subTest(counter=bad), self.assertRaisesRegex(UserError, "invocation_counter"):
                self.Job.fail(job.id, "b1", "x", True, bad)
        self.assertEqual(job.state, "claimed")

    def test_two_cursors_never_get_two_jobs_of_one_meter(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            meters = env["smartpm.meter"].create(
                [
                    {"serial_number": f"PM-CONC-{i}", "host": "127.0.0.1", "port": 4100}
                    for i in range(6)
                ]
            )
            # three jobs per meter, interleaved so every claim sees every meter
            jobs = env["smartpm.meter.job"].create(
                [
                    {"meter_id": m.id, "job_type": "ping", "priority": -1000}
                    for _round in range(3)
                    for m in meters
                ]
            )
            job_meter = {j.id: j.meter_id.id for j in jobs}
            meter_ids = tuple(meters.ids)
        try:
            with self.registry.cursor() as cr1, self.registry.cursor() as cr2:
                env1 = api.Environment(cr1, SUPERUSER_ID, {})
                env2 = api.Environment(cr2, SUPERUSER_ID, {})
                # cr1 holds its locks (not committed) while cr2 claims
                first = [
                    j["id"] for j in job_queue.claim(env1, "b1", 4, 60) if j["id"] in job_meter
                ]
                second = [
                    j["id"] for j in job_queue.claim(env2, "b2", 10, 60) if j["id"] in job_meter
                ]
                cr1.commit()
                cr2.commit()
            with self.registry.cursor() as cr3:
                env3 = api.Environment(cr3, SUPERUSER_ID, {})
                third = [
                    j["id"] for j in job_queue.claim(env3, "b3", 10, 60) if j["id"] in job_meter
                ]
                cr3.rollback()
            self.assertEqual((len(first), len(second)), (4, 2))
            self.assertFalse(set(first) & set(second))
            taken = [job_meter[i] for i in first + second]
            self.assertEqual(len(taken), len(set(taken)))  # never two jobs of one meter
            self.assertEqual(set(taken), set(meter_ids))
            self.assertEqual(third, [])  # every meter is busy now
        finally:
            with self.registry.cursor() as cr:
                cr.execute("DELETE FROM smartpm_meter_job WHERE meter_id IN %s", (meter_ids,))
                cr.execute("DELETE FROM smartpm_meter WHERE id IN %s", (meter_ids,))

    def test_claimer_with_an_older_snapshot_cannot_take_a_busy_meter(self):
        # Odoo's cursors are REPEATABLE READ: cr2's snapshot is older than the credit job
        # and than its claim by cr1, so cr2 still sees the meter free with only the read
        # job pending. Locking the meter, stamped by cr1's claim, must fail rather than
        # hand out the read job too.
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            meter = env["smartpm.meter"].create(
                {"serial_number": "PM-SNAP", "host": "127.0.0.1", "port": 4100}
            )
            read = env["smartpm.meter.job"].create(
                {"meter_id": meter.id, "job_type": "read", "priority": -900}
            )
            meter_id, read_id = meter.id, read.id
        try:
            with self.registry.cursor() as cr2:
                cr2.execute("SELECT 1 FROM smartpm_meter_job LIMIT 1")  # snapshot taken
                with self.registry.cursor() as cr1:
                    env1 = api.Environment(cr1, SUPERUSER_ID, {})
                    credit = env1["smartpm.meter.job"].create(
                        {"meter_id": meter_id, "job_type": "ping", "priority": -1000}
                    )
                    cr1.commit()
                    claimed = [j["id"] for j in job_queue.claim(env1, "b1", 10, 60)]
                    self.assertIn(credit.id, claimed)
                    self.assertNotIn(read_id, claimed)
                env2 = api.Environment(cr2, SUPERUSER_ID, {})
                # the lock fails ("could not serialize"): nothing is handed out, the request
                # itself does not fail, and the next claim (new snapshot) sees the meter busy
                self.assertEqual(job_queue.claim(env2, "b2", 10, 60), [])
                cr2.rollback()
                self.assertEqual(job_queue.claim(env2, "b2", 10, 60), [])
                cr2.rollback()
            with self.registry.cursor() as cr3:
                cr3.execute("SELECT state FROM smartpm_meter_job WHERE id = %s", (read_id,))
                self.assertEqual(cr3.fetchone()[0], "pending")
        finally:
            with self.registry.cursor() as cr:
                cr.execute("DELETE FROM smartpm_meter_job WHERE meter_id = %s", (meter_id,))
                cr.execute("DELETE FROM smartpm_meter WHERE id = %s", (meter_id,))
