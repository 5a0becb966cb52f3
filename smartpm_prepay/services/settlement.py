"""Move-out and meter replacement: the tenant's remaining credit settled, then cleared.

A move-out (``smartpm.move.out``) opens the meter's relay and reads it (credit and energy
register), records the final reading, values the remaining kWh at the prices the tenant
bought them, settles them by the owner's choice, clears them on the meter (a
``clear_credit`` job, services/credit_clear.py), then closes the tenant's assignment and
opens the next tenant's at zero. A meter replacement is the same walk with the credit
transferred to the new meter, whose assignment the tenant takes, and the old meter
decommissioned.

Valuation: recognition (services/prepayment) consumes a purchase from its first kWh on,
oldest purchase first; what is left on the meter is therefore the *last* kWh bought. The
settlement takes them from the newest delivered purchase of the meter and tenant backwards,
each slice at its own price (``prepayment.value_of``), and records them per purchase
(``smartpm.credit.settlement.line``): a purchase's ``kwh_remaining`` is its kWh less what was
recognised and what was settled, so neither the recognition nor a second settlement takes
them again. kWh on the meter that no purchase covers (credit it had before the first sale
on record) have no value: they are cleared, and transferred, without money.

Money-mode meters (time of use) hold credit in the currency: the read gives it in the
currency, the sales' credit consumed and not recognised yet is recognised first in, first
out (``prepayment.money_fifo``), the rest is settled per sale newest first in money
(``_settle_money``, after the day's money recognition of the meter), refunded, forfeited or
transferred as below, and the meter is cleared with a money clear-credit token. A money
transfer (to another money-mode meter: mixed modes are refused before anything is done,
``smartpm.move.out._check_meter_settleable``) is a money token on the target.

A transfer, in either unit, is issued on the target only once the old meter's clear is
confirmed (``issue_transfer``): a clear that fails (the meter unreachable, refusing the
token) leaves the credit on the old meter and issues nothing, so no credit is ever on both.

Emergency credit and negative credit: the meter's credit includes the emergency credit the
tenant took, which no one paid for: what is settled is the credit less it
(``closing_split``); what the tenant consumed beyond what they paid (emergency credit in use
beyond the paid credit, a friendly period's negative credit) becomes their debt
(``_record_shortfall``: a confirmed smartpm tenant debt, on the receivable). The meter is
brought to zero for the next tenant: a token repaying the emergency credit and lifting the
negative credit (``queue_zero``) besides the clear of its credit.

Settlements (``smartpm.credit.settlement``, one per move-out):
- ``refund``: a credit note to the tenant for the settled value, taxes included as they were
  paid, posted, paid out of the chosen cash/bank journal and reconciled;
- ``transfer``: a new credit token on another meter of the same tenant (a purchase of channel
  ``transfer``, no invoice, no money): the settled value moves from the old purchases to it,
  the liability does not change;
- ``forfeit``: the owner's policy keeps the credit: the value moves from the prepayments
  account to the company's *forfeited credit* income account.
"""

from datetime import timedelta

from markupsafe import Markup

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tools import float_is_zero, float_round

from . import debt as debt_service
from . import emergency as emergency_service
from . import engine, friendly, local_time, prepayment, pricing, tou, vending
from .obis import ENERGY_IMPORT, OBIS_CREDIT

KWH_DIGITS = prepayment.KWH_DIGITS
FORFEIT_CODE = "400200"
MANAGER_GROUP = "smartpm_prepay.group_manager"
# a replacing meter's calendars run before its credit (vending.CREDIT_JOB_PRIORITY)
CALENDAR_PRIORITY = vending.CREDIT_JOB_PRIORITY - 1
RUNNING_STATES = ("reading", "settling", "clearing", "blocked")
UNDELIVERED_STATES = ("paid", "queued", "failed", "pending_check")
DISCONNECT_PRIORITY = 15
READ_PRIORITY = 20
EMERGENCY_SLACK = 0.0005  # below the meter's resolution (Wh, milli-unit)
READ_OBJECTS = [
    {"obis": ENERGY_IMPORT, "ic": 3, "attribute": 2},
    {"obis": OBIS_CREDIT, "ic": 112, "attribute": 2},
    {"obis": "0.0.96.3.10.255", "ic": 70, "attribute": 2},
]


