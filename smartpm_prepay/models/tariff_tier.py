from odoo import fields, models


class SmartpmTariffTier(models.Model):
    _name = "smartpm.tariff.tier"
    _description = "Tariff block tier"
    _order = "tariff_id, from_kwh"

    tariff_id = fields.Many2one("smartpm.tariff", required=True, ondelete="cascade", index=True)
    from_kwh = fields.Float(
        string="From (kWh in the month)",
        required=True,
        digits=(16, 2),
        help="This price applies to the kWh bought in the month above this quantity.",
    )
    price_per_kwh = fields.Float(string="Price per kWh", required=True, digits=(16, 4))

    _sql_constraints = [
        ("from_positive", "CHECK(from_kwh >= 0)", "A tier starts at 0 kWh or more."),
        ("price_positive", "CHECK(price_per_kwh > 0)", "The price per kWh must be positive."),
        (
            "from_uniq",
            "unique(tariff_id, from_kwh)",
            "Two tiers of a tariff start at the same kWh.",
        ),
    ]
