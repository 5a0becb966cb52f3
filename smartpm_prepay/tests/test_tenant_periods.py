"""Issue 16 §5: a tenant sees a meter's readings, alarms, consumption and purchases of the
periods they held it, and nothing of the tenant before or after them."""

from datetime import datetime, timedelta

from odoo.tests import new_test_user, tagged

from ..services import ingest, local_time
from ..services.obis import ENERGY_IMPORT
from ..services.vending import vend
from .test_portal import PortalCase

DAY = timedelta(days=1)


@tagged("post_install", "-at_install")
class TestTenantPeriods(PortalCase):
    """Meter TOUR-001: tenant A from -40 to -20 days, tenant B from -20 to -3 days, A again
    since -3 days (A left and came back, B is the old tenant who left)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.now = datetime.now().replace(microsecond=0)
        cls.portal_b = new_test_user(
            cls.env,
            "tenant_b",
            groups="base.group_portal",
            partner_id=cls.tenant_b.id,
            password="tenant_b-pw-123",
        )
        meter, now = cls.meter_a, cls.now
        Assignment = cls.env["smartpm.meter.assignment"].sudo()
        meter.assignment_ids.write({"date_start": now - 40 * DAY, "date_end": now - 20 * DAY})
        Assignment.create(
            [
                {
                    "meter_id": meter.id,
                    "tenant_id": cls.tenant_b.id,
                    "date_start": now - 20 * DAY,
                    "date_end": now - 3 * DAY,
                },
                {"meter_id": meter.id, "tenant_id": cls.tenant_a.id, "date_start": now - 3 * DAY},
            ]
        )
        # the register: A's at -30 and -1 days, B's at -15 and -5 days
        cls.times = {days: now - days * DAY for days in (30, 15, 5, 1)}
        values = {30: 100.0, 15: 200.0, 5: 250.0, 1: 300.0}
        ingest.ingest(
            cls.env,
            [
                {
                    "meter_id": meter.id,
                    "obis": ENERGY_IMPORT,
                    "value": values[d],
                    "unit": "kWh",
                    "time": t.isoformat(),
                }
                for d, t in cls.times.items()
            ],
            [  # B's zero credit 5 days ago, A's low credit yesterday
                {"meter_id": meter.id, "log": "standard", "code": 65, "time": cls.times[5]},
                {"meter_id": meter.id, "log": "standard", "code": 64, "time": cls.times[1]},
            ],
        )
        today = local_time.local_today(cls.company)
        cls.env["smartpm.consumption.daily"]._rebuild_days(today - 45 * DAY, today, cls.company)

    def _as(self, user, model):
        return self.env[model].with_user(user).search([("meter_id", "=", self.meter_a.id)])

    def _local_day(self, days_ago):
        return local_time.local_today(self.company, self.now - days_ago * DAY)

    # ------------------------------------------------------------------ ORM, as the tenant
    def test_readings_are_the_tenants_own_periods_only(self):
        self.assertEqual(
            set(self._as(self.portal_user, "smartpm.reading").mapped("reading_time")),
            {self.times[30], self.times[1]},
        )
        self.assertEqual(
            set(self._as(self.portal_b, "smartpm.reading").mapped("reading_time")),
            {self.times[15], self.times[5]},
        )

    def test_alarms_are_the_tenants_own_periods_only(self):
        alarms_a = self._as(self.portal_user, "smartpm.alarm")
        alarms_b = self._as(self.portal_b, "smartpm.alarm")
        self.assertEqual(alarms_a.mapped("alarm_type"), ["low_credit"])
        self.assertEqual(alarms_b.mapped("alarm_type"), ["zero_credit"])
        self.assertEqual(alarms_b.sudo().tenant_id, self.tenant_b)

    def test_consumption_is_the_tenants_own_days_only(self):
        days_a = set(self._as(self.portal_user, "smartpm.consumption.daily").mapped("day"))
        days_b = set(self._as(self.portal_b, "smartpm.consumption.daily").mapped("day"))
        self.assertTrue(days_a and days_b)
        self.assertFalse(days_a & days_b)
        self.assertIn(self._local_day(25), days_a)  # A's first period
        self.assertIn(self._local_day(2), days_a)  # A's second period
        self.assertIn(self._local_day(10), days_b)  # B's period, not the gap of A's
        self.assertTrue(all(self._local_day(20) <= d <= self._local_day(3) for d in days_b))
        everything = self.env["smartpm.consumption.daily"].search(
            [("meter_id", "=", self.meter_a.id)]
        )
        self.assertEqual(len(everything), len(days_a) + len(days_b))

    def test_purchases_are_the_tenants_own_only(self):
        own = vend(self.env, self.meter_a, 10.0, "backoffice", "PERIOD-A1")
        self.meter_a.tenant_id = self.tenant_b
        theirs = vend(self.env, self.meter_a, 10.0, "backoffice", "PERIOD-B1")
        self.meter_a.tenant_id = self.tenant_a
        self.assertEqual(theirs.tenant_id, self.tenant_b)
        self.assertEqual(self._as(self.portal_user, "smartpm.credit.purchase"), own)
        self.assertEqual(self._as(self.portal_b, "smartpm.credit.purchase"), theirs)
        self._login()
        page = self.url_open(f"/my/meters/{self.meter_a.id}").text
        self.assertIn(own.name, page)
        self.assertNotIn(theirs.name, page)

    def test_editing_an_assignment_moves_its_rows_to_the_right_tenant(self):
        # B's period really started 16 days ago, not 20: the reading of -30 days stays A's,
        # and B's first days go back to A
        b_period = self.meter_a.assignment_ids.filtered(lambda a: a.tenant_id == self.tenant_b)
        first_a = self.meter_a.assignment_ids.sorted("date_start")[0]
        first_a.date_end = self.now - 14 * DAY
        b_period.date_start = self.now - 14 * DAY
        self.assertEqual(
            set(self._as(self.portal_user, "smartpm.reading").mapped("reading_time")),
            {self.times[30], self.times[15], self.times[1]},
        )
        days_b = set(self._as(self.portal_b, "smartpm.consumption.daily").mapped("day"))
        self.assertNotIn(self._local_day(16), days_b)

    # ------------------------------------------------------------------ HTTP, the portal
    def test_tenant_who_came_back_sees_both_periods_and_not_the_gap(self):
        self._login()
        page = self.url_open(f"/my/meters/{self.meter_a.id}").text
        # a day of A's first period (100 kWh over 15 days), a day of B's (50 kWh over 10)
        self.assertRegex(
            page,
            rf'data-period="{self._local_day(25).isoformat()}">\s*<td>[^<]*</td>\s*'
            r'<td class="text-end o_smartpm_kwh">\s*6\.667 kWh',
        )
        self.assertRegex(
            page,
            rf'data-period="{self._local_day(10).isoformat()}">\s*<td>[^<]*</td>\s*'
            r'<td class="text-end o_smartpm_kwh">\s*0\.000 kWh',
        )
        self.assertIn("Low credit on", page)  # A's own alarm
        self.assertNotIn("Zero credit on", page)  # B's, five days ago
        self.assertIn("300.000 kWh", page)  # A's last reading

    def test_old_tenant_no_longer_sees_the_meter(self):
        self.authenticate("tenant_b", "tenant_b-pw-123")
        self.assertEqual(self.url_open(f"/my/meters/{self.meter_a.id}").status_code, 404)
        listing = self.url_open("/my/meters").text
        self.assertIn(self.meter_b.serial_number, listing)
        self.assertNotIn(self.meter_a.serial_number, listing)
        counters = self.make_jsonrpc_request("/my/counters", {"counters": ["meter_count"]})
        self.assertEqual(counters["meter_count"], 1)

    def test_new_tenant_sees_nothing_of_the_previous_one(self):
        self.meter_b.assignment_ids.date_start = self.now - 30 * DAY
        self.meter_b.tenant_id = self.tenant_a  # A moves in on B's meter now
        ingest.ingest(
            self.env,
            [],
            [
                {
                    "meter_id": self.meter_b.id,
                    "log": "standard",
                    "code": 65,
                    "time": self.now - 2 * DAY,  # B's, before the move
                }
            ],
        )
        self.assertFalse(
            self._as(self.portal_user, "smartpm.alarm").filtered(
                lambda a: a.meter_id == self.meter_b
            )
        )
        alarm = self.env["smartpm.alarm"].search([("meter_id", "=", self.meter_b.id)])
        self.assertEqual(alarm.tenant_id, self.tenant_b)
        # nor is the new tenant e-mailed about the old tenant's zero credit
        self.assertFalse(
            self.env["mail.mail"].search(
                [("model", "=", "smartpm.alarm"), ("res_id", "=", alarm.id)]
            )
        )
        self._login()
        page = self.url_open(f"/my/meters/{self.meter_b.id}").text
        self.assertNotIn("Zero credit on", page)
        self.assertEqual(
            self.env["smartpm.alarm"]
            .with_user(self.portal_user)
            .search([("meter_id", "=", self.meter_b.id)]),
            self.env["smartpm.alarm"],
        )
