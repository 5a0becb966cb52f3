from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    smartpm_min_amount = fields.Monetary(
        string="Minimum credit sale", currency_field="currency_id", default=1.0
    )
    smartpm_max_amount = fields.Monetary(
        string="Maximum credit sale",
        currency_field="currency_id",
        default=10000.0,
        help="0 means no maximum.",
    )
    smartpm_alert_user_id = fields.Many2one(
        "res.users",
        string="Delivery alerts to",
        help="Operator who gets an activity when credit cannot be delivered to a meter. "
        "Empty: the first manager of prepaid electricity.",
    )

    _sql_constraints = [
        (
            "smartpm_amounts_order",
            "CHECK(smartpm_max_amount = 0 OR smartpm_min_amount <= smartpm_max_amount)",
            "The minimum credit sale must not exceed the maximum.",
        ),
    ]


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    smartpm_min_amount = fields.Monetary(
        related="company_id.smartpm_min_amount", readonly=False, currency_field="currency_id"
    )
    smartpm_max_amount = fields.Monetary(
        related="company_id.smartpm_max_amount", readonly=False, currency_field="currency_id"
    )
    smartpm_alert_user_id = fields.Many2one(
        related="company_id.smartpm_alert_user_id", readonly=False
    )
