from odoo import api, fields, models
from odoo.exceptions import UserError

from ..services import calendars, wsse
from .res_company import FRIENDLY_DEFER

RETENTION_PARAM = "smartpm_prepay.job_retention_days"
DEFAULT_RETENTION_DAYS = 90
SOAP_BASE_URL_PARAM = "smartpm_prepay.soap_base_url"


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
    smartpm_soap_base_url = fields.Char(
        string="Bank SOAP address",
        config_parameter=SOAP_BASE_URL_PARAM,
        help="The address banks reach this Odoo at, e.g. https://vending.example.com: the "
        "WSDL tells the banks' software to send its requests there. Empty: the web base URL "
        "(Settings → Technical → System parameters → web.base.url).",
    )
    smartpm_soap_clock_skew_seconds = fields.Integer(
        string="Clock difference allowed (s)",
        config_parameter=wsse.CLOCK_SKEW_PARAM,
        default=wsse.DEFAULT_CLOCK_SKEW,
        help="How far a bank's clock may be ahead or behind this server's when its requests "
        "carry a WS-Security timestamp: a request created further in the future, or expired "
        "longer ago than this, is refused.",
    )
    smartpm_soap_message_lifetime_seconds = fields.Integer(
        string="Message lifetime (s)",
        config_parameter=wsse.LIFETIME_PARAM,
        default=wsse.DEFAULT_LIFETIME,
        help="A bank request whose timestamp has no expiry, or whose PasswordDigest was "
        "created longer ago than this (plus the clock difference), is refused as too old.",
    )
    smartpm_friendly_enabled = fields.Boolean(
        related="company_id.smartpm_friendly_enabled", readonly=False
    )
    smartpm_friendly_calendar_id = fields.Many2one(
        related="company_id.smartpm_friendly_calendar_id", readonly=False
    )
    smartpm_friendly_limit_kwh = fields.Float(
        related="company_id.smartpm_friendly_limit_kwh", readonly=False
    )
    smartpm_friendly_limit_money = fields.Monetary(
        related="company_id.smartpm_friendly_limit_money",
        readonly=False,
        currency_field="currency_id",
    )
    smartpm_tou_holidays_used = fields.Boolean(
        string="Time-of-use tariffs charge public holidays",
        compute="_compute_smartpm_tou_holidays_used",
        help="A time-of-use tariff of the company charges public holidays otherwise than as "
        "the weekday: its meters read the holidays of this calendar, friendly periods on or "
        "off.",
    )
    smartpm_clock_sync_days = fields.Integer(
        related="company_id.smartpm_clock_sync_days", readonly=False
    )
    smartpm_clock_drift_max_s = fields.Integer(
        related="company_id.smartpm_clock_drift_max_s", readonly=False
    )

    @api.depends("company_id")
    def _compute_smartpm_tou_holidays_used(self):
        Version = self.env["smartpm.tariff.tou.version"].sudo()
        for settings in self:
            settings.smartpm_tou_holidays_used = bool(
                Version.search_count(
                    [
                        ("tariff_id.company_id", "in", [False, settings.company_id.id]),
                        ("tariff_id.pricing_mode", "=", "tou"),
                        ("holiday_mode", "!=", "weekday"),
                    ],
                    limit=1,
                )
            )

    def action_smartpm_public_holidays(self):
        """The company's public holidays: the time off of its friendly-period calendar
        without a resource (what friendly periods and time-of-use tariffs read)."""
        self.ensure_one()
        calendar = self.smartpm_friendly_calendar_id
        if not calendar:
            raise UserError(
                self.env._(
                    "Company %s: choose the calendar of the public holidays first, then save.",
                    self.company_id.name,
                )
            )
        company = self.company_id
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Public holidays of %s", company.name),
            "res_model": "resource.calendar.leaves",
            "view_mode": "list,form",
            # the leaves friendly.holiday_dates counts, at any date
            "domain": [
                ("resource_id", "=", False),
                ("time_type", "=", "leave"),
                ("calendar_id", "in", [False, calendar.id]),
                ("company_id", "in", [False, company.id]),
            ],
            "context": {
                "default_calendar_id": calendar.id,
                "default_company_id": company.id,
                "default_time_type": "leave",
            },
        }

    @api.model_create_multi
    def create(self, vals_list):
        # the related fields are written to the company here already: pushes wait for
        # set_values, so that the friendly settings saved together make one push
        defer = self.with_context(**{FRIENDLY_DEFER: True})
        return super(ResConfigSettings, defer).create(vals_list).with_env(self.env)

    def set_values(self):
        res = super(ResConfigSettings, self.with_context(**{FRIENDLY_DEFER: True})).set_values()
        # pushed only to meters whose last schedule differs (services/calendars)
        calendars.push_companies(self.env, self.company_id)
        return res
