from odoo import api, fields, models

from ..services.sale_info import describe_price


class PosOrderLine(models.Model):
    _inherit = "pos.order.line"

    smartpm_meter_id = fields.Many2one(
        "smartpm.meter", string="Meter", index="btree_not_null", ondelete="restrict"
    )
    smartpm_kwh = fields.Float(
        string="kWh shown",
        digits=(16, 2),
        help="kWh previewed to the cashier; the purchase computes them again on the server.",
    )
    smartpm_purchase_ids = fields.One2many(
        "smartpm.credit.purchase", "pos_order_line_id", string="Credit purchases"
    )
    smartpm_purchase_ref = fields.Char(
        string="Purchase reference", compute="_compute_smartpm_purchase"
    )
    smartpm_purchase_kwh = fields.Float(
        string="kWh sold", digits=(16, 3), compute="_compute_smartpm_purchase"
    )
    smartpm_price_info = fields.Char(
        string="Price charged", compute="_compute_smartpm_purchase", help="Per kWh, by tier."
    )
    smartpm_balance_kwh = fields.Float(
        string="Estimated new balance (kWh)",
        digits=(16, 3),
        readonly=True,
        copy=False,
        help="The meter's last known credit, with the credit sold and not yet on the meter, "
        "when this line was sold: what the receipt tells the customer.",
    )

    smartpm_receipt_lines = fields.Json(
        string="Receipt lines",
        compute="_compute_smartpm_purchase",
        help="The split of the sale as every channel's receipt prints it (amount paid, debt "
        "recovered and left, emergency and negative credit repaid, net energy, new balance, "
        "transfer number): the printed ticket's lines.",
    )

    @api.depends(
        "smartpm_purchase_ids.name",
        "smartpm_purchase_ids.kwh",
        "smartpm_purchase_ids.receipt_lines",
    )
    def _compute_smartpm_purchase(self):
        for line in self:
            purchase = line.sudo().smartpm_purchase_ids[:1]
            line.smartpm_purchase_ref = purchase.name or False
            line.smartpm_purchase_kwh = purchase.kwh
            line.smartpm_price_info = (
                describe_price(purchase.tariff_id, purchase.price_per_kwh, purchase.tier_breakdown)
                if purchase
                else False
            )
            line.smartpm_receipt_lines = purchase.receipt_lines if purchase else []

    @api.model
    def _load_pos_data_fields(self, config_id):
        return [
            *super()._load_pos_data_fields(config_id),
            "smartpm_meter_id",
            "smartpm_kwh",
            "smartpm_purchase_ref",
            "smartpm_purchase_kwh",
            "smartpm_price_info",
            "smartpm_balance_kwh",
            "smartpm_receipt_lines",
        ]

    def _smartpm_external_ref(self):
        """Stable across syncs: the order's uuid and the line's (both made by the POS).

        The vending service keeps 64 characters: 36 for the order, 27 hex digits of the line.
        """
        self.ensure_one()
        line_key = (self.uuid or "").replace("-", "")[:27] or str(self.id)
        return f"{self.order_id.uuid}:{line_key}"
