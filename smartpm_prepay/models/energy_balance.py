from datetime import timedelta

from odoo import api, fields, models, tools

from ..services import local_time


class SmartpmEnergyBalance(models.Model):
    """Per transformer and day: its check meter against the sum of its meters."""

    _name = "smartpm.energy.balance"
    _description = "Transformer energy balance"
    _auto = False
    _order = "day desc, transformer_id"
    _rec_name = "transformer_id"

    transformer_id = fields.Many2one("smartpm.transformer", readonly=True)
    check_meter_id = fields.Many2one("smartpm.meter", readonly=True)
    line_id = fields.Many2one("smartpm.line", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    day = fields.Date(readonly=True)
    check_kwh = fields.Float(string="Check meter (kWh)", readonly=True, digits=(16, 3))
    meters_kwh = fields.Float(string="Meters (kWh)", readonly=True, digits=(16, 3))
    loss_kwh = fields.Float(string="Loss (kWh)", readonly=True, digits=(16, 3))
    loss_pct = fields.Float(string="Loss (%)", readonly=True, aggregator="avg", digits=(16, 2))
    threshold_pct = fields.Float(string="Threshold (%)", readonly=True, aggregator="max")
    meter_count = fields.Integer(string="Meters reporting", readonly=True)

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            f"""
            CREATE VIEW {self._table} AS (
                SELECT c.id AS id, t.id AS transformer_id, t.check_meter_id, t.line_id,
                       t.company_id, c.day, c.kwh AS check_kwh,
                       COALESCE(g.kwh, 0) AS meters_kwh,
                       c.kwh - COALESCE(g.kwh, 0) AS loss_kwh,
                       CASE WHEN c.kwh > 0
                            THEN 100.0 * (c.kwh - COALESCE(g.kwh, 0)) / c.kwh END
                            AS loss_pct,
                       t.loss_threshold_pct AS threshold_pct,
                       COALESCE(g.meter_count, 0) AS meter_count
                  FROM smartpm_transformer t
                  JOIN smartpm_consumption_daily c ON c.meter_id = t.check_meter_id
                  -- the transformer's other meters from their per-transformer sums (no
                  -- GROUP BY here, so a filter on the day reaches the indexes)
                  LEFT JOIN LATERAL (
                      SELECT sum(g.kwh) AS kwh, sum(g.meter_count) AS meter_count
                        FROM smartpm_consumption_grid_daily g
                       WHERE g.transformer_id = t.id AND g.day = c.day
                         AND NOT g.is_check_meter) g ON TRUE
            )
            """
        )

    @api.model
    def _raise_imbalance_alarms(self, date_from, date_to):
        """An energy-imbalance alarm for each transformer day whose loss is above threshold."""
        rows = (
            self.sudo()
            .search([("day", ">=", date_from), ("day", "<=", date_to), ("check_kwh", ">", 0)])
            .filtered(lambda b: b.loss_pct > b.threshold_pct)
        )
        alarms = []
        for row in rows:
            start = local_time.day_start_utc(row.company_id, row.day)
            alarms.append(
                {
                    "meter_id": row.check_meter_id.id,
                    "alarm_type": "energy_imbalance",
                    "meter_time": start,
                    "transformer_id": row.transformer_id.id,
                    "period_start": start,
                    "period_end": start + timedelta(days=1),
                    "missing_kwh": row.loss_kwh,
                    "loss_pct": row.loss_pct,
                    "description": self.env._(
                        "Transformer %(tr)s on %(day)s: check meter %(check).3f kWh, its "
                        "%(n)s meters %(meters).3f kWh; %(missing).3f kWh missing "
                        "(%(pct).2f%% > %(threshold).2f%%).",
                        tr=row.transformer_id.display_name,
                        day=row.day,
                        check=row.check_kwh,
                        n=row.meter_count,
                        meters=row.meters_kwh,
                        missing=row.loss_kwh,
                        pct=row.loss_pct,
                        threshold=row.threshold_pct,
                    ),
                }
            )
        return self.env["smartpm.alarm"].sudo()._create_from_events(alarms)

    @api.model
    def _cron_check_balance(self, days=3):
        """Daily: the last ``days`` complete days (late readings get a second chance)."""
        today = fields.Date.context_today(self)
        self.env["smartpm.consumption.daily"]._cron_compute_recent(days=days + 1)
        return self._raise_imbalance_alarms(today - timedelta(days=days), today - timedelta(days=1))