def read_objects(meter):
    """What the move-out's final read asks ``meter`` for: credit, energy register and relay,
    and on a money-mode meter the consumption charge's total (the day's money recognition
    runs on it before the settlement). The read of the credit reports the emergency credit
    in use too (the bridge adds it)."""
    if meter.credit_mode == "money":
        return [*READ_OBJECTS, {"obis": tou.CHARGE_OBIS, "ic": 113, "attribute": 2}]
    return READ_OBJECTS


def check_manager(env):
    """Move-outs and replacements are the owner's (Manager): every other user, over RPC or
    not, is refused."""
    if env.su and not env.context.get("smartpm_check_user"):
        return
    if not env.user.has_group(MANAGER_GROUP):
        raise AccessError(
            env._("Only a Prepaid Electricity Manager may move a tenant out or replace a meter.")
        )


def running_move_out(meter):
    """The move-out or replacement running on ``meter`` (the old meter or the transfer's
    target), if any."""
    return (
        meter.env["smartpm.move.out"]
        .sudo()
        .search(
            [
                ("state", "in", RUNNING_STATES),
                "|",
                ("meter_id", "=", meter.id),
                ("transfer_meter_id", "=", meter.id),
            ],
            limit=1,
        )
    )


# ------------------------------------------------------------------ accounts
def ensure_forfeit_account(company):
    """The company's *forfeited prepaid credit* income account, created once."""
    account = prepayment.ensure_income_account(
        company,
        "smartpm_forfeit_account_id",
        FORFEIT_CODE,
        company.env._("Forfeited prepaid credit"),
        "income_other",
    )
    if not account:
        raise UserError(company.env._("%s has no chart of accounts.", company.name))
    return account


def ensure_all_forfeit_accounts(env):
    for company in (
        env["res.company"].sudo().search([("smartpm_prepayment_account_id", "!=", False)])
    ):
        ensure_forfeit_account(company)


# ------------------------------------------------------------------ valuation
def undelivered_purchases(meter):
    return (
        meter.env["smartpm.credit.purchase"]
        .sudo()
        .search([("meter_id", "=", meter.id), ("state", "in", UNDELIVERED_STATES)])
    )


def value_remaining(env, meter, tenant, kwh):
    """The slices of the tenant's delivered purchases of ``meter`` that the ``kwh`` left on
    the meter are, newest first: ``([{purchase_id, kwh, amount, amount_total}], uncovered)``
    (``uncovered``: kWh no purchase covers)."""
    env["smartpm.credit.purchase"].flush_model()
    purchases = (
        env["smartpm.credit.purchase"]
        .sudo()
        .search(
            [
                ("meter_id", "=", meter.id),
                ("tenant_id", "=", tenant.id),
                ("state", "=", "delivered"),
            ],
            order="date_delivered desc, id desc",
        )
    )
    todo = float_round(kwh, KWH_DIGITS)
    slices = []
    for purchase in purchases:
        if todo <= 0:
            break
        available = float_round(purchase.kwh_remaining, KWH_DIGITS)
        if available <= 0:
            continue
        take = min(todo, available)
        end = purchase.kwh - purchase.kwh_settled
        value = prepayment.value_of(purchase, end - take, end)
        slices.append(
            {
                "purchase_id": purchase.id,
                "kwh": take,
                "amount": value,
                "amount_total": _with_tax(purchase, value),
            }
        )
        todo = float_round(todo - take, KWH_DIGITS)
    return slices, max(todo, 0.0)


def _with_tax(purchase, value):
    """``value`` (untaxed) with the taxes the tenant paid on it."""
    if not purchase.amount_untaxed:
        return value
    return purchase.currency_id.round(value * purchase.amount / purchase.amount_untaxed)


# ------------------------------------------------------------------ readings
def final_values(result):
    """``(credit, energy_kwh)`` of a read job's result (Wh unless the unit says kWh; the
    credit of a money-mode meter is in the currency: its bridge says ``currency``, already
    scaled from the meter's milli-units)."""
    credit = energy = None
    for reading in result.get("readings") or []:
        value = reading.get("value")
        if not isinstance(value, (int, float)):
            continue
        is_kwh = str(reading.get("unit") or "").lower() in ("kwh", "currency")
        kwh = float(value) if is_kwh else float(value) / 1000.0
        if reading.get("obis") == OBIS_CREDIT:
            credit = kwh
        elif reading.get("obis") == ENERGY_IMPORT:
            energy = kwh
    if credit is None and "credit_money" in result:
        credit = float(result["credit_money"])
    if credit is None and "credit_kwh" in result:
        credit = float(result["credit_kwh"])
    return credit, energy


