from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from ..services import debt as debt_service
from ..services import engine

DEBT_KINDS = [
    ("arrears", "Arrears before prepaid"),
    ("fee", "Fee"),
    ("damage", "Damage charge"),
    ("other", "Other"),
]
DEBT_STATES = [
    ("draft", "Draft"),
    ("active", "Being recovered"),
    ("paid", "Paid"),
    ("cancelled", "Cancelled"),
]
RECOVERY_RULES = [
    ("percent", "Percentage of each purchase"),
    ("fixed", "Fixed amount per purchase"),
]
# what stays as it was confirmed (the invoice says so) and what only recoveries change
_FROZEN_AFTER_DRAFT = {"tenant_id", "company_id", "amount", "kind", "account_id", "date"}
_ENGINE_ONLY = {"state", "invoice_id", "credit_note_id", "amount_recovered", "balance"}


class SmartpmTenantDebt(models.Model):
    """A tenant's debt (arrears, a fee, a damage charge) recovered from their purchases of
    credit: each purchase first pays the recovery rule's part of its amount
    (``services.debt``), the rest buys energy. Confirming posts the debt to the tenant's
    receivable (a customer invoice); recoveries settle that receivable."""

    _name = "smartpm.tenant.debt"
    _description = "Tenant debt"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "date, id"
    _check_company_auto = True

    name = fields.Char(
        string="Reference", required=True, readonly=True, copy=False, default="/", index=True
    )
    tenant_id = fields.Many2one(
        "res.partner",
        required=True,
        index=True,
        ondelete="restrict",
        check_company=True,
        domain="[('is_tenant', '=', True)]",
        tracking=True,
    )
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    kind = fields.Selection(DEBT_KINDS, required=True, default="arrears", tracking=True)
    description = fields.Char(required=True, help="What the debt is for, as the tenant sees it.")
    date = fields.Date(
        required=True,
        default=fields.Date.context_today,
        help="Debts are recovered oldest first (by this date).",
    )
    amount = fields.Monetary(required=True, tracking=True, help="What the tenant owes.")
    amount_recovered = fields.Monetary(
        string="Recovered", compute="_compute_balance", store=True, readonly=True
    )
    balance = fields.Monetary(
        string="Balance left",
        compute="_compute_balance",
        store=True,
        readonly=True,
        help="Amount less what purchases recovered (reversed purchases give it back).",
    )
    state = fields.Selection(
        DEBT_STATES, default="draft", required=True, readonly=True, index=True, tracking=True
    )
    recovery_rule = fields.Selection(
        RECOVERY_RULES,
        required=True,
        default="percent",
        tracking=True,
        help="How much of each purchase of credit pays this debt first.",
    )
    recovery_percent = fields.Float(
        string="Percentage",
        default=20.0,
        digits=(5, 2),
        tracking=True,
        help="Share of each purchase's amount that goes to the debt.",
    )
    recovery_min = fields.Monetary(
        string="Minimum per purchase",
        tracking=True,
        help="The percentage takes at least this much from a purchase (0: no minimum).",
    )
    recovery_max = fields.Monetary(
        string="Maximum per purchase",
        tracking=True,
        help="The percentage takes at most this much from a purchase (0: no maximum).",
    )
    recovery_fixed = fields.Monetary(
        string="Fixed amount per purchase",
        tracking=True,
        help="Taken from every purchase (never more than the balance or the purchase).",
    )
    account_id = fields.Many2one(
        "account.account",
        string="Income account",
        check_company=True,
        domain="[('account_type', 'in', ('income', 'income_other'))]",
        default=lambda self: self._default_account(),
        help="Credited when the debt is confirmed (the tenant's receivable is debited). "
        "Default: the company's debt account of this kind (Settings).",
    )
    invoice_id = fields.Many2one("account.move", readonly=True, copy=False, check_company=True)
    credit_note_id = fields.Many2one(
        "account.move",
        readonly=True,
        copy=False,
        check_company=True,
        help="Writes off the balance left when the debt is cancelled.",
    )
    recovery_ids = fields.One2many("smartpm.debt.recovery", "debt_id", readonly=True)

    _sql_constraints = [
        ("amount_positive", "CHECK(amount > 0)", "A debt's amount must be positive."),
        # never over-recovered, whatever two concurrent purchases do
        (
            "balance_not_negative",
            "CHECK(balance IS NULL OR balance >= 0)",
            "A debt cannot be recovered beyond its amount.",
        ),
        (
            "rule_values_positive",
            "CHECK(recovery_percent >= 0 AND recovery_percent <= 100 "
            "AND COALESCE(recovery_min, 0) >= 0 AND COALESCE(recovery_max, 0) >= 0 "
            "AND COALESCE(recovery_fixed, 0) >= 0)",
            "The recovery rule's values must be positive (percentage at most 100).",
        ),
    ]

    @api.model
    def _default_account(self):
        return debt_service.default_account(self.env.company, self.env.context.get("default_kind"))

    @api.onchange("kind", "company_id")
    def _onchange_kind(self):
        account = debt_service.default_account(self.company_id, self.kind)
        if account:
            self.account_id = account

    @api.depends("amount", "recovery_ids.amount", "recovery_ids.state")
    def _compute_balance(self):
        for debt in self:
            recovered = sum(
                debt.recovery_ids.filtered(lambda r: r.state == "done").mapped("amount")
            )
            debt.amount_recovered = recovered
            debt.balance = debt.currency_id.round(debt.amount - recovered)

    @api.constrains(
        "recovery_rule", "recovery_percent", "recovery_fixed", "recovery_min", "recovery_max"
    )
    def _check_rule(self):
        for debt in self:
            if debt.recovery_rule == "percent" and not debt.recovery_percent:
                raise ValidationError(
                    self.env._("Debt %s: set the percentage of each purchase.", debt.display_name)
                )
            if debt.recovery_rule == "fixed" and not debt.recovery_fixed:
                raise ValidationError(
                    self.env._("Debt %s: set the fixed amount per purchase.", debt.display_name)
                )
            if debt.recovery_max and debt.recovery_min > debt.recovery_max:
                raise ValidationError(
                    self.env._(
                        "Debt %s: the minimum per purchase exceeds the maximum.", debt.display_name
                    )
                )

    @api.depends("name", "description", "tenant_id")
    def _compute_display_name(self):
        for debt in self:
            name = debt.name if debt.name and debt.name != "/" else self.env._("Draft debt")
            debt.display_name = f"{name} {debt.tenant_id.name or ''}: {debt.description or ''}"

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            engine.check_fields(self, vals, _ENGINE_ONLY - {"state"}, self.env._("Tenant debt"))
            if vals.get("state", "draft") != "draft" and not engine.is_engine(self.env):
                raise AccessError(
                    self.env._("A debt is created as a draft and confirmed by its button.")
                )
        return super().create(vals_list)

    def write(self, vals):
        engine.check_fields(self, vals, _ENGINE_ONLY, self.env._("Tenant debt"))
        if not engine.is_engine(self.env) and _FROZEN_AFTER_DRAFT & set(vals):
            confirmed = self.filtered(lambda d: d.state != "draft")
            if confirmed:
                raise UserError(
                    self.env._(
                        "%(debts)s: tenant, amount, kind, date and account are fixed once "
                        "the debt is confirmed (cancel it and enter a new one).",
                        debts=", ".join(confirmed.mapped("display_name")),
                    )
                )
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_only_draft(self):
        for debt in self:
            if debt.state != "draft":
                raise UserError(
                    self.env._("%s is confirmed: cancel it instead.", debt.display_name)
                )

    # ------------------------------------------------------------------ buttons
    def action_confirm(self):
        """Post the debt to the tenant's receivable and start recovering it."""
        self.check_access("write")
        for debt in self:
            if debt.state != "draft":
                raise UserError(self.env._("%s is not a draft.", debt.display_name))
            debt_service.confirm(debt)
        return True

    def action_cancel(self):
        """Stop recovering: a draft is cancelled; a confirmed debt's balance left is written
        off with a credit note."""
        self.check_access("write")
        for debt in self:
            if debt.state in ("paid", "cancelled"):
                raise UserError(self.env._("%s is paid or cancelled already.", debt.display_name))
            debt_service.cancel(debt)
        return True

    def action_view_recoveries(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Recoveries"),
            "res_model": "smartpm.debt.recovery",
            "view_mode": "list,form",
            "domain": [("debt_id", "=", self.id)],
        }
