from odoo.tests import tagged

from ..services import engine
from .test_vending import VendingCase


@tagged("post_install", "-at_install")
class TestArrears(VendingCase):
    def _event(self, code, time="2026-11-25T08:00:00Z", serial="SELL-1"):
        # a bridge reports events only for the meters of the jobs it holds (as when it reads
        # the meter's event log): give the meter a job and let bridge b1 claim it
        meter = self.env["smartpm.meter"].search([("serial_number", "=", serial)])
        engine.create(self.Job, [{"meter_id": meter.id, "job_type": "ping"}])
        self.Job.claim("b1", 50, 60)
        self.Job.ingest(
            "b1", [], [{"serial_number": serial, "log": "standard", "code": code, "time": time}]
        )

    def _mails(self, alarm):
        return self.env["mail.mail"].search(
            [("model", "=", "smartpm.alarm"), ("res_id", "in", alarm.ids)]
        )

    def _jobs(self, meter, job_type):
        return meter.job_ids.filtered(lambda j: j.job_type == job_type)

    # ------------------------------------------------------------------ e-mails
    def test_low_credit_event_emails_the_tenant(self):
        self._event(64)
        alarm = self.meter.alarm_ids
        self.assertEqual(alarm.alarm_type, "low_credit")
        mail = self._mails(alarm)
        self.assertEqual(len(mail), 1)
        self.assertEqual(mail.recipient_ids, self.tenant)
        self.assertIn("low", mail.subject)

    def test_zero_credit_event_emails_the_tenant(self):
        self._event(65)
        mail = self._mails(self.meter.alarm_ids)
        self.assertIn("exhausted", mail.subject)
        self.assertEqual(mail.recipient_ids, self.tenant)

    def test_same_event_twice_emails_once(self):
        self._event(64)
        self._event(64)
        self.assertEqual(len(self._mails(self.meter.alarm_ids)), 1)

    def test_other_alarms_and_tenants_without_email_get_no_mail(self):
        quiet = self._tenant("Quiet")
        self._meter("SELL-Q", tenant_id=quiet.id, state="active")
        self._event(64, serial="SELL-Q")
        self._event(80)  # reconnected by itself: told on the meter (reconnection), not here
        alarms = self.env["smartpm.alarm"].search(
            [("meter_id.serial_number", "in", ("SELL-Q", "SELL-1"))]
        )
        self.assertEqual(len(alarms), 2)
        self.assertFalse(self._mails(alarms))

    def test_credit_trip_emails_the_tenant(self):
        """Issue 18 §5: the tenant is told of a trip (it was for the operators only)."""
        self._event(59)
        mail = self._mails(self.meter.alarm_ids)
        self.assertEqual(mail.recipient_ids, self.tenant)
        self.assertIn("power was cut", mail.subject)

    # ------------------------------------------------------------------ thresholds
    def test_meter_follows_its_tariff_thresholds_unless_overridden(self):
        self.tariff.write({"low_credit_kwh": 8.0, "trip_kwh": 1.0})
        self.assertEqual(
            (self.meter.effective_low_credit_kwh, self.meter.effective_trip_kwh), (8.0, 1.0)
        )
        self.meter.write({"threshold_override": True, "low_credit_kwh": 3.0, "trip_kwh": 0.5})
        self.assertEqual(
            (self.meter.effective_low_credit_kwh, self.meter.effective_trip_kwh), (3.0, 0.5)
        )

    def test_tariff_threshold_change_is_pushed_to_its_meters(self):
        own = self._meter(
            "SELL-O",
            tenant_id=self.tenant.id,
            state="active",
            tariff_id=self.tariff.id,
            threshold_override=True,
        )
        self.tariff.write({"low_credit_kwh": 10.0, "trip_kwh": 2.0})
        job = self._jobs(self.meter, "set_thresholds")
        self.assertEqual(job.payload, {"low_credit_kwh": 10.0, "trip_kwh": 2.0})
        self.assertFalse(self._jobs(own, "set_thresholds"))

    def test_tenant_default_tariff_thresholds_are_pushed_to_meters_without_tariff(self):
        tenant = self._tenant("Yaw", smartpm_tariff_id=self.tariff.id)
        meter = self._meter("SELL-Y", tenant_id=tenant.id, state="active")
        self.tariff.write({"low_credit_kwh": 9.0})
        self.assertEqual(
            self._jobs(meter, "set_thresholds").payload, {"low_credit_kwh": 9.0, "trip_kwh": 0.0}
        )

    def test_meter_override_is_pushed_and_supersedes_the_pending_one(self):
        meter = self.meter.with_user(self.operator)
        meter.write({"threshold_override": True, "low_credit_kwh": 6.0})
        meter.write({"low_credit_kwh": 7.0})
        jobs = self._jobs(self.meter, "set_thresholds").sorted("id")
        self.assertEqual(jobs.mapped("state"), ["cancelled", "pending"])
        self.assertEqual(jobs[-1].payload, {"low_credit_kwh": 7.0, "trip_kwh": 0.0})

    def test_unchanged_thresholds_are_not_pushed(self):
        self.meter.write({"note": "x", "low_credit_kwh": self.meter.low_credit_kwh})
        self.assertFalse(self._jobs(self.meter, "set_thresholds"))

    # ------------------------------------------------------------------ load control
    def test_tenant_load_limit_is_set_and_pushed_on_every_meter(self):
        second = self._meter("SELL-2", tenant_id=self.tenant.id, state="active")
        self.tenant.with_user(self.operator).write({"load_limit_w": 2300})
        for meter in (self.meter, second):
            self.assertEqual(meter.load_limit_w, 2300)
            self.assertEqual(self._jobs(meter, "set_load_limit").payload, {"load_limit_w": 2300})

    def test_meter_moved_to_a_tenant_with_a_load_limit_takes_it(self):
        limited = self._tenant("Limited", load_limit_w=1200)
        self.meter.tenant_id = limited
        self.assertEqual(self.meter.load_limit_w, 1200)
        self.assertEqual(self._jobs(self.meter, "set_load_limit").payload, {"load_limit_w": 1200})
        self.assertEqual(self._meter("SELL-NEW", tenant_id=limited.id).load_limit_w, 1200)

    def test_meter_load_limit_is_pushed(self):
        self.meter.with_user(self.operator).load_limit_w = 1500
        job = self._jobs(self.meter, "set_load_limit")
        self.assertEqual(job.payload, {"load_limit_w": 1500})
        self.assertEqual(job.state, "pending")

    def test_meter_out_of_service_gets_no_settings_job(self):
        draft = self._meter("SELL-DR", tenant_id=self.tenant.id)
        draft.load_limit_w = 1000
        self.assertFalse(draft.job_ids)

    def test_load_trip_comes_back_as_an_alarm(self):
        self._event(60)
        self.assertEqual(self.meter.alarm_ids.alarm_type, "load_trip")
