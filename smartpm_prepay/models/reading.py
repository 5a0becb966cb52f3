from odoo import api, fields, models
from odoo.tools.sql import column_exists

from ..services import tenant_periods


class SmartpmReading(models.Model):
    """One value read from one meter. Written in bulk by the job engine's ``ingest``."""

    _name = "smartpm.reading"
    _description = "Meter reading"
    _order = "reading_time desc, id desc"
    _log_access = True

    # no index of its own: the unique (meter_id, obis, reading_time) index serves meter lookups
    meter_id = fields.Many2one("smartpm.meter", required=True, ondelete="cascade")
    company_id = fields.Many2one(related="meter_id.company_id", store=True)
    # the tenant holding the meter at the reading's time, set at ingest (tenant_periods);
    # no index of its own: the portal reads one meter at a time (the unique index), and
    # ingest stays one index lighter
    tenant_id = fields.Many2one("res.partner", readonly=True)
    obis = fields.Char(string="OBIS", required=True)
    obis_name = fields.Char(string="Quantity", compute="_compute_obis_name")
    reading_time = fields.Datetime(required=True)
    value = fields.Float(required=True, digits=(16, 4))
    unit = fields.Char()
    source = fields.Char(default="bridge", help="job, task, schedule or bridge (batch ingest)")
    job_id = fields.Many2one("smartpm.meter.job", index="btree_not_null", ondelete="set null")

    def _auto_init(self):
        backfill = not column_exists(self.env.cr, self._table, "tenant_id")
        res = super()._auto_init()
        if backfill:  # readings stored before readings knew their tenant
            tenant_periods.refresh_timed(self.env, self._table)
        return res

    @api.model_create_multi
    def create(self, vals_list):
        readings = super().create(vals_list)
        readings.flush_recordset()
        tenant_periods.refresh_timed(self.env, self._table, ids=readings.ids)
        readings.invalidate_recordset(["tenant_id"])
        return readings

    @api.depends("obis")
    def _compute_obis_name(self):
        names = self.env["smartpm.obis.object"]._names_by_obis(set(self.mapped("obis")))
        for reading in self:
            reading.obis_name = names.get(reading.obis) or reading.obis

    _sql_constraints = [
        (
            "meter_obis_time_uniq",
            "unique(meter_id, obis, reading_time)",
            "This reading is stored already.",
        ),
    ]
