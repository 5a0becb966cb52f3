"""Point of Sale: electricity credit sold as a POS product.

The POS line carries the meter (and the kWh the cashier was shown); when the paid order
reaches the server, each such line becomes a purchase through the vending service, keyed
by the order's uuid so an order synced twice sells once.
"""

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..services import vending

CREDIT_PRODUCT_XMLID = "smartpm_prepay.product_electricity_credit"
SEARCH_LIMIT = 20


def _credit_product(env):
    return env.ref(CREDIT_PRODUCT_XMLID, raise_if_not_found=False) or env["product.product"]


class SmartpmMeter(models.Model):
    _name = "smartpm.meter"
    _inherit = ["smartpm.meter", "pos.load.mixin"]

    tenant_name = fields.Char(related="tenant_id.name", string="Tenant name")

    # ------------------------------------------------------------ POS data
    @api.model
    def _load_pos_data_domain(self, data):
        # Only the meters of the orders loaded with the session: the others are searched
        # on demand (a database holds 100,000 meters).
        ids = {
            line["smartpm_meter_id"]
            for line in data.get("pos.order.line", {}).get("data", [])
            if line.get("smartpm_meter_id")
        }
        return [("id", "in", list(ids))]

    @api.model
    def _load_pos_data_fields(self, config_id):
        return [
            "id",
            "serial_number",
            "state",
            "tenant_name",
            "tenant_number",
            "credit_kwh",
            "write_date",
        ]

    # ------------------------------------------------------------ rules of sale
    # The vending service decides; these only turn its refusals into a reason to show.
    def _smartpm_sale_refusal(self):
        """Why credit cannot be sold to this meter, or False."""
        self.ensure_one()
        try:
            vending.check_sellable(self.sudo())
        except vending.VendingError as exc:
            return exc.args[0]
        return False

    def _smartpm_amount_refusal(self, amount, currency):
        """Why ``amount`` in ``currency`` cannot be sold to this (sellable) meter, or False."""
        self.ensure_one()
        meter = self.sudo()
        try:
            tariff = vending.check_sellable(meter)
            if not amount or amount <= 0:
                raise vending.VendingError("amount_out_of_range", _("The amount must be positive."))
            vending.check_amount(tariff, meter, amount, currency)
        except vending.VendingError as exc:
            return exc.args[0]
        return False

    def _smartpm_company_refusal(self, company):
        """The register books the sale: it must belong to the meter's company."""
        self.ensure_one()
        meter = self.sudo()
        if meter.company_id != company:
            return _(
                "Meter %(meter)s belongs to %(owner)s: this register sells for %(company)s.",
                meter=meter.serial_number,
                owner=meter.company_id.name,
                company=company.name,
            )
        return False

    def _smartpm_quote(self, amount):
        """The service's quote of ``amount`` now (tiers count the month's purchases)."""
        self.ensure_one()
        meter = self.sudo()
        tariff = vending.check_sellable(meter)
        quote = tariff._quote_amount(amount, vending.month_kwh(self.env, meter))
        quote["tax_ids"] = tariff.tax_ids.ids
        return quote

    def _smartpm_pos_values(self):
        self.ensure_one()
        states = dict(self._fields["state"]._description_selection(self.env))
        return {
            "id": self.id,
            "serial_number": self.serial_number,
            "tenant_name": self.tenant_id.name or "",
            "tenant_number": self.tenant_id.tenant_number or "",
            "state": self.state,
            "state_label": states.get(self.state, self.state),
            "credit_kwh": self.credit_kwh,
            "last_seen": fields.Datetime.to_string(self.last_seen) if self.last_seen else False,
            "refusal": self._smartpm_sale_refusal() or False,
        }

    # ------------------------------------------------------------ RPC from the POS
    @api.model
    def pos_search_meters(self, query, limit=SEARCH_LIMIT):
        """Meters whose number, tenant name or tenant number matches ``query``."""
        query = (query or "").strip()
        if len(query) < 2:
            return []
        domain = [
            "|",
            "|",
            ("serial_number", "ilike", query),
            ("tenant_id.name", "ilike", query),
            ("tenant_id.tenant_number", "ilike", query),
        ]
        meters = self.search(domain, limit=min(int(limit or SEARCH_LIMIT), 50))
        return [meter._smartpm_pos_values() for meter in meters]

    @api.model
    def pos_quote_credit(self, meter_id, amount, config_id):
        """Preview of a sale: the meter, the kWh, or why it cannot be sold."""
        meter = self.browse(int(meter_id)).exists()
        if not meter:
            return {"refusal": _("This meter does not exist any more.")}
        try:
            amount = float(amount)
        except (TypeError, ValueError):
            return {"refusal": _("The amount must be a number.")}
        values = meter._smartpm_pos_values()
        values.update(kwh=0.0, price_per_kwh=0.0, tax_ids=[])
        if values["refusal"]:
            return values
        config = self.env["pos.config"].browse(int(config_id))
        refusal = meter._smartpm_company_refusal(
            config.company_id
        ) or meter._smartpm_amount_refusal(amount, config.currency_id)
        if refusal:
            values["refusal"] = refusal
            return values
        quote = meter._smartpm_quote(amount)
        values.update(
            kwh=quote["kwh"], price_per_kwh=quote["price_per_kwh"], tax_ids=quote["tax_ids"]
        )
        return values


