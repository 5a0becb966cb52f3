"""Money back when a sale of credit is reversed, on the channel the sale came by (issue 16).

- POS: Odoo's own refund order (its line names the sold line in ``refunded_orderline_id``),
  paid out with the sale's payment method in an open session of the sale's register. The
  cashier makes it at the register (Refund on the ticket screen) while the sale can be
  reversed at once; a back-office reversal makes it in the register's open session.
- Portal: the provider refunds the payment where it can (``payment.transaction``
  ``action_refund``); the refund is reconciled with the credit note. Otherwise the credit
  note stays open and the operators get an activity to refund by hand.
- Bank: the whole amount is paid out of the bank's settlement journal and reconciled with
  the credit note and the rest of the sale's payment.

Every channel gives back ``refund_amount``: the whole amount the tenant paid, the debt it
recovered included, since the reversal owes that debt again (``debt.restore``). After the
refund the credit note, the sale's payment and the refund payment are matched, and the
tenant's receivable is what the restored debts' invoices are owed (docs/accounting.md).

Every refund is written in the purchase's chatter and on the channel's own document.
"""

from markupsafe import Markup

from odoo import fields
from odoo.exceptions import UserError

from . import engine, job_queue

PAID_ORDER_STATES = ("paid", "done", "invoiced")
REFUNDABLE_PROVIDER_SUPPORT = ("full_only", "partial")


def refund_amount(purchase):
    """What the tenant gets back when ``purchase`` is reversed, on every channel: the credit
    part (its credit note) and the debt it recovered, which the reversal restores
    (``debt.restore``: owed again, so not kept): the whole amount paid."""
    purchase = purchase.sudo()
    return purchase.currency_id.round(purchase.credit_amount + purchase.debt_recovered)


def refund_reversed(purchase, refund_at_register=False):
    """Give back the money of ``purchase``, just reversed. ``refund_at_register``: the
    operator reversed it now (a POS sale's refund order is made in the open session);
    otherwise (the meter answered a check) a POS refund is left to the cashier."""
    purchase = purchase.sudo()
    if purchase.channel == "pos":
        _refund_pos(purchase, refund_at_register)
    elif purchase.channel == "portal":
        _refund_portal(purchase)
    elif purchase.channel in ("bank_soap", "bank_xmlrpc"):
        journal = purchase.bank_partner_id.smartpm_bank_journal_id
        if journal:
            _refund_bank(purchase, journal)


# ------------------------------------------------------------------------ point of sale
def pos_refund_lines(line):
    """The paid refund lines of the POS line ``line``."""
    return line.sudo().refund_orderline_ids.filtered(
        lambda refund: refund.order_id.state in PAID_ORDER_STATES
    )


def _never_claimed(purchase):
    job = purchase.job_id
    return not purchase.delivery_attempted and (
        not job or (job.state in ("pending", "cancelled") and not job.attempt_count)
    )


def pos_refund_refusal(purchase, refund_line):
    """Why the register may not refund ``purchase`` by ``refund_line`` (False if it may).

    Cash goes out only for credit that is provably not on the meter: a sale already
    reversed, or one whose delivery no bridge ever took (reversed at once with the refund).
    A delivery that was attempted is reversed in the back office, where the meter is asked
    first; the register refunds it once it is reversed."""
    purchase = purchase.sudo()
    meter = purchase.meter_id.serial_number
    other = pos_refund_lines(purchase.pos_order_line_id) - refund_line
    if other:
        return purchase.env._(
            "Credit %(ref)s for meter %(meter)s was already refunded (order %(order)s).",
            ref=purchase.name,
            meter=meter,
            order=other[:1].order_id.name,
        )
    sold = purchase.pos_order_line_id
    amount = refund_amount(purchase)
    if sold.qty + refund_line.qty or purchase.currency_id.compare_amounts(
        -refund_line.price_subtotal_incl, amount
    ):
        return purchase.env._(
            "Credit %(ref)s for meter %(meter)s is refunded whole (%(amount)s) or not at all.",
            ref=purchase.name,
            meter=meter,
            amount=amount,
        )
    if purchase.state == "reversed" or (
        purchase.state in ("paid", "queued", "failed") and _never_claimed(purchase)
    ):
        return False
    if purchase.state == "delivered":
        return purchase.env._(
            "Credit %(ref)s cannot be refunded: its %(kwh)s kWh are on meter %(meter)s "
            "(delivered). Delivered credit is never refunded.",
            ref=purchase.name,
            kwh=purchase.kwh,
            meter=meter,
        )
    if purchase.state == "pending_check":
        return purchase.env._(
            "Credit %(ref)s cannot be refunded yet: its reversal waits for meter %(meter)s "
            "to say whether it applied transfer %(n)s. Refund it once the sale is reversed.",
            ref=purchase.name,
            meter=meter,
            n=purchase.transfer_number,
        )
    return purchase.env._(
        "Credit %(ref)s cannot be refunded at the register: its delivery to meter %(meter)s "
        "was attempted, so the credit may be on the meter. Reverse the purchase in the back "
        "office: the meter is asked first, and the refund follows once it is reversed.",
        ref=purchase.name,
        meter=meter,
    )


