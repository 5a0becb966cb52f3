from odoo import fields, models, tools
from odoo.tools import SQL

from ..services.obis import ENERGY_IMPORT


class SmartpmLoadCurve(models.Model):
    """Energy per load-profile interval of each meter (from its profile captures)."""

    _name = "smartpm.load.curve"
    _description = "Load curve"
    _auto = False
    _order = "reading_time"
    _rec_name = "meter_id"

    meter_id = fields.Many2one("smartpm.meter", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    reading_time = fields.Datetime(string="Time", readonly=True)
    # The graph view groups datetimes by day at the finest: the slot is the curve's x axis,
    # in the company's time zone like the daily consumption.
    slot = fields.Char(string="Quarter-hour", readonly=True)
    kwh = fields.Float(string="Energy (kWh)", readonly=True, digits=(16, 3))
    kw = fields.Float(string="Mean power (kW)", readonly=True, aggregator="avg", digits=(16, 3))

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        # The meter filter of a search is pushed below the window (it is the partition key).
        self.env.cr.execute(
            SQL(
                """
            CREATE VIEW %s AS (
                SELECT s.id, s.meter_id, s.company_id, s.reading_time, s.kwh,
                       s.kwh * 3600.0 / NULLIF(s.seconds, 0) AS kw,
                       to_char((s.reading_time AT TIME ZONE 'UTC')
                               AT TIME ZONE COALESCE(p.tz, 'UTC'), 'YYYY-MM-DD HH24:MI') AS slot
                  FROM (
                    SELECT r.id, r.meter_id, m.company_id, r.reading_time,
                           GREATEST(r.value - lag(r.value) OVER w, 0) / 1000.0 AS kwh,
                           extract(epoch FROM r.reading_time - lag(r.reading_time) OVER w)
                               AS seconds
                      FROM smartpm_reading r
                      JOIN smartpm_meter m ON m.id = r.meter_id
                     WHERE r.obis = %s AND r.source = 'profile'
                    WINDOW w AS (PARTITION BY r.meter_id ORDER BY r.reading_time)
                  ) s
                  JOIN res_company c ON c.id = s.company_id
                  JOIN res_partner p ON p.id = c.partner_id
                 WHERE s.seconds IS NOT NULL
            )
            """,
                SQL.identifier(self._table),
                ENERGY_IMPORT,
            )
        )
