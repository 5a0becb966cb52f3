"""Point of Sale: electricity credit sold as a POS product.

The POS line carries the meter (and the kWh the cashier was shown); when the paid order
reaches the server, each such line becomes a purchase through the vending service, keyed
by the order's uuid so an order synced twice sells once.
"""

from odoo import api, models
from odoo.exceptions import UserError

from ..services import debt, receipt, refunds, vending
from .pos_config import credit_product


class PosOrder(models.Model):
    _inherit = "pos.order"

    def _smartpm_credit_lines(self):
        """Lines that sell credit (a refund line gives credit back: ``_smartpm_refund_lines``)."""
        product = credit_product(self.env)
        return self.lines.filtered(
            lambda line: (
                (line.smartpm_meter_id or line.product_id == product)
                and not line.refunded_orderline_id
            )
        )

    def _smartpm_refund_lines(self):
        """Lines of Odoo's refund flow that refund a sale of credit."""
        return self.lines.filtered(lambda line: line.refunded_orderline_id.smartpm_purchase_ids)

    def _smartpm_check_refund_lines(self):
        """A refund of credit is accepted while the sale can be reversed (services.refunds)."""
        for line in self._smartpm_refund_lines():
            purchase = line.refunded_orderline_id.sudo().smartpm_purchase_ids[:1]
            refusal = refunds.pos_refund_refusal(purchase, line)
            if refusal:
                raise UserError(refusal)

    def _smartpm_reverse_refunded_credit(self):
        """The refund order is paid: the refunded sales are reversed (their jobs cancelled)."""
        for order in self.filtered(lambda o: o.state in refunds.PAID_ORDER_STATES):
            for line in order._smartpm_refund_lines():
                purchase = line.refunded_orderline_id.sudo().smartpm_purchase_ids[:1]
                with self.env.cr.savepoint():
                    refunds.reverse_for_pos_refund(purchase, line)

    def _smartpm_check_credit_lines(self):
        """Refuse the order before it is accepted if a credit line cannot be sold."""
        product = credit_product(self.env)
        for order in self:
            for line in order._smartpm_credit_lines():
                if line.smartpm_purchase_ids:
                    continue
                meter = line.smartpm_meter_id
                if line.product_id != product:
                    raise UserError(
                        self.env._("Only the electricity credit product can carry a meter.")
                    )
                if not meter:
                    raise UserError(
                        self.env._("Order %s: an electricity credit line has no meter.", order.name)
                    )
                if not line.qty or not line.price_subtotal_incl:
                    raise UserError(
                        self.env._(
                            "Order %s: an electricity credit line has no amount.", order.name
                        )
                    )
                if line.qty < 0 or line.price_subtotal_incl < 0:
                    raise UserError(
                        self.env._(
                            "Electricity credit sold to meter %s cannot be refunded by a "
                            "negative line: refund its sale (ticket screen, Refund).",
                            meter.serial_number,
                        )
                    )
                refusal = meter._smartpm_company_refusal(
                    order.company_id
                ) or meter._smartpm_amount_refusal(line.price_subtotal_incl, order.currency_id)
                if refusal:
                    raise UserError(self.env._("Cannot sell credit: %s", refusal))
                tariff_taxes = meter.sudo()._get_tariff().tax_ids
                if line.tax_ids != tariff_taxes:
                    # the POS books the sale: its taxes must be the ones the tariff includes
                    raise UserError(
                        self.env._(
                            "Credit for meter %(meter)s must carry the tariff's taxes "
                            "(%(taxes)s). Remove the line and add it again.",
                            meter=meter.serial_number,
                            taxes=", ".join(tariff_taxes.mapped("name")) or self.env._("none"),
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
                        self.env._(
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
            self._smartpm_check_refund_lines()
        self._smartpm_set_tenant_as_customer()
        res = super()._process_saved_order(draft)
        if not draft and self.state in ("paid", "done", "invoiced"):
            self._smartpm_sell_credit()
            # here, not only in action_pos_order_paid (whose errors the POS only logs): a
            # refund whose sale cannot be reversed any more is refused, not half done
            self._smartpm_reverse_refunded_credit()
        return res

    def action_pos_order_paid(self):
        # also reached from the back office (pos.make.payment)
        self._smartpm_check_credit_lines()
        self._smartpm_check_refund_lines()
        self._smartpm_set_tenant_as_customer()
        res = super().action_pos_order_paid()
        self._smartpm_sell_credit()
        self._smartpm_reverse_refunded_credit()
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
                        self.env._(
                            "Order %(order)s was already received (purchase %(purchase)s).",
                            order=order.pos_reference or order.name,
                            purchase=purchase.sudo().name,
                        )
                    )
                debt.settle_pos(purchase.sudo())
                # the receipt's estimate (services/receipt.py): the meter keeps what repays
                # emergency credit; an older purchase without it: as before
                line.smartpm_balance_kwh = purchase.sudo().expected_balance_kwh or (
                    balance_before + purchase.sudo().kwh
                )
                line.invalidate_recordset(["smartpm_purchase_ids"])

    @api.model
    def smartpm_refund_refusals(self, line_ids):
        """Why the register may not refund these sold credit lines (the ticket screen asks
        before it makes the refund order); empty if it may."""
        lines = self.env["pos.order.line"].browse([int(i) for i in line_ids]).exists()
        lines.check_access("read")
        refusals = []
        for line in lines.sudo().filtered("smartpm_purchase_ids"):
            # as Refund would make it: the whole line back
            refund = line.new({"qty": -line.qty, "price_subtotal_incl": -line.price_subtotal_incl})
            refusal = refunds.pos_refund_refusal(line.smartpm_purchase_ids[:1], refund)
            if refusal:
                refusals.append(refusal)
        return refusals

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
                    # the debt split (services/debt.py): amount = debt_recovered + credit
                    "amount": purchase.amount,
                    "debt_recovered": purchase.debt_recovered,
                    "debt_balance": purchase.debt_balance_after,
                    "credit_amount": purchase.credit_amount,
                    "credit_kwh": line.smartpm_meter_id.credit_kwh,
                    "error": purchase.job_error or False,
                    # the receipt of every channel (services/receipt.py)
                    "receipt_lines": receipt.split(purchase)["lines"] if purchase else [],
                }
            )
        return result
