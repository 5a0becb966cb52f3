import uuid

from odoo import _, api, fields, models

from ..services import vending


class SmartpmSellCreditWizard(models.TransientModel):
    """Back-office sale for operators without POS: vend, invoice, payment in a journal."""

    _name = "smartpm.sell.credit.wizard"
    _description = "Sell credit (back office)"
    _check_company_auto = True

    meter_id = fields.Many2one(
        "smartpm.meter", required=True, domain=[("tenant_id", "!=", False)], check_company=True
    )
    tenant_id = fields.Many2one(related="meter_id.tenant_id")
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one("res.currency", compute="_compute_quote")
    amount = fields.Monetary(required=True, help="What the customer pays, taxes included.")
    journal_id = fields.Many2one(
        "account.journal",
        string="Payment journal",
        required=True,
        domain="[('type', 'in', ('bank', 'cash')), ('company_id', '=', company_id)]",
        default=lambda self: self.env["account.journal"].search(
            [("type", "=", "cash"), ("company_id", "=", self.env.company.id)], limit=1
        ),
    )
    external_ref = fields.Char(
        string="Reference",
        required=True,
        copy=False,
        default=lambda self: f"BO-{uuid.uuid4().hex[:16].upper()}",
        help="Unique per back-office sale: confirming twice sells once.",
    )
    kwh = fields.Float(string="Energy (kWh)", compute="_compute_quote", digits=(16, 3))
    price_info = fields.Char(string="Tiers", compute="_compute_quote")

    @api.onchange("meter_id")
    def _onchange_meter_id(self):
        if self.meter_id:
            self.company_id = self.meter_id.company_id

    @api.depends("meter_id", "amount")
    def _compute_quote(self):
        for wizard in self:
            meter = wizard.meter_id.sudo()
            tariff = meter._get_tariff() if meter else False
            wizard.currency_id = tariff.currency_id if tariff else wizard.company_id.currency_id
            wizard.kwh = 0.0
            wizard.price_info = False
            if tariff and wizard.amount > 0:
                quote = tariff._quote_amount(wizard.amount, vending.month_kwh(self.env, meter))
                wizard.kwh = quote["kwh"]
                wizard.price_info = " + ".join(
                    f"{p['kwh']:.2f} kWh @ {p['price_per_kwh']:.4f}"
                    for p in quote["tier_breakdown"]
                )

    def action_confirm(self):
        self.ensure_one()
        purchase = vending.vend(
            self.env,
            self.meter_id,
            self.amount,
            "backoffice",
            self.external_ref,
            currency=self.currency_id,
        )
        purchase._create_invoice_and_payment(self.journal_id)
        return {
            "type": "ir.actions.act_window",
            "name": _("Credit purchase"),
            "res_model": "smartpm.credit.purchase",
            "res_id": purchase.id,
            "view_mode": "form",
            "target": "current",
        }
