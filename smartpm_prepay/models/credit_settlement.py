from odoo import api, fields, models
from odoo.tools import LazyTranslate

_lt = LazyTranslate(__name__)

SETTLEMENT_KINDS = [
    ("refund", "Refund to the tenant"),
    ("transfer", "Transfer to another meter"),
    ("forfeit", "Forfeit (owner's policy)"),
]


class SmartpmCreditSettlement(models.Model):
    """The remaining credit of a tenant on a meter, settled at a move-out or a meter
    replacement (services/settlement.py): what it was worth, per purchase, and the documents
    that settled it (credit note and payment, forfeit entry, or the transfer's purchase).
    Statements read these rows."""

    _name = "smartpm.credit.settlement"
    _description = "Settlement of remaining credit"
    _inherit = ["smartpm.engine.record"]
    # Class attributes: no env exists when the class is defined; the lazy term is
    # translated with the env where engine_record raises it (self.env._(...)).
    _engine_create_error = _lt("Credit is settled by a move-out or a meter replacement only.")  # pylint: disable=prefer-env-translation
    _engine_unlink_error = _lt("Settlements are never deleted: they are in the books.")  # pylint: disable=prefer-env-translation
    _order = "date desc, id desc"
    _check_company_auto = True

    name = fields.Char(related="move_out_id.name", store=True)
    move_out_id = fields.Many2one(
        "smartpm.move.out", required=True, readonly=True, index=True, ondelete="restrict"
    )
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    tenant_id = fields.Many2one(
        "res.partner",
        required=True,
        readonly=True,
        index=True,
        ondelete="restrict",
    )
    meter_id = fields.Many2one(
        "smartpm.meter",
        required=True,
        readonly=True,
        index=True,
        ondelete="restrict",
        check_company=True,
    )
    date = fields.Datetime(required=True, readonly=True)
    kind = fields.Selection(SETTLEMENT_KINDS, required=True, readonly=True)
    kwh = fields.Float(
        string="Credit settled (kWh)",
        digits=(16, 3),
        readonly=True,
        help="The meter's final credit.",
    )
    kwh_uncovered = fields.Float(
        string="Without a sale (kWh)",
        digits=(16, 3),
        readonly=True,
        help="Credit on the meter that no purchase on record covers: no value.",
    )
    credit_mode = fields.Selection(
        [("kwh", "kWh"), ("money", "Money")],
        default="kwh",
        readonly=True,
        help="kWh: the meter held energy. Money: a money-mode meter (time of use) held its "
        "credit in the currency.",
    )
    money = fields.Float(
        string="Credit settled (money)",
        digits=(16, 3),
        readonly=True,
        help="Money-mode meters: the meter's final credit, in the currency (untaxed).",
    )
    money_uncovered = fields.Float(
        string="Without a sale (money)",
        digits=(16, 3),
        readonly=True,
        help="Money-mode meters: credit on the meter that no sale on record covers: no value.",
    )
    emergency_credit = fields.Float(
        digits=(16, 3),
        readonly=True,
        help="Emergency credit in use at the final reading, in the meter's credit unit (kWh, "
        "or the currency on a money-mode meter): part of the meter's credit, but not paid "
        "for, so not settled.",
    )
    negative_credit = fields.Float(
        digits=(16, 3),
        readonly=True,
        help="How far below zero the meter's credit was at the final reading (a friendly "
        "period), in the meter's credit unit.",
    )
    shortfall = fields.Float(
        string="Consumed without payment",
        digits=(16, 3),
        readonly=True,
        help="Emergency credit in use beyond the paid credit left, and negative credit, in "
        "the meter's credit unit: it becomes the tenant's debt.",
    )
    debt_amount = fields.Monetary(
        string="Debt recorded", readonly=True, help="What the shortfall is worth (untaxed)."
    )
    debt_id = fields.Many2one(
        "smartpm.tenant.debt",
        string="Tenant debt",
        readonly=True,
        check_company=True,
        help="The shortfall as the tenant's debt (on their receivable), recovered from their "
        "next purchases.",
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    amount = fields.Monetary(
        string="Value (untaxed)",
        readonly=True,
        help="The liability the settlement releases (refund, forfeit) or moves (transfer).",
    )
    amount_total = fields.Monetary(
        string="Value (taxes included)", readonly=True, help="What a refund pays back."
    )
    line_ids = fields.One2many("smartpm.credit.settlement.line", "settlement_id", readonly=True)
    credit_note_id = fields.Many2one(
        "account.move", string="Credit note", readonly=True, check_company=True
    )
    payment_id = fields.Many2one("account.payment", string="Refund payment", readonly=True)
    move_id = fields.Many2one(
        "account.move", string="Forfeit entry", readonly=True, check_company=True
    )
    recognition_move_id = fields.Many2one(
        "account.move",
        string="Consumption recognised",
        readonly=True,
        check_company=True,
        help="The tenant's credit consumed before the final reading and not recognised yet, "
        "recognised at the settlement.",
    )
    transfer_purchase_id = fields.Many2one(
        "smartpm.credit.purchase", string="Transfer token", readonly=True
    )
    purchase_ids = fields.Many2many(
        "smartpm.credit.purchase", compute="_compute_purchase_ids", string="Purchases settled"
    )

    _sql_constraints = [
        ("move_out_uniq", "unique(move_out_id)", "A move-out is settled once."),
    ]

    @api.depends("line_ids.purchase_id")
    def _compute_purchase_ids(self):
        for settlement in self:
            settlement.purchase_ids = settlement.line_ids.purchase_id
