import uuid

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ..services import receipt, vending
from ..services.sale_info import sale_info

SELLER_GROUP = "smartpm_prepay.group_cashier"


class SmartpmSellCreditWizard(models.TransientModel):
    """Back-office sale for cashiers and operators without a register: vend, invoice, and
    the payment in a journal, in one step."""

    _name = "smartpm.sell.credit.wizard"
    _description = "Sell credit (back office)"
    _check_company_auto = True

    meter_id = fields.Many2one(
        "smartpm.meter",
        required=True,
        domain=[("tenant_id", "!=", False), ("state", "in", vending.SELLABLE_STATES)],
        check_company=True,
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
    debt_recovered = fields.Monetary(
        string="Debt repaid",
        compute="_compute_quote",
        help="The part of the amount that repays the tenant's debts first.",
    )
    debt_balance = fields.Monetary(string="Debt left after", compute="_compute_quote")
    credit_amount = fields.Monetary(
        string="Credit bought", compute="_compute_quote", help="What buys energy."
    )
    price_info = fields.Char(string="Price", compute="_compute_quote")
    credit_mode = fields.Selection(related="meter_id.credit_mode")
    bands_info = fields.Char(
        string="Price bands",
        compute="_compute_quote",
        help="Time of use: the credit the meter receives in money, and the price of each "
        "band with the kWh the credit buys if all of it is used in that band.",
    )
    limits_info = fields.Char(string="One sale", compute="_compute_quote")
    credit_kwh = fields.Float(
        string="Last known credit (kWh)", related="meter_id.credit_kwh", digits=(16, 2)
    )
    estimated_balance_kwh = fields.Float(
        string="Estimated new balance (kWh)", compute="_compute_quote", digits=(16, 2)
    )
    receipt_preview = fields.Text(
        string="Receipt",
        compute="_compute_quote",
        help="What the receipt will say (services/receipt.py): amount paid, debt recovered "
        "and left, emergency and negative credit the meter is expected to keep, net energy "
        "added, estimated new balance.",
    )
    last_purchase_info = fields.Char(string="Last purchase", compute="_compute_quote")
    warning = fields.Char(compute="_compute_quote", help="The meter is out of contact.")
    refusal = fields.Char(compute="_compute_quote", help="Why this sale cannot be made.")

    @api.onchange("meter_id")
    def _onchange_meter_id(self):
        if self.meter_id:
            self.company_id = self.meter_id.company_id

    @api.depends("meter_id", "amount")
    def _compute_quote(self):
        for wizard in self:
            meter = wizard.meter_id.sudo()
            info = sale_info(meter, wizard.amount if wizard.amount else None) if meter else {}
            quote = info.get("quote")
            tariff = info.get("tariff")
            wizard.currency_id = tariff.currency_id if tariff else wizard.company_id.currency_id
            wizard.kwh = quote["kwh"] if quote else 0.0
            wizard.debt_recovered = quote.get("debt_recovered", 0.0) if quote else 0.0
            wizard.debt_balance = quote.get("debt_balance", 0.0) if quote else 0.0
            wizard.credit_amount = quote.get("credit_amount", 0.0) if quote else 0.0
            wizard.price_info = info.get("price_info") or False
            wizard.bands_info = (info.get("tiers_info") if info.get("bands") else False) or False
            wizard.limits_info = info.get("limits") if meter else False
            wizard.estimated_balance_kwh = (
                meter._smartpm_estimated_balance_kwh(quote["kwh"] if quote else 0.0) if meter else 0
            )
            split = receipt.quote_split(meter, info) if quote and not info.get("reason") else None
            wizard.receipt_preview = receipt.text_of(split["lines"]) if split else False
            if split:  # the meter keeps what repays emergency credit
                wizard.estimated_balance_kwh = split["new_balance_kwh"]
            wizard.last_purchase_info = wizard._last_purchase_text(meter)
            wizard.warning = info.get("warning") or False
            wizard.refusal = info.get("reason") or False

    def _last_purchase_text(self, meter):
        last = meter._smartpm_last_purchase() if meter else False
        if not last:
            return self.env._("None yet") if meter else False
        date = fields.Datetime.context_timestamp(self, fields.Datetime.from_string(last["date"]))
        kwh = f"{last['kwh']:.2f}"  # out of the _() call: Babel's extractor evaluates f-strings
        return self.env._(
            "%(date)s: %(amount)s, %(kwh)s kWh (%(ref)s, %(channel)s)",
            date=date.strftime("%Y-%m-%d %H:%M"),
            amount=last["amount_text"],
            kwh=kwh,
            ref=last["reference"],
            channel=last["channel"],
        )

    def _get_refusal(self):
        """Why the meter or the amount cannot be sold, in the currency, or False."""
        self.ensure_one()
        return sale_info(self.meter_id, self.amount if self.amount else None)["reason"]

    def _check_can_sell(self):
        if not self.env.user.has_group(SELLER_GROUP):
            raise AccessError(
                self.env._(
                    "Only the Cashier group of Prepaid Electricity may sell credit in the office."
                )
            )

    def action_confirm(self):
        self.ensure_one()
        self._check_can_sell()
        self.meter_id.check_access("read")
        self.journal_id.check_access("read")
        if not self.amount:
            raise UserError(
                self.env._(
                    "Enter the amount the customer pays for meter %(meter)s, %(limits)s.",
                    meter=self.meter_id.serial_number,
                    limits=self.meter_id._smartpm_amount_limits()[2],
                )
            )
        refusal = self._get_refusal()
        if refusal:
            raise UserError(refusal)
        # A cashier sells here, always invoiced and paid in one step: the sale runs as the
        # back office (the raw back-office RPC stays the operators').
        purchase = vending.vend(
            self.env(su=True),
            self.meter_id,
            self.amount,
            "backoffice",
            self.external_ref,
            currency=self.currency_id,
        )
        purchase._create_invoice_and_payment(self.journal_id)
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Credit purchase"),
            "res_model": "smartpm.credit.purchase",
            "res_id": purchase.id,
            "view_mode": "form",
            "target": "current",
        }
