from odoo import fields, models
from odoo.tools import LazyTranslate

_lt = LazyTranslate(__name__)


class SmartpmCreditRecognition(models.Model):
    """Credit of one purchase recognised as revenue by one run of the recognition job
    (services/prepayment.py). Rows without a purchase count consumption that no recorded
    sale covered (credit on the meter before any sale, emergency credit): no liability, no
    revenue. Repayment rows release what a sale repaid of emergency credit consumed before it."""

    _name = "smartpm.credit.recognition"
    _description = "Credit recognised as revenue"
    _inherit = ["smartpm.engine.record"]
    # Class attributes: no env exists when the class is defined; the lazy term is
    # translated with the env where engine_record raises it (self.env._(...)).
    _engine_create_error = _lt("Revenue is recognised by the recognition job only.")  # pylint: disable=prefer-env-translation
    _engine_unlink_error = _lt("Recognised revenue is never deleted: it is in the books.")  # pylint: disable=prefer-env-translation
    _order = "day desc, id desc"
    _check_company_auto = True

    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    day = fields.Date(
        string="Consumed up to", required=True, readonly=True, help="The run's cut-off day."
    )
    purchase_id = fields.Many2one(
        "smartpm.credit.purchase",
        readonly=True,
        index=True,
        ondelete="restrict",
        check_company=True,
    )
    meter_id = fields.Many2one(
        "smartpm.meter", required=True, readonly=True, index=True, ondelete="restrict"
    )
    tenant_id = fields.Many2one(
        "res.partner",
        required=True,
        readonly=True,
        index=True,
        ondelete="restrict",
    )
    kwh = fields.Float(string="Energy (kWh)", digits=(16, 3), readonly=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    money = fields.Float(
        string="Credit consumed (money)",
        digits=(16, 3),
        readonly=True,
        help="Money-mode meters (time of use): the credit the meter charged for consumption "
        "that this row counts, matched with a sale (then its value) or not.",
    )
    amount = fields.Monetary(string="Value (untaxed)", readonly=True)
    repayment = fields.Boolean(
        string="Emergency credit repaid",
        readonly=True,
        help="Energy of this purchase that repaid emergency credit: consumed before the sale "
        "(and counted then without a sale), released from the liability once the sale is "
        "delivered. It is not consumption of its own.",
    )
    standing_charge_id = fields.Many2one(
        "smartpm.standing.charge",
        string="Standing charge",
        readonly=True,
        index="btree_not_null",
        ondelete="restrict",
        help="Credit a standing charge took (services/standing_charge.py): not consumption, "
        "its value went to standing charge income.",
    )
    move_id = fields.Many2one(
        "account.move", string="Journal entry", readonly=True, index=True, check_company=True
    )
