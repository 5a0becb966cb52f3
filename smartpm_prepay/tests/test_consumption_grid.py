from datetime import date

from odoo.tests import new_test_user, tagged

from ..services import ingest
from .stats_common import StatsCase

D1, D2 = date(2026, 3, 1), date(2026, 3, 2)
MONTH = [("day", ">=", "2026-03-01"), ("day", "<=", "2026-03-31")]


@tagged("post_install", "-at_install")
class TestConsumptionPerTransformer(StatsCase):
    """Statistics that neither filter nor group by meter or tenant read the per-transformer
    sums; they must give what the meters' daily rows give."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.meters = cls._meter("GRID-1", state="active") | cls._meter("GRID-2", state="active")
        cls.Daily = cls.env["smartpm.consumption.daily"]
        ingest.ingest(
            cls.env,
            [
                {
                    "meter_id": meter.id,
                    "obis": "1.0.1.8.0.255",
                    "value": wh,
                    "unit": "Wh",
                    "time": t,
                    "source": "job",
                }
                for meter, base in zip(cls.meters, (1_000, 5_000), strict=True)
                for t, wh in (
                    ("2026-03-01T00:00:00", base),
                    ("2026-03-02T00:00:00", base + 4_000),
                    ("2026-03-03T00:00:00", base + 10_000),
                )
            ],
            [],
        )
        cls.Daily._rebuild_days(D1, D2)

    def _both(self, domain, groupby, aggregates):
        """The routed answer and the one from the meters' rows."""
        routed = self.Daily._read_group(domain, groupby, aggregates)
        args = self.Daily._grid_read_group_args(domain, groupby, aggregates, (), None)
        self.assertIsNotNone(args, "answered from the per-transformer sums")
        # a leaf on the meter keeps the same rows but forces the meters' table
        direct = self.Daily._read_group([*domain, ("meter_id", "!=", False)], groupby, aggregates)
        return routed, direct

    def test_pivot_by_line_transformer_and_month_matches_the_meters_rows(self):
        routed, direct = self._both(
            [("is_check_meter", "=", False), *MONTH],
            ["line_id", "transformer_id", "day:month"],
            ["kwh:sum", "__count"],
        )
        self.assertEqual(routed, direct)
        mine = [row for row in routed if row[1] == self.transformer]
        self.assertEqual([(row[3], row[4]) for row in mine], [(20.0, 4)])

    def test_graph_per_day_matches_the_meters_rows(self):
        routed, direct = self._both(MONTH, ["day:day"], ["kwh:sum"])
        self.assertEqual(routed, direct)

    def test_grouping_by_tenant_reads_the_meters_rows(self):
        self.assertIsNone(
            self.Daily._grid_read_group_args(MONTH, ["tenant_id"], ["kwh:sum"], (), None)
        )

    def _day_total(self, Daily=None):
        domain = [("day", "=", D1), ("transformer_id", "=", self.transformer.id)]
        Daily = self.Daily if Daily is None else Daily
        return Daily._read_group(domain, [], ["kwh:sum"])[0][0]

    def test_a_row_written_by_hand_is_in_the_sums(self):
        self.assertEqual(self._day_total(), 8)
        row = self.Daily.search([("meter_id", "=", self.meters[0].id), ("day", "=", D1)])
        row.kwh = 100
        self.assertEqual(self._day_total(), 104)
        row.unlink()
        self.assertEqual(self._day_total(), 4)

    def test_a_cashier_reads_the_sums_of_their_company_only(self):
        cashier = new_test_user(self.env, "t_cash_grid", groups="smartpm_prepay.group_cashier")
        other = self.env["res.company"].create({"name": "Other owner"})
        self.env["smartpm.consumption.grid.daily"].sudo().create(
            {
                "day": D1,
                "company_id": other.id,
                "transformer_id": self.transformer.id,
                "kwh": 999,
                "meter_count": 1,
            }
        )
        self.assertEqual(self._day_total(self.Daily.with_user(cashier)), 8)

    def test_top_consumers_are_the_biggest_tenants_only(self):
        day = date(2026, 3, 10)
        for kwh in (5, 30, 12):
            meter = self._meter(f"TOP-{kwh}", state="active")
            self.Daily.create(
                {
                    "meter_id": meter.id,
                    "day": day,
                    "kwh": kwh,
                    "tenant_id": self._tenant(f"Top {kwh}").id,
                    "company_id": self.env.company.id,
                }
            )
        result = self.Daily.with_context(smartpm_top_groups=2).web_read_group(
            [("day", "=", day)], ["kwh:sum"], ["tenant_id"], lazy=False
        )
        self.assertEqual([g["kwh"] for g in result["groups"]], [30, 12])
        self.assertEqual(result["length"], 2)
        everyone = self.Daily.web_read_group(
            [("day", "=", day)], ["kwh:sum"], ["tenant_id"], lazy=False
        )
        self.assertEqual(everyone["length"], 3)
