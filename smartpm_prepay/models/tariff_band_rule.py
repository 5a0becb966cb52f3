from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..services import tou

# set while a time-of-use version saves its own lines: its constraints check the hours once
# the whole save is done (a line deleted and another added in one save is no gap)
VERSION_SAVE = "smartpm_tou_version_save"


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

    @api.model_create_multi
    def create(self, vals_list):
        rules = super().create(vals_list)
        self._after_change(rules.version_id)
        return rules

    def write(self, vals):
        versions = self.version_id
        res = super().write(vals)
        self._after_change(versions | self.version_id)
        return res

    def unlink(self):
        versions = self.version_id
        res = super().unlink()
        self._after_change(versions)
        return res

    def _after_change(self, versions):
        """Band hours changed on their own (not in their version's form, whose save checks
        them): every minute must still be in one band, and the meters get the calendar."""
        if self.env.context.get(VERSION_SAVE):
            return
        versions = versions.exists()
        for version in versions:
            error = tou.coverage_error(version)
            if error:
                raise ValidationError(error)
        versions._push_calendars()
