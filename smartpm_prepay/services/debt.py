"""Tenant debt recovery: every purchase of credit pays the tenant's debts first.

``plan`` (called by ``vending.vend`` under the meter's and tenant's locks) takes, for each
active debt of the tenant oldest first, what its recovery rule asks of the purchase
amount (a percentage with a minimum and a maximum, or a fixed amount), never more than the
debt's balance nor what is left of the purchase; the rest buys energy at the tariff.
``record`` writes the recovery lines once the purchase exists. The debt rows are locked
(``FOR NO KEY UPDATE``) and a CHECK keeps every balance >= 0, so two concurrent purchases
never recover more than the balance.

Accounting: a confirmed debt is a customer invoice (receivable). The purchase's invoice
carries the credit part only (the prepayments liability); the payment of the whole amount
is matched with that invoice and, for the recovered part, with the debt's invoice
(``settle_payment``). A POS sale books its whole line on the liability at the session's
closing, so ``settle_pos`` moves the recovered part from the liability to the receivable
at the sale. ``restore`` (a reversed purchase) gives the recovered amounts back to the
debts and unmatches them in the books; the tenant then gets the whole amount paid back
(``refunds.refund_amount``).
"""

import logging

from odoo import fields
from odoo.exceptions import UserError
from odoo.tools import float_round

from . import engine, local_time

_logger = logging.getLogger(__name__)

KIND_ACCOUNT_FIELDS = {
    "fee": "smartpm_debt_fee_account_id",
    "damage": "smartpm_debt_damage_account_id",
}


# ------------------------------------------------------------------ set-up
def default_account(company, kind=None):
    """The account a debt of ``kind`` credits: the kind's, the company's debt account, or
    the company's energy sales account."""
    if not company:
        return None
    company = company.sudo()
    field = KIND_ACCOUNT_FIELDS.get(kind)
    return (
        (company[field] if field else company.env["account.account"])
        or company.smartpm_debt_account_id
        or company.smartpm_energy_income_account_id
    )


def tenant_debts(env, tenant, company):
    """The tenant's debts being recovered in ``company``, oldest first."""
    return (
        env["smartpm.tenant.debt"]
        .sudo()
        .search(
            [
                ("tenant_id", "child_of", tenant.commercial_partner_id.id),
                ("company_id", "=", company.id),
                ("state", "=", "active"),
            ],
            order="date, id",
        )
    )


def tenant_balance(env, tenant, company):
    return company.currency_id.round(sum(tenant_debts(env, tenant, company).mapped("balance")))


# ------------------------------------------------------------------ arithmetic
def rule_amount(
    rule, amount, balance, left, rounding, percent=0.0, minimum=0.0, maximum=0.0, fixed=0.0
):
    """What one debt recovers from a purchase of ``amount``: the rule's part, never more than
    the debt's ``balance`` nor ``left`` (what earlier debts left of the purchase), rounded to
    the currency's ``rounding`` (half up)."""
    if rule == "fixed":
        take = fixed
    else:
        take = float_round(amount * percent / 100.0, precision_rounding=rounding)
        if minimum:
            take = max(take, minimum)
        if maximum:
            take = min(take, maximum)
    take = min(take, balance, left)
    return max(float_round(take, precision_rounding=rounding, rounding_method="DOWN"), 0.0)


class Plan:
    """What a purchase recovers: ``lines`` [(debt, amount)] and their ``total``."""

    def __init__(self, lines=(), currency=None):
        self.lines = [(d, a) for d, a in lines if a > 0]
        self.total = currency.round(sum(a for _d, a in self.lines)) if currency else 0.0

    def __bool__(self):
        return bool(self.lines)