class PosSession(models.Model):
    _inherit = "pos.session"

    @api.model
    def _load_pos_data_models(self, config_id):
        return [*super()._load_pos_data_models(config_id), "smartpm.meter"]

    def _load_pos_data(self, data):
        res = super()._load_pos_data(data)
        res["data"][0]["_smartpm_credit_product_id"] = _credit_product(self.env).id or False
        return res


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

    @api.depends("smartpm_purchase_ids.name", "smartpm_purchase_ids.kwh")
    def _compute_smartpm_purchase(self):
        for line in self:
            purchase = line.sudo().smartpm_purchase_ids[:1]
            line.smartpm_purchase_ref = purchase.name or False
            line.smartpm_purchase_kwh = purchase.kwh

    @api.model
    def _load_pos_data_fields(self, config_id):
        return [
            *super()._load_pos_data_fields(config_id),
            "smartpm_meter_id",
            "smartpm_kwh",
            "smartpm_purchase_ref",
            "smartpm_purchase_kwh",
        ]

    def _smartpm_external_ref(self):
        """Stable across syncs: the order's uuid and the line's (both made by the POS).

        The vending service keeps 64 characters: 36 for the order, 27 hex digits of the line.
        """
        self.ensure_one()
        line_key = (self.uuid or "").replace("-", "")[:27] or str(self.id)
        return f"{self.order_id.uuid}:{line_key}"


