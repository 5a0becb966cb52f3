from datetime import date

from lxml import etree

from odoo import fields
from odoo.tests import new_test_user, tagged
from odoo.tools.safe_eval import safe_eval

from ..models.alarm import THEFT_TYPES
from ..services import ingest
from .stats_common import StatsCase


@tagged("post_install", "-at_install")
class TestOwnerDashboard(StatsCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cashier = new_test_user(cls.env, "t_cash_dash", groups="smartpm_prepay.group_cashier")
        cls.meter = cls._meter("DASH-1", state="active")

    def _dashboard(self, user=None):
        action = self.env["smartpm.dashboard"].with_user(user or self.cashier).action_open()
        return (
            self.env["smartpm.dashboard"].with_user(user or self.cashier).browse(action["res_id"])
        )

    def test_dashboard_counts_offline_meters_and_open_alarms(self):
        before = self._dashboard()
        offline, alarms = before.meters_offline, before.alarms_open
        self.meter.sudo().write({"online_state": "offline"})
        self.env["smartpm.alarm"].create(
            {
                "meter_id": self.meter.id,
                "alarm_type": "cover_open",
                "meter_time": fields.Datetime.now(),
            }
        )
        after = self._dashboard()
        self.assertEqual(after.meters_offline, offline + 1)
        self.assertEqual(after.alarms_open, alarms + 1)
        self.assertEqual(after.alarms_theft, before.alarms_theft + 1)

    def test_dashboard_counts_forged_tokens_as_theft(self):
        before = self._dashboard().alarms_theft
        for alarm_type in ("token_forged", "token_other_meter"):
            self.env["smartpm.alarm"].create(
                {
                    "meter_id": self.meter.id,
                    "alarm_type": alarm_type,
                    "meter_time": fields.Datetime.now(),
                }
            )
        self.assertEqual(self._dashboard().alarms_theft, before + 2)
        # the alarm list's filter counts the same alarms
        view = self.env.ref("smartpm_prepay.view_alarm_search")
        domain = etree.fromstring(view.arch).find(".//filter[@name='filter_theft']").get("domain")
        self.assertEqual(set(safe_eval(domain)[0][2]), set(THEFT_TYPES))

    def test_dashboard_sums_this_months_consumption(self):
        before = self._dashboard().consumed_month_kwh
        today = fields.Date.context_today(self.env["smartpm.dashboard"])
        self.env["smartpm.consumption.daily"].create(
            {
                "meter_id": self.meter.id,
                "day": today,
                "kwh": 12.5,
                "company_id": self.env.company.id,
            }
        )
        self.assertAlmostEqual(self._dashboard().consumed_month_kwh, before + 12.5)

    def test_sales_tile_follows_the_purchase_model(self):
        dash = self._dashboard(self.env.user)
        self.assertEqual(dash.has_sales, "smartpm.credit.purchase" in self.env)
        if not dash.has_sales:
            self.assertFalse(dash.action_view_sales())


@tagged("post_install", "-at_install")
class TestStatisticsViews(StatsCase):
    def test_statistics_views_load_for_a_cashier(self):
        cashier = new_test_user(self.env, "t_cash_views", groups="smartpm_prepay.group_cashier")
        for model, views in [
            ("smartpm.consumption.daily", ["pivot", "graph", "list", "search"]),
            ("smartpm.energy.balance", ["list", "graph", "pivot"]),
            ("smartpm.load.curve", ["graph", "list", "search"]),
            ("smartpm.reading.task", ["list", "form", "search"]),
            ("smartpm.alarm", ["list", "kanban", "form", "search"]),
            ("smartpm.dashboard", ["form"]),
        ]:
            result = self.env[model].with_user(cashier).get_views([(False, v) for v in views])
            self.assertEqual(set(result["views"]), set(views), model)

    def test_meter_load_curve_button_filters_on_the_meter(self):
        meter = self._meter("CURVE-1", state="active")
        ingest.ingest(
            self.env,
            [
                {
                    "meter_id": meter.id,
                    "obis": "1.0.1.8.0.255",
                    "value": v,
                    "unit": "Wh",
                    "time": t,
                    "source": "profile",
                }
                for t, v in [
                    ("2026-03-01T00:00:00", 0),
                    ("2026-03-01T00:15:00", 250),
                    ("2026-03-01T00:30:00", 750),
                ]
            ],
            [],
        )
        cashier = new_test_user(self.env, "t_cash_curve", groups="smartpm_prepay.group_cashier")
        action = meter.with_user(cashier).action_view_load_curve()
        curve = self.env["smartpm.load.curve"].with_user(cashier).search(action["domain"])
        self.assertEqual(
            self.env["smartpm.reading"]
            .with_user(cashier)
            .search_count([("meter_id", "=", meter.id)]),
            3,
            "ingested readings carry the meter's company for the record rule",
        )
        self.assertEqual(curve.mapped("slot"), ["2026-03-01 00:15", "2026-03-01 00:30"])
        self.assertEqual(curve.mapped("kwh"), [0.25, 0.5])
        self.assertEqual(curve.mapped("kw"), [1.0, 2.0])

    def test_consumption_pivot_groups_by_line_and_month(self):
        meter = self._meter("PIV-1", state="active")
        Daily = self.env["smartpm.consumption.daily"]
        ingest.ingest(
            self.env,
            [
                {"meter_id": meter.id, "obis": "1.0.1.8.0.255", "value": v, "unit": "Wh", "time": t}
                for t, v in [("2026-01-31T00:00:00", 0), ("2026-02-02T00:00:00", 4000)]
            ],
            [],
        )
        Daily._rebuild_days(date(2026, 1, 31), date(2026, 2, 1))
        groups = Daily._read_group(
            [("meter_id", "=", meter.id)], ["line_id", "day:month"], ["kwh:sum"]
        )
        self.assertEqual([(g[0], g[2]) for g in groups], [(self.line, 2.0), (self.line, 2.0)])


@tagged("post_install", "-at_install")
class TestScheduledBillingRead(StatsCase):
    def test_billing_read_stores_numbers_and_credit_in_kwh(self):
        meter = self._meter("BILL-1", state="active")
        job = meter._enqueue_job("read", {"objects": [], "schedule": "billing"})
        now = "2026-11-20T10:00:00Z"
        self._complete(
            job,
            {
                "readings": [
                    {"obis": "0.0.1.0.0.255", "value": "07ea0b1a0407342c00000000", "time": now},
                    {"obis": "1.0.1.8.0.255", "value": 13733, "unit": "Wh", "time": now},
                    {"obis": "0.0.19.10.0.255", "value": 36267, "unit": "", "time": now},
                ],
                "errors": {},
                "profiles": {},
            },
        )
        readings = self.env["smartpm.reading"].search([("meter_id", "=", meter.id)])
        self.assertEqual(sorted(readings.mapped("obis")), ["0.0.19.10.0.255", "1.0.1.8.0.255"])
        self.assertAlmostEqual(meter.credit_kwh, 36.267)
