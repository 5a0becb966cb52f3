from datetime import date, timedelta

from lxml import etree

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import new_test_user, tagged
from odoo.tools.safe_eval import safe_eval

from ..services import ingest
from .stats_common import StatsCase


@tagged("post_install", "-at_install")
class TestAlarmWorkflow(StatsCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager_user = new_test_user(
            cls.env, "t_pm_alarm", groups="smartpm_prepay.group_operator"
        )
        cls.site.manager_id = cls.manager_user
        cls.meter = cls._meter("ALM-1", state="active", tenant_id=cls._tenant("Al").id)

    def _events(self, events):
        job = self.meter._enqueue_job("read_events", {"since": None})
        self._complete(job, {"events": events})
        return self.env["smartpm.alarm"].search([("meter_id", "=", self.meter.id)])

    def test_meter_events_become_alarms_with_a_todo_for_the_manager(self):
        alarms = self._events(
            [
                {"log": "fraud", "code": 40, "time": "2026-11-20T08:00:00Z"},
                {"log": "fraud", "code": 92, "time": "2026-11-20T08:05:00Z"},
                {"log": "standard", "code": 60, "time": "2026-11-20T08:06:00Z"},
                {"log": "standard", "code": 1, "time": "2026-11-20T08:07:00Z"},  # power down
            ]
        )
        self.assertEqual(
            set(alarms.mapped("alarm_type")), {"cover_open", "reverse_connection", "load_trip"}
        )
        cover = alarms.filtered(lambda a: a.alarm_type == "cover_open")
        self.assertEqual(cover.state, "new")
        self.assertEqual(cover.transformer_id, self.transformer)
        self.assertEqual(cover.activity_ids.user_id, self.manager_user)

    def test_same_event_twice_is_one_alarm(self):
        event = {"log": "fraud", "code": 91, "time": "2026-11-20T08:00:00Z"}
        self._events([event])
        alarms = self._events([event])
        self.assertEqual(len(alarms), 1)
        self.assertEqual(alarms.alarm_type, "over_current")

    def test_refused_credit_tokens_become_fraud_alarms_once(self):
        """Fraud events 93 (token MAC invalid) and 94 (another meter's token) are alarms the
        manager must look at; the same batch sent again adds nothing."""
        batch = [
            {"log": "fraud", "code": 93, "time": "2026-11-22T08:00:00Z"},
            {"log": "fraud", "code": 94, "time": "2026-11-22T08:01:00Z"},
            {"log": "standard", "code": 69, "time": "2026-11-22T08:02:00Z"},  # replay: routine
        ]
        alarms = self._events(batch)
        self.assertEqual(sorted(alarms.mapped("alarm_type")), ["token_forged", "token_other_meter"])
        forged = alarms.filtered(lambda a: a.alarm_type == "token_forged")
        self.assertEqual(forged.event_code, 93)
        self.assertEqual(forged.display_name, "Forged credit token - ALM-1")
        self.assertIn("not signed with its token key", forged.description)
        self.assertEqual(forged.activity_ids.user_id, self.manager_user)
        self.assertIn("ALM-1", forged.activity_ids.summary)
        other = alarms - forged
        self.assertEqual(other.display_name, "Credit token of another meter - ALM-1")
        self.assertEqual(other.activity_ids.user_id, self.manager_user)

        again = self._events(batch)
        self.assertEqual(again, alarms)
        self.assertEqual(len(again.activity_ids), 2)
        # the alarm list's "Tampering and theft" filter shows them
        arch = etree.fromstring(self.env.ref("smartpm_prepay.view_alarm_search").arch)
        theft = safe_eval(arch.xpath("//filter[@name='filter_theft']")[0].get("domain"))
        found = self.env["smartpm.alarm"].search([("meter_id", "=", self.meter.id)] + theft)
        self.assertEqual(found, alarms)

    def test_token_of_a_cancelled_transfer_is_a_fraud_alarm(self):
        """Fraud event 95: the meter refused the token of a transfer it cancelled when the
        sale was reversed (the money went back): a replay, or a bridge past its lease."""
        alarms = self._events([{"log": "fraud", "code": 95, "time": "2026-11-22T09:00:00Z"}])
        self.assertEqual(alarms.alarm_type, "token_cancelled")
        self.assertIn("reversed", alarms.description)
        self.assertEqual(alarms.activity_ids.user_id, self.manager_user)
        # the alarm list's "Tampering and theft" filter shows it
        arch = etree.fromstring(self.env.ref("smartpm_prepay.view_alarm_search").arch)
        theft = safe_eval(arch.xpath("//filter[@name='filter_theft']")[0].get("domain"))
        found = self.env["smartpm.alarm"].search([("meter_id", "=", self.meter.id)] + theft)
        self.assertIn(alarms, found)

    def test_low_credit_gets_no_todo(self):
        alarms = self._events([{"log": "standard", "code": 64, "time": "2026-11-20T08:00:00Z"}])
        self.assertEqual(alarms.alarm_type, "low_credit")
        self.assertFalse(alarms.activity_ids)

    def test_company_recipient_when_the_property_has_no_manager(self):
        self.site.manager_id = False
        self.env.company.smartpm_alarm_user_id = self.operator
        alarms = self._events([{"log": "fraud", "code": 40, "time": "2026-11-21T08:00:00Z"}])
        self.assertEqual(alarms.activity_ids.user_id, self.operator)

    def test_acknowledge_then_confirm_theft_closes_the_todo(self):
        alarm = self._events([{"log": "fraud", "code": 40, "time": "2026-11-20T08:00:00Z"}])
        alarm = alarm.with_user(self.operator)
        alarm.action_acknowledge()
        self.assertEqual(alarm.state, "acknowledged")
        alarm.action_confirm_theft()
        self.assertEqual(alarm.state, "confirmed")
        self.assertFalse(alarm.activity_ids)
        self.assertEqual(alarm.closed_by_id, self.operator)
        self.assertIn("Theft confirmed", self.meter.message_ids[0].body)

    def test_dismiss_from_new(self):
        alarm = self._events([{"log": "fraud", "code": 40, "time": "2026-11-20T08:00:00Z"}])
        alarm.action_dismiss()
        self.assertEqual(alarm.state, "dismissed")
        self.assertFalse(alarm.is_open)

    def test_closed_alarm_cannot_be_acknowledged(self):
        alarm = self._events([{"log": "fraud", "code": 40, "time": "2026-11-20T08:00:00Z"}])
        alarm.action_dismiss()
        with self.assertRaises(UserError):
            alarm.action_acknowledge()
        with self.assertRaises(UserError):
            alarm.action_confirm_theft()
        self.assertEqual(alarm.state, "dismissed")

    def test_cashier_cannot_confirm_theft(self):
        from odoo.exceptions import AccessError

        cashier = new_test_user(self.env, "t_cash_alarm", groups="smartpm_prepay.group_cashier")
        alarm = self._events([{"log": "fraud", "code": 40, "time": "2026-11-20T08:00:00Z"}])
        with self.assertRaises(AccessError):
            alarm.with_user(cashier).action_confirm_theft()
        self.assertEqual(alarm.state, "new")


@tagged("post_install", "-at_install")
class TestCommunicationLost(StatsCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.smartpm_comm_lost_pings = 3
        cls.meter = cls._meter("PING-1", state="active")
        cls.env["smartpm.meter"].search(
            [("id", "!=", cls.meter.id), ("state", "in", ("active", "disconnected"))]
        ).write({"state": "draft"})

    def _ping(self):
        jobs = self.env["smartpm.meter"]._cron_queue_pings()
        self.assertEqual(jobs.meter_id, self.meter)
        return jobs

    def _comm_alarms(self):
        return self.env["smartpm.alarm"].search(
            [("meter_id", "=", self.meter.id), ("alarm_type", "=", "comm_lost")]
        )

    def _next_slot(self):
        # the next cron run is in another ping slot
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE smartpm_meter_job SET idempotency_key = idempotency_key || ':old' || id "
            "WHERE meter_id = %s",
            (self.meter.id,),
        )

    def test_ping_cron_skips_meters_heard_from_recently(self):
        self.meter.sudo().write({"last_seen": fields.Datetime.now()})
        self.assertFalse(self.env["smartpm.meter"]._cron_queue_pings())

    def test_ping_cron_queues_one_ping_per_meter_and_slot(self):
        job = self._ping()
        self.assertEqual(job.job_type, "ping")
        self.assertEqual(job.max_attempts, 1)
        self.assertFalse(self.env["smartpm.meter"]._cron_queue_pings())

    def test_missed_pings_raise_comm_lost_at_the_limit(self):
        for _n in range(2):
            self._fail(self._ping())
            self._next_slot()
        self.assertFalse(self._comm_alarms())
        self.assertEqual(self.meter.missed_ping_count, 2)
        # the alarm text is translated in the caller's language (no "no translation
        # language detected" warning with a stack trace per alarm)
        with self.assertNoLogs("odoo.tools.translate", "WARNING"):
            self._fail(self._ping())
        alarm = self._comm_alarms()
        self.assertEqual(alarm.state, "new")
        self.assertEqual(self.meter.online_state, "offline")
        self._next_slot()
        self._fail(self._ping())
        self.assertEqual(len(self._comm_alarms()), 1, "one open alarm, not one per miss")

    def test_answer_clears_comm_lost(self):
        for _n in range(3):
            self._fail(self._ping())
            self._next_slot()
        alarm = self._comm_alarms()
        self.assertEqual(alarm.state, "new")
        self._complete(
            self._ping(),
            {"meter_time": "2026-11-20T08:00:00Z", "credit_kwh": 3.0, "relay": "connected"},
        )
        self.assertEqual(alarm.state, "cleared")
        self.assertEqual(self.meter.missed_ping_count, 0)
        self.assertEqual(self.meter.online_state, "online")
        self.assertFalse(alarm.activity_ids)


@tagged("post_install", "-at_install")
class TestScheduledReads(StatsCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["smartpm.meter"].search([("state", "in", ("active", "disconnected"))]).write(
            {"state": "draft"}
        )
        cls.meters = cls.env["smartpm.meter"].create(
            [
                {
                    "serial_number": f"SCHED-{i}",
                    "host": "127.0.0.1",
                    "port": 4100,
                    "state": "active",
                }
                for i in range(5)
            ]
        )

    def test_billing_reads_come_in_batches_once_a_day(self):
        Meter = self.env["smartpm.meter"]
        first = Meter._cron_queue_billing_reads(batch_size=3, max_backlog=100)
        second = Meter._cron_queue_billing_reads(batch_size=3, max_backlog=100)
        self.assertEqual(len(first), 3)
        self.assertEqual((first | second).meter_id, self.meters)
        self.assertFalse(Meter._cron_queue_billing_reads(batch_size=3, max_backlog=100))
        self.assertEqual(first[0].payload["schedule"], "billing")

    def test_billing_jobs_inserted_in_bulk_hold_what_create_would_store(self):
        meter = self.meters[0]
        queued = self.env["smartpm.meter"]._cron_queue_billing_reads(batch_size=10, max_backlog=100)
        job = queued.filtered(lambda j: j.meter_id == meter)
        self.assertEqual((job.state, job.attempt_count), ("pending", 0))
        self.assertIn(job.id, self._claim_all(), "a queued billing read is due at once")
        created = self.env["smartpm.meter.job"].create(
            {"meter_id": meter.id, "job_type": "read", "payload": job.payload}
        )
        for name in ("company_id", "max_attempts", "create_uid"):
            self.assertEqual(job[name], created[name], name)
        self.assertEqual(job.idempotency_key, f"billing:{fields.Date.today()}:{meter.id}")
        self.assertEqual(job.priority, 60)
        self.assertLessEqual(job.next_attempt_at, fields.Datetime.now())

    def test_backlog_limit_keeps_the_queue_from_flooding(self):
        Meter = self.env["smartpm.meter"]
        self.assertEqual(len(Meter._cron_queue_billing_reads(batch_size=10, max_backlog=2)), 2)
        self.assertFalse(Meter._cron_queue_billing_reads(batch_size=10, max_backlog=2))

    def test_event_logs_are_read_from_the_last_successful_read_on(self):
        Meter = self.env["smartpm.meter"]
        first = Meter._cron_queue_event_reads(interval_hours=4)
        self.assertEqual(first.meter_id, self.meters)
        self.assertEqual(first[0].payload["since"], None)
        self.assertFalse(Meter._cron_queue_event_reads(interval_hours=4), "one read per slot")
        done = first.filtered(lambda j: j.meter_id == self.meters[0])
        self._complete(done, {"events": []})
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE smartpm_meter_job SET idempotency_key = idempotency_key || ':old'"
            " WHERE job_type = 'read_events'"
        )
        second = Meter._cron_queue_event_reads(interval_hours=4)
        since = ingest.parse_time(
            self.env, second.filtered(lambda j: j.meter_id == self.meters[0]).payload["since"]
        )
        self.assertEqual(since, done.date_claimed - timedelta(minutes=10))

    def test_event_logs_follow_the_company_interval(self):
        Meter = self.env["smartpm.meter"]
        company = self.meters[0].company_id
        company.smartpm_event_interval_min = 1
        first = Meter._cron_queue_event_reads()
        self.assertEqual(first.meter_id, self.meters)
        self.assertIn("events:1:", first[0].idempotency_key)
        self.assertFalse(Meter._cron_queue_event_reads(), "one read per meter per minute")
        other = self.env["res.company"].create({"name": "Slow owner"})
        self.assertEqual(other.smartpm_event_interval_min, 240)

    def test_profile_collection_starts_at_the_last_capture(self):
        meter = self.meters[0]
        ingest.ingest(
            self.env,
            [
                {
                    "meter_id": meter.id,
                    "obis": "1.0.1.8.0.255",
                    "value": 1,
                    "unit": "Wh",
                    "time": fields.Datetime.now() - timedelta(hours=5),
                    "source": "profile",
                }
            ],
            [],
        )
        jobs = self.env["smartpm.meter"]._cron_queue_profile_reads()
        self.assertEqual(jobs.meter_id, self.meters)
        payload = jobs.filtered(lambda j: j.meter_id == meter).payload
        self.assertEqual(payload["objects"][0]["obis"], "1.0.99.1.0.255")
        start = ingest.parse_time(self.env, payload["from"])
        self.assertAlmostEqual((fields.Datetime.now() - start).total_seconds(), 5 * 3600, delta=120)


@tagged("post_install", "-at_install")
class TestEnergyBalance(StatsCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.check = cls._meter("BAL-CHK", state="active")
        cls.tenants = cls._meter("BAL-1", state="active") | cls._meter("BAL-2", state="active")
        cls.transformer.write({"check_meter_id": cls.check.id, "loss_threshold_pct": 5.0})

    def _day(self, check_wh, meter_wh):
        """Readings at 1 and 2 March 00:00 UTC: the energy of 1 March per meter."""
        rows = []
        for meter, wh in [(self.check, check_wh), *zip(self.tenants, meter_wh, strict=True)]:
            rows += [
                {
                    "meter_id": meter.id,
                    "obis": "1.0.1.8.0.255",
                    "value": 100_000,
                    "unit": "Wh",
                    "time": "2026-03-01T00:00:00",
                },
                {
                    "meter_id": meter.id,
                    "obis": "1.0.1.8.0.255",
                    "value": 100_000 + wh,
                    "unit": "Wh",
                    "time": "2026-03-02T00:00:00",
                },
            ]
        ingest.ingest(self.env, rows, [])
        self.env["smartpm.consumption.daily"]._rebuild_days(date(2026, 3, 1), date(2026, 3, 1))
        self.env["smartpm.energy.balance"]._raise_imbalance_alarms(
            date(2026, 3, 1), date(2026, 3, 1)
        )
        return self.env["smartpm.alarm"].search(
            [("alarm_type", "=", "energy_imbalance"), ("transformer_id", "=", self.transformer.id)]
        )

    def test_bypass_under_reporting_raises_imbalance(self):
        # BAL-2 under-reports: 20 kWh went through the transformer, meters saw 14
        alarm = self._day(20_000, [8_000, 6_000])
        self.assertEqual(len(alarm), 1)
        self.assertEqual(alarm.meter_id, self.check)
        self.assertAlmostEqual(alarm.missing_kwh, 6.0)
        self.assertAlmostEqual(alarm.loss_pct, 30.0)
        self.assertEqual(str(alarm.period_start), "2026-03-01 00:00:00")
        self.assertEqual(str(alarm.period_end), "2026-03-02 00:00:00")
        self.assertIn("6.000 kWh missing", alarm.description)

    def test_normal_losses_raise_nothing(self):
        self.assertFalse(self._day(20_000, [10_000, 9_400]))  # 3 % < 5 %

    def test_imbalance_is_raised_once_per_day(self):
        self._day(20_000, [8_000, 6_000])
        self.env["smartpm.energy.balance"]._raise_imbalance_alarms(
            date(2026, 3, 1), date(2026, 3, 1)
        )
        self.assertEqual(
            self.env["smartpm.alarm"].search_count(
                [("alarm_type", "=", "energy_imbalance"), ("meter_id", "=", self.check.id)]
            ),
            1,
        )

    def test_check_meter_is_left_out_of_tenant_statistics(self):
        self._day(20_000, [10_000, 9_400])
        row = self.env["smartpm.consumption.daily"].search([("meter_id", "=", self.check.id)])
        self.assertTrue(row.is_check_meter)
        balance = self.env["smartpm.energy.balance"].search(
            [("transformer_id", "=", self.transformer.id)]
        )
        self.assertAlmostEqual(balance.meters_kwh, 19.4)
        self.assertEqual(balance.meter_count, 2)
