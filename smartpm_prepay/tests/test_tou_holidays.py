"""Issue 17 §6: public holidays of a time-of-use tariff, charged by the meter as special
days (the calendar's Special days table, docs/meter-contract.md): the owner's setting per
version, its validation, the special days pushed to every meter once per change."""

from datetime import date, datetime, timedelta

from lxml import etree

from odoo import Command, fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged
from odoo.tools.safe_eval import safe_eval

from ..services import meter_profile, tou
from .test_tou import TouMixin
from .test_vending import VendingCase

TWO_HOURS = timedelta(hours=2)


@tagged("post_install", "-at_install")
class TestTouHolidays(TouMixin, VendingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.partner_id.tz = "Africa/Johannesburg"  # UTC+2, no daylight saving
        cls.calendar = cls.env["resource.calendar"].create(
            {"name": "Holidays", "company_id": cls.company.id, "attendance_ids": []}
        )
        cls.company.smartpm_friendly_calendar_id = cls.calendar
        cls.tariff = cls._tou_tariff("Evening peak", date_start=fields.Date.today())
        cls.version = cls.tariff.tou_version_ids
        cls.off_band, cls.peak_band = cls.version.band_ids.sorted("rate")
        cls.flat_tou = cls._tou_tariff("Weekday holidays", date_start=fields.Date.today())
        cls.meters = [
            cls._meter(
                f"HOL-{i}",
                tenant_id=cls._tenant(f"Holiday tenant {i}").id,
                state="active",
                credit_mode="money",
                tariff_id=tariff.id,
            )
            for i, tariff in enumerate([cls.tariff, cls.tariff, cls.flat_tou])
        ]
        cls.day = fields.Date.today() + timedelta(days=9)

    def _holiday(self, day, name="Founders' Day"):
        """A public holiday of the company's calendar: its whole local day (UTC+2)."""
        return self.env["resource.calendar.leaves"].create(
            {
                "name": name,
                "calendar_id": self.calendar.id,
                "company_id": self.company.id,
                "date_from": datetime(day.year, day.month, day.day) - TWO_HOURS,
                "date_to": datetime(day.year, day.month, day.day) + timedelta(days=1) - TWO_HOURS,
            }
        )

    def _jobs(self, meter):
        return meter.job_ids.filtered(lambda j: j.job_type == tou.JOB_TYPE).sorted("id")

    def _charge_holidays_off_peak(self):
        self.version.write({"holiday_mode": "band", "holiday_band_id": self.off_band.id})

    def test_all_day_band_without_a_band_is_refused_naming_the_tariff(self):
        with self.assertRaisesRegex(ValidationError, "Evening peak.*choose the band"):
            self.version.write({"holiday_mode": "band", "holiday_band_id": False})
        other = self.flat_tou.tou_version_ids.band_ids[:1]
        with self.assertRaisesRegex(ValidationError, "Evening peak.*holiday band Off-peak"):
            self.version.write({"holiday_mode": "band", "holiday_band_id": other.id})

    def test_a_holiday_is_a_special_day_with_an_all_day_profile_of_its_band(self):
        self._holiday(self.day)
        self._charge_holidays_off_peak()
        payload = self._jobs(self.meters[0])[-1].payload
        holiday_days = [d for d in payload["active"]["days"] if len(d["schedule"]) == 1]
        self.assertEqual(holiday_days, [{"day_id": 2, "schedule": [{"start_min": 0, "rate": 1}]}])
        self.assertEqual(payload["special_days"], [{"date": self.day.isoformat(), "day_id": 2}])
        # as a Sunday: the Sunday profile of the week (here every day has the same)
        self.version.holiday_mode = "sunday"
        payload = self._jobs(self.meters[0])[-1].payload
        sunday = payload["active"]["weeks"][0]["days"][6]
        self.assertEqual(
            payload["special_days"], [{"date": self.day.isoformat(), "day_id": sunday}]
        )
        # the weekday's: no special day
        self.version.holiday_mode = "weekday"
        self.assertEqual(self._jobs(self.meters[0])[-1].payload["special_days"], [])

    def test_a_holiday_after_a_planned_version_takes_that_versions_profile(self):
        later = self._add_version(self.tariff, self.day - timedelta(days=2), peak=0.60)
        later.write({"holiday_mode": "band", "holiday_band_id": later.band_ids[1].id})
        self._holiday(self.day)
        payload = self._jobs(self.meters[0])[-1].payload
        self.assertEqual(payload["active"]["days"][1:], [])  # today's version: weekdays
        self.assertEqual(
            payload["passive"]["days"][1], {"day_id": 2, "schedule": [{"start_min": 0, "rate": 2}]}
        )
        self.assertEqual(payload["special_days"], [{"date": self.day.isoformat(), "day_id": 2}])

    def test_a_holiday_change_reaches_each_meter_of_the_tariff_once(self):
        self._charge_holidays_off_peak()
        before = {m.id: len(self._jobs(m)) for m in self.meters}
        leave = self._holiday(self.day)
        for meter in self.meters[:2]:
            self.assertEqual(len(self._jobs(meter)), before[meter.id] + 1, meter.serial_number)
        # a meter whose tariff charges holidays as weekdays: its calendar is the same
        self.assertEqual(len(self._jobs(self.meters[2])), before[self.meters[2].id])
        # saving the same again, the calendar form's save, the daily refresh: nothing new
        count = {m.id: len(self._jobs(m)) for m in self.meters}
        leave.write({"name": "Founders' Day (observed)"})
        self.calendar.write({"name": "Public holidays"})
        self.version.write({"holiday_band_id": self.off_band.id})
        tou.refresh_all(self.env)
        self.assertEqual({m.id: len(self._jobs(m)) for m in self.meters}, count)
        # moving it: one job each, the older pending one cancelled
        pending = self._jobs(self.meters[0])[-1]
        leave.write(
            {
                "date_from": leave.date_from + timedelta(days=1),
                "date_to": leave.date_to + timedelta(days=1),
            }
        )
        self.assertEqual(pending.state, "cancelled")
        moved = self._jobs(self.meters[0])[-1].payload["special_days"]
        self.assertEqual(moved, [{"date": (self.day + timedelta(days=1)).isoformat(), "day_id": 2}])
        leave.unlink()
        self.assertEqual(self._jobs(self.meters[1])[-1].payload["special_days"], [])

    def test_quote_and_tariff_say_how_holidays_are_charged(self):
        self._charge_holidays_off_peak()
        bands = {b["name"]: b["hours"] for b in tou.price_bands(self.tariff)}
        self.assertIn("public holidays all day", bands["Off-peak"])
        self.assertIn("not on public holidays", bands["Peak"])
        self.assertIn("public holidays all day", self.tariff._price_description())

    # ------------------------------------------------ meters whose profile has no table
    def _profile(self, name, special_days=True):
        lines = [
            line
            for line in meter_profile.smartpm_lines()
            if special_days or line["function"] != tou.SPECIAL_DAYS_FUNCTION
        ]
        return self.env["smartpm.meter.profile"].create(
            {"name": name, "object_ids": [Command.create(line) for line in lines]}
        )

    def test_holidays_are_refused_for_a_meter_whose_profile_has_no_special_days(self):
        old = self._profile("Vendor 2019", special_days=False)
        self.meters[0].profile_id = old  # holidays charged as weekdays: it needs no table
        before = len(self._jobs(self.meters[0]))
        with self.assertRaisesRegex(ValidationError, "Evening peak.*HOL-0.*Vendor 2019"):
            self._charge_holidays_off_peak()
        with self.assertRaisesRegex(ValidationError, "HOL-0.*Vendor 2019"):
            self.version.holiday_mode = "sunday"
        self.assertEqual(len(self._jobs(self.meters[0])), before)
        # holidays charged: such a meter cannot take the tariff, nor a meter of it the profile
        self.meters[0].profile_id = self._profile("Vendor 2024")
        self._charge_holidays_off_peak()
        with self.assertRaisesRegex(ValidationError, "Evening peak.*HOL-1.*Vendor 2019"):
            self.meters[1].profile_id = old
        self.meters[2].profile_id = old  # its tariff charges holidays as weekdays
        with self.assertRaisesRegex(ValidationError, "Evening peak.*HOL-2.*Vendor 2019"):
            self.meters[2].tariff_id = self.tariff

    def test_a_profile_cannot_lose_its_special_days_while_its_meters_need_them(self):
        self._holiday(self.day)
        profile = self._profile("Vendor 2024")
        self.meters[0].profile_id = profile
        self._charge_holidays_off_peak()
        line = profile.object_ids.filtered(lambda o: o.function == tou.SPECIAL_DAYS_FUNCTION)
        jobs = len(self._jobs(self.meters[0]))
        pattern = "Vendor 2024.*HOL-0.*Evening peak"
        with self.assertRaises(ValidationError) as cm:
            line.unlink()
        self.assertRegex(str(cm.exception), pattern)
        with self.assertRaises(ValidationError) as cm:
            profile.write({"object_ids": [Command.delete(line.id)]})
        self.assertRegex(str(cm.exception), pattern)
        profile.object_ids.filtered(lambda o: o.function == "fraud_event_log").unlink()
        with self.assertRaises(ValidationError) as cm:  # the line made another function
            line.write({"function": "fraud_event_log", "obis": "0.0.99.98.1.255", "ic": 7})
        self.assertRegex(str(cm.exception), pattern)
        self.assertEqual(line.exists().function, tou.SPECIAL_DAYS_FUNCTION)
        self.assertEqual(len(self._jobs(self.meters[0])), jobs)
        # holidays charged as the weekday again: the line may go
        self.version.holiday_mode = "weekday"
        line.unlink()
        self.assertNotIn(tou.SPECIAL_DAYS_FUNCTION, profile.object_ids.mapped("function"))

    def test_a_profile_losing_its_special_days_gets_calendars_without_them(self):
        """What no refusal catches (the profile's line deleted in the database): the meter
        gets its calendars without special days, never a job sure to fail on the bridge."""
        self._holiday(self.day)
        profile = self._profile("Vendor 2024")
        self.meters[0].profile_id = profile
        self._charge_holidays_off_peak()
        self.assertEqual(len(self._jobs(self.meters[0])[-1].payload["special_days"]), 1)
        line = profile.object_ids.filtered(lambda o: o.function == tou.SPECIAL_DAYS_FUNCTION)
        self.env.flush_all()
        self.env.cr.execute("DELETE FROM smartpm_meter_profile_object WHERE id = %s", [line.id])
        self.env.invalidate_all()
        tou.refresh_all(self.env)
        payload = self._jobs(self.meters[0])[-1].payload
        self.assertNotIn("special_days", payload)
        self.assertEqual(payload["active"], self._jobs(self.meters[1])[-1].payload["active"])
        # the other meters of the tariff keep theirs
        self.assertEqual(len(self._jobs(self.meters[1])[-1].payload["special_days"]), 1)

    # ------------------------------------------------ the holiday band
    def test_the_holiday_band_cannot_be_deleted(self):
        self._charge_holidays_off_peak()
        with self.assertRaisesRegex(UserError, "Evening peak.*Off-peak.*public holidays"):
            self.off_band.unlink()
        with self.assertRaisesRegex(UserError, "Evening peak.*Off-peak.*public holidays"):
            self.version.write({"band_ids": [Command.delete(self.off_band.id)]})
        self.assertEqual(self.version.holiday_band_id, self.off_band)
        self.assertEqual(self.version.holiday_mode, "band")
        self.assertTrue(self.off_band.exists())

    # ------------------------------------------------ settings
    def test_public_holidays_are_reachable_in_settings_with_friendly_periods_off(self):
        self.company.smartpm_friendly_enabled = False
        Settings = self.env["res.config.settings"].with_company(self.company)
        self.assertFalse(Settings.create({}).smartpm_tou_holidays_used)
        self._charge_holidays_off_peak()
        settings = Settings.create({})
        self.assertTrue(settings.smartpm_tou_holidays_used)
        leave = self._holiday(self.day)
        action = settings.action_smartpm_public_holidays()
        self.assertIn(leave, self.env[action["res_model"]].search(action["domain"]))
        # the form shows the calendar and the holidays' button, friendly periods off
        arch = etree.fromstring(Settings.get_views([(False, "form")])["views"]["form"]["arch"])
        values = {
            "smartpm_friendly_enabled": False,
            "smartpm_tou_holidays_used": True,
            "smartpm_friendly_calendar_id": self.calendar.id,
        }
        for xpath in (
            "//field[@name='smartpm_friendly_calendar_id']",
            "//button[@name='action_smartpm_public_holidays']",
        ):
            node = arch.xpath(xpath)[0]
            while node is not None:
                hidden = node.get("invisible")
                self.assertFalse(hidden and safe_eval(hidden, values), xpath)
                node = node.getparent()
                if node.tag == "setting":
                    break

    # ------------------------------------------------ no daily pushes
    def test_a_passing_holiday_pushes_nothing_until_the_year_ends(self):
        self._charge_holidays_off_peak()
        year = fields.Date.today().year + 1
        holidays = [date(year, 3, 10), date(year, 4, 27)]
        for day in holidays:
            self._holiday(day)

        def refresh(day):
            tou.refresh_all(self.env, now=datetime(day.year, day.month, day.day, 12))
            return self._jobs(self.meters[0])

        jobs = refresh(date(year, 3, 1))
        self.assertEqual(
            [d["date"] for d in jobs[-1].payload["special_days"]], [d.isoformat() for d in holidays]
        )
        for day in (date(year, 3, 11), date(year, 4, 28), date(year, 12, 31)):
            self.assertEqual(refresh(day), jobs, day)  # a holiday passed: the table the same
        # the new year: last year's holidays go, once
        jobs = refresh(date(year + 1, 1, 1))
        self.assertEqual(jobs[-1].payload["special_days"], [])
        self.assertEqual(refresh(date(year + 1, 1, 2)), jobs)