def plan(env, meter, tariff, amount, lock=True):
    """Under the vending locks: what ``amount`` paid for ``meter`` recovers of its tenant's
    active debts. The purchase keeps at least the sale's minimum amount (and one cent) to
    buy energy: a sale always delivers credit. A zero-amount sale (free basic electricity)
    and a tariff in another currency than the company's recover nothing."""
    company = meter.company_id
    currency = company.currency_id
    tenant = meter.tenant_id
    if not tenant or amount <= 0 or tariff.currency_id != currency:
        return Plan()
    debts = tenant_debts(env, tenant, company)
    if not debts:
        return Plan()
    if lock:
        # two purchases of one tenant at once meet here (and on the tenant lock of vending)
        env.flush_all()
        env.cr.execute(
            "SELECT id FROM smartpm_tenant_debt WHERE id IN %s ORDER BY date, id FOR NO KEY UPDATE",
            (tuple(debts.ids),),
        )
        debts.invalidate_recordset(["balance", "amount_recovered", "state"])
    minimum, _maximum = tariff._get_amount_limits(company)
    left = currency.round(amount - max(minimum or 0.0, currency.rounding))
    lines = []
    for debt in debts.filtered(lambda d: d.state == "active"):
        if left <= 0:
            break
        take = rule_amount(
            debt.recovery_rule,
            amount,
            debt.balance,
            left,
            currency.rounding,
            percent=debt.recovery_percent,
            minimum=debt.recovery_min,
            maximum=debt.recovery_max,
            fixed=debt.recovery_fixed,
        )
        if take > 0:
            lines.append((debt, take))
            left = currency.round(left - take)
    return Plan(lines, currency)


def quote(env, meter, tariff, amount, month_kwh):
    """The tariff's quote of what ``amount`` buys once the debts took their part (a
    preview: nothing is locked or recorded), with ``debt_recovered``, ``debt_balance``
    (left after it) and ``credit_amount``; ``amount`` stays the amount paid."""
    recovery = plan(env, meter, tariff, amount, lock=False)
    credit_amount = tariff.currency_id.round(amount - recovery.total)
    if meter.credit_mode == "money":  # time of use: credit in money (services/tou.py)
        from . import tou

        result = tou.quote_money(tariff, credit_amount)
    else:
        result = tariff._quote_amount(credit_amount, month_kwh)
    balance = tenant_balance(env, meter.tenant_id, meter.company_id) if meter.tenant_id else 0.0
    result.update(
        amount=tariff.currency_id.round(amount),
        credit_amount=credit_amount,
        debt_recovered=recovery.total,
        debt_balance=meter.company_id.currency_id.round(balance - recovery.total),
    )
    return result


def record(purchase, recovery):
    """The recovery lines of a new purchase (as the engine); a debt recovered to zero is
    paid."""
    if not recovery:
        return purchase.env["smartpm.debt.recovery"]
    purchase = engine.as_engine(purchase)
    Recovery = engine.as_engine(purchase.env["smartpm.debt.recovery"])
    records = Recovery
    for debt, amount in recovery.lines:
        records |= Recovery.create(
            {
                "debt_id": debt.id,
                "purchase_id": purchase.id,
                "company_id": purchase.company_id.id,
                "date": purchase.date,
                "amount": amount,
                "balance_after": debt.currency_id.round(debt.balance - amount),
            }
        )
    debts = engine.as_engine(records.debt_id)
    debts.flush_recordset()  # the CHECK on the balance holds now, not at commit
    debts.filtered(lambda d: d.currency_id.is_zero(d.balance)).write({"state": "paid"})
    purchase.debt_balance_after = tenant_balance(
        purchase.env, purchase.tenant_id, purchase.company_id
    )
    for rec in records:
        rec.debt_id.message_post(
            body=purchase.env._(
                "%(amount)s recovered by purchase %(purchase)s; balance left %(balance)s.",
                amount=rec.amount,
                purchase=purchase.name,
                balance=rec.balance_after,
            )
        )
    return records


def restore(purchase):
    """A reversed purchase gives back what it recovered: its recovery lines are reversed,
    their debts active again, and the books unmatched (the debt's invoice is open again for
    that amount; for a POS sale the settlement entry is reversed)."""
    recoveries = engine.as_engine(purchase.recovery_ids).filtered(lambda r: r.state == "done")
    for rec in recoveries:
        if rec.partial_reconcile_id:
            rec.partial_reconcile_id.unlink()
        if rec.move_id and rec.move_id.state == "posted":
            lines = rec.move_id.line_ids.filtered(
                lambda line: line.reconciled or line.matched_debit_ids or line.matched_credit_ids
            )
            lines.remove_move_reconcile()
            rec.move_id._reverse_moves(
                [
                    {
                        "ref": purchase.env._("Reversal of %s", rec.move_id.ref),
                        # the company's day (never before the entry it reverses)
                        "date": local_time.local_today(purchase.company_id),
                    }
                ],
                cancel=True,
            )
        rec.state = "reversed"
        debt = rec.debt_id
        if debt.state == "paid":
            debt.state = "active"
        debt.message_post(
            body=purchase.env._(
                "Purchase %(purchase)s was reversed: its %(amount)s are owed again.",
                purchase=purchase.name,
                amount=rec.amount,
            )
        )


