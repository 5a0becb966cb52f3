"""Friendly (non-disconnect) periods (issue 17 §2): the schedule built from the company's
calendar and its public holidays, pushed once per change to every meter, the meter's
deferral as an alarm the tenant hears of, the debt repaid by the next purchase, and who
may change it."""

from datetime import date, datetime, timedelta

from odoo import Command
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from ..services import engine, friendly
from .test_portal import PortalCase
from .test_tou import TouMixin
from .test_vending import VendingCase

TWO_HOURS = timedelta(hours=2)  # the company's UTC offset (Africa/Johannesburg)


@tagged("post_install", "-at_install")
class TestFriendly(VendingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.partner_id.tz = "Africa/Johannesburg"  # UTC+2, no daylight saving
        cls.calendar = cls.env["resource.calendar"].create(
            {
                "name": "Friendly nights",
                "company_id": cls.company.id,
                "attendance_ids": [
                    (
                        0,
                        0,
                        {"name": f"{d} night", "dayofweek": str(d), "hour_from": 0, "hour_to": 7},
                    )
                    for d in range(7)
                ]
                + [
                    (
                        0,
                        0,
                        {"name": f"{d} eve", "dayofweek": str(d), "hour_from": 18, "hour_to": 24},
                    )
                    for d in range(7)
                ],
            }
        )
        cls.other = cls._meter("SELL-2", tenant_id=cls.tenant.id, state="active")
        cls.draft = cls._meter("SELL-DRAFT")
        cls.manager = new_test_user(cls.env, "t_mgr_f", groups="smartpm_prepay.group_manager")

    def _jobs(self, meter):
        return meter.job_ids.filtered(lambda j: j.job_type == "set_friendly_schedule").sorted("id")

    def _enable(self, **vals):
        self.company.write(
            {
                "smartpm_friendly_enabled": True,
                "smartpm_friendly_calendar_id": self.calendar.id,
                "smartpm_friendly_limit_kwh": 5.0,
                **vals,
            }
        )

    def _holiday(self, day, name="Holiday"):
        """A public holiday of the company's calendar: its whole local day (UTC+2)."""
        return self.env["resource.calendar.leaves"].create(
            {
                "name": name,
                "calendar_id": self.calendar.id,
                "company_id": self.company.id,
                "date_from": datetime(day.year, day.month, day.day, 0, 0) - TWO_HOURS,
                "date_to": datetime(day.year, day.month, day.day, 23, 59, 59) - TWO_HOURS,
            }
        )

    # ------------------------------------------------------------------ building
    def test_schedule_is_built_from_the_calendar_hours_and_its_holidays(self):
        self._enable()
        self._holiday(date(2026, 12, 25), "Christmas")
        self.env["resource.calendar.leaves"].create(
            {
                "name": "Two-day festival",
                "calendar_id": self.calendar.id,
                "date_from": datetime(2026, 12, 30, 22, 0),  # 31 Dec 00:00 local
                "date_to": datetime(2027, 1, 1, 22, 0),  # 2 Jan 00:00 local
            }
        )
        self.env["resource.calendar.leaves"].create(
            {
                "name": "Last year",
                "calendar_id": self.calendar.id,
                "date_from": datetime(2025, 12, 26),
                "date_to": datetime(2025, 12, 27),
            }
        )
        schedule = friendly.build_schedule(self.company, now=datetime(2026, 12, 1, 12, 0))
        self.assertEqual(schedule["utc_offset_min"], 120)
        self.assertEqual(schedule["friendly_limit_kwh"], -5.0)
        self.assertEqual(len(schedule["windows"]), 14)
        self.assertIn({"weekday": 0, "start_min": 0, "end_min": 420}, schedule["windows"])
        self.assertIn({"weekday": 6, "start_min": 1080, "end_min": 1440}, schedule["windows"])
        self.assertEqual(schedule["special_days"], ["2026-12-25", "2026-12-31", "2027-01-01"])

    def test_a_passing_holiday_pushes_nothing_and_a_new_one_once_per_meter(self):
        """Whole calendar years: the daily refresh the day after a holiday sends no job
        (the past holiday stays in the table until the year ends); a new holiday one job to
        every meter; 1 January drops last year's holidays, once."""
        year = date.today().year + 1
        self._enable()
        holidays = [date(year, 3, 10), date(year, 4, 27)]
        for day in holidays:
            self._holiday(day)

        def refresh(day):
            friendly.refresh_all(self.env, now=datetime(day.year, day.month, day.day, 12))
            return {meter: self._jobs(meter) for meter in (self.meter, self.other)}

        jobs = refresh(date(year, 3, 1))
        for meter_jobs in jobs.values():
            self.assertEqual(
                meter_jobs[-1].payload["special_days"], [d.isoformat() for d in holidays]
            )
        for day in (date(year, 3, 11), date(year, 4, 28), date(year, 12, 31)):
            self.assertEqual(refresh(day), jobs, day)
        # a new holiday: one job per meter, with it
        self._holiday(date(year, 5, 1))
        added = refresh(date(year, 5, 2))
        for meter, meter_jobs in added.items():
            self.assertEqual(len(meter_jobs - jobs[meter]), 1, meter.serial_number)
            self.assertIn(f"{year}-05-01", meter_jobs[-1].payload["special_days"])
        # the year rolls over: the past year's holidays go, once
        rolled = refresh(date(year + 1, 1, 1))
        for meter, meter_jobs in rolled.items():
            self.assertEqual(len(meter_jobs - added[meter]), 1, meter.serial_number)
            self.assertEqual(meter_jobs[-1].payload["special_days"], [])
        self.assertEqual(refresh(date(year + 1, 1, 2)), rolled)

    def test_touching_attendances_are_merged_and_lunch_is_not_friendly(self):
        calendar = self.env["resource.calendar"].create(
            {
                "name": "Weekend",
                "attendance_ids": [
                    (0, 0, {"name": "a", "dayofweek": "5", "hour_from": 0, "hour_to": 12}),
                    (0, 0, {"name": "b", "dayofweek": "5", "hour_from": 12, "hour_to": 24}),
                    (
                        0,
                        0,
                        {
                            "name": "lunch",
                            "dayofweek": "6",
                            "hour_from": 12,
                            "hour_to": 13,
                            "day_period": "lunch",
                        },
                    ),
                ],
            }
        )
        self.assertEqual(
            friendly.calendar_windows(calendar), [{"weekday": 5, "start_min": 0, "end_min": 1440}]
        )

    def test_daylight_saving_moves_the_offset_and_the_daily_refresh_pushes_it(self):
        self.company.partner_id.tz = "Europe/Dublin"
        self._enable()
        winter = friendly.build_schedule(self.company, now=datetime(2027, 1, 15, 12, 0))
        summer = friendly.build_schedule(self.company, now=datetime(2027, 7, 15, 12, 0))
        self.assertEqual((winter["utc_offset_min"], summer["utc_offset_min"]), (0, 60))
        self.assertEqual(winter["windows"], summer["windows"], "hours stay local")
        # the meters got today's offset; once it differs, the daily cron pushes again
        pushed = self._jobs(self.meter)
        self.assertEqual(len(pushed), 1)
        engine.as_engine(pushed).write({"payload": dict(pushed.payload, utc_offset_min=-1)})
        self.env["res.company"]._cron_smartpm_friendly_refresh()
        self.assertEqual(len(self._jobs(self.meter)), 2)

    def test_push_settings_sends_the_schedule_again(self):
        self._enable()
        self.meter.action_push_settings()
        jobs = self._jobs(self.meter)
        self.assertEqual(jobs.mapped("state"), ["cancelled", "pending"])
        self.assertEqual(jobs[0].payload, jobs[1].payload)

    def test_disabled_company_sends_the_empty_schedule(self):
        self.assertEqual(friendly.build_schedule(self.company), friendly.EMPTY_SCHEDULE)
        self.assertFalse(self._jobs(self.meter), "a meter out of the box has no schedule")

    # ------------------------------------------------------------------ pushing
    def test_enabling_pushes_once_to_every_active_meter_and_not_again_unchanged(self):
        self._enable()
        for meter in (self.meter, self.other):
            jobs = self._jobs(meter)
            self.assertEqual(len(jobs), 1)
            self.assertEqual(jobs.payload["friendly_limit_kwh"], -5.0)
            self.assertEqual(len(jobs.payload["windows"]), 14)
        self.assertFalse(self._jobs(self.draft), "a draft meter gets it when activated")
        self._enable()  # same values again: nothing new
        friendly.refresh_all(self.env)  # the daily cron: nothing changed
        self.assertEqual(len(self._jobs(self.meter)), 1)

    def test_a_change_supersedes_the_pending_push(self):
        self._enable()
        first = self._jobs(self.meter)
        self.company.smartpm_friendly_limit_kwh = 2.0
        first_now, second = self._jobs(self.meter)
        self.assertEqual(first_now, first)
        self.assertEqual(first.state, "cancelled")
        self.assertEqual(second.state, "pending")
        self.assertEqual(second.payload["friendly_limit_kwh"], -2.0)

    def test_a_new_holiday_and_a_calendar_edit_each_push_once(self):
        self._enable()
        self._holiday(date(2027, 1, 1))
        jobs = self._jobs(self.meter)
        self.assertEqual(len(jobs), 2)
        self.assertEqual(jobs[-1].payload["special_days"][-1], "2027-01-01")
        # the calendar form rewrites several lines in one save: one push
        sunday = self.calendar.attendance_ids.filtered(lambda a: a.dayofweek == "6")
        self.calendar.write(
            {
                "attendance_ids": [(2, a.id) for a in sunday]
                + [(0, 0, {"name": "Sunday", "dayofweek": "6", "hour_from": 0, "hour_to": 24})]
            }
        )
        jobs = self._jobs(self.meter)
        self.assertEqual(len(jobs), 3)
        self.assertEqual(jobs.mapped("state"), ["cancelled", "cancelled", "pending"])
        self.assertIn({"weekday": 6, "start_min": 0, "end_min": 1440}, jobs[-1].payload["windows"])

    def test_settings_saved_together_push_once(self):
        settings = self.env["res.config.settings"].create(
            {
                "smartpm_friendly_enabled": True,
                "smartpm_friendly_calendar_id": self.calendar.id,
                "smartpm_friendly_limit_kwh": 3.0,
            }
        )
        settings.execute()
        jobs = self._jobs(self.meter)
        self.assertEqual(len(jobs), 1)
        self.assertEqual(jobs.payload["friendly_limit_kwh"], -3.0)

    def test_an_activated_meter_gets_the_schedule(self):
        self._enable()
        self.draft.action_activate()
        self.assertEqual(len(self._jobs(self.draft)), 1)

    def test_meter_of_another_company_is_not_pushed(self):
        other_company = self.env["res.company"].create({"name": "Other Co"})
        foreign = self.env["smartpm.meter"].create(
            {
                "serial_number": "FOREIGN-1",
                "host": "127.0.0.1",
                "port": 4100,
                "state": "active",
                "company_id": other_company.id,
            }
        )
        self._enable()
        self.assertFalse(self._jobs(foreign))

    # ------------------------------------------------------------------ the meter reports
    def _events(self, *events, serial="SELL-1"):
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
        self.Job.complete(ping.id, "b1", {})

    def _friendly_alarms(self):
        return self.meter.alarm_ids.filtered(lambda a: a.alarm_type == "friendly_deferred")

    def test_deferred_trip_is_an_alarm_the_tenant_is_mailed(self):
        self._events((65, "2026-12-25T08:00:00Z"), (86, "2026-12-25T08:00:00Z"))
        alarm = self._friendly_alarms()
        self.assertEqual(len(alarm), 1)
        self.assertEqual(alarm.state, "new")
        self.assertIn("friendly period", alarm.description)
        self.assertFalse(alarm.activity_ids, "routine: nobody has to act")
        mail = self.env["mail.mail"].search(
            [("model", "=", "smartpm.alarm"), ("res_id", "=", alarm.id)]
        )
        self.assertEqual(len(mail), 1)
        self.assertIn("friendly period", mail.body_html)
        self.assertIn(self.tenant, mail.recipient_ids)
        self.assertEqual(friendly.portal_notice(self.meter.sudo())[0], "warning")
        # the same event read twice: one alarm
        self._events((86, "2026-12-25T08:00:00Z"))
        self.assertEqual(len(self._friendly_alarms()), 1)

    def test_the_trip_after_the_period_clears_the_friendly_alarm(self):
        self._events((86, "2026-12-25T08:00:00Z"))
        self._events((59, "2026-12-26T05:00:00Z"))
        self.assertEqual(self._friendly_alarms().state, "cleared")
        self.assertIsNone(friendly.portal_notice(self.meter.sudo()))

    def test_purchase_repays_the_debt_and_the_receipt_says_so(self):
        self._events((86, "2026-12-25T08:00:00Z"))
        self.meter.sudo().credit_kwh = -3.0
        purchase = self._vend(10.0)  # 40 kWh
        self._deliver(purchase, credit_kwh=37.0)
        self.assertEqual(purchase.state, "delivered")
        self.assertEqual(self.meter.credit_kwh, 37.0, "from -3 to 37: what the meter reports")
        receipt = purchase._receipt()
        self.assertEqual(receipt["debt_repaid_kwh"], 3.0)
        self.assertEqual(receipt["meter_credit_after_kwh"], 37.0)
        self.assertEqual(self._friendly_alarms().state, "cleared")

    def test_receipt_without_debt_has_no_repaid_line(self):
        purchase = self._vend(10.0)
        self._deliver(purchase, credit_kwh=45.0)
        self.assertNotIn("debt_repaid_kwh", purchase._receipt())

    # ------------------------------------------------------------------ access
    def test_limit_below_zero_and_two_week_calendars_are_refused(self):
        with self.assertRaises(ValidationError):
            self._enable(smartpm_friendly_limit_kwh=-1.0)
        self.calendar.two_weeks_calendar = True
        with self.assertRaises(ValidationError):
            self._enable()

    def test_manager_without_settings_rights_cannot_change_friendly_periods(self):
        for vals in (
            {"smartpm_friendly_enabled": True},
            {"smartpm_friendly_calendar_id": self.calendar.id},
        ):
            with self.assertRaises(AccessError):
                self.company.with_user(self.manager).write(vals)
        with self.assertRaises(AccessError):
            self.env["resource.calendar.leaves"].with_user(self.manager).create(
                {
                    "name": "Sneaky holiday",
                    "calendar_id": self.calendar.id,
                    "date_from": datetime(2026, 12, 1),
                    "date_to": datetime(2026, 12, 2),
                }
            )
        with self.assertRaises(AccessError):
            self.calendar.attendance_ids[:1].with_user(self.manager).write({"hour_to": 6})
        self.assertFalse(self.company.smartpm_friendly_enabled)
        self.assertFalse(self._jobs(self.meter))

    def test_rpc_users_cannot_create_a_friendly_job(self):
        before = self.env["smartpm.meter.job"].search_count([])
        payload = {
            "utc_offset_min": 0,
            "windows": [{"weekday": d, "start_min": 0, "end_min": 1440} for d in range(7)],
            "special_days": [],
            "friendly_limit_kwh": -1000.0,
        }
        for user in (self.operator, self.manager, self.cashier, self.bridge_user):
            with self.assertRaises(UserError):  # AccessError included
                self.env["smartpm.meter.job"].with_user(user).create(
                    {
                        "meter_id": self.meter.id,
                        "job_type": "set_friendly_schedule",
                        "payload": payload,
                    }
                )
        self.assertEqual(self.env["smartpm.meter.job"].search_count([]), before)


@tagged("post_install", "-at_install")
class TestFriendlyPortal(PortalCase):
    def _deferred(self, meter, when="2026-12-25 08:00:00"):
        return self.env["smartpm.alarm"].create(
            {"meter_id": meter.id, "alarm_type": "friendly_deferred", "meter_time": when}
        )

    def test_tenant_sees_the_friendly_notice_on_their_meter_page_while_deferred(self):
        self.meter_a.sudo().write({"credit_kwh": -2.5, "online_state": "online"})
        alarm = self._deferred(self.meter_a)
        self._login()
        response = self.url_open(f"/my/meters/{self.meter_a.id}")
        self.assertEqual(response.status_code, 200)
        self.assertIn("Friendly period: your credit has run out", response.text)
        # repaid (or tripped): the notice goes
        alarm._clear("repaid")
        response = self.url_open(f"/my/meters/{self.meter_a.id}")
        self.assertNotIn("Friendly period: your credit has run out", response.text)

    def test_another_tenants_friendly_alarm_is_not_shown(self):
        self._deferred(self.meter_b)
        self._login()
        response = self.url_open(f"/my/meters/{self.meter_a.id}")
        self.assertNotIn("Friendly period", response.text)


@tagged("post_install", "-at_install")
class TestFriendlyMoney(TouMixin, VendingCase):
    """Money-mode meters (credit in currency): the friendly limit in money, the tenant told
    in money, the purchase's repayments (negative and emergency credit) in money."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.partner_id.tz = "Africa/Johannesburg"
        cls.company.smartpm_min_amount = 0.1
        cls.calendar = cls.env["resource.calendar"].create(
            {
                "name": "Friendly money nights",
                "company_id": cls.company.id,
                "attendance_ids": [
                    Command.create(
                        {"name": f"{d} night", "dayofweek": str(d), "hour_from": 0, "hour_to": 7}
                    )
                    for d in range(7)
                ],
            }
        )
        cls.tou = cls._tou_tariff(name="Money friendly")
        cls.money_meter = cls._meter(
            "FR-MONEY-1",
            tenant_id=cls.tenant.id,
            state="active",
            tariff_id=cls.tou.id,
            credit_mode="money",
        )

    def _friendly_jobs(self, meter):
        return meter.job_ids.filtered(lambda j: j.job_type == "set_friendly_schedule").sorted("id")

    def _enable(self):
        self.company.write(
            {
                "smartpm_friendly_enabled": True,
                "smartpm_friendly_calendar_id": self.calendar.id,
                "smartpm_friendly_limit_kwh": 5.0,
                "smartpm_friendly_limit_money": 12.5,
            }
        )

    def test_money_meter_gets_the_limit_in_money_and_kwh_meter_in_kwh(self):
        self._enable()
        money_job = self._friendly_jobs(self.money_meter)[-1]
        self.assertEqual(money_job.payload["friendly_limit_money"], -12.5)
        self.assertNotIn("friendly_limit_kwh", money_job.payload)
        kwh_job = self._friendly_jobs(self.meter)[-1]
        self.assertEqual(kwh_job.payload["friendly_limit_kwh"], -5.0)
        self.assertNotIn("friendly_limit_money", kwh_job.payload)
        # only the money limit changes: only money meters get a new schedule
        self.company.smartpm_friendly_limit_money = 8.0
        self.assertEqual(
            self._friendly_jobs(self.money_meter)[-1].payload["friendly_limit_money"], -8.0
        )
        self.assertEqual(self._friendly_jobs(self.meter)[-1], kwh_job)

    def test_money_limit_below_zero_is_refused_naming_the_company(self):
        with self.assertRaisesRegex(ValidationError, self.company.name):
            self.company.smartpm_friendly_limit_money = -1.0

    def test_portal_notice_of_a_money_meter_says_the_currency(self):
        self._enable()
        self.env["smartpm.alarm"].create(
            {
                "meter_id": self.money_meter.id,
                "alarm_type": "friendly_deferred",
                "meter_time": "2026-12-25 08:00:00",
            }
        )
        _level, text = friendly.portal_notice(self.money_meter.sudo())
        self.assertIn(self.company.currency_id.format(-12.5), text)
        self.assertNotIn("kWh", text)

    def _deliver_money(self, purchase, result):
        self._claim(purchase.job_id)
        self.Job.complete(
            purchase.job_id.id,
            "b1",
            {"transfer_number": purchase.transfer_number, "relay": "connected", **result},
        )

    def test_money_purchase_repays_negative_credit_and_the_receipt_says_it_in_money(self):
        self.money_meter.sudo().credit_money = -3.456
        purchase = self._vend(10.0, "FRM-1", meter=self.money_meter)
        money = purchase.credit_money
        self._deliver_money(purchase, {"credit_money": round(money - 3.456, 3)})
        self.assertEqual(purchase.state, "delivered")
        self.assertAlmostEqual(purchase.debt_repaid_money, 3.456, places=3)
        self.assertEqual(purchase.debt_repaid_kwh, 0.0)
        self.assertAlmostEqual(self.money_meter.credit_money, money - 3.456, places=3)
        rows = {row["key"]: row for row in purchase._receipt()["split"]["lines"]}
        self.assertEqual(rows["negative_repaid_money"]["label"], "Negative credit repaid")
        self.assertNotIn("kWh", rows["negative_repaid_money"]["value"])
        self.assertIn("net_money", rows)

    def test_money_purchase_repays_emergency_credit_first_and_the_receipt_says_so(self):
        purchase = self._vend(10.0, "FRM-2", meter=self.money_meter)
        money = purchase.credit_money
        self._deliver_money(
            purchase, {"credit_money": round(money - 2.0, 3), "emergency_repaid_money": 2.0}
        )
        self.assertEqual(purchase.emergency_repaid_money, 2.0)
        self.assertEqual(purchase.debt_repaid_money, 0.0, "the meter's credit was not negative")
        split = purchase._receipt()["split"]
        rows = {row["key"]: row for row in split["lines"]}
        self.assertEqual(rows["emergency_repaid_money"]["label"], "Emergency credit repaid")
        currency = purchase.currency_id
        self.assertEqual(
            rows["emergency_repaid_money"]["value"].replace("\xa0", " "),
            currency.format(2.0).replace("\xa0", " "),
        )
        self.assertNotIn("emergency_repaid_kwh", rows)
        # the PDF receipt of every channel prints the same line
        html = (
            self.env["ir.actions.report"]
            ._render_qweb_html("smartpm_prepay.action_report_purchase_receipt", purchase.ids)[0]
            .decode()
        )
        self.assertIn("Emergency credit repaid", html)
