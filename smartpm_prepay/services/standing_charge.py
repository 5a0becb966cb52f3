"""Standing charges (issue 17 §4): a fixed charge per day or per month on a tariff.

The owner chooses who collects it (``smartpm.tariff.standing_charge_collection``):

- **Odoo** (``odoo``): the daily cron (``collect_due``) makes one ``smartpm.standing.charge``
  per meter and period (its local day, or month) and takes it off the meter's credit with
  a signed clear-credit token (``credit_clear.queue_clear``, origin the charge). The charge
  row and its job are made in one transaction and the row is unique per meter, period kind
  and period start (a unique index): whatever runs it (two crons, a run again after a
  crash) a meter is charged once per period. Days the cron missed are caught up (at most
  ``MAX_CATCH_UP`` periods), from the day after the last charged one.
- **the meter** (``meter``, daily charges only): a time-based Charge (IC 113,
  docs/meter-contract.md "Standing charge") pushed by a ``set_charge`` job; the meter
  takes it each day of its clock. Its *total amount paid* comes back in ping and
  ``set_charge`` results (``on_result``): what it grew by since the last report is one
  ``smartpm.standing.charge`` row (unique per meter and reported total).

Units: a meter in kWh mode is charged the energy the charge buys at the tariff's price of
the first kWh, taxes included as sales are (``meter_units``, the one conversion); a
money-mode meter (time of use, services/tou.py) is charged the charge's untaxed part in
milli-units of the currency, as its credit holds the untaxed part of each sale: the
Odoo-collected charge is a money clear token, the meter-collected one a charge of
milli-units (``charge_money``), its total reported as ``standing_charge_paid_money``.

Accounting (``recognise``): once collected, the charge's kWh (a money meter: its money,
``prepayment.money_fifo``) are taken first in, first out from the tenant's sold credit on
the meter (``smartpm.credit.recognition`` rows of the
charge, at the price each sale was bought at), and the value moves from the customer
prepayments liability to the company's standing charge income: no credit is created or
lost. What no sale covers (credit already at or below zero: a friendly period) is a row
without a sale; the next purchase repays that negative credit (``debt_repaid_kwh``) and
the recognition job releases it then to standing charge income
(``prepayment._standing_charges_owed``).
"""

import logging
from datetime import timedelta

import psycopg2.errors

from odoo import fields
from odoo.tools import float_compare, float_round

from . import credit_clear, credit_token, engine, local_time, prepayment

_logger = logging.getLogger(__name__)

STANDING_CHARGE_CODE = "400300"
PUSH_PRIORITY = 20
DAY_S = 86400
MAX_CATCH_UP = 31  # periods the cron charges at most for a meter in one run
MONEY_SCALE = credit_token.MONEY_SCALE  # a money meter's credit counts 1/1000 of the currency
KWH_DIGITS = prepayment.KWH_DIGITS
_RACE_ERRORS = (
    psycopg2.errors.UniqueViolation,
    psycopg2.errors.LockNotAvailable,
    psycopg2.errors.SerializationFailure,
)


# ------------------------------------------------------------------ units
def meter_mode(meter):
    """``kwh`` (credit held in energy) or ``money`` (credit held in currency: a money-mode
    meter, issue 17 §6, where the meter model says so)."""
    return getattr(meter, "credit_mode", None) or "kwh"


def meter_units(tariff, amount, mode="kwh"):
    """What a standing charge of ``amount`` (tariff currency, taxes included) takes off a
    meter's credit, in the meter's unit: ``("wh", int)`` in kWh mode, the energy the amount
    buys at the tariff's price of the first kWh (its taxes included, as a sale converts
    money to kWh), rounded to the Wh; ``("money_units", int)`` in money mode, its untaxed
    part in milli-units of the currency (a money sale's credit is its untaxed part too).
    The only conversion of standing charges: collection, push and accounting use it."""
    tariff.ensure_one()
    untaxed, _tax = tariff._split_taxes(amount)
    if mode == "money":
        return "money_units", int(round(untaxed * MONEY_SCALE))
    price = tariff._bands()[0][1]
    return "wh", int(round(untaxed / price * 1000)) if price > 0 else 0


def tariff_units(tariff, mode="kwh"):
    """Units (Wh, or milli-units on a money meter) per period of the tariff's charge."""
    if not tariff or tariff.standing_charge_amount <= 0:
        return 0
    return meter_units(tariff, tariff.standing_charge_amount, mode)[1]


def tariff_wh(tariff):
    """Wh per period of the tariff's charge on a kWh-mode meter (0: none)."""
    return tariff_units(tariff)


