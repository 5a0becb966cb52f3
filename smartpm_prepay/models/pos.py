"""Point of Sale: electricity credit sold as a POS product.

The POS line carries the meter (and the kWh the cashier was shown); when the paid order
reaches the server, each such line becomes a purchase through the vending service, keyed
by the order's uuid so an order synced twice sells once.
"""

import math
import re

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.osv import expression

from ..services import vending
from .meter_sale import describe_price, format_money

CREDIT_PRODUCT_XMLID = "smartpm_prepay.product_electricity_credit"
SEARCH_LIMIT = 20
SEARCH_LIMIT_MAX = 50
# a phone number is searched by its digits ("555 0102" finds "+1 555-0102")
PHONE_MIN_DIGITS = 4
PHONE_QUERY = re.compile(r"^[\d\s+().\-/]+$")


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
        """Why ``amount`` in ``currency`` cannot be sold to this (sellable) meter, or False;
        amounts in the message are written in the currency."""
        self.ensure_one()
        meter = self.sudo()
        try:
            tariff = vending.check_sellable(meter)
            if currency and currency != tariff.currency_id:
                vending.check_amount(tariff, meter, amount, currency)  # the mismatch
            error = meter._smartpm_amount_error(amount)
            if error:
                return error
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
        """What the credit popup shows of a meter: tenant, state, the warnings and the last
        purchase, the limits of a sale in the currency."""
        self.ensure_one()
        meter = self.sudo()
        states = dict(self._fields["state"]._description_selection(self.env))
        minimum, maximum, limits = meter._smartpm_amount_limits()
        return {
            "id": self.id,
            "serial_number": self.serial_number,
            "tenant_id": meter.tenant_id.id or False,
            "tenant_name": meter.tenant_id.name or "",
            "tenant_number": meter.tenant_id.tenant_number or "",
            "tenant_phone": meter.tenant_id.mobile or meter.tenant_id.phone or "",
            "state": self.state,
            "state_label": states.get(self.state, self.state),
            "credit_kwh": meter.credit_kwh,
            "last_seen": fields.Datetime.to_string(meter.last_seen) if meter.last_seen else False,
            "refusal": self._smartpm_sale_refusal() or False,
            "warning": meter._smartpm_contact_warning() or False,
            "last_purchase": meter._smartpm_last_purchase(),
            "min_amount": minimum,
            "max_amount": maximum,
            "limits": limits,
        }

    @api.model
    def _smartpm_phone_partner_ids(self, query):
        """Tenants whose phone or mobile holds the digits of ``query`` (or [])."""
        digits = re.sub(r"\D", "", query)
        if not PHONE_QUERY.match(query) or len(digits) < PHONE_MIN_DIGITS:
            return []
        self.env["res.partner"].flush_model(["phone", "mobile", "is_tenant"])
        self.env.cr.execute(
            r"""
            SELECT id FROM res_partner
             WHERE is_tenant
               AND (regexp_replace(COALESCE(phone, ''), '\D', '', 'g') LIKE %(pattern)s
                 OR regexp_replace(COALESCE(mobile, ''), '\D', '', 'g') LIKE %(pattern)s)
             LIMIT 1000
            """,
            {"pattern": f"%{digits}%"},
        )
        return [row[0] for row in self.env.cr.fetchall()]

    @api.model
    def _smartpm_search_domain(self, query):
        domain = [
            "|",
            "|",
            ("serial_number", "ilike", query),
            ("tenant_id.name", "ilike", query),
            ("tenant_id.tenant_number", "ilike", query),
        ]
        partner_ids = self._smartpm_phone_partner_ids(query)
        if partner_ids:
            domain = expression.OR([domain, [("tenant_id", "in", partner_ids)]])
        return domain

    # ------------------------------------------------------------ RPC from the POS
    @api.model
    def pos_search_meters(self, query, limit=SEARCH_LIMIT):
        """Meters whose number, tenant name, tenant number or tenant phone matches
        ``query``: ``{"meters": [...], "more": True if more match than ``limit``}``."""
        query = query.strip() if isinstance(query, str) else ""
        try:
            limit = max(1, min(int(limit or SEARCH_LIMIT), SEARCH_LIMIT_MAX))
        except (TypeError, ValueError, OverflowError):
            limit = SEARCH_LIMIT
        if len(query) < 2:
            return {"meters": [], "more": False, "limit": limit}
        meters = self.search(
            self._smartpm_search_domain(query), limit=limit + 1, order="serial_number"
        )
        return {
            "meters": [meter._smartpm_pos_values() for meter in meters[:limit]],
            "more": len(meters) > limit,
            "limit": limit,
        }

    @api.model
    def _smartpm_parse_amount(self, amount):
        """A finite float, or raise ValueError (booleans, text, NaN and infinities)."""
        if isinstance(amount, bool) or amount is None:
            raise ValueError(amount)
        value = float(amount)
        if not math.isfinite(value):
            raise ValueError(amount)
        return value

    @api.model
    def pos_quote_credit(self, meter_id, amount, config_id):
        """Preview of a sale: the meter, the kWh, the price, the estimated new balance, or
        why it cannot be sold. Nothing is recorded."""
        try:
            meter = self.browse(int(meter_id)).exists()
        except (TypeError, ValueError, OverflowError):
            meter = self.browse()
        if not meter:
            return {"refusal": _("This meter does not exist any more.")}
        meter.check_access("read")
        values = meter._smartpm_pos_values()
        values.update(
            kwh=0.0,
            price_per_kwh=0.0,
            price_info="",
            tax_ids=[],
            estimated_balance_kwh=meter.sudo()._smartpm_estimated_balance_kwh(),
            undelivered_kwh=meter.sudo()._smartpm_undelivered_kwh(),
        )
        if values["refusal"]:
            return values
        try:
            amount = self._smartpm_parse_amount(amount)
        except (TypeError, ValueError, OverflowError):
            values["refusal"] = _("The amount must be a number.")
            return values
        config = self.env["pos.config"].browse(int(config_id)).exists()
        if not config:
            values["refusal"] = _("This register does not exist any more.")
            return values
        config.check_access("read")
        refusal = meter._smartpm_company_refusal(
            config.company_id
        ) or meter._smartpm_amount_refusal(amount, config.currency_id)
        if refusal:
            values["refusal"] = refusal
            return values
        quote = meter._smartpm_quote(amount)
        values.update(
            kwh=quote["kwh"],
            price_per_kwh=quote["price_per_kwh"],
            price_info=describe_price(
                meter.sudo()._get_tariff(), quote["price_per_kwh"], quote["tier_breakdown"]
            ),
            tax_ids=quote["tax_ids"],
            estimated_balance_kwh=meter.sudo()._smartpm_estimated_balance_kwh(quote["kwh"]),
        )
        return values


