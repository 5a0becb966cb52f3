from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError

from ..services import engine


class SmartpmCreditSettlementLine(models.Model):
    """The kWh of one purchase that a settlement took (the last ones bought) and their
    value: the purchase's ``kwh_remaining`` leaves them out."""

    _name = "smartpm.credit.settlement.line"
    _description = "Purchase credit settled"
    _order = "id"

    settlement_id = fields.Many2one(
        "smartpm.credit.settlement", required=True, readonly=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(related="settlement_id.company_id", store=True)
    purchase_id = fields.Many2one(
        "smartpm.credit.purchase", required=True, readonly=True, index=True, ondelete="restrict"
    )
    kwh = fields.Float(string="Energy (kWh)", digits=(16, 3), readonly=True)
    currency_id = fields.Many2one(related="settlement_id.currency_id")
    amount = fields.Monetary(string="Value (untaxed)", readonly=True)
    amount_total = fields.Monetary(string="Value (taxes included)", readonly=True)

    @api.model_create_multi
    def create(self, vals_list):
        if not engine.is_engine(self.env):
            raise AccessError(_("Credit is settled by a move-out or a meter replacement only."))
        return super().create(vals_list)

    def write(self, vals):
        engine.check_fields(self, vals, set(vals), self._description)
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_never(self):
        raise UserError(_("Settlements are never deleted: they are in the books."))