def final_emergency(result):
    """The emergency credit in use (taken, not repaid) a read job's result reports, in the
    unit of the meter's credit (kWh, or the currency on a money-mode meter; 0 when the meter
    reports none), as reported: ``emergency_refusal`` says whether Odoo may believe it."""
    value = result.get("emergency_in_use_money", result.get("emergency_in_use_kwh"))
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return float("nan")  # not a number: refused as such
    return float(value)


def emergency_refusal(move_out, emergency):
    """Why the ``emergency`` credit in use a bridge reported at ``move_out``'s final read is
    not believed (None: it is). It becomes the tenant's debt and the token that zeroes the
    meter, so it is bounded by what Odoo knows: at least 0, at most the emergency credit the
    meter was given (``emergency.max_in_use``). Outside that (a lying bridge, a misread) the
    move-out books nothing and waits for the owner."""
    meter = move_out.meter_id.sudo()
    bound = emergency_service.max_in_use(meter)
    if emergency == emergency and -EMERGENCY_SLACK <= emergency <= bound + EMERGENCY_SLACK:
        return None
    return move_out.env._(
        "Meter %(meter)s (tenant %(tenant)s) reported %(reported)s of emergency credit in "
        "use, outside what it can hold (0 to %(bound)s, the emergency credit its tariff gave "
        "it). Nothing was settled and no debt was booked: check the meter, then retry the "
        "reading, or record it by hand.",
        meter=meter.serial_number,
        tenant=move_out.tenant_id.name,
        reported=credit_text(move_out, emergency) if emergency == emergency else "?",
        bound=credit_text(move_out, bound),
    )


def closing_split(credit, emergency):
    """``(paid credit left, negative credit, shortfall)`` of a meter's closing ``credit``
    (may be negative: a friendly period) with ``emergency`` credit in use, in the unit of
    its credit. The meter's credit includes the emergency credit taken, which no one paid
    for: what is refundable is the credit less it; what it lacks (the shortfall) the tenant
    consumed without paying and owes."""
    paid = float_round(credit - emergency, KWH_DIGITS)
    return max(paid, 0.0), max(float_round(-credit, KWH_DIGITS), 0.0), max(-paid, 0.0)


# ------------------------------------------------------------------ settlement
def settle(move_out):
    """Settle the move-out's final credit by its choice; return the settlement. Once per
    move-out (a unique index; the move-out row is locked by the caller)."""
    move_out = engine.as_engine(move_out)
    if move_out.settlement_id:
        return move_out.settlement_id
    env = move_out.env
    meter, tenant = move_out.meter_id, move_out.tenant_id
    company = meter.company_id
    currency = company.currency_id
    if move_out.credit_mode == "money":
        return _settle_money(move_out)
    credit, negative, shortfall = closing_split(
        move_out.final_credit_kwh, move_out.final_emergency_kwh
    )
    slices, uncovered = value_remaining(env, meter, tenant, credit)
    value = currency.round(sum(s["amount"] for s in slices))
    vals = {
        "move_out_id": move_out.id,
        "company_id": company.id,
        "tenant_id": tenant.id,
        "meter_id": meter.id,
        "date": fields.Datetime.now(),
        "kind": move_out.settlement_kind,
        "kwh": credit,
        "kwh_uncovered": uncovered,
        "amount": value,
        "amount_total": currency.round(sum(s["amount_total"] for s in slices)),
        "line_ids": [fields.Command.create(s) for s in slices],
        "emergency_credit": float_round(move_out.final_emergency_kwh, KWH_DIGITS),
        "negative_credit": negative,
        "shortfall": shortfall,
    }
    settlement = engine.create(env["smartpm.credit.settlement"], [vals])
    settlement = engine.as_engine(settlement)
    recognise_consumed(settlement)
    _apply(move_out, settlement)
    close_owed_charges(settlement)
    return settlement


def _apply(move_out, settlement):
    _record_shortfall(settlement)
    if move_out.settlement_kind == "refund":
        _refund(settlement, move_out.refund_journal_id)
    elif move_out.settlement_kind == "forfeit":
        _forfeit(settlement)
    elif move_out.settlement_kind == "transfer":
        _transfer(settlement, move_out.transfer_meter_id)
    move_out.settlement_id = settlement
    return settlement


