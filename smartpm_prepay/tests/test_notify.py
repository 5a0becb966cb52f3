"""Issue 18 §4-§6: owners and tenants told at once, once; clock synchronisation and drift."""

import json
import re

from psycopg2 import IntegrityError

from odoo.addons.sms.tests.common import SMSCommon
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from ..services import engine, notify
from .test_vending import VendingCase

COVER_OPEN = {"log": "fraud", "code": 40, "time": "2026-11-30T08:00:00Z"}


class NotifyCase(SMSCommon, VendingCase):
    """A meter of a tenant, an owner told of opened covers live, by e-mail and by SMS."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.owner = new_test_user(
            cls.env,
            "t_owner_notify",
            groups="smartpm_prepay.group_manager",
            email="owner@example.com",
            company_id=cls.company.id,
        )
        cls.owner.partner_id.mobile = "+32456010203"
        cls.rule = cls.env["smartpm.alarm.notify.rule"].create(
            {
                "company_id": cls.company.id,
                "alarm_type": "cover_open",
                "user_ids": [(6, 0, cls.owner.ids)],
                "notify_live": True,
                "notify_email": True,
                "notify_sms": True,
            }
        )
        cls.tenant.mobile = "+32456040506"

    def _ingest(self, *events, meter=None):
        """A bridge reports meter events (read from the log or pushed) for a meter whose job
        it holds."""
        meter = meter or self.meter
        job = engine.create(self.Job, [{"meter_id": meter.id, "job_type": "ping"}])
        self._claim(job)
        self.Job.ingest("b1", [], [dict(e, serial_number=meter.serial_number) for e in events])
        self.Job.complete(job.id, "b1", {})
        self.env.invalidate_all()

    def _bus_to(self, partner):
        self.env.cr.precommit.run()  # bus.bus rows are written at commit
        channel = json.dumps([self.env.cr.dbname, "res.partner", partner.id], separators=(",", ":"))
        notifs = self.env["bus.bus"].sudo().search([("channel", "=", channel)])
        # the live alarm notifications (an activity assigned sends its own bus message)
        return notifs.filtered(lambda n: json.loads(n.message)["type"] == "simple_notification")

    def _mails_to(self, partner):
        # the messages of the templates (an activity assigned sends its own e-mail)
        return (
            self.env["mail.mail"]
            .sudo()
            .search(
                [
                    ("recipient_ids", "in", partner.ids),
                    ("mail_message_id.message_type", "=", "email_outgoing"),
                ]
            )
        )

    def _sms_to(self, partner):
        return self.env["sms.sms"].sudo().search([("partner_id", "=", partner.id)])


@tagged("post_install", "-at_install")
class TestOwnerNotify(NotifyCase):
    def test_alarm_ingested_is_one_live_message_one_mail_one_sms_to_the_owner(self):
        partner = self.owner.partner_id
        with self.mockSMSGateway(), self.mock_mail_gateway():
            self._ingest(COVER_OPEN)
        alarm = self.meter.alarm_ids
        self.assertEqual(alarm.alarm_type, "cover_open")
        bus = self._bus_to(partner)
        self.assertEqual(len(bus), 1)
        message = json.loads(bus.message)
        self.assertEqual(message["type"], "simple_notification")
        self.assertIn("Cover opened", message["payload"]["title"])
        self.assertIn("SELL-1", message["payload"]["message"])
        mail = self.assertMailMail(partner, "outgoing", content="SELL-1")
        self.assertEqual(len(self._mails_to(partner)), 1)
        self.assertIn("Cover opened", mail.subject)
        self.assertSMSOutgoing(
            partner, partner._phone_format(number=partner.mobile), "Cover opened"
        )
        self.assertEqual(len(self._sms_to(partner)), 1)
        self.assertEqual(alarm.notification_count, 3)

    def test_same_event_ingested_again_tells_nobody_again(self):
        partner = self.owner.partner_id
        with self.mockSMSGateway(), self.mock_mail_gateway():
            self._ingest(COVER_OPEN)
            # pushed first, read from the event log later (or read twice): the same event
            self._ingest(COVER_OPEN)
            job = self.meter._enqueue_job("read_events", {"since": None})
            self._claim(job)
            self.Job.complete(job.id, "b1", {"events": [COVER_OPEN]})
            # a later call of the notification itself (a retry) changes nothing either
            notify.alarms_created(self.meter.alarm_ids)
        self.assertEqual(len(self.meter.alarm_ids), 1)
        self.assertEqual(len(self._bus_to(partner)), 1)
        self.assertEqual(len(self._mails_to(partner)), 1)
        self.assertEqual(len(self._sms_to(partner)), 1)

    def test_rule_channels_are_respected(self):
        self.rule.write({"notify_live": False, "notify_sms": False})
        partner = self.owner.partner_id
        with self.mockSMSGateway(), self.mock_mail_gateway():
            self._ingest(COVER_OPEN)
        self.assertFalse(self._bus_to(partner))
        self.assertFalse(self._sms_to(partner))
        self.assertEqual(len(self._mails_to(partner)), 1)

    def test_alarm_type_without_rule_is_not_sent(self):
        partner = self.owner.partner_id
        with self.mockSMSGateway(), self.mock_mail_gateway():
            self._ingest({"log": "fraud", "code": 92, "time": "2026-11-30T08:00:00Z"})
        self.assertEqual(self.meter.alarm_ids.alarm_type, "reverse_connection")
        self.assertFalse(self._bus_to(partner) | self._bus_to(self.tenant))
        self.assertFalse(self._mails_to(partner))
        self.assertFalse(self._sms_to(partner))

    def test_rule_without_users_tells_the_property_manager(self):
        manager = new_test_user(
            self.env, "t_pm_notify", groups="smartpm_prepay.group_operator", email="pm@example.com"
        )
        self.site.manager_id = manager
        self.rule.user_ids = False
        with self.mockSMSGateway(), self.mock_mail_gateway():
            self._ingest(COVER_OPEN)
        self.assertEqual(len(self._bus_to(manager.partner_id)), 1)
        self.assertEqual(len(self._mails_to(manager.partner_id)), 1)
        self.assertFalse(self._mails_to(self.owner.partner_id))
        # no phone number: the SMS is not sent, and the trail says why
        log = self.env["smartpm.notification.log"].search(
            [("partner_id", "=", manager.partner_id.id), ("channel", "=", "sms")]
        )
        self.assertEqual(
            (log.state, log.note), ("skipped", "the recipient has no mobile or phone number")
        )

    def test_user_of_another_company_is_not_told(self):
        self.owner.write(
            {"company_ids": [(6, 0, self.company_2.ids)], "company_id": self.company_2.id}
        )
        with self.mockSMSGateway(), self.mock_mail_gateway():
            self._ingest(COVER_OPEN)
        self.assertFalse(self._bus_to(self.owner.partner_id))
        self.assertFalse(self._mails_to(self.owner.partner_id))

    def test_alarm_created_by_odoo_itself_is_told_too(self):
        """Not only meter events: an alarm of analysis (comm lost, clock drift...)."""
        self.rule.alarm_type = "comm_lost"
        with self.mockSMSGateway(), self.mock_mail_gateway():
            self.env["smartpm.alarm"].create(
                {
                    "meter_id": self.meter.id,
                    "alarm_type": "comm_lost",
                    "meter_time": "2026-11-30 09:00:00",
                }
            )
        self.assertEqual(len(self._bus_to(self.owner.partner_id)), 1)
        self.assertEqual(len(self._sms_to(self.owner.partner_id)), 1)

    # ------------------------------------------------------------ access
    def test_cashier_cannot_change_the_notification_configuration(self):
        cashier = self.cashier
        Rule = self.env["smartpm.alarm.notify.rule"].with_user(cashier)
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            Rule.browse(self.rule.id).write({"user_ids": [(6, 0, cashier.ids)]})
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            Rule.create({"alarm_type": "reverse_connection", "user_ids": [(6, 0, cashier.ids)]})
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            Rule.browse(self.rule.id).unlink()
        self.assertEqual(self.rule.user_ids, self.owner)
        self.assertEqual(self.env["smartpm.alarm.notify.rule"].search_count([]), 1)
        # nor the operator; the owner may
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            self.env["smartpm.alarm.notify.rule"].with_user(self.operator).browse(
                self.rule.id
            ).write({"notify_sms": False})
        self.rule.with_user(self.owner).write({"notify_sms": False})
        self.assertFalse(self.rule.notify_sms)

    def test_nobody_writes_the_notification_trail(self):
        with self.mockSMSGateway(), self.mock_mail_gateway():
            self._ingest(COVER_OPEN)
        log = self.env["smartpm.notification.log"].search([], limit=1)
        for user in (self.owner, self.operator, self.cashier):
            with self.assertRaises(AccessError), mute_logger("odoo.models"):
                log.with_user(user).write({"event_key": "forged"})
            with self.assertRaises(AccessError), mute_logger("odoo.models"):
                log.with_user(user).unlink()
        self.assertTrue(log.event_key.startswith("alarm:"))

    def test_one_rule_per_type_and_company(self):
        with self.assertRaises(IntegrityError), mute_logger("odoo.sql_db"):
            with self.env.cr.savepoint():
                self.env["smartpm.alarm.notify.rule"].create(
                    {"company_id": self.company.id, "alarm_type": "cover_open"}
                )


@tagged("post_install", "-at_install")
class TestTenantNotify(NotifyCase):
    def _prefs(self, email, sms):
        self.tenant.write({"smartpm_notify_email": email, "smartpm_notify_sms": sms})

    def test_tenant_preferences_are_respected_per_channel(self):
        low = {"log": "standard", "code": 64}
        cases = [
            (True, False, 1, 0, "2026-11-30T01:00:00Z"),
            (False, True, 0, 1, "2026-11-30T02:00:00Z"),
            (True, True, 1, 1, "2026-11-30T03:00:00Z"),
            (False, False, 0, 0, "2026-11-30T04:00:00Z"),
        ]
        for email, sms, mails, texts, time in cases:
            with self.subTest(email=email, sms=sms):
                self._prefs(email, sms)
                before_mail = len(self._mails_to(self.tenant))
                before_sms = len(self._sms_to(self.tenant))
                with self.mockSMSGateway(), self.mock_mail_gateway():
                    self._ingest(dict(low, time=time))
                self.assertEqual(len(self._mails_to(self.tenant)) - before_mail, mails)
                self.assertEqual(len(self._sms_to(self.tenant)) - before_sms, texts)
                if texts:
                    self.assertSMSOutgoing(
                        self.tenant,
                        self.tenant._phone_format(number=self.tenant.mobile),
                        "credit is low",
                    )

    def test_trip_and_zero_credit_are_told_to_the_tenant(self):
        self._prefs(True, True)
        with self.mockSMSGateway(), self.mock_mail_gateway():
            self._ingest(
                {"log": "standard", "code": 65, "time": "2026-11-30T05:00:00Z"},
                {"log": "standard", "code": 59, "time": "2026-11-30T05:00:01Z"},
            )
        subjects = sorted(self._mails_to(self.tenant).mapped("subject"))
        self.assertEqual(len(subjects), 2)
        self.assertIn("exhausted", subjects[0])
        self.assertIn("power was cut", subjects[1])
        self.assertEqual(len(self._sms_to(self.tenant)), 2)

    def test_purchase_delivered_is_told_once_with_kwh_and_new_balance(self):
        self._prefs(True, True)
        with self.mockSMSGateway(), self.mock_mail_gateway():
            purchase = self._vend(10.0)
            self._deliver(purchase, credit_kwh=52.5)
            self.assertEqual(purchase.state, "delivered")
            # reported again: refused by the engine, and told nobody again
            with self.assertRaises(UserError), mute_logger("odoo.sql_db"):
                self.Job.complete(
                    purchase.job_id.id,
                    "b1",
                    {"transfer_number": purchase.transfer_number, "credit_kwh": 52.5},
                )
            purchase._on_delivered({"credit_kwh": 52.5})
            notify.purchase_delivered(purchase)
        mail = self._mails_to(self.tenant)
        self.assertEqual(len(mail), 1)
        self.assertIn("40.0 kWh", mail.subject)
        self.assertIn("52.5", mail.body_html)
        sms = self._sms_to(self.tenant)
        self.assertEqual(len(sms), 1)
        self.assertIn("40.0 kWh added", sms.body)
        self.assertIn("New balance: 52.5 kWh", sms.body)

    def test_reconnection_is_told_once(self):
        self._prefs(False, True)
        engine.as_engine(self.meter).relay_state = "disconnected"
        with self.mockSMSGateway(), self.mock_mail_gateway():
            job = self.meter._enqueue_job("reconnect", {})
            self._claim(job)
            self.Job.complete(job.id, "b1", {"relay": "connected", "credit_kwh": 12.0})
            # a ping later says connected again: nothing changed, nothing told
            ping = self.meter._enqueue_job("ping", {})
            self._claim(ping)
            self.Job.complete(ping.id, "b1", {"relay": "connected", "credit_kwh": 12.0})
        sms = self._sms_to(self.tenant)
        self.assertEqual(len(sms), 1)
        self.assertIn("Power back on", sms.body)

    def test_archived_template_is_not_sent(self):
        self._prefs(True, False)
        self.env.ref("smartpm_prepay.mail_template_low_credit").active = False
        with self.mockSMSGateway(), self.mock_mail_gateway():
            self._ingest({"log": "standard", "code": 64, "time": "2026-11-30T06:00:00Z"})
        self.assertFalse(self._mails_to(self.tenant))


@tagged("post_install", "-at_install")
class TestNotifyPortal(NotifyCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.portal_user = new_test_user(
            cls.env,
            "t_tenant_notify",
            groups="base.group_portal",
            partner_id=cls.tenant.id,
            password="t_tenant_notify-pw-1",
        )
        cls.other = cls._tenant("Other", email="other@example.com", mobile="+32456070809")

    def _page(self):
        self.authenticate("t_tenant_notify", "t_tenant_notify-pw-1")
        page = self.url_open("/my/notifications")
        self.assertEqual(page.status_code, 200)
        return page, re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)

    def test_tenant_chooses_sms_in_the_portal(self):
        page, token = self._page()
        self.assertIn("How we tell you", page.text)
        response = self.url_open(
            "/my/notifications", data={"csrf_token": token, "smartpm_notify_sms": "1"}
        )
        self.assertEqual(response.status_code, 200)
        self.assertIn("preferences are saved", response.text)
        self.assertEqual(
            (self.tenant.smartpm_notify_email, self.tenant.smartpm_notify_sms), (False, True)
        )

    def test_sms_without_a_phone_number_is_refused(self):
        self.tenant.write({"mobile": False, "phone": False})
        _page, token = self._page()
        response = self.url_open(
            "/my/notifications", data={"csrf_token": token, "smartpm_notify_sms": "1"}
        )
        self.assertIn("Add your phone number", response.text)
        self.assertEqual(
            (self.tenant.smartpm_notify_email, self.tenant.smartpm_notify_sms), (True, False)
        )

    def test_tenant_cannot_change_another_tenants_preferences(self):
        _page, token = self._page()
        # a partner id in the form is ignored: the session's tenant is the one written
        self.url_open(
            "/my/notifications",
            data={"csrf_token": token, "partner_id": str(self.other.id), "smartpm_notify_sms": "1"},
        )
        self.assertEqual(
            (self.other.smartpm_notify_email, self.other.smartpm_notify_sms), (True, False)
        )
        # nor over RPC
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            self.other.with_user(self.portal_user).write({"smartpm_notify_email": False})
        self.assertTrue(self.other.smartpm_notify_email)

    def test_post_without_csrf_token_is_refused(self):
        self._page()
        with mute_logger("odoo.http"):
            response = self.url_open("/my/notifications", data={"smartpm_notify_sms": "1"})
        self.assertEqual(response.status_code, 400)
        self.assertFalse(self.tenant.smartpm_notify_sms)


@tagged("post_install", "-at_install")
class TestClockSync(VendingCase):
    def _sync(self, drift_s, meter=None):
        meter = meter or self.meter
        meter.action_sync_clock()
        job = meter.job_ids.filtered(lambda j: j.job_type == "sync_clock" and j.state == "pending")
        self._claim(job)
        self.Job.complete(
            job.id,
            "b1",
            {
                "meter_time_before": "2026-11-30T10:01:35Z",
                "meter_time": "2026-11-30T10:00:00Z",
                "clock_drift_s": drift_s,
            },
        )
        self.env.invalidate_all()
        return meter.alarm_ids.filtered(lambda a: a.alarm_type == "clock_drift")

    def test_drift_beyond_the_setting_raises_an_alarm(self):
        self.company.smartpm_clock_drift_max_s = 60
        alarm = self._sync(95.0)
        self.assertEqual(len(alarm), 1)
        self.assertEqual(alarm.clock_drift_s, 95.0)
        self.assertIn("95.0 s ahead", alarm.description)
        self.assertEqual(str(alarm.meter_time), "2026-11-30 10:00:00")

    def test_drift_within_the_setting_raises_none(self):
        self.company.smartpm_clock_drift_max_s = 60
        self.assertFalse(self._sync(-59.5))
        self.assertFalse(self._sync(60))
        self.company.smartpm_clock_drift_max_s = 0  # no alarm at all
        self.assertFalse(self._sync(-5000))

    def test_drift_behind_is_an_alarm_too(self):
        self.company.smartpm_clock_drift_max_s = 30
        alarm = self._sync(-3600.0)
        self.assertIn("3600.0 s behind", alarm.description)

    def test_sync_a_selection_and_the_schedule(self):
        other = self._meter("SELL-2", state="active")
        (self.meter | other).action_sync_clock()
        jobs = (self.meter | other).job_ids.filtered(lambda j: j.job_type == "sync_clock")
        self.assertEqual(len(jobs), 2)
        # the cron: one job per active meter and interval, not two in the same day
        self.company.smartpm_clock_sync_days = 1
        queued = self.env["smartpm.meter"]._cron_queue_clock_syncs()
        self.assertEqual(
            set(queued.meter_id.ids) & {self.meter.id, other.id}, {self.meter.id, other.id}
        )
        self.assertTrue(all(j.payload.get("schedule") == "clock" for j in queued))
        again = self.env["smartpm.meter"]._cron_queue_clock_syncs()
        self.assertFalse(again & queued)
        self.assertFalse(again.filtered(lambda j: j.meter_id in self.meter | other))
        self.company.smartpm_clock_sync_days = 0
        self.assertFalse(
            self.env["smartpm.meter"]
            ._cron_queue_clock_syncs()
            .filtered(lambda j: j.company_id == self.company)
        )

    def test_cashier_cannot_sync_clocks(self):
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            self.meter.with_user(self.cashier).action_sync_clock()
        self.assertFalse(self.meter.job_ids.filtered(lambda j: j.job_type == "sync_clock"))

    def test_decommissioned_meter_takes_no_sync(self):
        engine.as_engine(self.meter).state = "decommissioned"
        with self.assertRaises(UserError):
            self.meter.action_sync_clock()
