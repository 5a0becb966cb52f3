"""Load-trip recovery (issue 17 §3): settings from the tariff or the meter pushed once per
change, the meter's events as alarms and as its relay/lockout state, the operator's
reconnect ending a lockout."""

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from ..services import engine
from .test_vending import VendingCase


@tagged("post_install", "-at_install")
class TestLoadRecovery(VendingCase):
    def _jobs(self, meter, job_type="set_load_recovery"):
        return meter.job_ids.filtered(lambda j: j.job_type == job_type).sorted("id")

    def _events(self, *events, serial="SELL-1"):
        """The bridge reads the meter's event log: (code, time) pairs."""
        meter = self.env["smartpm.meter"].search([("serial_number", "=", serial)])
        ping = engine.create(self.Job, [{"meter_id": meter.id, "job_type": "ping"}])
        self._claim(ping)
        self.Job.ingest(
            "b1",
            [],
            [
                {"serial_number": serial, "log": "standard", "code": code, "time": time}
                for code, time in events
            ],
        )
        self.Job.complete(ping.id, "b1", {})  # the meter takes its next job

    def _alarms(self, alarm_type):
        return self.meter.alarm_ids.filtered(lambda a: a.alarm_type == alarm_type)

    # ------------------------------------------------------------------ settings
    def test_tariff_recovery_is_pushed_once_to_its_meters(self):
        own = self._meter("SELL-OWN", tenant_id=self.tenant.id, state="active")
        own.write({"tariff_id": self.tariff.id, "load_recovery_override": True})
        self.assertFalse(self._jobs(own), "same settings in force: nothing to push")
        self.tariff.write({"load_reconnect_delay_s": 30, "load_reconnect_attempts": 3})
        self.tariff.write({"load_reconnect_attempts": 3})  # unchanged: no second job
        job = self._jobs(self.meter)
        self.assertEqual(len(job), 1)
        self.assertEqual(job.state, "pending")
        self.assertEqual(job.payload, {"reconnect_delay_s": 30, "reconnect_attempts_per_hour": 3})
        self.assertEqual(
            (
                self.meter.effective_load_reconnect_delay_s,
                self.meter.effective_load_reconnect_attempts,
            ),
            (30, 3),
        )
        self.assertFalse(self._jobs(own), "a meter with its own settings keeps them")

    def test_meter_override_is_pushed_and_supersedes_the_pending_one(self):
        meter = self.meter.with_user(self.operator)
        meter.write(
            {
                "load_recovery_override": True,
                "load_reconnect_attempts": 2,
                "load_reconnect_delay_s": 20,
            }
        )
        meter.write({"load_reconnect_delay_s": 40})
        jobs = self._jobs(self.meter)
        self.assertEqual(jobs.mapped("state"), ["cancelled", "pending"])
        self.assertEqual(
            jobs[-1].payload, {"reconnect_delay_s": 40, "reconnect_attempts_per_hour": 2}
        )

    def test_out_of_range_settings_are_refused_naming_the_record(self):
        with self.assertRaisesRegex(ValidationError, "SELL-1"):
            self.meter.write({"load_reconnect_attempts": 256})
        with self.assertRaisesRegex(ValidationError, "Home"):
            self.tariff.write({"load_reconnect_delay_s": -1})
        self.assertFalse(self._jobs(self.meter))

    def test_settings_job_result_reads_back_the_meter_state(self):
        self.tariff.write({"load_reconnect_attempts": 1})
        job = self._jobs(self.meter)
        self._claim(job)
        self.Job.complete(
            job.id,
            "b1",
            {
                "reconnect_delay_s": 60,
                "reconnect_attempts_per_hour": 1,
                "control_mode": 5,
                "load_recovery": "lockout",
                "relay": "disconnected",
            },
        )
        self.assertEqual(job.state, "done")
        self.assertEqual(self.meter.load_trip_state, "lockout")
        self.assertEqual(self.meter.relay_state, "disconnected")

    def test_operator_cannot_queue_a_settings_job_over_rpc(self):
        before = self.env["smartpm.meter.job"].search_count([])
        with self.assertRaises(UserError):
            self.env["smartpm.meter.job"].with_user(self.operator).create(
                {
                    "meter_id": self.meter.id,
                    "job_type": "set_load_recovery",
                    "payload": {"reconnect_delay_s": 0, "reconnect_attempts_per_hour": 255},
                }
            )
        self.assertEqual(self.env["smartpm.meter.job"].search_count([]), before)

    # ------------------------------------------------------------------ events
    def test_each_recovery_step_is_an_alarm_and_moves_the_meter_state(self):
        self._events((60, "2026-11-25T08:00:00Z"))
        self.assertEqual(self.meter.load_trip_state, "tripped")
        self.assertEqual(self.meter.relay_state, "disconnected")
        self._events((80, "2026-11-25T08:00:30Z"))
        self.assertEqual(self.meter.load_trip_state, "normal")
        self.assertEqual(self.meter.relay_state, "connected")
        self._events((60, "2026-11-25T08:00:31Z"), (81, "2026-11-25T08:00:31Z"))
        self.assertEqual(self.meter.load_trip_state, "lockout")
        self.assertEqual(self.meter.relay_state, "disconnected")
        trips = self._alarms("load_trip").sorted("meter_time")
        self.assertEqual(trips.mapped("state"), ["cleared", "new"], "the first one recovered")
        reconnected, lockout = self._alarms("load_reconnected"), self._alarms("load_lockout")
        self.assertEqual(len(reconnected), 1)
        self.assertEqual(len(lockout), 1)
        self.assertEqual(lockout.event_code, 81)
        self.assertIn("Reconnect", lockout.description)
        # the lockout needs someone; an automatic reconnection does not
        self.assertTrue(lockout.activity_ids or not lockout._get_manager_user())
        self.assertFalse(reconnected.activity_ids)

    def test_a_trip_in_the_second_of_a_reconnection_stays_open(self):
        # still over the limit: each reconnection trips again in the same second, read at once
        t0, t1, t2 = (f"2026-11-25T08:00:0{i}Z" for i in range(3))
        self._events((60, t0), (80, t1), (60, t1), (80, t2), (60, t2))
        trips = self._alarms("load_trip").sorted("meter_time")
        self.assertEqual(trips.mapped("state"), ["cleared", "cleared", "new"])
        self.assertEqual(self.meter.load_trip_state, "tripped")
        self.assertEqual(self.meter.relay_state, "disconnected")

    def test_an_event_read_late_does_not_undo_a_newer_state(self):
        self._events((60, "2026-11-25T08:00:00Z"), (80, "2026-11-25T08:01:00Z"))
        self._events((81, "2026-11-25T07:00:00Z"))  # an old lockout, read late
        self.assertEqual(self.meter.load_trip_state, "normal")
        self.assertEqual(len(self._alarms("load_lockout")), 1, "still stored as an alarm")

    def test_the_same_events_twice_change_nothing_more(self):
        events = ((60, "2026-11-25T08:00:00Z"), (81, "2026-11-25T08:00:00Z"))
        self._events(*events)
        self._events(*events)
        self.assertEqual(len(self._alarms("load_lockout")), 1)
        self.assertEqual(len(self._alarms("load_trip")), 1)

    def test_operator_reconnect_ends_the_lockout_and_clears_its_alarm(self):
        self._events((60, "2026-11-25T08:00:00Z"), (81, "2026-11-25T08:00:00Z"))
        self.meter.with_user(self.operator).action_reconnect()
        job = self._jobs(self.meter, "reconnect")
        self._claim(job)
        self.Job.complete(job.id, "b1", {"relay": "connected", "control_state": 1})
        self.assertEqual(self.meter.load_trip_state, "normal")
        self.assertEqual(self.meter.relay_state, "connected")
        self.assertEqual(self._alarms("load_lockout").state, "cleared")
        self.assertEqual(self._alarms("load_trip").state, "cleared")

    def test_reconnect_that_trips_again_leaves_the_lockout_alarm_open(self):
        self._events((60, "2026-11-25T08:00:00Z"), (81, "2026-11-25T08:00:00Z"))
        self.meter.with_user(self.operator).action_reconnect()
        job = self._jobs(self.meter, "reconnect")
        self._claim(job)
        self.Job.complete(job.id, "b1", {"relay": "disconnected", "control_state": 2})
        self.assertEqual(self._alarms("load_trip").state, "new")
        self.assertEqual(self._alarms("load_lockout").state, "new")
