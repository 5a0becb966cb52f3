"""Bridge trust (issue 14 §7, §8): a bridge speaks only for the meters of the jobs it holds,
under its own user, with bounded invocation counters, and sees nothing else."""

import xmlrpc.client

from odoo.exceptions import UserError
from odoo.tests import HttpCase, new_test_user, tagged

from ..services import engine, job_queue
from .common import SmartpmCase, serving_for_long

GROUPS = "base.group_user,smartpm_prepay.group_bridge_api"
READING = {"obis": "1.0.1.8.0.255", "value": 5.0, "unit": "kWh", "time": "2026-11-25T00:00:00Z"}


class BridgeTrustCase(SmartpmCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_a = new_test_user(cls.env, "t_trust_a", groups=GROUPS)
        cls.user_b = new_test_user(cls.env, "t_trust_b", groups=GROUPS)
        cls.m1 = cls._meter("TRUST-1", state="active")
        cls.m2 = cls._meter("TRUST-2", state="active")
        cls._clear_job_queue()

    def setUp(self):
        super().setUp()
        self.A = self.env["smartpm.meter.job"].with_user(self.user_a)
        self.B = self.env["smartpm.meter.job"].with_user(self.user_b)

    def _job(self, meter, job_type="ping", **vals):
        return self.env["smartpm.meter.job"].create(
            {"meter_id": meter.id, "job_type": job_type, **vals}
        )

    def _snapshot(self, *meters):
        self.env.invalidate_all()
        return [
            (
                m.sudo().invocation_counter,
                m.credit_kwh,
                m.last_seen,
                len(m.reading_ids),
                len(m.alarm_ids),
            )
            for m in meters
        ]


@tagged("post_install", "-at_install")
class TestReportsOnlyForHeldMeters(BridgeTrustCase):
    def test_ingest_for_a_meter_whose_job_is_not_held_is_refused(self):
        self._job(self.m1)
        self._job(self.m2)
        self.assertEqual(len(self.A.claim("a", 1, 60)), 1)  # m1's job only... or m2's
        held = self.env["smartpm.meter.job"].search([("bridge_id", "=", "a")]).meter_id
        other = (self.m1 | self.m2) - held
        before = self._snapshot(self.m1, self.m2)
        for key in ({"serial_number": other.serial_number}, {"meter_id": other.id}):
            with self.subTest(key=key), self.assertRaisesRegex(UserError, "has no job"):
                # one good row first: the whole call is refused
                self.A.ingest(
                    "a",
                    [dict(READING, serial_number=held.serial_number), dict(READING, **key)],
                    [],
                )
        with self.assertRaisesRegex(UserError, "has no job"):
            self.A.ingest("a", [], [{"meter_id": other.id, "log": "fraud", "code": 40}])
        # and B, not holding anything, cannot speak for A's meter either
        with self.assertRaisesRegex(UserError, "has no job"):
            self.B.ingest("a", [dict(READING, meter_id=held.id)], [])
        self.assertEqual(self._snapshot(self.m1, self.m2), before)
        # the held meter is accepted
        self.assertEqual(
            self.A.ingest("a", [dict(READING, meter_id=held.id)], []),
            {"readings": 1, "events": 0},
        )

    def test_unknown_meter_and_other_meter_get_the_same_answer(self):
        self._job(self.m1)
        self.A.claim("a", 1, 60)
        messages = []
        for serial in ("NO-SUCH-METER", "TRUST-2"):
            with self.assertRaises(UserError) as caught:
                self.A.ingest("a", [dict(READING, serial_number=serial)], [])
            messages.append(str(caught.exception).replace(serial, "X"))
        self.assertEqual(messages[0], messages[1])

    def test_a_held_job_with_readings_of_another_meter_is_refused(self):
        job = self._job(self.m1)
        self.A.claim("a", 1, 60)
        before = self._snapshot(self.m1, self.m2)
        result = {
            "credit_kwh": 99.0,
            "readings": [dict(READING, serial_number="TRUST-2")],
        }
        with self.assertRaisesRegex(UserError, "names another meter"):
            self.A.complete(job.id, "a", result)
        answers = self.A.report(
            "a",
            [{"job_id": job.id, "result": {"events": [{"meter_id": self.m2.id, "code": 40}]}}],
        )
        self.assertFalse(answers[0]["ok"])
        self.assertIn("names another meter", answers[0]["error"])
        self.assertEqual(job.state, "claimed")
        self.assertEqual(self._snapshot(self.m1, self.m2), before)
        # naming its own meter is fine
        result["readings"] = [dict(READING, serial_number="TRUST-1")]
        self.assertTrue(self.A.complete(job.id, "a", result))
        self.assertEqual((job.state, self.m1.credit_kwh), ("done", 99.0))

    def test_report_of_a_job_not_held_is_refused_and_changes_nothing(self):
        job = self._job(self.m1)
        before = self._snapshot(self.m1)
        answers = self.A.report("a", [{"job_id": job.id, "result": {"credit_kwh": 7.0}}])
        self.assertFalse(answers[0]["ok"])
        self.assertEqual(job.state, "pending")
        self.assertEqual(self._snapshot(self.m1), before)


@tagged("post_install", "-at_install")
class TestBridgeIdBoundToItsUser(BridgeTrustCase):
    def test_another_user_cannot_report_extend_or_release_under_a_bridge_id(self):
        jobs = self._job(self.m1) | self._job(self.m2)
        self.assertEqual(len(self.A.claim("bridge-a", 10, 60)), 2)
        first, second = jobs
        self.assertEqual(first.bridge_user_id, self.user_a)
        lease = first.lease_until
        before = self._snapshot(self.m1, self.m2)
        with self.assertRaisesRegex(UserError, "does not hold its lease"):
            self.B.complete(first.id, "bridge-a", {"credit_kwh": 1.0})
        with self.assertRaisesRegex(UserError, "does not hold its lease"):
            self.B.fail(first.id, "bridge-a", "x", False)
        answers = self.B.report("bridge-a", [{"job_id": second.id, "result": {}}])
        self.assertFalse(answers[0]["ok"])
        self.assertEqual(self.B.extend_lease(jobs.ids, "bridge-a", 3600), [])
        self.assertEqual(self.B.release(jobs.ids, "bridge-a"), [])
        self.env.invalidate_all()
        self.assertEqual(jobs.mapped("state"), ["claimed", "claimed"])
        self.assertEqual(jobs.bridge_user_id, self.user_a)
        self.assertEqual(first.lease_until, lease)
        self.assertEqual(first.attempt_count, 1)
        self.assertEqual(self._snapshot(self.m1, self.m2), before)
        # A itself still can
        self.assertTrue(self.A.complete(first.id, "bridge-a", {}))
        self.assertEqual(self.A.release([second.id], "bridge-a"), [second.id])

    def test_another_user_cannot_claim_under_a_bridge_id_in_use(self):
        self._job(self.m1)
        self.A.claim("bridge-a", 1, 60)
        job_b = self._job(self.m2)
        with self.assertRaisesRegex(UserError, "holds jobs of another Bridge API user"):
            self.B.claim("bridge-a", 10, 60)
        self.assertEqual(job_b.state, "pending")
        self.assertEqual([j["id"] for j in self.B.claim("bridge-b", 10, 60)], [job_b.id])


@tagged("post_install", "-at_install")
class TestInvocationCounterBounds(BridgeTrustCase):
    def _claimed(self):
        job = self._job(self.m1)
        handed = self.A.claim("a", 1, 60)[0]["meter"]["invocation_counter"]
        self.assertIsInstance(handed, str)  # XML-RPC: no <int> above 2**31 - 1
        return job, int(handed)

    def test_counters_beyond_31_bits_are_stored_and_handed_out(self):
        self.m1.sudo().invocation_counter = 2**32 - 10 * job_queue.INVOCATION_COUNTER_RESERVE
        job, handed = self._claimed()
        self.assertEqual(handed, 2**32 - 9 * job_queue.INVOCATION_COUNTER_RESERVE)
        self.A.complete(job.id, "a", {"invocation_counter": str(handed + 7)})
        self.env.invalidate_all()
        self.assertEqual(self.m1.sudo().invocation_counter, handed + 7)

    def test_claim_hands_out_the_jobs_counter_limit_as_a_decimal_string(self):
        self.m1.sudo().invocation_counter = 2**32 - 10 * job_queue.INVOCATION_COUNTER_RESERVE
        job = self._job(self.m1)
        handed = self.A.claim("a", 1, 60)[0]
        self.assertEqual(handed["id"], job.id)
        self.assertIsInstance(handed["invocation_counter_limit"], str)  # above 2**31 - 1
        limit = int(handed["invocation_counter_limit"])
        self.assertEqual(limit, job.sudo().invocation_counter_limit)
        self.assertEqual(
            limit, int(handed["meter"]["invocation_counter"]) + job_queue.INVOCATION_COUNTER_RESERVE
        )

    def test_counter_lock_out_is_refused(self):
        job, handed = self._claimed()
        limit = job.sudo().invocation_counter_limit
        self.assertEqual(limit, handed + job_queue.INVOCATION_COUNTER_RESERVE)
        before = self._snapshot(self.m1)
        for far in (limit + 1, 2**32 - 1, 2**32, 2**40):
            with self.subTest(counter=far), self.assertRaisesRegex(UserError, "invocation"):
                self.A.complete(job.id, "a", {"invocation_counter": far, "credit_kwh": 3.0})
            answers = self.A.report(
                "a", [{"job_id": job.id, "error": "x", "invocation_counter": far}]
            )
            self.assertFalse(answers[0]["ok"], far)
        self.assertEqual(job.state, "claimed")
        self.assertEqual(self._snapshot(self.m1), before)
        # at the top of its block: accepted
        self.A.fail(job.id, "a", "timeout", True, limit)
        self.assertEqual(self.m1.sudo().invocation_counter, limit)

    def test_a_refused_report_of_another_user_keeps_no_counter(self):
        job, handed = self._claimed()
        before = self._snapshot(self.m1)
        self.B.report("a", [{"job_id": job.id, "error": "x", "invocation_counter": handed + 500}])
        self.assertEqual(self._snapshot(self.m1), before)


@tagged("post_install", "-at_install")
class TestClaimTakesBackExpiredLeases(BridgeTrustCase):
    def test_expired_job_goes_to_the_next_claim_and_the_late_report_is_refused(self):
        job = self._job(self.m1, max_attempts=3)
        self.A.claim("a", 1, 60)
        self._expire(job)  # bridge A is gone; no cron runs
        claimed = self.B.claim("b", 10, 60)
        self.assertEqual([j["id"] for j in claimed], [job.id])
        self.assertEqual(
            (job.bridge_id, job.bridge_user_id, job.attempt_count), ("b", self.user_b, 2)
        )
        self.assertIn("lease expired without a report from a", job.error)
        with self.assertRaisesRegex(UserError, "does not hold its lease"):
            self.A.complete(job.id, "a", {"credit_kwh": 1.0})
        # naming its claim does not help: the job was claimed again since
        with self.assertRaisesRegex(UserError, "does not hold its lease"):
            self.A.complete(job.id, "a", {"credit_kwh": 1.0}, attempt=1)
        self.assertFalse(self.A.report("a", [{"job_id": job.id, "result": {}}])[0]["ok"])
        late = [{"job_id": job.id, "result": {"credit_kwh": 1.0}, "attempt": 1}]
        self.assertFalse(self.A.report("a", late)[0]["ok"])
        self.assertEqual(self.A.extend_lease([job.id], "a", 60), [])
        self.assertEqual(self.A.extend_lease([job.id], "a", 60, [1]), [])
        # nor lying about it: attempt 2 is B's claim, not under A's bridge id
        self.assertFalse(self.A.report("a", [dict(late[0], attempt=2)])[0]["ok"])
        self.assertEqual(self.A.extend_lease([job.id], "a", 60, [2]), [])
        self.assertEqual((job.state, job.bridge_id, job.attempt_count), ("claimed", "b", 2))
        self.assertNotEqual(self.m1.credit_kwh, 1.0)
        self.assertTrue(self.B.complete(job.id, "b", {"credit_kwh": 2.0}))

    def test_late_report_of_a_claim_no_one_took_over_is_taken(self):
        """An Odoo restart longer than the lease left: the bridge's report, sent when Odoo
        answers again, settles the job if no claim came meanwhile, whether the job is still
        claimed under the lapsed lease or the cron put it back to pending. Another user,
        or another bridge id of the same user, is refused."""
        for requeued in (False, True):
            job = self._job(self.m1, max_attempts=3)
            self.A.claim("a", 1, 60)
            self._expire(job)
            if requeued:
                self.env["smartpm.meter.job"]._cron_requeue_expired()
                self.assertEqual((job.state, job.bridge_id), ("pending", "a"))
            state = job.state
            before = self._snapshot(self.m1)
            report = {"job_id": job.id, "result": {"credit_kwh": 3.0}, "attempt": 1}
            self.assertFalse(self.B.report("a", [report])[0]["ok"])  # another user
            self.assertFalse(self.A.report("a2", [report])[0]["ok"])  # another bridge id
            with self.assertRaisesRegex(UserError, "does not hold its lease"):
                self.B.complete(job.id, "a", {"credit_kwh": 3.0}, 1)
            self.assertEqual(self.B.extend_lease([job.id], "a", 60, [1]), [])
            self.assertEqual(self.A.extend_lease([job.id], "a2", 60, [1]), [])
            self.assertEqual((job.state, job.attempt_count), (state, 1))
            self.assertEqual(self._snapshot(self.m1), before)
            # its own bridge, naming its claim: taken
            self.assertTrue(self.A.report("a", [report])[0]["ok"])
            self.assertEqual((job.state, job.attempt_count, self.m1.credit_kwh), ("done", 1, 3.0))
            self.assertFalse(self.A.report("a", [report])[0]["ok"])  # once

    def test_expired_last_attempt_is_failed_by_the_next_claim(self):
        job = self._job(self.m1, max_attempts=1)
        self.A.claim("a", 1, 60)
        self._expire(job)
        later = self._job(self.m1)
        claimed = self.B.claim("b", 10, 60)  # no cron: the claim fails it itself
        self.assertEqual(job.state, "failed")
        self.assertTrue(job.date_done)
        self.assertIn("lease expired", job.error)
        self.assertIn("failed after 1 attempt", self.m1.message_ids[0].body)  # _on_final_failure
        self.assertEqual([j["id"] for j in claimed], [later.id])  # the meter is free again


class RpcCase(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        serving_for_long(cls)

    def _xmlrpc(self, login, model, method, *args, **kwargs):
        db = self.env.cr.dbname
        uid = self.xmlrpc_common.authenticate(db, login, login, {})
        return self.xmlrpc_object.execute_kw(db, uid, login, model, method, list(args), kwargs)


@tagged("post_install", "-at_install")
class TestBridgeUserSeesOnlyItsJobs(RpcCase):
    """The bridge user as scripts/bridge_user.py makes it (internal user + Bridge API)."""

    def setUp(self):
        super().setUp()
        self.bridge = new_test_user(self.env, "t_trust_rpc", groups=GROUPS)
        self.other_bridge = new_test_user(self.env, "t_trust_rpc2", groups=GROUPS)
        self.tenant = self.env["res.partner"].create(
            {"name": "Tenant Hidden", "email": "hidden@example.com", "street": "1 Secret St"}
        )
        self.meter = self.env["smartpm.meter"].create(
            {"serial_number": "TRUST-RPC", "host": "10.1.2.3", "port": 4100}
        )
        engine.as_engine(self.env["smartpm.meter.job"].search([("state", "=", "pending")])).write(
            {"state": "cancelled"}
        )

    def test_bridge_reads_no_partner_user_or_meter(self):
        partners = self._xmlrpc("t_trust_rpc", "res.partner", "search_read", [], fields=["email"])
        own = self.env["res.partner"].search([("id", "child_of", self.bridge.partner_id.id)])
        self.assertLessEqual({p["id"] for p in partners}, set(own.ids))
        self.assertNotIn("hidden@example.com", repr(partners))
        with self.assertRaises(xmlrpc.client.Fault):
            self._xmlrpc("t_trust_rpc", "res.partner", "read", [self.tenant.id], ["street"])
        users = self._xmlrpc("t_trust_rpc", "res.users", "search_read", [], fields=["login"])
        self.assertEqual([u["login"] for u in users], ["t_trust_rpc"])
        for model, fields_ in (
            ("smartpm.meter", ["host", "port", "auth"]),
            ("smartpm.reading", ["value"]),
            ("smartpm.alarm", ["alarm_type"]),
        ):
            with self.subTest(model=model), self.assertRaises(xmlrpc.client.Fault) as caught:
                self._xmlrpc("t_trust_rpc", model, "search_read", [], fields=fields_)
            self.assertIn("not allowed to access", caught.exception.faultString)

    def test_connection_data_only_inside_the_claimed_job(self):
        self.meter.action_ping()
        self.assertEqual(
            self._xmlrpc("t_trust_rpc", "smartpm.meter.job", "search_read", [], fields=["id"]), []
        )
        # (the bridge claims over JSON-RPC: the job dict holds nulls, which XML-RPC lacks)
        claimed = self.env["smartpm.meter.job"].with_user(self.bridge).claim("rpc-a", 10, 60)
        self.env.flush_all()
        self.assertEqual(claimed[0]["meter"]["host"], "10.1.2.3")
        self.assertEqual(
            claimed[0]["meter"]["invocation_counter"], str(self.meter.sudo().invocation_counter)
        )
        seen = self._xmlrpc("t_trust_rpc", "smartpm.meter.job", "search_read", [], fields=["id"])
        self.assertEqual([j["id"] for j in seen], [claimed[0]["id"]])
        self.assertEqual(
            self._xmlrpc("t_trust_rpc2", "smartpm.meter.job", "search_read", [], fields=["id"]), []
        )
        answers = self._xmlrpc(
            "t_trust_rpc",
            "smartpm.meter.job",
            "report",
            "rpc-a",
            [
                {
                    "job_id": claimed[0]["id"],
                    "result": {"invocation_counter": claimed[0]["meter"]["invocation_counter"]},
                }
            ],
        )
        self.assertTrue(answers[0]["ok"], answers)
