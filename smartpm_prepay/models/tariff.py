from odoo import fields, models


class SmartpmTariff(models.Model):
    """Price of energy. The selling issue adds block tiers and money <-> kWh conversion."""

    _name = "smartpm.tariff"
    _description = "Electricity tariff"
    _order = "name"
    _check_company_auto = True

    name = fields.Char(required=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    # Float, not Monetary: energy prices need more decimals than the currency's rounding.
    price_per_kwh = fields.Float(string="Price per kWh", required=True, digits=(16, 4))

    _sql_constraints = [
        ("price_positive", "CHECK(price_per_kwh > 0)", "The price per kWh must be positive."),
    ]