class PosConfig(models.Model):
    _inherit = "pos.config"

    def _get_available_product_domain(self):
        """Credit is sold in every register of its company, whatever the categories the
        register is limited to (and the credit product has no POS category)."""
        domain = super()._get_available_product_domain()
        credit = _credit_product(self.env)
        if not credit:
            return domain
        return expression.OR(
            [
                domain,
                [
                    *self.env["product.product"]._check_company_domain(self.company_id),
                    ("id", "=", credit.id),
                    ("active", "=", True),
                    ("available_in_pos", "=", True),
                ],
            ]
        )


class PosSession(models.Model):
    _inherit = "pos.session"

    @api.model
    def _load_pos_data_models(self, config_id):
        return [*super()._load_pos_data_models(config_id), "smartpm.meter"]

    def _load_pos_data(self, data):
        res = super()._load_pos_data(data)
        company = self.config_id.company_id or self.env.company
        session = res["data"][0]
        session["_smartpm_credit_product_id"] = _credit_product(self.env).id or False
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

    @api.depends("smartpm_purchase_ids.name", "smartpm_purchase_ids.kwh")
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

    @api.model
    def _process_order(self, order, existing_order):
        # before Odoo computes the line amounts: an amount that is not a finite number is
        # refused with a reason rather than an overflow deep in the rounding
        for command in order.get("lines") or []:
            vals = command[2] if len(command) > 2 and isinstance(command[2], dict) else {}
            if not vals.get("smartpm_meter_id"):
                continue
            for key in ("price_unit", "qty", "price_subtotal", "price_subtotal_incl"):
                value = vals.get(key, 0.0)
                try:
                    self.env["smartpm.meter"]._smartpm_parse_amount(value)
                except (TypeError, ValueError, OverflowError):
                    raise UserError(
                        _(
                            "Order %(order)s: the amount of an electricity credit line is "
                            "not a number.",
                            order=order.get("name") or order.get("uuid"),
                        )
                    ) from None
        return super()._process_order(order, existing_order)

    def _smartpm_set_tenant_as_customer(self):
        """An order of credit without a customer is the tenant's (of its meters' tenant)."""
        for order in self:
            if order.partner_id:
                continue
            tenants = order._smartpm_credit_lines().smartpm_meter_id.sudo().tenant_id
            if len(tenants) == 1:
                order.partner_id = tenants.id

    def _process_saved_order(self, draft):
        # Checked before payment is accepted, and raised here rather than in
        # action_pos_order_paid (whose errors the POS only logs), so the cashier sees the
        # reason and the order stays open.
        if not draft:
            self._smartpm_check_credit_lines()
        self._smartpm_set_tenant_as_customer()
        res = super()._process_saved_order(draft)
        if not draft and self.state in ("paid", "done", "invoiced"):
            self._smartpm_sell_credit()
        return res

    def action_pos_order_paid(self):
        # also reached from the back office (pos.make.payment)
        self._smartpm_check_credit_lines()
        self._smartpm_set_tenant_as_customer()
        res = super().action_pos_order_paid()
        self._smartpm_sell_credit()
        return res

    def _smartpm_sell_credit(self):
        """One purchase per credit line, idempotent on the order's and line's uuids."""
        for order in self:
            for line in order._smartpm_credit_lines():
                if line.smartpm_purchase_ids:
                    continue
                meter = line.smartpm_meter_id.sudo()
                # a savepoint: a refusal leaves nothing half-written behind
                with self.env.cr.savepoint():
                    balance_before = meter._smartpm_estimated_balance_kwh()
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
                line.smartpm_balance_kwh = balance_before + purchase.sudo().kwh
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