def recognise_consumed(settlement):
    """The meter says what is left: every other kWh the tenant bought for it was consumed.
    What the daily recognition has not taken yet (consumption of the last days, or of the
    move-out's own day, which the next tenant holds at its end) is recognised now, at its
    FIFO value, as the recognition job would: so the old tenant's liability ends with the
    settlement, and later runs find it recognised (the rows count as done)."""
    env = settlement.env
    company = settlement.company_id
    env["smartpm.credit.purchase"].flush_model()
    purchases = (
        env["smartpm.credit.purchase"]
        .sudo()
        .search(
            [
                ("meter_id", "=", settlement.meter_id.id),
                ("tenant_id", "=", settlement.tenant_id.id),
                ("state", "=", "delivered"),
            ],
            order="date_delivered, id",
        )
    )
    rows = []
    for purchase in purchases:
        left = float_round(purchase.kwh_remaining, KWH_DIGITS)
        if left <= 0:
            continue
        before = purchase.kwh_recognised
        rows.append(
            {
                "purchase_id": purchase.id,
                "kwh": left,
                "amount": prepayment.value_of(purchase, before, before + left),
                "meter_id": settlement.meter_id.id,
                "tenant_id": settlement.tenant_id.id,
            }
        )
    if not rows:
        return
    move = prepayment.record_rows(company, local_time.local_today(company), rows)
    settlement.recognition_move_id = move


def shortfall_value(settlement):
    """What the shortfall (``closing_split``) is worth, untaxed: money as it is on a
    money-mode meter; kWh at the meter's tariff (its price bands, from the month's first
    kWh), as the tenant would have bought them."""
    currency = settlement.currency_id
    if settlement.credit_mode == "money":
        return currency.round(settlement.shortfall)
    tariff = settlement.meter_id._get_tariff()
    if not tariff:
        raise UserError(
            settlement.env._(
                "Meter %(meter)s: %(kwh)s kWh of emergency or negative credit were consumed "
                "without payment, and the meter has no tariff to value them.",
                meter=settlement.meter_id.serial_number,
                kwh=settlement.shortfall,
            )
        )
    return currency.round(pricing.kwh_to_money(settlement.shortfall, tariff._bands()))


def _record_shortfall(settlement):
    """The credit the tenant consumed without paying for it (emergency credit in use beyond
    the paid credit left, negative credit of a friendly period) becomes their debt: a
    smartpm tenant debt, confirmed (the tenant's receivable, the energy sales account), which
    their next purchases on any meter of the company recover. Once per settlement."""
    if settlement.debt_id or float_is_zero(settlement.shortfall, precision_digits=KWH_DIGITS):
        return
    value = shortfall_value(settlement)
    if settlement.currency_id.is_zero(value):
        return
    env = settlement.env
    company = settlement.company_id
    debt = engine.create(
        env["smartpm.tenant.debt"],
        [
            {
                "tenant_id": settlement.tenant_id.id,
                "company_id": company.id,
                "kind": "other",
                "description": env._(
                    "Move-out %(mo)s: credit of meter %(meter)s consumed without payment "
                    "(%(credit)s)",
                    mo=settlement.move_out_id.name,
                    meter=settlement.meter_id.serial_number,
                    credit=credit_text(settlement, settlement.shortfall),
                ),
                "amount": value,
                "account_id": company.smartpm_energy_income_account_id.id,
            }
        ],
    )
    debt_service.confirm(debt)
    settlement.write({"debt_id": debt.id, "debt_amount": value})


def credit_text(record, value):
    """``value`` of credit in words, in the unit of ``record``'s credit (a settlement or a
    move-out: ``credit_mode``): "4.5 kWh", or the currency to the milli-unit."""
    if record.credit_mode == "money":
        currency = record.currency_id
        return f"{currency.symbol or currency.name} {value:.3f}"
    return record.env._("%s kWh", float_round(value, KWH_DIGITS))