def reverse_for_pos_refund(purchase, refund_line):
    """The register refunded ``purchase`` (``refund_line`` paid): reverse it now."""
    purchase = engine.as_engine(purchase)
    if purchase.state == "reversed":
        return
    refusal = pos_refund_refusal(purchase, refund_line)
    if refusal:
        raise UserError(refusal)
    job = purchase.job_id
    if job and job.state != "cancelled":
        # atomic against a bridge claiming it this very moment
        if not job_queue.cancel(purchase.env, job.ids, never_claimed=True):
            raise UserError(
                purchase.env._(
                    "Credit %(ref)s cannot be refunded: a bridge is delivering it to meter "
                    "%(meter)s right now. Reverse the purchase in the back office.",
                    ref=purchase.name,
                    meter=purchase.meter_id.serial_number,
                )
            )
    purchase._reverse_now()
    _log_pos_refund(purchase, refund_line.order_id, purchase.env._("refunded at the register"))


def _log_pos_refund(purchase, refund_order, how):
    cash_out = ", ".join(
        f"{payment.payment_method_id.name} {payment.amount}" for payment in refund_order.payment_ids
    )
    purchase.message_post(
        body=Markup(purchase.env._("Sale reversed and %(how)s: POS refund %(order)s (%(cash)s)."))
        % ({"how": how, "order": refund_order._get_html_link(), "cash": cash_out})
    )
    refund_order.message_post(
        body=Markup(purchase.env._("Refund of the electricity credit %(purchase)s (reversed)."))
        % ({"purchase": purchase._get_html_link()})
    )


def _refund_pos(purchase, refund_at_register):
    line = purchase.pos_order_line_id
    if not line or pos_refund_lines(line):
        return  # refunded at the register already
    if refund_at_register:
        create_pos_refund(purchase)
        return
    config = line.order_id.config_id
    purchase.activity_schedule(
        "mail.mail_activity_data_todo",
        user_id=purchase._get_alert_user().id,
        summary=purchase.env._("Refund %s at the register", purchase.name),
        note=purchase.env._(
            "%(ref)s is reversed: give the %(amount)s back at register %(pos)s (ticket "
            "screen, order %(order)s, Refund).",
            ref=purchase.name,
            amount=refund_amount(purchase),
            pos=config.display_name,
            order=line.order_id.pos_reference or line.order_id.name,
        ),
    )


def _open_session(purchase):
    """The open session of the register that sold ``purchase``, or a clear error."""
    order = purchase.sudo().pos_order_line_id.order_id
    config = order.config_id
    session = config.current_session_id
    if not session or session.state != "opened":
        raise UserError(
            purchase.env._(
                "%(ref)s was sold at register %(pos)s: open a session of %(pos)s to reverse "
                "it, the cash is refunded there (a refund order of %(order)s).",
                ref=purchase.name,
                pos=config.display_name,
                order=order.name,
            )
        )
    return session


def check_pos_register_open(purchase):
    """Before a back-office reversal that will refund at once: the register is open."""
    line = purchase.sudo().pos_order_line_id
    if line and _never_claimed(purchase.sudo()) and not pos_refund_lines(line):
        _open_session(purchase)


def create_pos_refund(purchase):
    """Odoo's refund order for the sold line of ``purchase``, paid out with the sale's
    payment method in the open session of the sale's register."""
    purchase = purchase.sudo()
    line = purchase.pos_order_line_id
    order = line.order_id
    session = _open_session(purchase)
    amount = refund_amount(purchase)
    if purchase.currency_id.compare_amounts(line.price_subtotal_incl, amount):
        raise UserError(
            purchase.env._(
                "Credit %(ref)s for meter %(meter)s: its POS line %(order)s is %(line)s, not "
                "the %(amount)s paid; refund it by hand at register %(pos)s.",
                ref=purchase.name,
                meter=purchase.meter_id.serial_number,
                order=order.name,
                line=line.price_subtotal_incl,
                amount=amount,
                pos=order.config_id.display_name,
            )
        )
    refund = order.copy(
        dict(
            order._prepare_refund_values(session),
            amount_total=-amount,
            amount_tax=-(line.price_subtotal_incl - line.price_subtotal),
        )
    )
    line.copy(line._prepare_refund_data(refund, purchase.env["pos.pack.operation.lot"]))
    payments = order.payment_ids.filtered(lambda p: p.amount > 0)
    method = (payments.sorted("amount", reverse=True)[:1]).payment_method_id
    if not method:
        method = session.payment_method_ids.filtered("is_cash_count")[:1]
    refund.add_payment(
        {
            "pos_order_id": refund.id,
            "amount": -amount,
            "payment_method_id": method.id,
            "name": purchase.env._("Refund of %s", purchase.name),
            "payment_date": fields.Datetime.now(),
        }
    )
    refund._process_saved_order(False)
    if refund.state not in PAID_ORDER_STATES:
        raise UserError(purchase.env._("The refund order %s could not be paid.", refund.name))
    _log_pos_refund(
        purchase, refund, purchase.env._("refunded in the open session %s", session.name)
    )
    return refund


