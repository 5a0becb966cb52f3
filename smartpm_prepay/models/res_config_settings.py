from odoo import fields, models

RETENTION_PARAM = "smartpm_prepay.job_retention_days"
DEFAULT_RETENTION_DAYS = 90


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
    smartpm_quick_amounts = fields.Char(related="company_id.smartpm_quick_amounts", readonly=False)
    smartpm_prepayment_account_id = fields.Many2one(
        related="company_id.smartpm_prepayment_account_id", readonly=False
    )
    smartpm_energy_income_account_id = fields.Many2one(
        related="company_id.smartpm_energy_income_account_id", readonly=False
    )
    smartpm_debt_account_id = fields.Many2one(
        related="company_id.smartpm_debt_account_id", readonly=False
    )
    smartpm_debt_fee_account_id = fields.Many2one(
        related="company_id.smartpm_debt_fee_account_id", readonly=False
    )
    smartpm_debt_damage_account_id = fields.Many2one(
        related="company_id.smartpm_debt_damage_account_id", readonly=False
    )
    smartpm_recognition_journal_id = fields.Many2one(
        related="company_id.smartpm_recognition_journal_id", readonly=False
    )
    smartpm_recognition_period = fields.Selection(
        related="company_id.smartpm_recognition_period", readonly=False
    )
    smartpm_job_retention_days = fields.Integer(
        string="Keep finished meter jobs (days)",
        config_parameter=RETENTION_PARAM,
        default=DEFAULT_RETENTION_DAYS,
        help="Done, failed and cancelled jobs older than this are deleted every night "
        "(their readings stay). Credit deliveries and reading tasks keep their jobs. "
        "0 keeps every job.",
    )