def _refund(settlement, journal):
    currency = settlement.currency_id
    if currency.is_zero(settlement.amount_total):
        return
    if not journal:
        raise UserError(
            settlement.env._("%s: choose the journal the refund is paid from.", settlement.name)
        )
    company = settlement.company_id
    product = settlement.env.ref("smartpm_prepay.product_electricity_credit")
    sale_journal = settlement.env["account.journal"].search(
        [("type", "=", "sale"), ("company_id", "=", company.id)], limit=1
    )
    Move = settlement.env["account.move"].with_company(company)
    lines = []
    for line in settlement.line_ids:
        purchase = line.purchase_id
        lines.append(
            fields.Command.create(
                {
                    "product_id": product.id,
                    "name": _refund_label(settlement, line),
                    "quantity": 1,
                    "price_unit": line.amount_total,
                    "tax_ids": [fields.Command.set(purchase.tariff_id.tax_ids.ids)],
                }
            )
        )
    credit_note = Move.create(
        {
            "move_type": "out_refund",
            "partner_id": settlement.tenant_id.id,
            "company_id": company.id,
            "currency_id": currency.id,
            "journal_id": sale_journal.id,
            "invoice_date": fields.Date.context_today(settlement),
            "ref": settlement.env._(
                "Move-out %s: remaining credit refunded", settlement.move_out_id.name
            ),
            "invoice_line_ids": lines,
        }
    )
    credit_note.action_post()
    _align_with_books(settlement, credit_note)
    settlement.env["account.payment.register"].with_context(
        active_model="account.move", active_ids=credit_note.ids
    ).create(
        {
            "journal_id": journal.id,
            "amount": credit_note.amount_total,
            "payment_date": credit_note.invoice_date,
            "communication": credit_note.name,
        }
    )._create_payments()
    payment = credit_note.matched_payment_ids[:1] or settlement.env["account.payment"].search(
        [("reconciled_invoice_ids", "in", credit_note.ids)], limit=1
    )
    settlement.write({"credit_note_id": credit_note.id, "payment_id": payment.id})


def _refund_label(settlement, line):
    if settlement.credit_mode == "money":
        # formatted before the call: Babel's extractor evaluates f-strings among the arguments
        credit = f"{settlement.currency_id.symbol or settlement.currency_id.name} {line.money:.3f}"
        return settlement.env._(
            "Refund of %(credit)s of credit of %(ref)s (meter %(meter)s, move-out %(mo)s)",
            credit=credit,
            ref=line.purchase_id.name,
            meter=settlement.meter_id.serial_number,
            mo=settlement.move_out_id.name,
        )
    return settlement.env._(
        "Refund of %(kwh)s kWh of %(ref)s (meter %(meter)s, move-out %(mo)s)",
        kwh=line.kwh,
        ref=line.purchase_id.name,
        meter=settlement.meter_id.serial_number,
        mo=settlement.move_out_id.name,
    )


def _align_with_books(settlement, credit_note):
    """The liability the credit note releases is its untaxed amount: a cent of tax rounding
    goes to the settlement's newest slice, so settlement and books say the same."""
    diff = settlement.currency_id.round(credit_note.amount_untaxed - settlement.amount)
    if diff and settlement.line_ids:
        line = settlement.line_ids.sorted("id")[0]
        line.amount = line.amount + diff
        settlement.amount = settlement.amount + diff
    settlement.amount_total = credit_note.amount_total


def _forfeit(settlement):
    currency = settlement.currency_id
    if currency.is_zero(settlement.amount):
        return
    company = settlement.company_id
    account = ensure_forfeit_account(company)
    journal = company.smartpm_recognition_journal_id
    day = fields.Date.context_today(settlement)
    label = settlement.env._(
        "Move-out %(mo)s: remaining credit of meter %(meter)s forfeited",
        mo=settlement.move_out_id.name,
        meter=settlement.meter_id.serial_number,
    )
    move = (
        settlement.env["account.move"]
        .with_company(company)
        .create(
            {
                "move_type": "entry",
                "journal_id": journal.id,
                "company_id": company.id,
                "date": prepayment.accounting_date(company, day, journal),
                "ref": label,
                "line_ids": [
                    fields.Command.create(
                        {
                            "name": label,
                            "account_id": company.smartpm_prepayment_account_id.id,
                            "partner_id": settlement.tenant_id.id,
                            "debit": settlement.amount,
                        }
                    ),
                    fields.Command.create(
                        {
                            "name": label,
                            "account_id": account.id,
                            "partner_id": settlement.tenant_id.id,
                            "credit": settlement.amount,
                        }
                    ),
                ],
            }
        )
    )
    move.action_post()
    settlement.move_id = move


def _transfer(settlement, target):
    """The transfer of the settled credit (kWh, or money on a money-mode meter) to
    ``target`` (a meter of the same tenant, or the replacing meter), checked here and
    refused now (blocked at the settlement), not when the clear is reported. It is issued
    once the old meter's clear is confirmed (``issue_transfer``)."""
    money = settlement.credit_mode == "money"
    credit = settlement.money if money else settlement.kwh
    if float_is_zero(credit, precision_digits=KWH_DIGITS):
        return
    if not target:
        raise UserError(
            settlement.env._("%s: choose the meter the credit goes to.", settlement.name)
        )
    env = settlement.env
    currency = settlement.currency_id
    if currency.is_zero(settlement.amount):
        raise UserError(
            env._(
                "Meter %(meter)s holds %(credit)s that no sale on record covers: it has "
                "no value to transfer. Forfeit it instead.",
                meter=settlement.meter_id.serial_number,
                credit=credit_text(settlement, credit),
            )
        )
    if (target.sudo().credit_mode or "kwh") != settlement.credit_mode:
        env["smartpm.move.out"]._check_meter_settleable(settlement.meter_id, target)
    vending._token_key(target.sudo())


