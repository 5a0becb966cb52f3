from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestIndexes(TransactionCase):
    """The indexes that keep one database with 100,000 meters fast (bench/gen_scale.py)."""

    def _indexes(self, table):
        self.env.cr.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", (table,)
        )
        return dict(self.env.cr.fetchall())

    def test_claim_uses_a_partial_index_on_open_jobs(self):
        definition = self._indexes("smartpm_meter_job")["smartpm_meter_job_due_idx"]
        self.assertIn("(priority, id)", definition)
        self.assertIn("WHERE", definition)

    def test_readings_are_unique_per_meter_obis_and_time(self):
        definition = self._indexes("smartpm_reading")["smartpm_reading_meter_obis_time_uniq"]
        self.assertIn("UNIQUE", definition)
        self.assertIn("(meter_id, obis, reading_time)", definition)

    def test_one_open_assignment_per_meter_is_an_index(self):
        definition = self._indexes("smartpm_meter_assignment")["smartpm_meter_assignment_one_open"]
        self.assertIn("UNIQUE", definition)
        self.assertIn("date_end IS NULL", definition)

    def test_meter_serial_and_tenant_lookups_are_indexed(self):
        meter = self._indexes("smartpm_meter")
        self.assertIn("smartpm_meter_serial_number_uniq", meter)
        self.assertTrue(any("(tenant_id)" in d for d in meter.values()))
        partner = self._indexes("res_partner")
        self.assertIn("res_partner_id_card_company_uniq", partner)
        self.assertTrue(any("(tenant_number)" in d for d in partner.values()))

    def test_statistics_of_a_month_read_indexed_per_transformer_sums(self):
        grid = self._indexes("smartpm_consumption_grid_daily")
        self.assertIn("(company_id, day)", grid["smartpm_consumption_grid_daily_company_day_idx"])
        self.assertIn(
            "(transformer_id, day)", grid["smartpm_consumption_grid_daily_transformer_day_idx"]
        )

    def test_a_month_per_tenant_reads_a_covering_index(self):
        definition = self._indexes("smartpm_consumption_daily")[
            "smartpm_consumption_daily_day_cover_idx"
        ]
        self.assertIn("(day) INCLUDE (tenant_id, meter_id, kwh, is_check_meter)", definition)
        self.assertNotIn(
            "smartpm_consumption_daily__day_index", self._indexes("smartpm_consumption_daily")
        )
