import logging

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..services import debt, engine, vending

_logger = logging.getLogger(__name__)


class PaymentTransaction(models.Model):
    """Credit bought on the tenant portal: the transaction names the meter; when it is done,
    post-processing sells the credit (once: the purchase's reference is the transaction's)
    and invoices it, and account_payment's post-processing pays that invoice."""

    _inherit = "payment.transaction"

    smartpm_meter_id = fields.Many2one(
        "smartpm.meter", string="Meter credited", readonly=True, index="btree_not_null"
    )
    smartpm_purchase_id = fields.Many2one(
        "smartpm.credit.purchase", string="Credit purchase", readonly=True
    )
    # The purchase's number (CP...), taken when the tenant starts paying: it is the payment's
    # reference, so the tenant, the provider, the invoice and the back office quote one number.
    smartpm_purchase_name = fields.Char(string="Credit purchase number", readonly=True)

    @api.model
    def _smartpm_reserve_purchase_name(self):
        """The next credit purchase number (a payment abandoned leaves a gap, like a sale
        order's quotation number)."""
        return self.env["ir.sequence"].sudo().next_by_code("smartpm.credit.purchase")

    def _post_process(self):
        for tx in self.filtered(
            lambda t: (
                t.state == "done"
                and t.smartpm_meter_id
                and not t.smartpm_purchase_id
                and t.operation != "validation"
            )
        ):
            tx._smartpm_sell_credit()
        res = super()._post_process()
        # the payment (the whole amount) paid the invoice (the credit part): its rest
        # settles the debts the purchase recovered
        for tx in self.filtered(
            lambda t: t.smartpm_purchase_id.recovery_ids and t.payment_id and t.state == "done"
        ):
            purchase = tx.sudo().smartpm_purchase_id
            try:
                with self.env.cr.savepoint():
                    debt.settle_payment(purchase, tx.sudo().payment_id.move_id)
            except UserError as exc:
                # the sale and its payment stand; the books are matched by hand
                _logger.warning("portal payment %s: debts not matched: %s", tx.reference, exc)
                purchase.message_post(body=exc.args[0])
        return res

    def _smartpm_sell_credit(self):
        self.ensure_one()
        tx = self.sudo()
        # The status page and the post-processing cron may both get here: the row lock makes
        # the second wait, then fail to serialise and be retried, seeing the purchase set.
        self.env.cr.execute(
            "SELECT id FROM payment_transaction WHERE id = %s FOR NO KEY UPDATE", (tx.id,)
        )
        try:
            with self.env.cr.savepoint():
                purchase = vending.vend(
                    tx.env,
                    tx.smartpm_meter_id,
                    tx.amount,
                    "portal",
                    tx.reference,
                    currency=tx.currency_id,
                    extra_vals={"name": tx.smartpm_purchase_name}
                    if tx.smartpm_purchase_name
                    else None,
                )
                invoice = tx._smartpm_invoice(purchase)
                tx.write(
                    {
                        "smartpm_purchase_id": purchase.id,
                        "invoice_ids": [fields.Command.link(invoice.id)],
                    }
                )
        except vending.VendingError as exc:
            if exc.code == "duplicate_reference":
                raise  # a concurrent post-processing sold it: roll back and retry
            tx._smartpm_report_unsold(exc)

    def _smartpm_invoice(self, purchase):
        """The purchase's invoice, created and posted if it has none yet."""
        invoice = purchase.invoice_id
        if not invoice:
            invoice = (
                self.env["account.move"]
                .with_company(purchase.company_id)
                .create(purchase._prepare_invoice_values())
            )
            invoice.action_post()
            engine.as_engine(purchase).invoice_id = invoice
        return invoice

    def _smartpm_report_unsold(self, exc):
        """Paid but not sellable any more (meter taken out of service meanwhile...): the
        payment stays on the tenant's account and the operators decide (refund)."""
        self.ensure_one()
        _logger.warning("portal payment %s could not buy credit: %s", self.reference, exc)
        meter = self.smartpm_meter_id
        meter.message_post(
            body=self.env._(
                "Payment %(ref)s (%(amount)s) was received but no credit was sold: "
                "%(error)s. Refund the tenant or sell the credit by hand.",
                ref=self.reference,
                amount=self.amount,
                error=exc.args[0],
            ),
        )
        meter.activity_schedule(
            "mail.mail_activity_data_todo",
            summary=self.env._("Portal payment without credit"),
            note=self.env._("Payment %s: refund it or sell the credit.", self.reference),
            user_id=self.env["smartpm.credit.purchase"]
            .new({"company_id": meter.company_id.id})
            ._get_alert_user()
            .id,
        )
