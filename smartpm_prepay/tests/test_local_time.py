"""The one local-day helper: the company's days and months, DST included."""

from datetime import date, datetime

from odoo.tests import TransactionCase, tagged

from ..services import local_time


@tagged("post_install", "-at_install")
class TestLocalTime(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env["res.company"].create({"name": "Paris Lettings"})
        cls.company.partner_id.tz = "Europe/Paris"
        cls.utc_company = cls.env["res.company"].create({"name": "No Zone Lettings"})

    def test_day_bounds_follow_the_company_zone_and_dst(self):
        # 2026-03-29: clocks go forward in Paris, the local day lasts 23 hours
        start, end = local_time.day_bounds_utc(self.company, date(2026, 3, 29))
        self.assertEqual(start, datetime(2026, 3, 28, 23, 0))
        self.assertEqual(end, datetime(2026, 3, 29, 22, 0))
        # 2026-10-25: clocks go back, 25 hours
        start, end = local_time.day_bounds_utc(self.company, date(2026, 10, 25))
        self.assertEqual((end - start).total_seconds(), 25 * 3600)

    def test_local_today_and_month_start(self):
        # 23:30 UTC on 31 March is already 1 April in Paris (UTC+2)
        late = datetime(2026, 3, 31, 23, 30)
        self.assertEqual(local_time.local_today(self.company, late), date(2026, 4, 1))
        self.assertEqual(local_time.month_start_utc(self.company, late), datetime(2026, 3, 31, 22))
        self.assertEqual(local_time.local_today(self.utc_company, late), date(2026, 3, 31))
        self.assertEqual(local_time.month_start_utc(self.utc_company, late), datetime(2026, 3, 1))

    def test_user_zone_does_not_change_the_day(self):
        self.env.user.tz = "Pacific/Kiritimati"  # UTC+14: the user's day is not the property's
        late = datetime(2026, 3, 31, 12, 0)
        self.assertEqual(local_time.local_today(self.company, late), date(2026, 3, 31))
