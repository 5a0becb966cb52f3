from datetime import date, datetime

from odoo.tests import tagged

from ..services import ingest
from .stats_common import StatsCase

D1, D2, D3, D4 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)


@tagged("post_install", "-at_install")
class TestDailyConsumption(StatsCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.meter = cls._meter("CONS-1", state="active")
        cls.Daily = cls.env["smartpm.consumption.daily"]

    def _readings(self, meter, points, source="job"):
        """points: [(iso time, Wh)]"""
        ingest.ingest(
            self.env,
            [
                {
                    "meter_id": meter.id,
                    "obis": "1.0.1.8.0.255",
                    "value": v,
                    "unit": "Wh",
                    "time": t,
                    "source": source,
                }
                for t, v in points
            ],
            [],
        )

    def _kwh(self, meter, date_from=D1, date_to=D4):
        self.Daily._rebuild_days(date_from, date_to)
        rows = self.Daily.search([("meter_id", "=", meter.id)])
        return {r.day: r.kwh for r in rows}

    def test_daily_reads_give_register_differences(self):
        self._readings(
            self.meter,
            [
                ("2026-03-01T00:00:00", 10_000),
                ("2026-03-02T00:00:00", 15_000),
                ("2026-03-03T00:00:00", 22_500),
            ],
        )
        self.assertEqual(self._kwh(self.meter), {D1: 5.0, D2: 7.5})

    def test_missing_day_is_spread_over_the_gap(self):
        # no reading at the start of 3 March: 8 kWh over two days, 4 kWh each
        self._readings(
            self.meter,
            [
                ("2026-03-01T00:00:00", 10_000),
                ("2026-03-02T00:00:00", 14_000),
                ("2026-03-04T00:00:00", 22_000),
            ],
        )
        self.assertEqual(self._kwh(self.meter), {D1: 4.0, D2: 4.0, D3: 4.0})

    def test_reading_inside_the_day_splits_by_time(self):
        self._readings(
            self.meter,
            [
                ("2026-03-01T12:00:00", 0),
                ("2026-03-02T12:00:00", 24_000),
            ],
        )
        self.assertEqual(self._kwh(self.meter), {D1: 12.0, D2: 12.0})

    def test_meter_replaced_mid_period_never_counts_negative(self):
        # the register restarts from zero on 2 March (new meter): the day counts its 1.5 kWh
        self._readings(
            self.meter,
            [
                ("2026-03-01T00:00:00", 900_000),
                ("2026-03-02T00:00:00", 905_000),
                ("2026-03-03T00:00:00", 1_500),
                ("2026-03-04T00:00:00", 4_500),
            ],
        )
        self.assertEqual(self._kwh(self.meter), {D1: 5.0, D2: 1.5, D3: 3.0})

    def test_period_edges_use_readings_outside_the_period(self):
        self._readings(
            self.meter,
            [
                ("2026-02-28T00:00:00", 0),
                ("2026-03-02T00:00:00", 10_000),
            ],
        )
        self.assertEqual(self._kwh(self.meter, D1, D1), {D1: 5.0})

    def test_recompute_replaces_old_figures(self):
        self._readings(self.meter, [("2026-03-01T00:00:00", 0), ("2026-03-02T00:00:00", 1_000)])
        self._kwh(self.meter)
        self._readings(self.meter, [("2026-03-01T12:00:00", 800)])
        self.assertEqual(self._kwh(self.meter), {D1: 1.0})
        self.assertEqual(self.Daily.search_count([("meter_id", "=", self.meter.id)]), 1)

    def test_days_follow_the_company_time_zone(self):
        self.env.company.partner_id.tz = "Africa/Lagos"  # UTC+1, no DST
        # 23:00 UTC on 28 Feb is midnight of 1 March in Lagos
        self._readings(
            self.meter,
            [
                ("2026-02-28T23:00:00", 0),
                ("2026-03-01T23:00:00", 6_000),
            ],
        )
        self.assertEqual(self._kwh(self.meter), {D1: 6.0})

    def test_consumption_goes_to_the_tenant_of_the_day(self):
        first, second = self._tenant("First"), self._tenant("Second")
        self.meter.tenant_id = first
        self.env["smartpm.meter.assignment"].search([("meter_id", "=", self.meter.id)]).write(
            {"date_start": datetime(2026, 2, 1)}
        )
        self.meter.tenant_id = second
        self.env["smartpm.meter.assignment"].search(
            [("meter_id", "=", self.meter.id), ("tenant_id", "=", first.id)]
        ).date_end = datetime(2026, 3, 2, 6)
        self.env["smartpm.meter.assignment"].search(
            [("meter_id", "=", self.meter.id), ("tenant_id", "=", second.id)]
        ).date_start = datetime(2026, 3, 2, 6)
        self._readings(
            self.meter,
            [
                ("2026-03-01T00:00:00", 0),
                ("2026-03-02T00:00:00", 1_000),
                ("2026-03-03T00:00:00", 2_000),
            ],
        )
        self.Daily._rebuild_days(D1, D2)
        rows = self.Daily.search([("meter_id", "=", self.meter.id)], order="day")
        self.assertEqual(rows.mapped("tenant_id"), first | second)
        self.assertEqual(rows[0].tenant_id, first)

    def test_load_profile_result_is_stored_as_register_readings(self):
        job = self.meter._enqueue_job(
            "read", {"objects": [{"obis": "1.0.99.1.0.255", "ic": 7, "attribute": 2}]}
        )
        self._complete(
            job,
            {
                "readings": [],
                "errors": {},
                "profiles": {
                    "1.0.99.1.0.255": [
                        ["2026-03-01T00:00:00Z", 1000, 5],
                        ["2026-03-01T00:15:00Z", 1400, 5],
                    ]
                },
            },
        )
        readings = self.env["smartpm.reading"].search(
            [("meter_id", "=", self.meter.id), ("obis", "=", "1.0.1.8.0.255")],
            order="reading_time",
        )
        self.assertEqual(readings.mapped("value"), [1000, 1400])
        self.assertEqual(set(readings.mapped("source")), {"profile"})
        curve = self.env["smartpm.load.curve"].search([("meter_id", "=", self.meter.id)])
        self.assertAlmostEqual(curve.kwh, 0.4)
        self.assertAlmostEqual(curve.kw, 1.6)