def tariff_mode(tariff):
    """The credit mode of the meters a tariff serves: money for time of use, else kWh."""
    return "money" if tariff.pricing_mode == "tou" else "kwh"


# ------------------------------------------------------------------ periods
def period_start(company, period, day):
    """The first local day of the period of ``day`` (itself, or the 1st of its month)."""
    return day.replace(day=1) if period == "month" else day


def _next_start(period, start):
    if period == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=1)


def _charged_meters(env, companies):
    Meter = env["smartpm.meter"].sudo()
    return Meter.search(
        [
            ("company_id", "in", companies.ids),
            ("active", "=", True),
            ("state", "in", ("active", "disconnected")),
            ("tenant_id", "!=", False),
            "|",
            ("tariff_id.standing_charge_amount", ">", 0),
            "&",
            ("tariff_id", "=", False),
            ("tenant_id.smartpm_tariff_id.standing_charge_amount", ">", 0),
        ],
        order="id",
    )


def due_periods(meter, tariff, today):
    """The period starts still owed on ``meter`` by its tenant: from the one after their
    last charge (at most MAX_CATCH_UP back), else the current one only."""
    period = tariff.standing_charge_period
    current = period_start(meter.company_id, period, today)
    last = (
        meter.env["smartpm.standing.charge"]
        .sudo()
        .search(
            [
                ("meter_id", "=", meter.id),
                ("tenant_id", "=", meter.tenant_id.id),
                ("collection", "=", "odoo"),
                ("period", "=", period),
            ],
            order="period_start desc",
            limit=1,
        )
    )
    if not last:
        return [current]
    if last.period_start >= current:
        return []
    starts, start = [], _next_start(period, last.period_start)
    while start <= current:
        starts.append(start)
        start = _next_start(period, start)
    return starts[-MAX_CATCH_UP:]


def collect_due(env, companies=None, today=None, commit_every=None):
    """The daily cron: charge every meter on a tariff whose standing charge Odoo collects,
    once per period (see the module's doc). Each charge in its own savepoint: one meter
    that cannot be charged (no token key, a concurrent run) does not stop the others.
    Return ``{"queued": charges, "errors": [(meter, message)]}``."""
    sudo_env = engine.as_engine(env["smartpm.standing.charge"]).env
    Charge = sudo_env["smartpm.standing.charge"]
    if companies is None:
        companies = sudo_env["res.company"].search([])
    result = {"queued": Charge, "errors": []}
    for meter in _charged_meters(sudo_env, companies.with_env(sudo_env)):
        tariff = meter._get_tariff()
        if tariff.standing_charge_collection != "odoo":
            continue
        day = today or local_time.local_today(meter.company_id)
        for start in due_periods(meter, tariff, day):
            try:
                with sudo_env.cr.savepoint():
                    result["queued"] |= _charge(meter, tariff, start)
            except _RACE_ERRORS as exc:
                _logger.info("standing charge of %s being made by another run: %s", meter, exc)
                break
            except Exception as exc:  # noqa: BLE001 - one meter never stops the others
                _logger.warning("standing charge of %s not made: %s", meter.serial_number, exc)
                result["errors"].append((meter, str(exc)))
                break
            if commit_every and not len(result["queued"]) % commit_every:
                sudo_env.cr.commit()
    return result


def _charge(meter, tariff, start):
    """One charge row and its clear-credit job (one transaction, one transfer number)."""
    unit, wh = meter_units(tariff, tariff.standing_charge_amount, meter_mode(meter))
    if wh <= 0:
        raise ValueError(
            tariff.env._(
                "nothing to take off the credit for a charge of %s", tariff.standing_charge_amount
            )
        )
    Charge = engine.as_engine(meter.env["smartpm.standing.charge"])
    charge = Charge.create(
        {
            "meter_id": meter.id,
            "tenant_id": meter.tenant_id.id,
            "tariff_id": tariff.id,
            "company_id": meter.company_id.id,
            "collection": "odoo",
            "period": tariff.standing_charge_period,
            "period_start": start,
            "amount": tariff.standing_charge_amount,
            "currency_id": tariff.currency_id.id,
            "kwh": wh / 1000 if unit == "wh" else 0.0,
            "money": wh / MONEY_SCALE if unit == "money_units" else 0.0,
            "state": "queued",
        }
    )
    charge.flush_recordset()
    job = credit_clear.queue_clear(meter, wh, charge)
    engine.as_engine(charge).write(
        {"job_id": job.id, "transfer_number": job.payload["transfer_number"]}
    )
    return charge