def issue_transfer(settlement, target):
    """The transfer of a transfer settlement (either unit): a purchase of channel
    ``transfer`` on ``target`` worth the settled value, no invoice and no money, whose token
    carries the settled kWh (or money, on a money-mode meter). Issued after the old meter's
    clear was confirmed (models/move_out ``_finish_if_cleared``, under the move-out's lock),
    and once: a settlement holds one transfer purchase, so a re-run, a double click or a
    clear reported twice issues nothing more; a failed clear issues nothing."""
    if (
        not settlement
        or settlement.kind != "transfer"
        or settlement.transfer_purchase_id
        or float_is_zero(
            settlement.money if settlement.credit_mode == "money" else settlement.kwh,
            precision_digits=KWH_DIGITS,
        )
        or settlement.currency_id.is_zero(settlement.amount)
    ):
        return
    settlement = engine.as_engine(settlement)
    if settlement.credit_mode == "money" and settlement.move_out_id.purpose == "replacement":
        push_calendars_first(target)
    _issue_transfer(settlement, target)


def push_calendars_first(meter):
    """A replacing money-mode meter gets its time-of-use calendar (the prices its
    consumption charge applies) and its friendly-period schedule before its first credit:
    pushed again (force) with a priority before the credit's, so the bridge runs them first
    on that meter (jobs of a meter run by priority, then age). Returns the jobs."""
    env = meter.env
    jobs = tou.push(env, meter, force=True) | friendly.push(env, meter, force=True)
    engine.as_engine(jobs).write({"priority": CALENDAR_PRIORITY})
    return jobs


def transfer_money(settlement):
    """The credit a money transfer gives its target, in the currency's rounding: the value
    the settlement moves (a money sale's credit is its untaxed amount), which is the old
    meter's closing credit in the currency's units. The token and the transfer's
    ``credit_money`` carry the same figure, so the target holds what its sale says: no
    milli-unit beyond it that no sale covers, no cent created or lost."""
    return settlement.currency_id.round(settlement.amount)


def _issue_transfer(settlement, target):
    env = settlement.env
    currency = settlement.currency_id
    money = settlement.credit_mode == "money"
    target = target.sudo()
    vending.lock_meter(env, target)
    transfer_number = target.last_transfer_number + 1
    if money:
        token = vending.mint_money_token(target, transfer_number, transfer_money(settlement))
    else:
        token = vending.mint_token(target, transfer_number, settlement.kwh)
    engine.as_engine(target).last_transfer_number = transfer_number
    tariff = target._get_tariff() or settlement.meter_id._get_tariff()
    purchase = engine.create(
        env["smartpm.credit.purchase"],
        [
            {
                "meter_id": target.id,
                "tenant_id": settlement.tenant_id.id,
                "company_id": target.company_id.id,
                "tariff_id": tariff.id if tariff else False,
                "currency_id": currency.id,
                "channel": "transfer",
                "external_ref": settlement.name,
                "transfer_number": transfer_number,
                "token": token,
                "state": "paid",
                "date": fields.Datetime.now(),
                "amount": settlement.amount,
                "amount_untaxed": settlement.amount,
                "amount_tax": 0.0,
                "kwh": 0.0 if money else settlement.kwh,
                "credit_mode": "money" if money else "kwh",
                "credit_money": transfer_money(settlement) if money else 0.0,
                "price_per_kwh": 0.0 if money else settlement.amount / settlement.kwh,
                "month_kwh_before": 0.0,
            }
        ],
    )
    purchase._queue_delivery()
    purchase.message_post(
        body=Markup(env._("Credit transferred from meter %(meter)s by %(settlement)s."))
        % {"meter": settlement.meter_id.serial_number, "settlement": settlement.name}
    )
    settlement.transfer_purchase_id = purchase