# ------------------------------------------------------------------ accounting
def _receivable_line(move):
    return move.line_ids.filtered(
        lambda line: line.account_id.account_type == "asset_receivable" and not line.reconciled
    )[:1]


def _match(debit_line, credit_line, amount):
    """Match ``amount`` of a receivable debit with a receivable credit (one currency):
    ``reconcile()`` would match as much as both have open, and one payment may pay several
    debts in part."""
    currency = debit_line.company_currency_id
    if debit_line.currency_id != currency or credit_line.currency_id != currency:
        raise UserError(
            debit_line.env._(
                "Debts are recovered in the company's currency only (%s).",
                debit_line.move_id.display_name,
            )
        )
    amount = currency.round(min(amount, debit_line.amount_residual, -credit_line.amount_residual))
    return debit_line.env["account.partial.reconcile"].create(
        {
            "debit_move_id": debit_line.id,
            "credit_move_id": credit_line.id,
            "amount": amount,
            "debit_amount_currency": amount,
            "credit_amount_currency": amount,
        }
    )


def settle_payment(purchase, payment_moves):
    """Match the open rest of the purchase's payment (the whole amount was paid, the
    purchase's invoice took the credit part) with its debts' invoices, amount by amount."""
    recoveries = engine.as_engine(purchase.recovery_ids).filtered(
        lambda r: r.state == "done" and not r.partial_reconcile_id and not r.move_id
    )
    if not recoveries:
        return
    credit_lines = payment_moves.sudo().line_ids.filtered(
        lambda line: (
            line.account_id.account_type == "asset_receivable"
            and line.partner_id.commercial_partner_id == purchase.tenant_id.commercial_partner_id
            and line.amount_residual < 0
        )
    )
    for rec in recoveries:
        debit = _receivable_line(rec.debt_id.invoice_id)
        credit = credit_lines.filtered(lambda line: line.amount_residual < 0)[:1]
        if not debit or not credit:
            raise UserError(
                purchase.env._(
                    "%(purchase)s: no open payment or debt invoice to match the %(amount)s "
                    "recovered for %(debt)s.",
                    purchase=purchase.name,
                    amount=rec.amount,
                    debt=rec.debt_id.display_name,
                )
            )
        rec.partial_reconcile_id = _match(debit, credit, rec.amount)


def settle_pos(purchase):
    """A POS sale: the session's closing credits the whole line to the prepayments
    liability; this entry moves the recovered part (taxes the tariff included in it
    as well) to the tenant's receivable, matched with each debt's invoice."""
    recoveries = engine.as_engine(purchase.recovery_ids).filtered(
        lambda r: r.state == "done" and not r.move_id and not r.partial_reconcile_id
    )
    if not recoveries:
        return
    company = purchase.company_id
    env = engine.as_engine(purchase.env["account.move"]).with_company(company).env
    tariff = purchase.tariff_id
    tenant = purchase.tenant_id.commercial_partner_id
    for rec in recoveries:
        untaxed, tax = tariff._split_taxes(rec.amount)
        lines = [
            fields.Command.create(
                {
                    "name": env._("Debt recovered by %s", purchase.name),
                    "account_id": company.smartpm_prepayment_account_id.id,
                    "partner_id": tenant.id,
                    "debit": untaxed,
                    "credit": 0.0,
                }
            )
        ]
        if tax:
            computed = tariff.tax_ids.with_context(force_price_include=True).compute_all(
                rec.amount, currency=company.currency_id
            )
            booked = 0.0
            for tax_line in computed["taxes"]:
                value = company.currency_id.round(tax_line["amount"])
                booked += value
                lines.append(
                    fields.Command.create(
                        {
                            "name": tax_line["name"],
                            "account_id": tax_line["account_id"]
                            or company.smartpm_prepayment_account_id.id,
                            "partner_id": tenant.id,
                            "debit": value,
                            "credit": 0.0,
                        }
                    )
                )
            rest = company.currency_id.round(tax - booked)
            if rest:
                lines[0][2]["debit"] = company.currency_id.round(untaxed + rest)
        lines.append(
            fields.Command.create(
                {
                    "name": env._("Debt recovered by %s", purchase.name),
                    "account_id": tenant.with_company(company).property_account_receivable_id.id,
                    "partner_id": tenant.id,
                    "debit": 0.0,
                    "credit": rec.amount,
                }
            )
        )
        move = env["account.move"].create(
            {
                "move_type": "entry",
                "journal_id": company.smartpm_recognition_journal_id.id,
                "company_id": company.id,
                "date": local_time.local_today(company, purchase.date),
                "ref": env._(
                    "%(purchase)s: debt %(debt)s", purchase=purchase.name, debt=rec.debt_id.name
                ),
                "line_ids": lines,
            }
        )
        move.action_post()
        credit = _receivable_line(move)
        debit = _receivable_line(rec.debt_id.invoice_id)
        vals = {"move_id": move.id}
        if debit and credit:
            vals["partial_reconcile_id"] = _match(debit, credit, rec.amount).id
        rec.write(vals)


