from odoo import api, models

from ..services.sale_info import format_money
from .pos_config import credit_product


class PosSession(models.Model):
    _inherit = "pos.session"

    @api.model
    def _load_pos_data_models(self, config_id):
        return [*super()._load_pos_data_models(config_id), "smartpm.meter"]

    def _load_pos_data(self, data):
        res = super()._load_pos_data(data)
        company = self.config_id.company_id or self.env.company
        session = res["data"][0]
        session["_smartpm_credit_product_id"] = credit_product(self.env).id or False
        session["_smartpm_quick_amounts"] = company._smartpm_get_quick_amounts()
        session["_smartpm_can_sell"] = self.env.user.has_group("smartpm_prepay.group_cashier")
        return res

    def _smartpm_credit_summary(self):
        """Credit sold in this session: count, amount, kWh (what the closing shows)."""
        self.ensure_one()
        purchases = (
            self.env["smartpm.credit.purchase"]
            .sudo()
            .search([("pos_order_line_id.order_id.session_id", "=", self.id)])
        )
        amount = sum(purchases.mapped("amount"))
        currency = self.currency_id
        return {
            "count": len(purchases),
            "amount": currency.round(amount),
            "amount_text": format_money(self.env, amount, currency),
            "kwh": round(sum(purchases.mapped("kwh")), 3),
            "delivered": len(purchases.filtered(lambda p: p.state == "delivered")),
            "failed": len(purchases.filtered(lambda p: p.state == "failed")),
        }

    def get_closing_control_data(self):
        res = super().get_closing_control_data()
        res["smartpm_credit"] = self._smartpm_credit_summary()
        return res
