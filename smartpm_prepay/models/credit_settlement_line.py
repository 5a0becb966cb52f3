from odoo import fields, models
from odoo.tools import LazyTranslate

_lt = LazyTranslate(__name__)


class SmartpmCreditSettlementLine(models.Model):
    """The kWh of one purchase that a settlement took (the last ones bought) and their
    value: the purchase's ``kwh_remaining`` leaves them out."""

    _name = "smartpm.credit.settlement.line"
    _description = "Purchase credit settled"
    _inherit = ["smartpm.engine.record"]
    # Class attributes: no env exists when the class is defined; the lazy term is
    # translated with the env where engine_record raises it (self.env._(...)).
    _engine_create_error = _lt("Credit is settled by a move-out or a meter replacement only.")  # pylint: disable=prefer-env-translation
    _engine_unlink_error = _lt("Settlements are never deleted: they are in the books.")  # pylint: disable=prefer-env-translation
    _order = "id"

    settlement_id = fields.Many2one(
        "smartpm.credit.settlement", required=True, readonly=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(related="settlement_id.company_id", store=True)
    purchase_id = fields.Many2one(
        "smartpm.credit.purchase", required=True, readonly=True, index=True, ondelete="restrict"
    )
    kwh = fields.Float(string="Energy (kWh)", digits=(16, 3), readonly=True)
    money = fields.Float(
        string="Credit (money)",
        digits=(16, 3),
        readonly=True,
        help="Money-mode meters: the sale's credit settled, in the currency (untaxed).",
    )
    currency_id = fields.Many2one(related="settlement_id.currency_id")
    amount = fields.Monetary(string="Value (untaxed)", readonly=True)
    amount_total = fields.Monetary(string="Value (taxes included)", readonly=True)
