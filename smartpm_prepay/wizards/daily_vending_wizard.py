from odoo import api, fields, models
from odoo.exceptions import UserError

from ..services import daily_vending, local_time, vending


class SmartpmDailyVendingWizard(models.TransientModel):
    """The daily vending report of a local day (services/daily_vending.py), printed.

    Who may print what is the record rules' (security/rules.xml): a cashier's wizard names
    themselves as the cashier (their own sales only), a manager's may name anyone or no one
    (every channel and seller). The report reads the wizard with the printer's rights."""

    _name = "smartpm.daily.vending.wizard"
    _description = "Daily vending report"
    _check_company_auto = True

    company_id = fields.Many2one(
        "res.company",
        required=True,
        default=lambda self: self.env.company,
        help="The company whose sales are reported; its time zone sets the day.",
    )
    date = fields.Date(
        string="Day",
        required=True,
        default=lambda self: local_time.local_today(self.env.company),
        help="The local day (the company's time zone) whose sales, reversals and standing "
        "charges are reported.",
    )
    channel = fields.Selection(
        [c for c in vending.CHANNELS if c[0] in daily_vending.REPORT_CHANNELS],
        help="Only this channel; empty: every channel.",
    )
    user_id = fields.Many2one(
        "res.users",
        string="Cashier",
        default=lambda self: self._default_user(),
        help="Only the sales this user took at a register or in the back office. A cashier "
        "prints their own figures only; a manager may leave it empty for everyone's.",
    )

    @api.model
    def _default_user(self):
        if self.env.user.has_group("smartpm_prepay.group_manager"):
            return False
        return self.env.user

    def write(self, vals):
        # record rules judge a write on the records before it: check them after as well, so a
        # cashier cannot turn their own report into another's (or everyone's)
        result = super().write(vals)
        self.check_access("write")
        return result

    def _check_report(self):
        """What the report refuses before it sums anything."""
        self.ensure_one()
        if self.user_id and self.channel and self.channel not in daily_vending.USER_CHANNELS:
            raise UserError(
                self.env._(
                    "The %(channel)s channel has no cashier: clear the cashier to report it.",
                    channel=dict(self._fields["channel"]._description_selection(self.env))[
                        self.channel
                    ],
                )
            )

    def _get_report(self):
        self._check_report()
        return daily_vending.daily_vending(
            self.env, self.company_id, self.date, self.channel or None, self.user_id or None
        )

    def action_print(self):
        self.ensure_one()
        self.check_access("read")
        self._check_report()  # the report's checks: its figures are summed once, to print
        return self.env.ref("smartpm_prepay.action_report_daily_vending").report_action(self)