# ------------------------------------------------------------------ by the meter
def push_settings(meter):
    """(kWh per period, or currency on a money meter, period s) the meter itself must
    collect: the tariff's daily charge when the meter collects it, else none (0, one day)."""
    tariff = meter._get_tariff()
    if (
        not tariff
        or tariff.standing_charge_collection != "meter"
        or tariff.standing_charge_amount <= 0
    ):
        return 0.0, DAY_S
    return tariff_units(tariff, meter_mode(meter)) / 1000, DAY_S


def _payload_key(meter):
    return "charge_money" if meter_mode(meter) == "money" else "charge_kwh"


def settings_before(meters):
    return {m.id: push_settings(m) for m in meters}


def push_changed(meters, before):
    """Push to the meters whose settings in force changed since ``before``, once per change."""
    if before:
        push(meters.filtered(lambda m: m.id in before and push_settings(m) != before[m.id]))


def push(meters):
    meters = meters.sudo()._commandable()
    meters._supersede("set_charge")
    vals_list = []
    for meter in meters:
        kwh, period_s = push_settings(meter)
        vals_list.append(
            {
                "meter_id": meter.id,
                "job_type": "set_charge",
                "payload": {_payload_key(meter): kwh, "period_s": period_s},
                "priority": PUSH_PRIORITY,
            }
        )
    return engine.create(meters.env["smartpm.meter.job"], vals_list)


def on_result(meter, result):
    """A result reporting the meter's time-based charge (``standing_charge_paid_kwh``, on a
    money meter ``standing_charge_paid_money``: all it ever collected): what it grew by since
    the last report is collected now, one row."""
    money = meter_mode(meter) == "money"
    paid = result.get("standing_charge_paid_money" if money else "standing_charge_paid_kwh")
    if isinstance(paid, bool) or not isinstance(paid, (int, float)):
        return None
    paid_wh = int(round(paid * 1000))
    Charge = engine.as_engine(meter.env["smartpm.standing.charge"])
    meter.env.cr.execute("SELECT id FROM smartpm_meter WHERE id = %s FOR NO KEY UPDATE", [meter.id])
    last = Charge.search(
        [("meter_id", "=", meter.id), ("collection", "=", "meter")],
        order="meter_paid_wh desc",
        limit=1,
    )
    delta = paid_wh - (last.meter_paid_wh if last else 0)
    if delta <= 0 or not meter.tenant_id:
        return None
    limit = _plausible_wh(meter, last)
    if delta > limit:
        # a bridge may not invent revenue: more than the meter can have collected since
        meter.message_post(
            body=meter.env._(
                "A report said the meter's standing charge collected %(kwh)s %(unit)s since "
                "the last one; at most %(max)s is possible: not recorded.",
                kwh=delta / 1000,
                unit=meter.env._("of currency") if money else meter.env._("kWh"),
                max=limit / 1000,
            )
        )
        return None
    tariff = meter._get_tariff()
    company = meter.company_id
    charge = Charge.create(
        {
            "meter_id": meter.id,
            "tenant_id": meter.tenant_id.id,
            "tariff_id": tariff.id if tariff else False,
            "company_id": company.id,
            "collection": "meter",
            "period": "day",
            "period_start": local_time.local_today(company),
            "amount": _amount_of(tariff, delta, meter_mode(meter)) if tariff else 0.0,
            "currency_id": (tariff.currency_id if tariff else company.currency_id).id,
            "kwh": 0.0 if money else delta / 1000,
            "money": delta / MONEY_SCALE if money else 0.0,
            "meter_paid_wh": paid_wh,
            "state": "collected",
            "date_collected": fields.Datetime.now(),
        }
    )
    recognise(charge)
    return charge


def _plausible_wh(meter, last):
    """The most a meter may report as collected since ``last``: nothing when no set_charge
    ever gave it a charge (a bridge may not invent revenue on a meter that has none). With
    one, no bound in days: the meter's clock, not Odoo's, runs its periods (a meter's clock
    may have been moved forward), so a report is trusted as the meter's credit is."""
    pushes = (
        meter.env["smartpm.meter.job"]
        .sudo()
        .search(
            [("meter_id", "=", meter.id), ("job_type", "=", "set_charge"), ("state", "=", "done")]
        )
    )
    if not pushes.filtered(lambda j: (j.payload or {}).get(_payload_key(meter))):
        return 0
    return credit_token.UINT32_MAX


def _amount_of(tariff, wh, mode="kwh"):
    """The money (taxes included) of ``wh`` (Wh, or milli-units on a money meter) charged
    by the meter: whole periods of the tariff's charge."""
    per = tariff_units(tariff, mode)
    if not per:
        return 0.0
    return tariff.currency_id.round(tariff.standing_charge_amount * wh / per)


