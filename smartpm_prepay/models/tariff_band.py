from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..services import tou

MAX_RATE = 8  # the meter's energy registers per rate 1.0.1.8.1..8.255 (docs/meter-contract.md)


class SmartpmTariffBand(models.Model):
    """One price band of a time-of-use tariff version: a name, the meter's rate number
    (its register and its entry in the meter's charge table) and a price."""

    _name = "smartpm.tariff.band"
    _description = "Time-of-use price band"
    _order = "version_id, rate"

    version_id = fields.Many2one(
        "smartpm.tariff.tou.version", required=True, ondelete="cascade", index=True
    )
    tariff_id = fields.Many2one(related="version_id.tariff_id", store=True, index=True)
    company_id = fields.Many2one(related="version_id.company_id", store=True)
    name = fields.Char(
        required=True, help="As the tenant reads it on quotes and receipts: Peak, Off-peak."
    )
    rate = fields.Integer(
        string="Meter rate",
        required=True,
        default=1,
        help="The meter's tariff rate (1 to 8) this band is counted in: its energy register "
        "1.0.1.8.<rate>.255 and its line of the meter's charge table. Keep the same rate for "
        "the same band across versions.",
    )
    price_per_kwh = fields.Float(
        string="Price per kWh",
        required=True,
        digits=(16, 4),
        help="Price (taxes excluded) of one kWh consumed while this band is active. The "
        "meter deducts it from its credit as the energy flows.",
    )

    _sql_constraints = [
        (
            "rate_uniq",
            "unique(version_id, rate)",
            "Two bands of a version use the same meter rate.",
        ),
        ("price_positive", "CHECK(price_per_kwh > 0)", "The price per kWh must be positive."),
    ]

    @api.ondelete(at_uninstall=False)
    def _unlink_except_holiday_band(self):
        """A band its version charges public holidays in stays (emptying the version's
        holiday band silently would charge the holidays as weekdays): choose another one
        first. Deleting the version (or the tariff) takes its bands with it."""
        versions = (
            self.env["smartpm.tariff.tou.version"]
            .sudo()
            .search([("holiday_mode", "=", "band"), ("holiday_band_id", "in", self.ids)])
        )
        if versions:
            version = versions[0]
            raise UserError(
                self.env._(
                    "Tariff %(tariff)s, prices from %(date)s: band %(band)s is the band of "
                    "public holidays; choose another holiday band (or charge the holidays as "
                    "the weekday) before deleting it.",
                    tariff=version.tariff_id.name,
                    date=version.date_start,
                    band=version.holiday_band_id.name,
                )
            )

    @api.ondelete(at_uninstall=False)
    def _unlink_except_band_with_hours(self):
        """A band that still has hours stays (its hours would be left without a price):
        give them to another band first. Deleting the version takes both."""
        rules = self.env["smartpm.tariff.band.rule"].sudo().search([("band_id", "in", self.ids)])
        if rules:
            band = rules[0].band_id
            raise UserError(
                self.env._(
                    "Tariff %(tariff)s, prices from %(date)s: band %(band)s still has hours "
                    "(%(hours)s); give them to another band before deleting it.",
                    tariff=band.tariff_id.name,
                    date=band.version_id.date_start,
                    band=band.name,
                    hours=tou.band_hours_text(band.version_id, band),
                )
            )

    @api.constrains("rate", "price_per_kwh")
    def _check_rate(self):
        for band in self:
            if not 1 <= band.rate <= MAX_RATE:
                raise ValidationError(
                    self.env._(
                        "Tariff %(tariff)s, band %(band)s: the meter rate is 1 to %(max)s.",
                        tariff=band.tariff_id.name,
                        band=band.name,
                        max=MAX_RATE,
                    )
                )
            # the charge table holds long (int16) charge_per_unit x 10^price_scale
            error = tou.charge_table_error(band.version_id)
            if error:
                raise ValidationError(error)
