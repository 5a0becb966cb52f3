"""Issue 16 §5: block tiers count the kWh bought by the tenant (over their meters of the
company) in the company's local month."""

from datetime import datetime

from freezegun import freeze_time

from odoo.tests import tagged

from ..services import vending
from .common import SmartpmCase


@tagged("post_install", "-at_install")
class TestTiersPerTenantLocalMonth(SmartpmCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env.company
        cls.company.write({"smartpm_min_amount": 1.0, "smartpm_max_amount": 500.0})
        # 0.25 up to 50 kWh a month, 0.50 above
        cls.tariff = cls.env["smartpm.tariff"].create(
            {
                "name": "Block",
                "price_per_kwh": 0.25,
                "tier_ids": [(0, 0, {"from_kwh": 50.0, "price_per_kwh": 0.5})],
            }
        )
        cls.tenant = cls._tenant("Tier Tenant")
        cls.meter = cls._meter(
            "TIER-1", tenant_id=cls.tenant.id, state="active", tariff_id=cls.tariff.id
        )
        cls._clear_job_queue()

    def _vend_at(self, when, ref, amount=10.0, meter=None):
        with freeze_time(when):
            return vending.vend(self.env, meter or self.meter, amount, "backoffice", ref)

    def _tz(self, tz):
        self.company.partner_id.tz = tz

    def test_tiers_restart_at_the_local_month_east_of_utc(self):
        self._tz("Asia/Tokyo")  # UTC+9: December starts on 30 November at 15:00 UTC
        november = self._vend_at(datetime(2026, 11, 30, 14, 30), "TOKYO-1")
        december = self._vend_at(datetime(2026, 11, 30, 15, 30), "TOKYO-2")
        second = self._vend_at(datetime(2026, 11, 30, 16, 0), "TOKYO-3")
        self.assertEqual(november.kwh, 40.0)
        # still November in UTC, already December in Tokyo: back at the first tier
        self.assertEqual(december.month_kwh_before, 0.0)
        self.assertEqual(december.kwh, 40.0)
        # 10 kWh left at 0.25, then 7.50 buys 15 kWh at 0.50
        self.assertEqual(second.month_kwh_before, 40.0)
        self.assertEqual(second.kwh, 25.0)

    def test_tiers_restart_at_the_local_month_west_of_utc(self):
        self._tz("America/Los_Angeles")  # UTC-8: December starts on 1 December 08:00 UTC
        first = self._vend_at(datetime(2026, 12, 1, 2, 0), "LA-1")
        november = self._vend_at(datetime(2026, 12, 1, 7, 30), "LA-2")
        december = self._vend_at(datetime(2026, 12, 1, 8, 30), "LA-3")
        self.assertEqual(first.kwh, 40.0)
        # already December in UTC, still November in Los Angeles: the tiers go on
        self.assertEqual(november.month_kwh_before, 40.0)
        self.assertEqual(november.kwh, 25.0)
        self.assertEqual(december.month_kwh_before, 0.0)
        self.assertEqual(december.kwh, 40.0)

    def test_new_tenant_on_a_meter_starts_at_the_first_tier(self):
        self._tz("UTC")
        heavy = self._vend_at(datetime(2026, 12, 3, 9, 0), "HEAVY-1", amount=100.0)
        self.assertGreater(heavy.kwh, 50.0)
        newcomer = self._tenant("New Tenant")
        self.meter.tenant_id = newcomer
        first = self._vend_at(datetime(2026, 12, 10, 9, 0), "NEW-1")
        self.assertEqual(first.tenant_id, newcomer)
        self.assertEqual(first.month_kwh_before, 0.0)
        self.assertEqual(first.kwh, 40.0)
        with freeze_time(datetime(2026, 12, 10, 10, 0)):
            self.assertEqual(vending.month_kwh(self.env, self.meter), 40.0)
            self.assertEqual(vending.month_kwh(self.env, self.meter, tenant=self.tenant), heavy.kwh)

    def test_tenant_with_two_meters_counts_both(self):
        self._tz("UTC")
        other = self._meter(
            "TIER-2", tenant_id=self.tenant.id, state="active", tariff_id=self.tariff.id
        )
        self._vend_at(datetime(2026, 12, 3, 9, 0), "TWO-1")
        second = self._vend_at(datetime(2026, 12, 3, 10, 0), "TWO-2", meter=other)
        self.assertEqual(second.month_kwh_before, 40.0)
        self.assertEqual(second.kwh, 25.0)
