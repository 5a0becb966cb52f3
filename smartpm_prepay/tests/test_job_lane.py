import re

from odoo import SUPERUSER_ID, api
from odoo.exceptions import UserError
from odoo.tests import tagged

from meter_bridge.service import CREDIT_JOB_TYPES

from ..services import engine, job_queue
from .common import BridgeClaimCase

CREDIT = {"transfer_number": 1, "kwh": 1.0}


@tagged("post_install", "-at_install")
class TestJobLane(BridgeClaimCase):
    """claim() options: the credit lane (job_types) and the bridge's busy meters."""

    BRIDGE_LOGIN = "t_bridge_lane"
    METERS = ("LANE-1", "LANE-2", "LANE-3")
    JOB_TYPE = "read"

    def _job(self, meter, job_type=None, **vals):
        if job_type == "add_credit":
            vals.setdefault("payload", dict(CREDIT))
        return super()._job(meter, job_type, **vals)

    def _lane(self, bridge="b1", limit=10, **options):
        options.setdefault("job_types", sorted(job_queue.LANE_JOB_TYPES))
        return [j["id"] for j in self.Job.claim(bridge, limit, 60, options)]

    def _open_states(self):
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT id, state FROM smartpm_meter_job WHERE meter_id IN %s ORDER BY id",
            ((self.m1.id, self.m2.id, self.m3.id),),
        )
        return self.env.cr.fetchall()

    def test_lane_types_are_the_bridges_credit_job_types(self):
        self.assertEqual(job_queue.LANE_JOB_TYPES, CREDIT_JOB_TYPES)

    def test_lane_index_covers_the_lane_types(self):
        self.env.cr.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'smartpm_meter_job_lane_idx'"
        )
        (indexdef,) = self.env.cr.fetchone()
        predicate = indexdef.split("job_type", 1)[1]
        self.assertEqual(set(re.findall(r"'(\w+)'", predicate)), set(job_queue.LANE_JOB_TYPES))

    def test_lane_claim_hands_out_credit_heads_only(self):
        reads = [self._job(self.m1, priority=1), self._job(self.m2, priority=1)]
        credit = self._job(self.m3, "add_credit", priority=10)
        self.assertEqual(self._lane(), [credit.id])
        self.assertEqual(credit.bridge_id, "b1")
        self.assertEqual([r.state for r in reads], ["pending", "pending"])

    def test_meter_whose_first_job_is_a_read_is_not_handed_to_the_lane(self):
        # the calendar-style job queued first, at a better priority: the credit job of the
        # same meter must not overtake it, not even through the lane
        first = self._job(self.m1, "set_tariff_calendar", priority=9)
        credit = self._job(self.m1, "add_credit", priority=10)
        other = self._job(self.m2, "take_emergency_credit", priority=5)
        self.assertEqual(self._lane(), [other.id])
        self.assertEqual((first.state, credit.state), ("pending", "pending"))
        # a normal claim keeps the meter's order: its first job, then (after it) the credit
        self.assertEqual([j["id"] for j in self.Job.claim("b1", 10, 60)], [first.id])
        self.Job.complete(first.id, "b1", {})
        self.assertEqual(self._lane(), [credit.id])

    def test_lane_keeps_per_meter_order_between_credit_jobs(self):
        one = self._job(self.m1, "add_credit", priority=10)
        two = self._job(self.m1, "clear_credit", priority=10, payload={"transfer_number": 2})
        self.assertEqual(self._lane(), [one.id])
        self.assertEqual(self._lane("b2"), [])  # the meter is busy
        self.assertEqual(two.state, "pending")

    def test_lane_claim_fills_its_limit_past_read_heads(self):
        # more lane-type jobs behind read heads than one scan chunk: the claim goes on
        self._job(self.m1, "read", priority=1)
        self._bulk_jobs(self.m1, "clear_credit", 2, job_queue.CLAIM_SCAN_CHUNK + 10)
        credit = self._job(self.m2, "add_credit", priority=10)
        self.assertEqual(self._lane(), [credit.id])

    def test_bad_job_types_are_refused_and_nothing_is_claimed(self):
        credit = self._job(self.m1, "add_credit")
        bad_values = [
            ("add_credit", "job_types must be a non-empty list"),
            ([], "job_types must be a non-empty list"),
            (["add_credit", 7], "7 is not a job type"),
            (["add_credit", None], "None is not a job type"),
            (["steal_credit"], "'steal_credit' is not a job type"),
            ([["add_credit"]], "is not a job type"),
            (["add_credit"] * 10000, "at most"),
            ({"add_credit": 1}, "job_types must be a non-empty list"),
        ]
        for value, message in bad_values:
            with self.subTest(job_types=str(value)[:40]):
                with self.assertRaisesRegex(UserError, re.escape(message)):
                    self.Job.claim("b1", 10, 60, {"job_types": value})
                self.assertEqual(credit.state, "pending")
        self.assertFalse(credit.bridge_id)

    def test_bad_options_are_refused_and_nothing_is_claimed(self):
        job = self._job(self.m1)
        for options, message in [
            (["job_types"], "options must be a dict"),
            ("job_types", "options must be a dict"),
            ({"job_types": ["read"], "limit_all": 1}, "unknown option 'limit_all'"),
            ({"busy_meter_ids": [1, "2"]}, "'2' is not a meter id"),
            ({"busy_meter_ids": [True]}, "True is not a meter id"),
            ({"busy_meter_ids": 5}, "must be a list"),
            ({"busy_meter_ids": list(range(job_queue.MAX_BUSY_METER_IDS + 1))}, "at most"),
        ]:
            with self.subTest(options=str(options)[:40]):
                with self.assertRaisesRegex(UserError, re.escape(message)):
                    self.Job.claim("b1", 10, 60, options)
                self.assertEqual(job.state, "pending")

    def test_claim_without_options_is_unchanged(self):
        read = self._job(self.m1, priority=1)
        credit = self._job(self.m2, "add_credit", priority=10)
        self.assertEqual(
            [j["id"] for j in self.Job.claim("b1", 10, 60, None)], [read.id, credit.id]
        )

    def test_busy_meters_of_the_bridge_are_not_handed_out(self):
        # the bridge still runs a (stuck) thread on m1, whose lease it let lapse
        stuck = self._job(self.m1, priority=1)
        self.Job.claim("b1", 1, 60)
        self._expire(stuck)
        credit = self._job(self.m1, "add_credit", priority=0)
        other = self._job(self.m2)
        busy = {"busy_meter_ids": [self.m1.id]}
        self.assertEqual([j["id"] for j in self.Job.claim("b1", 10, 60, busy)], [other.id])
        self.assertEqual(self._lane(busy_meter_ids=[self.m1.id]), [])
        self.assertEqual(
            (stuck.state, stuck.attempt_count, credit.state), ("claimed", 1, "pending")
        )
        # another bridge takes the meter: the credit job first (priority), then the lapsed one
        self.assertEqual([j["id"] for j in self.Job.claim("b2", 10, 60)], [credit.id])

    def test_two_cursors_lane_claims_never_get_one_meter_twice(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            meters = env["smartpm.meter"].create(
                [
                    {"serial_number": f"LANE-CONC-{i}", "host": "127.0.0.1", "port": 4100}
                    for i in range(4)
                ]
            )
            # per meter a credit job, then a read (a credit head each); meter 0 gets a
            # read ahead of its credit job, so it is no lane meter
            jobs = env["smartpm.meter.job"]
            jobs |= jobs.create({"meter_id": meters[0].id, "job_type": "read", "priority": -1001})
            for meter in meters:
                jobs |= engine.create(
                    env["smartpm.meter.job"],
                    {
                        "meter_id": meter.id,
                        "job_type": "add_credit",
                        "priority": -1000,
                        "payload": dict(CREDIT),
                    },
                )
                jobs |= jobs.create({"meter_id": meter.id, "job_type": "read", "priority": -999})
            job_meter = {j.id: j.meter_id.id for j in jobs}
            job_type = {j.id: j.job_type for j in jobs}
            meter_ids = tuple(meters.ids)
        lane = {"job_types": sorted(job_queue.LANE_JOB_TYPES)}
        try:
            with self.registry.cursor() as cr1, self.registry.cursor() as cr2:
                env1 = api.Environment(cr1, SUPERUSER_ID, {})
                env2 = api.Environment(cr2, SUPERUSER_ID, {})
                # cr1 holds its meter locks (not committed) while cr2 claims
                first = [
                    j["id"]
                    for j in job_queue.claim(env1, "b1", 2, 60, lane)
                    if j["id"] in job_meter
                ]
                second = [
                    j["id"]
                    for j in job_queue.claim(env2, "b2", 10, 60, lane)
                    if j["id"] in job_meter
                ]
                cr1.commit()
                cr2.commit()
            with self.registry.cursor() as cr3:
                env3 = api.Environment(cr3, SUPERUSER_ID, {})
                third = [
                    j["id"] for j in job_queue.claim(env3, "b3", 10, 60) if j["id"] in job_meter
                ]
                cr3.rollback()
            self.assertEqual((len(first), len(second)), (2, 1))
            taken = [job_meter[i] for i in first + second]
            self.assertEqual(len(taken), len(set(taken)))  # never two jobs of one meter
            self.assertEqual(set(taken), set(meter_ids[1:]))
            self.assertEqual({job_type[i] for i in first + second}, {"add_credit"})
            # meter 0 is left for a normal claim: its read first
            self.assertEqual([job_type[i] for i in third], ["read"])
            self.assertEqual([job_meter[i] for i in third], [meter_ids[0]])
        finally:
            with self.registry.cursor() as cr:
                cr.execute("DELETE FROM smartpm_meter_job WHERE meter_id IN %s", (meter_ids,))
                cr.execute("DELETE FROM smartpm_meter WHERE id IN %s", (meter_ids,))
