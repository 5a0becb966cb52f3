import logging
import math

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..services import calendars, friendly, prepayment, settlement, standing_charge

_logger = logging.getLogger(__name__)

DEFAULT_QUICK_AMOUNTS = "5, 10, 20, 50"
FRIENDLY_FIELDS = {
    "smartpm_friendly_enabled",
    "smartpm_friendly_calendar_id",
    "smartpm_friendly_limit_kwh",
    "smartpm_friendly_limit_money",
}
# context key: pushes wait for the end of a larger change (settings form, calendar form)
FRIENDLY_DEFER = "smartpm_friendly_defer"
MAX_QUICK_AMOUNTS = 8


def parse_quick_amounts(text):
    """[5.0, 10.0, ...] from "5, 10; 20 50"; raise ValueError on anything else."""
    parts = [p for p in (text or "").replace(";", " ").replace(",", " ").split() if p]
    amounts = [float(p) for p in parts]
    if any(not math.isfinite(a) or a <= 0 for a in amounts):
        raise ValueError(text)
    return amounts


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
    # two recipients, two kinds of news: money stuck on its way to a meter (a sale to
    # retry or reverse) and a meter's own alarms (theft, tamper, communication)
    smartpm_alert_user_id = fields.Many2one(
        "res.users",
        string="Credit delivery failures to",
        help="Operator who gets an activity when a sale's credit cannot be delivered to its "
        "meter (to retry or reverse). Empty: the first manager of prepaid electricity. "
        "Meter alarms go to the property's manager instead.",
    )
    smartpm_quick_amounts = fields.Char(
        string="Quick amounts",
        default=DEFAULT_QUICK_AMOUNTS,
        help="Amounts the cashier sells with one tap in the Point of Sale, separated by "
        "commas (e.g. 5, 10, 20, 50). Empty: none.",
    )
    smartpm_alarm_user_id = fields.Many2one(
        "res.users",
        string="Meter alarms (no property manager) to",
        help="Gets a to-do for every meter alarm (theft, tamper, communication lost...) of "
        "a property that names no manager. Credit delivery failures go to their own "
        "recipient.",
    )
    smartpm_comm_lost_pings = fields.Integer(
        string="Missed pings before communication lost",
        default=3,
        help="A meter that misses this many pings in a row raises a communication-lost alarm.",
    )
    smartpm_ping_interval_min = fields.Integer(
        string="Ping interval (minutes)",
        default=60,
        help="Meters not heard from for this long are pinged.",
    )
    smartpm_event_interval_min = fields.Integer(
        string="Event-log collection every (minutes)",
        default=240,
        help="How often meters' event logs are read for tampering alarms (cover opened, "
        "reverse connection...). Shorter finds theft sooner and costs more meter traffic.",
    )
    smartpm_clock_sync_days = fields.Integer(
        string="Clock synchronisation every (days)",
        default=1,
        help="Every active meter's clock is set to UTC this often (a sync_clock job); 0: "
        "only when someone presses Synchronise clock.",
    )
    smartpm_clock_drift_max_s = fields.Integer(
        string="Clock drift tolerance (s)",
        default=60,
        help="A meter whose clock is found further than this from UTC when it is "
        "synchronised raises a clock drift alarm. 0: no alarm.",
    )

    # prepayment accounting (services/prepayment.py)
    smartpm_prepayment_account_id = fields.Many2one(
        "account.account",
        string="Customer prepayments account",
        check_company=True,
        help="Liability credited by every credit sale (the credit product's income "
        "account) until the meter consumes the energy.",
    )
    smartpm_energy_income_account_id = fields.Many2one(
        "account.account",
        string="Energy sales account",
        check_company=True,
        help="Revenue of the consumed credit, moved from the prepayments account.",
    )
    smartpm_debt_account_id = fields.Many2one(
        "account.account",
        string="Tenant debt account",
        check_company=True,
        help="Income (or other income) account credited when a tenant's debt is confirmed, "
        "for every kind of debt without an account of its own below. Empty: the company's "
        "energy sales account.",
    )
    smartpm_debt_fee_account_id = fields.Many2one(
        "account.account",
        string="Fee debt account",
        check_company=True,
        help="Account of debts of kind Fee (empty: the tenant debt account).",
    )
    smartpm_debt_damage_account_id = fields.Many2one(
        "account.account",
        string="Damage charge debt account",
        check_company=True,
        help="Account of debts of kind Damage charge (empty: the tenant debt account).",
    )
    smartpm_forfeit_account_id = fields.Many2one(
        "account.account",
        string="Forfeited credit account",
        check_company=True,
        help="Income of the credit a tenant forfeits at a move-out (the owner's policy); "
        "created at the first forfeit.",
    )
    smartpm_standing_charge_account_id = fields.Many2one(
        "account.account",
        string="Standing charge account",
        check_company=True,
        help="Income of the standing charges of tariffs, taken from the tenants' prepaid "
        "credit (services/standing_charge.py); created with the prepayment accounts.",
    )
    smartpm_recognition_journal_id = fields.Many2one(
        "account.journal",
        string="Revenue recognition journal",
        check_company=True,
        domain="[('type', '=', 'general')]",
    )
    smartpm_recognition_period = fields.Selection(
        [("daily", "Every day"), ("monthly", "Every month")],
        string="Recognise consumed credit",
        default="daily",
        required=True,
        help="Every day: the job posts yesterday's consumption. Every month: on the 1st "
        "it posts the previous month's.",
    )

    # friendly (non-disconnect) periods (issue 17 §2, services/friendly.py)
    smartpm_friendly_enabled = fields.Boolean(
        string="Friendly periods",
        help="Meters do not cut the power for lack of credit in the hours of the friendly "
        "calendar nor on its public holidays: credit may go below zero, down to the "
        "friendly limit, and the next purchase repays it. The tenant is told.",
    )
    smartpm_friendly_calendar_id = fields.Many2one(
        "resource.calendar",
        string="Friendly hours",
        check_company=True,
        help="Working-time calendar whose hours are the friendly hours of the week (e.g. "
        "evenings, nights and weekends) and whose public holidays (time off of the whole "
        "company) are friendly all day, in the company's time zone. Every change is sent "
        "to every meter once.",
    )
    smartpm_friendly_limit_kwh = fields.Float(
        string="Friendly limit (kWh)",
        digits=(16, 3),
        default=5.0,
        help="How far below zero the credit may go inside a friendly period before the "
        "meter cuts the power anyway. 0: no debt, the power is cut at zero credit even "
        "inside a period.",
    )
    smartpm_friendly_limit_money = fields.Monetary(
        string="Friendly limit (money)",
        currency_field="currency_id",
        default=10.0,
        help="Money-mode meters (time-of-use tariffs, credit held in currency): how far "
        "below zero, in the company's currency, the credit may go inside a friendly period "
        "before the meter cuts the power anyway. kWh meters use the limit in kWh. 0: no "
        "debt, the power is cut at zero credit even inside a period.",
    )

    @api.constrains(
        "smartpm_friendly_limit_kwh", "smartpm_friendly_limit_money", "smartpm_friendly_calendar_id"
    )
    def _check_smartpm_friendly(self):
        for company in self:
            if company.smartpm_friendly_limit_money < 0:
                raise ValidationError(
                    self.env._(
                        "Friendly limit (money) of %(company)s: how far below zero the credit "
                        "of a money-mode meter may go, an amount at or above 0.",
                        company=company.name,
                    )
                )
            if company.smartpm_friendly_limit_kwh < 0:
                raise ValidationError(
                    self.env._(
                        "Friendly limit of %(company)s: how far below zero the credit may go, "
                        "a number of kWh at or above 0.",
                        company=company.name,
                    )
                )
            calendar = company.smartpm_friendly_calendar_id
            if calendar.two_weeks_calendar:
                raise ValidationError(
                    self.env._(
                        "Friendly hours of %(company)s: the calendar %(calendar)s alternates "
                        "two weeks; meters hold one week of friendly hours.",
                        company=company.name,
                        calendar=calendar.name,
                    )
                )

    def write(self, vals):
        res = super().write(vals)
        if FRIENDLY_FIELDS & set(vals) and not self.env.context.get(FRIENDLY_DEFER):
            calendars.push_companies(self.env, self)  # another calendar: other public holidays
        return res

    @api.model
    def _cron_smartpm_friendly_refresh(self):
        """Every company's friendly schedule again; pushed only where it changed."""
        friendly.refresh_all(self.env)

    @api.model
    def _smartpm_with_meters(self):
        """The companies that hold meters (archived ones too): the ones the meter crons
        go through, company by company."""
        meters = self.env["smartpm.meter"].sudo().with_context(active_test=False)
        groups = meters._read_group([("company_id", "!=", False)], ["company_id"])
        return self.sudo().browse(company.id for [company] in groups)

    @api.model_create_multi
    def create(self, vals_list):
        companies = super().create(vals_list)
        for company in companies:
            prepayment.ensure_accounts(company)
        return companies

    @api.model
    def _smartpm_ensure_prepayment_accounts(self):
        """Install and update: every company with a chart gets its prepayment accounts."""
        prepayment.ensure_all_accounts(self.env)

    @api.model
    def _smartpm_ensure_standing_charge_accounts(self):
        """Install and update: the standing charge income account of each company."""
        standing_charge.ensure_all_accounts(self.env)

    @api.model
    def _smartpm_ensure_forfeit_accounts(self):
        """Install and update: the forfeited credit account of each company (settlement)."""
        settlement.ensure_all_forfeit_accounts(self.env)

    @api.model
    def _cron_smartpm_recognise_credit(self):
        """Each company's consumed credit, from the prepayments to energy sales, up to its
        cut-off (yesterday, or the end of last month): a later run of the same period
        posts only what the meters' readings added since."""
        for company in self.sudo().search([("smartpm_prepayment_account_id", "!=", False)]):
            try:
                with self.env.cr.savepoint():
                    prepayment.recognise(company)
            except (UserError, ValidationError):
                # one company's books (a lock, a deleted account) do not stop the others'
                _logger.exception("credit recognition of %s failed", company.name)

    def action_smartpm_recognise_credit(self):
        """Button (settings): recognise now up to the cut-off day."""
        self.env["smartpm.credit.purchase"].check_access("write")
        for company in self:
            prepayment.recognise(company)
        return True

    @api.constrains("smartpm_quick_amounts", "smartpm_min_amount", "smartpm_max_amount")
    def _check_smartpm_quick_amounts(self):
        for company in self:
            try:
                amounts = parse_quick_amounts(company.smartpm_quick_amounts)
            except ValueError:
                raise ValidationError(
                    self.env._(
                        "Quick amounts of %(company)s: %(text)r is not a list of positive "
                        "amounts separated by commas (e.g. 5, 10, 20, 50).",
                        company=company.name,
                        text=company.smartpm_quick_amounts,
                    )
                ) from None
            if len(amounts) > MAX_QUICK_AMOUNTS:
                raise ValidationError(
                    self.env._(
                        "Quick amounts of %(company)s: at most %(max)s amounts.",
                        company=company.name,
                        max=MAX_QUICK_AMOUNTS,
                    )
                )
            currency = company.currency_id
            for amount in amounts:
                if abs(currency.round(amount) - amount) > 1e-9:
                    raise ValidationError(
                        self.env._(
                            "Quick amount %(amount)s of %(company)s has more decimals than "
                            "%(currency)s allows.",
                            amount=amount,
                            company=company.name,
                            currency=currency.name,
                        )
                    )

    def _smartpm_get_quick_amounts(self):
        """The quick amounts of the company (a list of floats, [] when none or invalid)."""
        self.ensure_one()
        try:
            return parse_quick_amounts(self.smartpm_quick_amounts)
        except ValueError:
            return []

    _sql_constraints = [
        (
            "smartpm_amounts_order",
            "CHECK(smartpm_max_amount = 0 OR smartpm_min_amount <= smartpm_max_amount)",
            "The minimum credit sale must not exceed the maximum.",
        ),
        (
            "smartpm_comm_lost_pings_positive",
            "CHECK(smartpm_comm_lost_pings IS NULL OR smartpm_comm_lost_pings > 0)",
            "The number of missed pings must be at least 1.",
        ),
        (
            "smartpm_clock_settings_positive",
            "CHECK(COALESCE(smartpm_clock_sync_days, 0) >= 0 "
            "AND COALESCE(smartpm_clock_drift_max_s, 0) >= 0)",
            "The clock synchronisation interval and drift tolerance cannot be negative.",
        ),
        (
            "smartpm_ping_interval_positive",
            "CHECK(smartpm_ping_interval_min IS NULL OR smartpm_ping_interval_min > 0)",
            "The ping interval must be at least one minute.",
        ),
    ]