class PosOrder(models.Model):
    _inherit = "pos.order"

    def _smartpm_credit_lines(self):
        credit_product = _credit_product(self.env)
        return self.lines.filtered(
            lambda line: line.smartpm_meter_id or line.product_id == credit_product
        )

    def _smartpm_check_credit_lines(self):
        """Refuse the order before it is accepted if a credit line cannot be sold."""
        credit_product = _credit_product(self.env)
        for order in self:
            for line in order._smartpm_credit_lines():
                if line.smartpm_purchase_ids:
                    continue
                meter = line.smartpm_meter_id
                if line.product_id != credit_product:
                    raise UserError(_("Only the electricity credit product can carry a meter."))
                if not meter:
                    raise UserError(
                        _("Order %s: an electricity credit line has no meter.", order.name)
                    )
                if not line.qty or not line.price_subtotal_incl:
                    raise UserError(
                        _("Order %s: an electricity credit line has no amount.", order.name)
                    )
                if line.qty < 0 or line.price_subtotal_incl < 0:
                    raise UserError(
                        _(
                            "Electricity credit sold to meter %s cannot be refunded at the "
                            "register: reverse the purchase in the back office.",
                            meter.serial_number,
                        )
                    )
                refusal = meter._smartpm_company_refusal(
                    order.company_id
                ) or meter._smartpm_amount_refusal(line.price_subtotal_incl, order.currency_id)
                if refusal:
                    raise UserError(_("Cannot sell credit: %s", refusal))
                tariff_taxes = meter.sudo()._get_tariff().tax_ids
                if line.tax_ids != tariff_taxes:
                    # the POS books the sale: its taxes must be the ones the tariff includes
                    raise UserError(
                        _(
                            "Credit for meter %(meter)s must carry the tariff's taxes "
                            "(%(taxes)s). Remove the line and add it again.",
                            meter=meter.serial_number,
                            taxes=", ".join(tariff_taxes.mapped("name")) or _("none"),
                        )
                    )

    def _process_saved_order(self, draft):
        # Checked before payment is accepted, and raised here rather than in
        # action_pos_order_paid (whose errors the POS only logs), so the cashier sees the
        # reason and the order stays open.
        if not draft:
            self._smartpm_check_credit_lines()
        res = super()._process_saved_order(draft)
        if not draft and self.state in ("paid", "done", "invoiced"):
            self._smartpm_sell_credit()
        return res

    def action_pos_order_paid(self):
        # also reached from the back office (pos.make.payment)
        self._smartpm_check_credit_lines()
        res = super().action_pos_order_paid()
        self._smartpm_sell_credit()
        return res

    def _smartpm_sell_credit(self):
        """One purchase per credit line, idempotent on the order's and line's uuids."""
        for order in self:
            for line in order._smartpm_credit_lines():
                if line.smartpm_purchase_ids:
                    continue
                # a savepoint: a refusal leaves nothing half-written behind
                with self.env.cr.savepoint():
                    purchase = vending.vend(
                        self.env,
                        line.smartpm_meter_id,
                        line.price_subtotal_incl,
                        "pos",
                        line._smartpm_external_ref(),
                        currency=order.currency_id,
                        extra_vals={"pos_order_line_id": line.id},
                    )
                if purchase.sudo().pos_order_line_id != line:
                    # the same POS order arrived twice as two orders: sell (and book) once
                    raise UserError(
                        _(
                            "Order %(order)s was already received (purchase %(purchase)s).",
                            order=order.pos_reference or order.name,
                            purchase=purchase.sudo().name,
                        )
                    )
                line.invalidate_recordset(["smartpm_purchase_ids"])

    @api.model
    def smartpm_credit_status(self, order_id):
        """Where the credit of a POS order is: the receipt screen polls it until the
        meters have it (the bridge delivers within seconds when the meter answers)."""
        order = self.browse(int(order_id)).exists()
        if not order:
            return []
        order.check_access("read")
        states = dict(
            self.env["smartpm.credit.purchase"]._fields["state"]._description_selection(self.env)
        )
        result = []
        for line in order.sudo().lines.filtered("smartpm_meter_id"):
            purchase = line.smartpm_purchase_ids[:1]
            result.append(
                {
                    "line_uuid": line.uuid,
                    "meter": line.smartpm_meter_id.serial_number,
                    "reference": purchase.name or False,
                    "state": purchase.state or False,
                    "state_label": states.get(purchase.state, ""),
                    "kwh": purchase.kwh,
                    "credit_kwh": line.smartpm_meter_id.credit_kwh,
                    "error": purchase.job_error or False,
                }
            )
        return result


class SmartpmCreditPurchase(models.Model):
    _inherit = "smartpm.credit.purchase"

    pos_order_line_id = fields.Many2one(
        "pos.order.line",
        string="POS order line",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="restrict",
    )
    pos_order_id = fields.Many2one(related="pos_order_line_id.order_id", string="POS order")