# ------------------------------------------------------------------ money-mode meters
def _money_purchases(env, meter, tenant, order):
    env["smartpm.credit.purchase"].flush_model()
    return (
        env["smartpm.credit.purchase"]
        .sudo()
        .search(
            [
                ("meter_id", "=", meter.id),
                ("tenant_id", "=", tenant.id),
                ("credit_mode", "=", "money"),
                ("state", "=", "delivered"),
                ("money_remaining", ">", 0),
            ],
            order=order,
        )
    )


def value_remaining_money(env, meter, tenant, money):
    """Money mode: the slices of the tenant's delivered money sales of ``meter`` that the
    ``money`` (currency) left on the meter is, newest first (recognition consumes them
    oldest first, services/prepayment.money_fifo): ``([{purchase_id, money, amount,
    amount_total}], uncovered)``. A slice's value is the credit it takes (a money sale's
    credit is its untaxed amount), a sale's last slice its whole remaining liability, so
    the liability of a fully settled sale ends at zero to the cent."""
    todo = float_round(money, KWH_DIGITS)
    slices = []
    for purchase in _money_purchases(env, meter, tenant, "date_delivered desc, id desc"):
        if todo <= 0:
            break
        currency = purchase.currency_id
        available = prepayment.money_left(purchase)
        if available <= 0:
            continue
        take = float_round(min(todo, available), KWH_DIGITS)
        value = currency.round(purchase.money_remaining if take >= available else take)
        slices.append(
            {
                "purchase_id": purchase.id,
                "kwh": 0.0,
                "money": take,
                "amount": value,
                "amount_total": _with_tax(purchase, value),
            }
        )
        todo = float_round(todo - take, KWH_DIGITS)
    return slices, max(todo, 0.0)


def _settle_money(move_out):
    """The settlement of a money-mode meter: its final credit is currency (the untaxed
    credit its sales put on it). What the tenant's sales hold beyond it was consumed and is
    recognised first (FIFO, as the daily recognition does); the rest is settled per sale,
    newest first, in money."""
    env = move_out.env
    meter, tenant = move_out.meter_id, move_out.tenant_id
    company = meter.company_id
    currency = company.currency_id
    # the day's money recognition first (standing charges repaid, consumption charged in
    # money up to the final reading), as the daily run would: the closing figures are right
    until = move_out.final_reading_time or fields.Datetime.now()
    day_move = prepayment.recognise_money_meter(company, meter, until + timedelta(seconds=1))
    credit, negative, shortfall = closing_split(
        move_out.final_credit_money, move_out.final_emergency_money
    )
    held = float_round(
        sum(prepayment.money_left(p) for p in _money_purchases(env, meter, tenant, "id")),
        KWH_DIGITS,
    )
    consumed = float_round(held - credit, KWH_DIGITS)
    recognition_move = env["account.move"]
    if consumed > 0:
        rows, _left = prepayment.money_fifo(env, company, meter, consumed, tenant=tenant)
        recognition_move = prepayment.record_rows(company, local_time.local_today(company), rows)
    _count_unpaid_money(env, move_out, until + timedelta(seconds=1))
    slices, uncovered = value_remaining_money(env, meter, tenant, credit)
    vals = {
        "move_out_id": move_out.id,
        "company_id": company.id,
        "tenant_id": tenant.id,
        "meter_id": meter.id,
        "date": fields.Datetime.now(),
        "kind": move_out.settlement_kind,
        "credit_mode": "money",
        "kwh": 0.0,
        "kwh_uncovered": 0.0,
        "money": credit,
        "money_uncovered": uncovered,
        "amount": currency.round(sum(s["amount"] for s in slices)),
        "amount_total": currency.round(sum(s["amount_total"] for s in slices)),
        "line_ids": [fields.Command.create(s) for s in slices],
        "recognition_move_id": (recognition_move or day_move).id or False,
        "emergency_credit": float_round(move_out.final_emergency_money, KWH_DIGITS),
        "negative_credit": negative,
        "shortfall": shortfall,
    }
    settlement = engine.as_engine(engine.create(env["smartpm.credit.settlement"], [vals]))
    _apply(move_out, settlement)
    close_owed_charges(settlement)
    return settlement


