from odoo import api, fields, models
from odoo.tools import LazyTranslate

_lt = LazyTranslate(__name__)


class SmartpmDebtRecovery(models.Model):
    """The part of one purchase of credit that paid one debt. Written by the vending engine
    only (``services.debt``); a reversed purchase marks its recoveries reversed, which gives
    the amount back to the debt."""

    _name = "smartpm.debt.recovery"
    _description = "Debt recovered by a purchase"
    _inherit = ["smartpm.engine.record"]
    # Class attributes: no env exists when the class is defined; the lazy term is
    # translated with the env where engine_record raises it (self.env._(...)).
    _engine_create_error = _lt("Debt recoveries are made by purchases of credit only.")  # pylint: disable=prefer-env-translation
    _engine_unlink_error = _lt("Debt recoveries are never deleted: reverse the purchase.")  # pylint: disable=prefer-env-translation
    _order = "date desc, id desc"
    _check_company_auto = True

    debt_id = fields.Many2one(
        "smartpm.tenant.debt",
        required=True,
        readonly=True,
        index=True,
        ondelete="restrict",
        check_company=True,
    )
    purchase_id = fields.Many2one(
        "smartpm.credit.purchase",
        required=True,
        readonly=True,
        index=True,
        ondelete="restrict",
        check_company=True,
    )
    tenant_id = fields.Many2one(related="debt_id.tenant_id", store=True, index=True)
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    date = fields.Datetime(required=True, readonly=True, default=fields.Datetime.now)
    amount = fields.Monetary(required=True, readonly=True)
    balance_after = fields.Monetary(
        string="Debt balance after", readonly=True, help="The debt's balance once recovered."
    )
    state = fields.Selection(
        [("done", "Recovered"), ("reversed", "Reversed")],
        default="done",
        required=True,
        readonly=True,
    )
    partial_reconcile_id = fields.Many2one(
        "account.partial.reconcile",
        readonly=True,
        copy=False,
        help="Matches the payment of the purchase with the debt's invoice.",
    )
    move_id = fields.Many2one(
        "account.move",
        string="Settlement entry",
        readonly=True,
        copy=False,
        help="POS sales: moves the recovered part from the prepayments liability to the "
        "tenant's receivable.",
    )

    _sql_constraints = [
        ("purchase_debt_uniq", "unique(purchase_id, debt_id)", "A purchase recovers a debt once."),
        ("amount_positive", "CHECK(amount > 0)", "A recovery's amount must be positive."),
    ]

    @api.depends("debt_id", "purchase_id", "amount")
    def _compute_display_name(self):
        for rec in self:
            rec.display_name = f"{rec.purchase_id.name} → {rec.debt_id.name}: {rec.amount}"