def confirm(debt):
    """Post the debt to the tenant's receivable (a customer invoice) and make it active."""
    debt = engine.as_engine(debt).with_company(debt.company_id)
    company = debt.company_id
    account = debt.account_id or default_account(company, debt.kind)
    if not account:
        raise UserError(
            debt.env._(
                "%s: choose the income account of the debt (or the company's).", debt.display_name
            )
        )
    journal = debt.env["account.journal"].search(
        [("type", "=", "sale"), ("company_id", "=", company.id)], limit=1
    )
    if not journal:
        raise UserError(debt.env._("The company %s has no sales journal.", company.name))
    name = debt.env["ir.sequence"].next_by_code("smartpm.tenant.debt") or debt.name
    invoice = debt.env["account.move"].create(
        {
            "move_type": "out_invoice",
            "partner_id": debt.tenant_id.id,
            "company_id": company.id,
            "currency_id": company.currency_id.id,
            "journal_id": journal.id,
            "invoice_date": debt.date,
            "ref": name,
            "payment_reference": name,
            "invoice_line_ids": [
                fields.Command.create(
                    {
                        "name": f"{name}: {debt.description}",
                        "account_id": account.id,
                        "quantity": 1,
                        "price_unit": debt.amount,
                        "tax_ids": [fields.Command.clear()],
                    }
                )
            ],
        }
    )
    invoice.action_post()
    debt.write(
        {"name": name, "invoice_id": invoice.id, "state": "active", "account_id": account.id}
    )
    _logger.info("debt %s confirmed for %s: %s", name, debt.tenant_id.name, debt.amount)


def cancel(debt):
    """A draft is cancelled; a confirmed debt's balance left is written off by a credit
    note matched with its invoice."""
    debt = engine.as_engine(debt).with_company(debt.company_id)
    env = debt.env
    env.cr.execute("SELECT id FROM smartpm_tenant_debt WHERE id = %s FOR NO KEY UPDATE", (debt.id,))
    debt.invalidate_recordset()
    vals = {"state": "cancelled"}
    if debt.invoice_id and not debt.currency_id.is_zero(debt.balance):
        refund = env["account.move"].create(
            {
                "move_type": "out_refund",
                "partner_id": debt.tenant_id.id,
                "company_id": debt.company_id.id,
                "currency_id": debt.currency_id.id,
                "journal_id": debt.invoice_id.journal_id.id,
                "invoice_date": local_time.local_today(debt.company_id),
                "ref": env._("Cancellation of %s", debt.name),
                "reversed_entry_id": debt.invoice_id.id,
                "invoice_line_ids": [
                    fields.Command.create(
                        {
                            "name": env._("Cancellation of %s", debt.name),
                            "account_id": debt.account_id.id,
                            "quantity": 1,
                            "price_unit": debt.balance,
                            "tax_ids": [fields.Command.clear()],
                        }
                    )
                ],
            }
        )
        refund.action_post()
        debit, credit = _receivable_line(debt.invoice_id), _receivable_line(refund)
        if debit and credit:
            _match(debit, credit, debt.balance)
        vals["credit_note_id"] = refund.id
    debt.write(vals)
