from odoo import fields, models


class SmartpmTariffBandRule(models.Model):
    """When a band applies: hours of some weekdays, in a season (or all seasons)."""

    _name = "smartpm.tariff.band.rule"
    _description = "Time-of-use band hours"
    _order = "version_id, season_id, start_hour"

    version_id = fields.Many2one(
        "smartpm.tariff.tou.version", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="version_id.company_id", store=True)
    season_id = fields.Many2one(
        "smartpm.tariff.season",
        domain="[('version_id', '=', version_id)]",
        help="Empty: in every season of the version.",
    )
    band_id = fields.Many2one(
        "smartpm.tariff.band",
        required=True,
        domain="[('version_id', '=', version_id)]",
        help="The band (and so the price) in force during these hours.",
    )
    mon = fields.Boolean(default=True)
    tue = fields.Boolean(default=True)
    wed = fields.Boolean(default=True)
    thu = fields.Boolean(default=True)
    fri = fields.Boolean(default=True)
    sat = fields.Boolean(default=True)
    sun = fields.Boolean(default=True)
    start_hour = fields.Float(
        string="From", required=True, help="Local time the band starts (00:00 to 23:59)."
    )
    end_hour = fields.Float(
        string="To",
        required=True,
        default=24.0,
        help="Local time the band ends, excluded; 24:00 is midnight at the end of the day. "
        "A band across midnight takes two lines (22:00-24:00 and 00:00-06:00).",
    )