# ------------------------------------------------------------------------------ portal
def source_transaction(purchase):
    return (
        purchase.env["payment.transaction"]
        .sudo()
        .search([("smartpm_purchase_id", "=", purchase.id), ("operation", "!=", "refund")], limit=1)
    )


def _refund_portal(purchase):
    tx = source_transaction(purchase)
    refunds = tx.child_transaction_ids.filtered(
        lambda t: t.operation == "refund" and t.state != "cancel" and t.state != "error"
    )
    if not refunds and tx.state == "done" and _supports_refund(tx):
        tx.action_refund(amount_to_refund=refund_amount(purchase))
        refunds = tx.child_transaction_ids.filtered(lambda t: t.operation == "refund")
    if refunds:
        refund_tx = refunds[-1:]
        # the provider's cron would create its payment later: book it with the reversal
        refund_tx.filtered(lambda t: t.state == "done" and not t.is_post_processed)._post_process()
        reconcile_refund(purchase, refund_tx.payment_id)
        purchase.message_post(
            body=purchase.env._(
                "Sale reversed: payment %(tx)s refunded through %(provider)s (refund %(refund)s, "
                "%(state)s).",
                tx=tx.reference,
                provider=tx.provider_id.name,
                refund=refund_tx.reference,
                state=refund_tx.state,
            )
        )
        return
    purchase.activity_schedule(
        "mail.mail_activity_data_todo",
        user_id=purchase._get_alert_user().id,
        summary=purchase.env._("Refund %s by hand", purchase.name),
        note=purchase.env._(
            "%(ref)s is reversed and %(provider)s cannot refund payment %(tx)s: pay the "
            "tenant back %(amount)s by hand and register it on credit note %(note)s.",
            ref=purchase.name,
            provider=tx.provider_id.name or purchase.env._("the payment provider"),
            tx=tx.reference or purchase.env._("(none)"),
            amount=refund_amount(purchase),
            note=purchase.credit_note_id.name or purchase.env._("(none)"),
        ),
    )


def _supports_refund(tx):
    return tx.provider_id.support_refund in REFUNDABLE_PROVIDER_SUPPORT


def sale_payment_lines(purchase):
    """The receivable lines of the payment(s) that paid the invoice of ``purchase``."""
    invoice_lines = purchase.invoice_id.line_ids.filtered(
        lambda aml: aml.account_id.account_type == "asset_receivable"
    )
    payment_moves = (
        invoice_lines.matched_credit_ids.credit_move_id.move_id - purchase.credit_note_id
    )
    return payment_moves.line_ids.filtered(
        lambda aml: (
            aml.account_id in invoice_lines.account_id
            and aml.partner_id.commercial_partner_id == purchase.tenant_id.commercial_partner_id
        )
    )


def reconcile_refund(purchase, payment):
    """Match the refund ``payment`` (of ``refund_amount``) with the credit note and with
    the open rest of the sale's payment (the debt recovered, unmatched by ``debt.restore``):
    all three are settled, and the tenant's receivable is left with the restored debts'
    invoices only."""
    note = purchase.credit_note_id
    if not note or not payment:
        return
    payment = payment.sudo()
    if payment.state == "draft":
        payment.action_post()
    accounts = note.line_ids.filtered(
        lambda aml: aml.account_id.account_type == "asset_receivable"
    ).account_id
    (note.line_ids + payment.move_id.line_ids + sale_payment_lines(purchase)).filtered(
        lambda aml: aml.account_id in accounts and not aml.reconciled
    ).reconcile()


# -------------------------------------------------------------------------------- bank
def _refund_bank(purchase, journal):
    """The bank gives the money back: ``refund_amount`` out of its settlement journal, to
    the tenant, matched with the credit note and the rest of the sale's payment."""
    note = purchase.credit_note_id
    if not note or note.payment_state in ("paid", "in_payment", "reversed"):
        return
    payments = (
        purchase.env["account.payment.register"]
        .with_company(purchase.company_id)
        .with_context(active_model="account.move", active_ids=note.ids)
        .create(
            {
                "journal_id": journal.sudo().id,
                "amount": refund_amount(purchase),
                "payment_date": note.invoice_date,  # the refund is the credit note's act
                "communication": purchase.env._("Refund of %s", purchase.name),
                "payment_difference_handling": "open",
            }
        )
        ._create_payments()
    )
    reconcile_refund(purchase, payments)