def close_owed_charges(settlement):
    """The standing charges the leaving tenant's sales did not cover (kWh meters:
    ``prepayment._standing_charges_owed``, money meters: ``prepayment._money_charges_owed``,
    both keyed by meter and tenant) are in the shortfall their debt now carries
    (``_record_shortfall``): closed up to it, oldest first, by repayment rows without a sale
    (no value: the debt is the income), so that no later sale, of the tenant coming back or
    of anyone, releases them a second time, and none stays open. Once per settlement: what
    is closed is no longer owed."""
    if not settlement.debt_id:
        return
    env, company, meter = settlement.env, settlement.company_id, settlement.meter_id
    tenant = settlement.tenant_id
    money = settlement.credit_mode == "money"
    if money:
        owed = prepayment._money_charges_owed(env, company, meter).get(tenant.id, [])
    else:
        owed = prepayment._standing_charges_owed(env, company, (meter.id, tenant.id))
    todo = float_round(settlement.shortfall, KWH_DIGITS)
    rows = []
    for charge_id, left in owed:
        take = float_round(min(left, todo), KWH_DIGITS)
        if take <= 0:
            break
        rows.append(
            {
                "purchase_id": False,
                "kwh": 0.0 if money else take,
                "money": take if money else 0.0,
                "amount": 0.0,
                "meter_id": meter.id,
                "tenant_id": tenant.id,
                "repayment": True,
                "standing_charge_id": charge_id,
            }
        )
        todo = float_round(todo - take, KWH_DIGITS)
    prepayment.record_rows(company, local_time.local_today(company), rows)


def _count_unpaid_money(env, move_out, until_utc):
    """What the meter's consumption charge collected beyond the tenant's sales (emergency
    credit, a friendly period's negative credit) is their debt now (``_record_shortfall``):
    counted as consumed without a sale (a recognition row of no value), so that the next
    tenant's sales never release it."""
    meter, company = move_out.meter_id, move_out.company_id
    consumed = tou.money_consumed(env, meter, until_utc)
    if consumed is None:
        return
    done = sum(
        env["smartpm.credit.recognition"]
        .search([("meter_id", "=", meter.id), ("standing_charge_id", "=", False)])
        .mapped("money")
    )
    unpaid = float_round(consumed - done, KWH_DIGITS)
    if unpaid > 0:
        row = {"purchase_id": False, "kwh": 0.0, "money": unpaid, "amount": 0.0}
        row.update(meter_id=meter.id, tenant_id=move_out.tenant_id.id)
        prepayment.record_rows(company, local_time.local_today(company), [row])


# ------------------------------------------------------------------ clearing
def zero_amount(move_out):
    """What the meter is owed back to stand at zero once its credit is cleared, in the unit
    of its credit: the emergency credit in use (a credit token repays it first and adds the
    rest, docs/meter-contract.md "Emergency credit") and the negative credit. A clear-credit
    token repays no emergency credit and cannot lift a negative credit: without this, the
    next tenant's first purchase would repay the old tenant's."""
    if move_out.credit_mode == "money":
        credit, emergency = move_out.final_credit_money, move_out.final_emergency_money
    else:
        credit, emergency = move_out.final_credit_kwh, move_out.final_emergency_kwh
    return float_round(emergency + max(-credit, 0.0), KWH_DIGITS)


def queue_zero(move_out):
    """The ``add_credit`` job of the token that brings the meter's emergency credit in use
    and negative credit to zero (``zero_amount``; the tenant's debt pays for it,
    ``_record_shortfall``); empty when there is none. Minted once per move-out, on the
    meter's next transfer number under its lock: a retry runs the same job (the meter
    applies a transfer number at most once), never a second token."""
    env = move_out.env
    if move_out.zero_job_id:
        return move_out.zero_job_id
    amount = zero_amount(move_out)
    if amount <= 0:
        return env["smartpm.meter.job"]
    meter = move_out.meter_id.sudo()
    meter._check_can_command()
    vending.lock_meter(env, meter)
    number = meter.last_transfer_number + 1
    money = move_out.credit_mode == "money"
    mint = vending.mint_money_token if money else vending.mint_token
    token = mint(meter, number, amount)
    engine.as_engine(meter).last_transfer_number = number
    job = engine.create(
        env["smartpm.meter.job"],
        [
            {
                "meter_id": meter.id,
                "job_type": "add_credit",
                "payload": {
                    "token": token,
                    "transfer_number": number,
                    ("money" if money else "kwh"): amount,
                },
                "priority": vending.CREDIT_JOB_PRIORITY,
                "idempotency_key": f"move-out-{move_out.id}-zero",
            }
        ],
    )
    move_out.zero_job_id = job
    return job


def queue_clear(meter, wh, origin):
    """The clear_credit job removing ``wh`` Wh from ``meter`` (services/credit_clear.py);
    ``origin._on_credit_cleared(job, result)`` or ``origin._on_credit_clear_failed(job)``
    follows."""
    from . import credit_clear

    return credit_clear.queue_clear(meter, wh, origin)
