from datetime import timedelta

from odoo import SUPERUSER_ID, api, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from ..services import engine, job_queue
from .common import SmartpmCase


@tagged("post_install", "-at_install")
class TestJobQueue(SmartpmCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bridge_user = new_test_user(
            cls.env, "t_bridge_q", groups="base.group_user,smartpm_prepay.group_bridge_api"
        )
        cls.operator = new_test_user(cls.env, "t_op_q", groups="smartpm_prepay.group_operator")
        cls.meter = cls._meter("JOB-1", tenant_id=cls._tenant("Jo").id, state="active")
        # claim() hands out one job per meter: tests taking several jobs use several meters
        cls.more_meters = [cls._meter(f"JOB-{i}", state="active") for i in range(2, 7)]
        cls._clear_job_queue()

    def setUp(self):
        super().setUp()
        self.Job = self.env["smartpm.meter.job"].with_user(self.bridge_user)

    def _job(self, job_type="ping", meter=None, **vals):
        return engine.create(
            self.env["smartpm.meter.job"],
            {"meter_id": (meter or self.meter).id, "job_type": job_type, **vals},
        )

    # ------------------------------------------------------------------ claim
    def test_claim_hands_out_due_jobs_by_priority_then_age(self):
        low = self._job("read", priority=50, meter=self.more_meters[0])
        credit = self._job("add_credit", payload={"transfer_number": 1, "kwh": 2.0})
        later = self._job("ping", priority=50, meter=self.more_meters[1])
        claimed = self.Job.claim("b1", 10, 60)
        self.assertEqual([j["id"] for j in claimed], [credit.id, low.id, later.id])
        self.assertEqual(credit.priority, 10)
        # each job's priority goes to the bridge, which ranks its waiting jobs by it
        self.assertEqual([j["priority"] for j in claimed], [10, 50, 50])
        self.assertEqual(claimed[0]["payload"], {"transfer_number": 1, "kwh": 2.0})
        self.assertEqual(claimed[0]["meter"]["serial_number"], "JOB-1")
        self.assertEqual(claimed[0]["meter"]["port"], 4100)
        self.assertEqual(credit.state, "claimed")
        self.assertEqual(credit.bridge_id, "b1")
        self.assertEqual(credit.attempt_count, 1)

    def test_claim_skips_future_and_finished_jobs(self):
        future = self._job(next_attempt_at=fields.Datetime.now() + timedelta(hours=1))
        done = self._job()
        self.Job.claim("b1", 10, 60)
        self.Job.complete(done.id, "b1", {})
        self.assertEqual(self.Job.claim("b2", 10, 60), [])
        self.assertEqual(future.state, "pending")

    def test_claim_respects_limit(self):
        for meter in self.more_meters:
            self._job(meter=meter)
        self.assertEqual(len(self.Job.claim("b1", 3, 60)), 3)
        self.assertEqual(len(self.Job.claim("b2", 10, 60)), 2)

    def test_two_cursors_never_claim_the_same_job(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            meters = env["smartpm.meter"].create(
                [
                    {"serial_number": f"JOB-CONC-{i}", "host": "127.0.0.1", "port": 4100}
                    for i in range(20)
                ]
            )
            jobs = env["smartpm.meter.job"].create(
                [{"meter_id": m.id, "job_type": "ping", "priority": -1000} for m in meters]
            )
            job_ids, meter_ids = set(jobs.ids), tuple(meters.ids)
        try:
            with self.registry.cursor() as cr1, self.registry.cursor() as cr2:
                env1 = api.Environment(cr1, SUPERUSER_ID, {})
                env2 = api.Environment(cr2, SUPERUSER_ID, {})
                # cr1 holds its row locks (not committed) while cr2 claims
                first = {j["id"] for j in job_queue.claim(env1, "b1", 15, 60)} & job_ids
                second = {j["id"] for j in job_queue.claim(env2, "b2", 15, 60)} & job_ids
                cr1.rollback()
                cr2.rollback()
            self.assertEqual(len(first), 15)
            self.assertEqual(len(second), 5)
            self.assertFalse(first & second)
            self.assertEqual(first | second, job_ids)
        finally:
            with self.registry.cursor() as cr:
                cr.execute("DELETE FROM smartpm_meter_job WHERE meter_id IN %s", (meter_ids,))
                cr.execute("DELETE FROM smartpm_meter WHERE id IN %s", (meter_ids,))

    def test_expired_lease_is_claimable_again_and_old_holder_is_refused(self):
        job = self._job()
        self.Job.claim("b1", 1, 60)
        self._expire(job)
        self.assertEqual([j["id"] for j in self.Job.claim("b2", 1, 60)], [job.id])
        self.assertEqual(job.attempt_count, 2)
        with self.assertRaises(job_queue.LeaseLost):
            self.Job.complete(job.id, "b1", {"relay": "connected"})
        self.assertEqual(job.state, "claimed")
        self.assertEqual(job.bridge_id, "b2")

    def test_report_after_lease_expiry_is_refused_and_changes_nothing(self):
        """Past its lease a report is taken only when it names the claim (its attempt) and
        no one claimed the job since (test_job_late_report.py): without the attempt, or
        once the job was claimed again, it is refused and nothing moves."""
        job = self._job()
        self.Job.claim("b1", 1, 60)
        self._expire(job)
        with self.assertRaises(job_queue.LeaseLost):
            self.Job.fail(job.id, "b1", "timeout", True)
        self.assertEqual(job.state, "claimed")
        self.assertFalse(job.error)
        self.assertEqual(self.Job.claim("b1", 1, 60)[0]["attempt_count"], 2)
        self._expire(job)
        with self.assertRaises(job_queue.LeaseLost):
            self.Job.fail(job.id, "b1", "timeout", True, attempt=1)
        self.assertEqual((job.state, job.attempt_count), ("claimed", 2))
        self.assertIn("lease expired", job.error)
        self.assertNotIn("timeout", job.error)

    def test_late_report_of_the_last_claim_is_taken(self):
        """The bridge could not reach Odoo until after its lease: no one claimed the job
        since, so its report of that claim (attempt named) settles the job."""
        job = self._job()
        self.Job.claim("b1", 1, 60)
        self._expire(job)
        self.assertEqual(
            self.Job.fail(job.id, "b1", "timeout", True, attempt=1)["state"], "pending"
        )
        self.assertEqual((job.state, job.attempt_count, job.error), ("pending", 1, "timeout"))
        self.assertFalse(job.lease_until)
        # that report ended the claim: the same report again is refused
        with self.assertRaises(job_queue.LeaseLost):
            self.Job.fail(job.id, "b1", "timeout", True, attempt=1)

    def test_report_from_another_bridge_is_refused(self):
        job = self._job()
        self.Job.claim("b1", 1, 60)
        with self.assertRaises(job_queue.LeaseLost):
            self.Job.complete(job.id, "intruder", {})
        self.assertEqual(job.state, "claimed")

    def test_second_report_is_refused(self):
        job = self._job()
        self.Job.claim("b1", 1, 60)
        self.Job.complete(job.id, "b1", {"credit_kwh": 5.0})
        with self.assertRaises(job_queue.LeaseLost):
            self.Job.complete(job.id, "b1", {"credit_kwh": 99.0})
        self.assertEqual(self.meter.credit_kwh, 5.0)

    def test_extend_lease_keeps_the_job(self):
        job = self._job()
        self.Job.claim("b1", 1, 5)
        before = job.lease_until
        self.assertEqual(self.Job.extend_lease([job.id], "b1", 600), [job.id])
        job.invalidate_recordset()
        self.assertGreater(job.lease_until, before + timedelta(seconds=300))
        self.assertEqual(self.Job.extend_lease([job.id], "other", 600), [])

    def test_release_gives_job_back_without_spending_an_attempt(self):
        job = self._job()
        self.Job.claim("b1", 1, 60)
        self.assertEqual(self.Job.release([job.id], "b1"), [job.id])
        self.assertEqual(job.state, "pending")
        self.assertEqual(job.attempt_count, 0)
        self.assertFalse(job.bridge_id)

    # ------------------------------------------------------------------ results
    def test_complete_updates_meter_and_stores_readings(self):
        job = self._job("read")
        self.Job.claim("b1", 1, 60)
        self.Job.complete(
            job.id,
            "b1",
            {
                "readings": [
                    {
                        "obis": "1.0.1.8.0.255",
                        "value": 1234.5,
                        "unit": "kWh",
                        "time": "2026-11-26T10:00:00+00:00",
                    },
                    {
                        "obis": "0.0.19.10.0.255",
                        "value": 42.25,
                        "unit": "kWh",
                        "time": "2026-11-26T10:00:00Z",
                    },
                ],
                "relay": "connected",
            },
        )
        self.assertEqual(job.state, "done")
        self.assertEqual(self.meter.online_state, "online")
        self.assertTrue(self.meter.last_seen)
        self.assertEqual(self.meter.credit_kwh, 42.25)
        self.assertEqual(self.meter.relay_state, "connected")
        energy = self.meter.reading_ids.filtered(lambda r: r.obis == "1.0.1.8.0.255")
        self.assertEqual(energy.value, 1234.5)
        self.assertEqual(energy.reading_time, fields.Datetime.to_datetime("2026-11-26 10:00:00"))
        self.assertEqual(energy.job_id, job)

    def test_disconnect_and_reconnect_results_move_meter_state(self):
        job = self._job("disconnect")
        self.Job.claim("b1", 1, 60)
        self.Job.complete(job.id, "b1", {"relay": "disconnected", "control_state": 0})
        self.assertEqual(self.meter.state, "disconnected")
        self.assertEqual(self.meter.relay_state, "disconnected")
        job = self._job("reconnect")
        self.Job.claim("b1", 1, 60)
        self.Job.complete(job.id, "b1", {"relay": "connected", "control_state": 1})
        self.assertEqual(self.meter.state, "active")

    def test_invocation_counter_only_grows(self):
        reserve = job_queue.INVOCATION_COUNTER_RESERVE
        job = self._job()
        handed = int(self.Job.claim("b1", 1, 60)[0]["meter"]["invocation_counter"])
        # a job that used counters of its reserved block raises the stored one
        self.Job.complete(job.id, "b1", {"invocation_counter": handed + reserve - 50})
        self.assertEqual(self.meter.sudo().invocation_counter, handed + reserve - 50)
        job = self._job()
        second = int(self.Job.claim("b1", 1, 60)[0]["meter"]["invocation_counter"])
        self.assertEqual(second, handed + 2 * reserve - 50)
        self.Job.complete(job.id, "b1", {"invocation_counter": 20})  # never lowered
        self.assertEqual(self.meter.sudo().invocation_counter, second)
        self.assertEqual(self.Job.claim("b1", 1, 60), [])

    def test_a_crashed_bridges_counters_are_never_handed_out_again(self):
        # the bridge uses counters above the one it was handed, then dies without a report:
        # the next claim of the meter starts above every counter the dead one could use
        self.assertEqual(self.meter.auth, "hls_gmac")
        job = self._job()
        first = int(self.Job.claim("b1", 1, 60)[0]["meter"]["invocation_counter"])
        self._expire(job)
        retry = self.Job.claim("b2", 1, 60)[0]
        self.assertEqual(retry["id"], job.id)
        self.assertGreaterEqual(
            int(retry["meter"]["invocation_counter"]),
            first + job_queue.INVOCATION_COUNTER_RESERVE,
        )

    def test_retryable_failure_backs_off_then_fails_after_last_attempt(self):
        job = self._job(max_attempts=3)
        delays = []
        for attempt in (1, 2):
            self.Job.claim("b1", 1, 60)
            start = fields.Datetime.now()
            answer = self.Job.fail(job.id, "b1", f"timeout {attempt}", True)
            self.assertEqual(answer["state"], "pending")
            delays.append((job.next_attempt_at - start).total_seconds())
            # nothing to claim until the back-off has passed
            self.assertEqual(self.Job.claim("b1", 1, 60), [])
            engine.as_engine(job).next_attempt_at = fields.Datetime.now()
        self.assertAlmostEqual(delays[0], job_queue.backoff_seconds(1), delta=2)
        self.assertAlmostEqual(delays[1], job_queue.backoff_seconds(2), delta=2)
        self.assertGreater(delays[1], delays[0])
        self.Job.claim("b1", 1, 60)
        self.assertEqual(self.Job.fail(job.id, "b1", "timeout 3", True)["state"], "failed")
        self.assertEqual(job.error, "timeout 3")
        self.assertIn("timeout 3", self.meter.message_ids[0].body)

    def test_non_retryable_failure_fails_at_once(self):
        job = self._job()
        self.Job.claim("b1", 1, 60)
        self.Job.fail(job.id, "b1", "wrong password", False)
        self.assertEqual(job.state, "failed")
        self.assertEqual(job.attempt_count, 1)

    def test_cron_requeues_dead_bridge_jobs_and_fails_exhausted_ones(self):
        alive, exhausted = self._job(), self._job(max_attempts=1, meter=self.more_meters[0])
        self.Job.claim("dead", 2, 60)
        self._expire(alive)
        self._expire(exhausted)
        self.env["smartpm.meter.job"]._cron_requeue_expired()
        self.assertEqual(alive.state, "pending")
        self.assertIn("lease expired", alive.error)
        self.assertEqual(exhausted.state, "failed")

    # ------------------------------------------------------------------ ingest
    def test_ingest_stores_the_same_reading_and_event_once(self):
        readings = [
            {
                "serial_number": "JOB-1",
                "obis": "1.0.1.8.0.255",
                "value": 10.0,
                "unit": "kWh",
                "time": "2026-11-25T00:00:00Z",
            },
            {
                "serial_number": "JOB-1",
                "obis": "1.0.1.8.0.255",
                "value": 11.0,
                "unit": "kWh",
                "time": "2026-11-26T00:00:00Z",
            },
        ]
        events = [
            {"serial_number": "JOB-1", "log": "fraud", "code": 40, "time": "2026-11-25T08:00:00Z"},
            {
                "serial_number": "JOB-1",
                "log": "standard",
                "code": 2,
                "time": "2026-11-25T08:00:00Z",
            },
        ]
        self._job()
        self.Job.claim("b1", 1, 60)  # a bridge ingests for the meters of the jobs it holds
        self.assertEqual(self.Job.ingest("b1", readings, events), {"readings": 2, "events": 1})
        self.assertEqual(self.Job.ingest("b1", readings, events), {"readings": 0, "events": 0})
        self.assertEqual(len(self.meter.reading_ids), 2)
        # written in SQL, yet visible through the multi-company rule like any record
        self.assertEqual(self.meter.reading_ids.company_id, self.meter.company_id)
        self.assertEqual(
            self.env["smartpm.reading"]
            .with_user(self.operator)
            .search_count([("meter_id", "=", self.meter.id)]),
            2,
        )
        self.assertEqual(self.meter.alarm_ids.alarm_type, "cover_open")
        self.assertEqual(self.meter.alarm_ids.state, "new")

    def test_ingest_with_unknown_meter_stores_nothing(self):
        self._job()
        self.Job.claim("b1", 1, 60)
        with self.assertRaisesRegex(UserError, "'NOPE' has no job that bridge 'b1' holds"):
            self.Job.ingest(
                "b1",
                [
                    {
                        "serial_number": "JOB-1",
                        "obis": "1.0.1.8.0.255",
                        "value": 1.0,
                        "time": "2026-11-25T00:00:00Z",
                    },
                    {"serial_number": "NOPE", "obis": "1.0.1.8.0.255", "value": 1.0},
                ],
                [],
            )
        self.assertFalse(self.meter.reading_ids)

    # ------------------------------------------------------------------ access
    def test_only_bridge_users_may_call_the_protocol(self):
        self._job()
        job_model = self.env["smartpm.meter.job"].with_user(self.operator)
        for call in (
            lambda: job_model.claim("b1", 1, 60),
            lambda: job_model.complete(1, "b1", {}),
            lambda: job_model.fail(1, "b1", "x", True),
            lambda: job_model.ingest("b1", [], []),
        ):
            with self.assertRaises(AccessError):
                call()

    def test_engine_fields_are_refused_from_rpc(self):
        job = self._job()
        with self.assertRaisesRegex(AccessError, "engine only"):
            job.with_user(self.operator).write({"state": "done"})
        with self.assertRaisesRegex(AccessError, "engine only"):
            self.env["smartpm.meter.job"].create(
                {"meter_id": self.meter.id, "job_type": "ping", "state": "done"}
            )

    def test_running_job_cannot_be_cancelled(self):
        job = self._job()
        self.Job.claim("b1", 1, 60)
        with self.assertRaises(UserError):
            job.with_user(self.operator).action_cancel()
        self.assertEqual(job.state, "claimed")

    def test_failed_job_retry_and_cancel_buttons(self):
        job = self._job(max_attempts=1)
        self.Job.claim("b1", 1, 60)
        self.Job.fail(job.id, "b1", "boom", True)
        job.with_user(self.operator).action_retry()
        self.assertEqual((job.state, job.attempt_count), ("pending", 0))
        job.with_user(self.operator).action_cancel()
        self.assertEqual(job.state, "cancelled")

    def test_meter_buttons_queue_jobs(self):
        meter = self.meter.with_user(self.operator)
        meter.action_read_now()
        meter.action_disconnect()
        meter.action_ping()
        types = self.meter.job_ids.mapped("job_type")
        self.assertEqual(sorted(types), ["disconnect", "ping", "read"])
        read = self.meter.job_ids.filtered(lambda j: j.job_type == "read")
        self.assertIn("1.0.1.8.0.255", [o["obis"] for o in read.payload["objects"]])
        self.meter.action_decommission()
        with self.assertRaisesRegex(UserError, "no commands"):
            self.meter.action_ping()

    def test_wait_for_jobs_answers_at_once_when_a_job_is_due(self):
        self.assertFalse(self.Job.wait_for_jobs(0))
        self._job()
        self.assertTrue(self.Job.wait_for_jobs(5))

    def test_batched_report_applies_each_and_refuses_only_the_lost_lease(self):
        # three meters: claim hands out one job per meter at a time
        done = self._job()
        failed, lost = (
            self.env["smartpm.meter.job"].create(
                {"meter_id": self._meter(serial).id, "job_type": "ping"}
            )
            for serial in ("JOB-REP-2", "JOB-REP-3")
        )
        self.assertEqual(len(self.Job.claim("b1", 3, 60)), 3)
        self._expire(lost)
        answers = self.Job.report(
            "b1",
            [
                {"job_id": done.id, "result": {"credit_kwh": 7.5}},
                {"job_id": lost.id, "result": {"credit_kwh": 99.0}},
                {"job_id": failed.id, "error": "timeout", "retryable": False},
            ],
        )
        self.assertEqual([a["ok"] for a in answers], [True, False, True])
        self.assertTrue(answers[1]["refused"])
        self.assertEqual((done.state, failed.state, lost.state), ("done", "failed", "claimed"))
        self.assertEqual(self.meter.credit_kwh, 7.5)

    def _claimed_reads(self, n, prefix):
        meters = [self._meter(f"{prefix}-{i}", state="active") for i in range(n)]
        jobs = self.env["smartpm.meter.job"].create(
            [{"meter_id": m.id, "job_type": "read"} for m in meters]
        )
        self.assertEqual(len(self.Job.claim("b1", n, 60)), n)
        return jobs

    @staticmethod
    def _read_result(value, time="2026-11-26T10:00:00Z"):
        reading = {"obis": "1.0.1.8.0.255", "value": value, "unit": "Wh", "time": time}
        return {"readings": [reading], "errors": {}}

    def test_batched_report_costs_the_same_statements_for_2_or_8_jobs(self):
        counts = []  # the first round warms caches (the transaction's now(), parameters)
        for n, prefix in ((1, "JOB-B1"), (2, "JOB-B2"), (8, "JOB-B8")):
            jobs = self._claimed_reads(n, prefix)
            before = self.env.cr.sql_log_count
            answers = self.Job.report(
                "b1", [{"job_id": j.id, "result": self._read_result(1000 + j.id)} for j in jobs]
            )
            counts.append(self.env.cr.sql_log_count - before)
            self.assertTrue(all(a["ok"] for a in answers))
            self.assertEqual(set(jobs.mapped("state")), {"done"})
            self.assertEqual(set(jobs.meter_id.mapped("online_state")), {"online"})
            stored = self.env["smartpm.reading"].search([("job_id", "in", jobs.ids)])
            self.assertEqual(
                sorted(stored.mapped("value")), sorted(float(1000 + j.id) for j in jobs)
            )
        self.assertEqual(counts[1], counts[2])

    def test_batched_report_with_one_bad_result_applies_the_others(self):
        good, bad, other = self._claimed_reads(3, "JOB-BAD")
        answers = self.Job.report(
            "b1",
            [
                {"job_id": good.id, "result": self._read_result(11)},
                {"job_id": bad.id, "result": self._read_result(12, time="yesterday")},
                {"job_id": other.id, "error": "timeout", "invocation_counter": "x"},
            ],
        )
        self.assertEqual([a["ok"] for a in answers], [True, False, False])
        self.assertIn("ISO 8601", answers[1]["error"])
        self.assertEqual((good.state, bad.state, other.state), ("done", "claimed", "claimed"))
        readings = self.env["smartpm.reading"].search(
            [("meter_id", "in", (good | bad).meter_id.ids)]
        )
        self.assertEqual(readings.mapped("value"), [11.0])

    def test_batched_report_of_one_job_twice_applies_it_once(self):
        job = self._claimed_reads(1, "JOB-TWICE")
        answers = self.Job.report(
            "b1",
            [
                {"job_id": job.id, "result": self._read_result(21)},
                {"job_id": job.id, "result": self._read_result(22)},
            ],
        )
        self.assertEqual([a["ok"] for a in answers], [True, False])
        self.assertEqual(
            self.env["smartpm.reading"].search([("job_id", "=", job.id)]).mapped("value"), [21.0]
        )

    def test_batched_report_refuses_malformed_input(self):
        with self.assertRaises(UserError):
            self.Job.report("b1", {"job_id": 1})
        self.assertEqual(self.Job.report("b1", [{"result": {}}])[0]["ok"], False)
