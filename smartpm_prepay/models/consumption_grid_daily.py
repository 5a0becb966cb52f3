from odoo import fields, models


class SmartpmConsumptionGridDaily(models.Model):
    """Daily consumption summed per transformer, line and property (check meters apart):
    what the statistics views read when they neither filter nor group by meter or tenant.
    Kept by smartpm.consumption.daily (its compute, create, write and unlink)."""

    _name = "smartpm.consumption.grid.daily"
    _description = "Daily consumption per transformer"
    _order = "day desc, transformer_id"
    _rec_name = "transformer_id"

    day = fields.Date(required=True, readonly=True)
    company_id = fields.Many2one("res.company", required=True, readonly=True)
    transformer_id = fields.Many2one("smartpm.transformer", readonly=True)
    line_id = fields.Many2one("smartpm.line", readonly=True)
    site_id = fields.Many2one("smartpm.site", string="Property", readonly=True)
    is_check_meter = fields.Boolean(readonly=True)
    kwh = fields.Float(string="Energy (kWh)", digits=(16, 3), readonly=True, aggregator="sum")
    meter_count = fields.Integer(readonly=True, aggregator="sum")

    def init(self):
        # a month of one company, and a transformer's day for the energy balance
        self.env.cr.execute(
            f"""CREATE INDEX IF NOT EXISTS {self._table}_company_day_idx
                ON {self._table} (company_id, day)"""
        )
        self.env.cr.execute(
            f"""CREATE INDEX IF NOT EXISTS {self._table}_transformer_day_idx
                ON {self._table} (transformer_id, day)"""
        )