# ------------------------------------------------------------------ clear outcome (origin)
def on_cleared(charge, job, result):
    """The meter took the clear token: the charge is collected, then recognised."""
    if charge.state == "collected":
        return
    vals = {"state": "collected", "date_collected": fields.Datetime.now()}
    key, field = ("cleared_money", "money") if charge.money else ("cleared_kwh", "kwh")
    cleared = result.get(key)
    if isinstance(cleared, (int, float)) and not isinstance(cleared, bool):
        vals[field] = float(cleared)
    engine.as_engine(charge).write(vals)
    recognise(charge)


def on_clear_failed(charge, job):
    if charge.state == "queued":
        engine.as_engine(charge).write({"state": "failed"})


# ------------------------------------------------------------------ accounting
def ensure_account(company):
    """The company's *standing charges* income account, created once."""
    return prepayment.ensure_income_account(
        company,
        "smartpm_standing_charge_account_id",
        STANDING_CHARGE_CODE,
        company.env._("Standing charges"),
    )


def ensure_all_accounts(env):
    for company in (
        env["res.company"].sudo().search([("smartpm_prepayment_account_id", "!=", False)])
    ):
        ensure_account(company)


def recognise(charge):
    """The collected charge's kWh taken first in, first out from the tenant's sold credit
    on the meter, its value moved from the prepayments liability to standing charge income
    (one posted entry); the part no sale covers is a row without a sale. Once per charge."""
    charge = engine.as_engine(charge)
    env = charge.env
    if charge.recognition_ids or charge.state != "collected":
        return charge.move_id
    company = charge.company_id
    account = ensure_account(company)
    if charge.money:
        return _recognise_money(charge, account)
    Purchase = env["smartpm.credit.purchase"]
    purchases = Purchase.search(
        [
            ("company_id", "=", company.id),
            ("meter_id", "=", charge.meter_id.id),
            ("tenant_id", "=", charge.tenant_id.id),
            ("state", "=", "delivered"),
        ],
        order="date_delivered, id",
    ).filtered(lambda p: float_compare(p.kwh_remaining, 0, precision_digits=KWH_DIGITS) > 0)
    todo = float_round(charge.kwh, KWH_DIGITS)
    rows = []
    for purchase in purchases:
        if todo <= 0:
            break
        take = min(todo, float_round(purchase.kwh_remaining, KWH_DIGITS))
        before = purchase.kwh_recognised
        rows.append(
            {
                "purchase_id": purchase.id,
                "kwh": take,
                "amount": prepayment.value_of(purchase, before, before + take),
            }
        )
        todo = float_round(todo - take, KWH_DIGITS)
    if todo > 0:
        rows.append({"purchase_id": False, "kwh": todo, "amount": 0.0})
    return _book(charge, account, rows)


def _recognise_money(charge, account):
    """A money meter's charge: its money taken FIFO from the meter's money sales; what no
    sale covers (credit already negative) is a row without a sale that the next sales
    release to standing charge income (``prepayment._money_rows``)."""
    rows, todo = prepayment.money_fifo(
        charge.env, charge.company_id, charge.meter_id, charge.money, tenant=charge.tenant_id
    )
    if todo > 0:
        rows.append({"purchase_id": False, "kwh": 0.0, "money": todo, "amount": 0.0})
    for row in rows:
        row.pop("meter_id", None)
        row.pop("tenant_id", None)
    return _book(charge, account, rows)


def _book(charge, account, rows):
    env, company = charge.env, charge.company_id
    day = local_time.local_today(company)
    move = env["account.move"]
    value = company.currency_id.round(sum(r["amount"] for r in rows))
    if account and not company.currency_id.is_zero(value):
        move = _post_move(charge, account, value, day)
    env["smartpm.credit.recognition"].create(
        [
            dict(
                row,
                company_id=company.id,
                day=day,
                meter_id=charge.meter_id.id,
                tenant_id=charge.tenant_id.id,
                standing_charge_id=charge.id,
                move_id=move.id or False,
            )
            for row in rows
        ]
    )
    charge.write({"move_id": move.id or False, "value": value})
    return move


def _post_move(charge, account, value, day):
    company = charge.company_id
    env = charge.env
    journal = company.smartpm_recognition_journal_id
    label = env._("Standing charge %(name)s", name=charge.display_name)
    move = (
        env["account.move"]
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
                            "partner_id": charge.tenant_id.id,
                            "debit": value,
                            "credit": 0.0,
                        }
                    ),
                    fields.Command.create(
                        {
                            "name": label,
                            "account_id": account.id,
                            "partner_id": charge.tenant_id.id,
                            "debit": 0.0,
                            "credit": value,
                        }
                    ),
                ],
            }
        )
    )
    move.action_post()
    return move
