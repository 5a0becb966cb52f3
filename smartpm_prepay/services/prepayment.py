"""Prepayment accounting: credit sold is owed energy until the meter consumes it.

Every channel sells the credit product, whose income account (per company) is the
company's *customer prepayments* liability: invoices (portal, bank, back office) and the
POS closing entries credit it. ``recognise`` moves the consumed credit's value from that
liability to the company's energy sales, first in, first out over the purchases of each
meter and tenant, at the untaxed price each purchase was bought at (its tiers included).

What a purchase has had recognised is kept as ``smartpm.credit.recognition`` rows, so a
run recognises only consumption that no earlier run did: running twice posts once.
"""

import logging
from datetime import timedelta

from odoo import fields
from odoo.exceptions import UserError
from odoo.tools import float_compare, float_round

from . import engine, local_time, tou

_logger = logging.getLogger(__name__)

PREPAYMENT_CODE = "219100"
ENERGY_INCOME_CODE = "400100"
JOURNAL_CODE = "PREPY"
KWH_DIGITS = 3


# ------------------------------------------------------------------ set-up
def ensure_income_account(company, field, code, name, account_type="income"):
    """The company's income account held in ``field`` (forfeited credit, standing
    charges), created once next to the prepayment accounts; empty while the company has no
    chart of accounts."""
    company = company.sudo()
    if not company[field]:
        if not ensure_accounts(company):
            return company[field]
        Account = company.env["account.account"].with_company(company)
        company[field] = Account.create(
            {
                "code": Account._search_new_account_code(code, cache=set()),
                "name": name,
                "account_type": account_type,
                "company_ids": [fields.Command.set(company.ids)],
            }
        )
    return company[field]


def ensure_accounts(company):
    """Create (once) the company's prepayment liability, energy sales account and
    recognition journal, and make the liability the credit product's income account.
    A company without a chart of accounts yet is skipped (done when its chart loads)."""
    company = company.sudo()
    if not company.chart_template and not company.root_id.chart_template:
        return False
    env = company.env
    Account = env["account.account"].with_company(company)
    vals = {}
    if not company.smartpm_prepayment_account_id:
        vals["smartpm_prepayment_account_id"] = Account.create(
            {
                "code": Account._search_new_account_code(PREPAYMENT_CODE, cache=set()),
                "name": env._("Customer prepayments (electricity credit)"),
                "account_type": "liability_current",
                "company_ids": [fields.Command.set(company.ids)],
            }
        ).id
    if not company.smartpm_energy_income_account_id:
        vals["smartpm_energy_income_account_id"] = Account.create(
            {
                "code": Account._search_new_account_code(ENERGY_INCOME_CODE, cache=set()),
                "name": env._("Energy sales"),
                "account_type": "income",
                "company_ids": [fields.Command.set(company.ids)],
            }
        ).id
    if not company.smartpm_recognition_journal_id:
        Journal = env["account.journal"].with_company(company)
        code = JOURNAL_CODE
        n = 1
        while Journal.search_count([("code", "=", code), ("company_id", "=", company.id)]):
            n += 1
            code = f"PRP{n}"
        vals["smartpm_recognition_journal_id"] = Journal.create(
            {
                "name": env._("Prepaid energy recognition"),
                "code": code,
                "type": "general",
                "company_id": company.id,
            }
        ).id
    if vals:
        company.write(vals)
    product = env.ref("smartpm_prepay.product_electricity_credit", raise_if_not_found=False)
    if product:
        tmpl = product.product_tmpl_id.with_company(company)
        if tmpl.property_account_income_id != company.smartpm_prepayment_account_id:
            tmpl.property_account_income_id = company.smartpm_prepayment_account_id
    return True


def ensure_all_accounts(env):
    for company in env["res.company"].sudo().search([]):
        ensure_accounts(company)


# ------------------------------------------------------------------ valuation
def value_of(purchase, kwh_from, kwh_to):
    """Untaxed value of the purchase's kWh ``kwh_from``..``kwh_to`` (its first kWh are its
    lowest tier's), scaled so that all its kWh are worth exactly its untaxed amount."""
    total_kwh = purchase.kwh
    if not total_kwh:
        return 0.0
    currency = purchase.currency_id
    if float_compare(kwh_to, total_kwh, precision_digits=KWH_DIGITS) >= 0:
        end_value = purchase.amount_untaxed
    else:
        end_value = currency.round(_scaled(purchase, kwh_to))
    start_value = currency.round(_scaled(purchase, kwh_from)) if kwh_from > 0 else 0.0
    return currency.round(end_value - start_value)


def _tier_value(parts, kwh):
    """Price of the first ``kwh`` of a purchase's tier breakdown (its parts in order)."""
    value, offset = 0.0, 0.0
    for part in parts:
        take = min(max(kwh - offset, 0.0), part["kwh"])
        value += take * part["price_per_kwh"]
        offset += part["kwh"]
    return value


def _scaled(purchase, kwh):
    parts = purchase.tier_breakdown or []
    full = _tier_value(parts, purchase.kwh)
    if not full:
        return purchase.amount_untaxed * kwh / purchase.kwh
    return purchase.amount_untaxed * _tier_value(parts, kwh) / full


# ------------------------------------------------------------------ recognition
def cutoff_day(company, today=None):
    """Last local day that a run on ``today`` recognises: yesterday (daily), or the last
    day of the previous month (monthly)."""
    today = today or local_time.local_today(company)
    if company.smartpm_recognition_period == "monthly":
        return today.replace(day=1) - timedelta(days=1)
    return today - timedelta(days=1)


def _consumed(env, company, until):
    """{(meter_id, tenant_id): kWh consumed up to local day ``until``}."""
    env["smartpm.consumption.daily"].flush_model()
    env.cr.execute(
        """
        SELECT meter_id, tenant_id, SUM(kwh) FROM smartpm_consumption_daily
         WHERE company_id = %s AND day <= %s AND tenant_id IS NOT NULL
               AND NOT COALESCE(is_check_meter, FALSE)
         GROUP BY meter_id, tenant_id
        """,
        (company.id, until),
    )
    return {(m, t): kwh or 0.0 for m, t, kwh in env.cr.fetchall()}


def _recognised(env, company):
    """{(meter_id, tenant_id): kWh of consumption already counted (matched or not)}.
    Repayment rows are not consumption: they release a sale's part that repaid emergency
    credit, whose consumption an earlier row (or this run) counts."""
    env["smartpm.credit.recognition"].flush_model()
    env.cr.execute(
        """
        SELECT meter_id, tenant_id, SUM(kwh) FROM smartpm_credit_recognition
         WHERE company_id = %s AND NOT COALESCE(repayment, FALSE)
               AND standing_charge_id IS NULL
         GROUP BY meter_id, tenant_id
        """,
        (company.id,),
    )
    return {(m, t): kwh or 0.0 for m, t, kwh in env.cr.fetchall()}


def _repayments(env, company, until_utc):
    """Rows for the emergency credit and the negative credit (friendly periods) that
    sales delivered before ``until_utc`` repaid and no run released yet, and {(meter_id,
    tenant_id): kWh of it whose consumption is not counted yet}. The repaid energy was
    consumed before the sale: counted without a sale if a run saw it (a row without a
    purchase), else in this run's consumption."""
    Purchase, Recognition = env["smartpm.credit.purchase"], env["smartpm.credit.recognition"]
    repaid = Purchase.search(
        [
            ("company_id", "=", company.id),
            ("state", "=", "delivered"),
            ("date_delivered", "<", until_utc),
            "|",
            ("emergency_repaid_kwh", ">", 0),
            ("debt_repaid_kwh", ">", 0),
        ],
        order="date_delivered, id",
    )
    done = Recognition.search([("repayment", "=", True), ("purchase_id", "in", repaid.ids)])
    rows, uncounted, charges_owed = [], {}, {}
    for purchase in repaid - done.purchase_id:
        owed = purchase.emergency_repaid_kwh + purchase.debt_repaid_kwh
        kwh = float_round(min(owed, purchase.kwh_remaining), KWH_DIGITS)
        if kwh <= 0:
            continue
        key = (purchase.meter_id.id, purchase.tenant_id.id)
        before = purchase.kwh_recognised
        if key not in charges_owed:
            charges_owed[key] = _standing_charges_owed(env, company, key)
        # negative credit a standing charge made is repaid first: standing charge income
        for charge_id, charge_kwh in charges_owed[key]:
            take = float_round(min(charge_kwh, kwh), KWH_DIGITS)
            if take <= 0:
                continue
            rows.append(
                {
                    "purchase_id": purchase.id,
                    "kwh": take,
                    "amount": value_of(purchase, before, before + take),
                    "meter_id": key[0],
                    "tenant_id": key[1],
                    "repayment": True,
                    "standing_charge_id": charge_id,
                }
            )
            charges_owed[key] = [
                (c, float_round(k - take, KWH_DIGITS) if c == charge_id else k)
                for c, k in charges_owed[key]
            ]
            before, kwh = before + take, float_round(kwh - take, KWH_DIGITS)
            uncounted[key] = uncounted.get(key, 0.0) + take
        if kwh <= 0:
            continue
        rows.append(
            {
                "purchase_id": purchase.id,
                "kwh": kwh,
                "amount": value_of(purchase, before, before + kwh),
                "meter_id": key[0],
                "tenant_id": key[1],
                "repayment": True,
            }
        )
        uncounted[key] = uncounted.get(key, 0.0) + kwh
    for key in uncounted:
        # what earlier runs counted without a sale and no repayment has released yet
        without_sale = Recognition.search(
            [("meter_id", "=", key[0]), ("tenant_id", "=", key[1]), ("company_id", "=", company.id)]
        )
        free = sum(
            without_sale.filtered(lambda r: not r.purchase_id and not r.repayment).mapped("kwh")
        ) - sum(without_sale.filtered("repayment").mapped("kwh"))
        uncounted[key] = float_round(uncounted[key] - max(free, 0.0), KWH_DIGITS)
        if uncounted[key] > 0:
            # consumed in this run's days before the sale: counted here without a sale (as
            # an earlier run would have), so that the repayment releases it once
            rows.append(
                {"purchase_id": False, "kwh": uncounted[key], "amount": 0.0, "meter_id": key[0]}
            )
            rows[-1]["tenant_id"] = key[1]
    return rows, uncounted


def _standing_charges_owed(env, company, key):
    """[(standing charge id, kWh)] of the negative credit standing charges of a meter and
    tenant made (their rows without a sale, services/standing_charge.py) that no repayment
    released yet, nor a move-out closed (repayment rows without a sale: the tenant's debt
    carries it, services/settlement.py ``close_owed_charges``), oldest first."""
    rows = env["smartpm.credit.recognition"].search(
        [
            ("company_id", "=", company.id),
            ("meter_id", "=", key[0]),
            ("tenant_id", "=", key[1]),
            ("standing_charge_id", "!=", False),
        ],
        order="id",
    )
    owed = {}
    for row in rows:
        if not row.purchase_id and not row.repayment:  # a move-out's closing row repays
            owed[row.standing_charge_id.id] = owed.get(row.standing_charge_id.id, 0.0) + row.kwh
    for row in rows.filtered("repayment"):
        owed[row.standing_charge_id.id] = owed.get(row.standing_charge_id.id, 0.0) - row.kwh
    return [(c, float_round(k, KWH_DIGITS)) for c, k in sorted(owed.items()) if k > 0.0005]


def _open_purchases(env, company, meter_id, tenant_id, until_utc):
    """Delivered purchases of the meter and tenant with credit left, oldest first."""
    purchases = env["smartpm.credit.purchase"].search(
        [
            ("company_id", "=", company.id),
            ("meter_id", "=", meter_id),
            ("tenant_id", "=", tenant_id),
            ("state", "=", "delivered"),
            ("date_delivered", "<", until_utc),
        ],
        order="date_delivered, id",
    )
    return purchases.filtered(
        lambda p: float_compare(p.kwh_remaining, 0, precision_digits=KWH_DIGITS) > 0
    )


def recognise(company, today=None):
    """Recognise the company's consumed credit up to its cut-off day; return the move
    (empty when nothing was consumed since the last run). Idempotent."""
    env = engine.as_engine(company.env["smartpm.credit.purchase"]).env
    company = company.with_env(env)
    if not ensure_accounts(company):
        raise UserError(
            env._("%s has no chart of accounts: credit cannot be recognised.", company.name)
        )
    # one run per company at a time (two crons, a button and the cron)
    env.cr.execute("SELECT id FROM res_company WHERE id = %s FOR NO KEY UPDATE", (company.id,))
    until = cutoff_day(company, today)
    until_utc = local_time.day_start_utc(company, until + timedelta(days=1))
    consumed = _consumed(env, company, until)
    done = _recognised(env, company)
    Recognition = env["smartpm.credit.recognition"]
    rows, uncounted = _repayments(env, company, until_utc)
    taken = {r["purchase_id"]: r["kwh"] for r in rows if r["purchase_id"]}  # this run
    money_meters = _money_meters(env, company)
    rows += _money_rows(env, company, money_meters, until_utc)
    for (meter_id, tenant_id), kwh in sorted(consumed.items()):
        if meter_id in money_meters.ids:
            continue  # charged in money by the meter: recognised by money consumed
        todo = float_round(
            kwh
            - done.get((meter_id, tenant_id), 0.0)
            - max(uncounted.get((meter_id, tenant_id), 0.0), 0.0),
            KWH_DIGITS,
        )
        if todo <= 0:
            continue
        for purchase in _open_purchases(env, company, meter_id, tenant_id, until_utc):
            left = float_round(purchase.kwh_remaining - taken.get(purchase.id, 0.0), KWH_DIGITS)
            if left <= 0:
                continue
            take = min(todo, left)
            before = purchase.kwh_recognised + taken.get(purchase.id, 0.0)
            rows.append(
                {
                    "purchase_id": purchase.id,
                    "kwh": take,
                    "amount": value_of(purchase, before, before + take),
                }
            )
            rows[-1].update(meter_id=meter_id, tenant_id=tenant_id)
            todo = float_round(todo - take, KWH_DIGITS)
            if todo <= 0:
                break
        if todo > 0:
            # consumed without a sale on record (credit the meter had before, emergency
            # credit): no liability to release, but counted so that no later sale pays it
            rows.append({"purchase_id": False, "kwh": todo, "amount": 0.0, "meter_id": meter_id})
            rows[-1]["tenant_id"] = tenant_id
    if not rows:
        return env["account.move"]
    move = _post_move(company, until, rows)
    Recognition.create(
        [
            dict(
                row,
                company_id=company.id,
                day=until,
                move_id=move.id if move else False,
            )
            for row in rows
        ]
    )
    _logger.info(
        "credit recognised for %s up to %s: %s kWh, %s",
        company.name,
        until,
        sum(r["kwh"] for r in rows),
        move.amount_total if move else 0,
    )
    return move


def _money_meters(env, company):
    """Meters of the company with money-mode sales (time of use)."""
    env["smartpm.credit.purchase"].flush_model()
    env.cr.execute(
        "SELECT DISTINCT meter_id FROM smartpm_credit_purchase"
        " WHERE company_id = %s AND credit_mode = 'money'",
        (company.id,),
    )
    return env["smartpm.meter"].browse([r[0] for r in env.cr.fetchall()])


def _money_rows(env, company, meters, until_utc):
    """Money mode: the credit the meter's consumption charge collected up to ``until_utc``
    (services/tou.money_consumed) less what earlier runs counted, released FIFO from the
    meter's delivered money sales, each at most its credit: the liability never goes
    negative and a run twice posts once. Money taken beyond the credit sold (negative
    credit: a friendly period, emergency credit) waits for the sale that repays it, as the
    meter's credit is summed: first the standing charges no sale covered (to standing
    charge income, services/standing_charge.py), then consumption."""
    Recognition = env["smartpm.credit.recognition"]
    rows = []
    for meter in meters:
        taken = {}
        for tenant_id, charges in sorted(_money_charges_owed(env, company, meter).items()):
            # a tenant's standing charges are repaid by their own sales only: never by the
            # next tenant's after a move-out (services/settlement.py closes them then)
            tenant = env["res.partner"].browse(tenant_id)
            for charge_id, owed in charges:
                found, _left = money_fifo(
                    env, company, meter, owed, until_utc, tenant=tenant, taken=taken
                )
                for row in found:
                    row.update(repayment=True, standing_charge_id=charge_id)
                rows += found
        consumed = tou.money_consumed(env, meter, until_utc)
        if consumed is None:
            continue
        done = sum(
            Recognition.search(
                [("meter_id", "=", meter.id), ("standing_charge_id", "=", False)]
            ).mapped("money")
        )
        todo = float_round(consumed - done, KWH_DIGITS)
        if todo > 0:
            rows += money_fifo(env, company, meter, todo, until_utc, taken=taken)[0]
    return rows


def _money_charges_owed(env, company, meter):
    """{tenant id: [(standing charge id, money)]}: what a money meter's standing charges
    took beyond each tenant's credit sold (their rows without a sale) that no later sale of
    that tenant released, nor a move-out closed (repayment rows without a sale: the tenant's
    debt carries it, services/settlement.py ``close_owed_charges``), oldest first."""
    rows = env["smartpm.credit.recognition"].search(
        [
            ("company_id", "=", company.id),
            ("meter_id", "=", meter.id),
            ("standing_charge_id", "!=", False),
            "|",
            ("purchase_id", "=", False),
            ("repayment", "=", True),
        ],
        order="id",
    )
    owed = {}
    for row in rows:
        key = (row.tenant_id.id, row.standing_charge_id.id)
        owed[key] = owed.get(key, 0.0) + (-row.money if row.repayment else row.money)
    by_tenant = {}
    for (tenant_id, charge_id), money in sorted(owed.items()):
        if money > 0.0005:
            by_tenant.setdefault(tenant_id, []).append((charge_id, float_round(money, KWH_DIGITS)))
    return by_tenant


def money_left(purchase, taken=0.0):
    """The credit (currency, to the milli-unit) of a money sale neither consumed (its
    recognition rows, and ``taken`` by the run under way) nor settled at a move-out
    (services/settlement.py: no longer the meter's credit)."""
    return float_round(
        purchase.credit_money
        - sum(purchase.recognition_ids.mapped("money"))
        - taken
        - sum(purchase.settlement_line_ids.mapped("money")),
        KWH_DIGITS,
    )


def money_fifo(env, company, meter, todo, until_utc=None, tenant=None, taken=None):
    """Rows taking ``todo`` (currency) first in, first out from the credit of the meter's
    delivered money sales (delivered before ``until_utc``; of ``tenant`` only, when given),
    each at most its credit less what it released (and what ``taken``, {purchase id:
    [money, value]}, took in this run: updated). Each row's value is the money it takes (a money
    sale's credit is its untaxed amount), the last of a sale its whole remaining liability.
    Returns (rows, money no sale covered)."""
    domain = [
        ("company_id", "=", company.id),
        ("meter_id", "=", meter.id),
        ("credit_mode", "=", "money"),
        ("state", "=", "delivered"),
        ("money_remaining", ">", 0),
    ]
    if until_utc:
        domain.append(("date_delivered", "<", until_utc))
    if tenant:
        domain.append(("tenant_id", "=", tenant.id))
    taken = {} if taken is None else taken
    rows = []
    todo = float_round(todo, KWH_DIGITS)
    for purchase in env["smartpm.credit.purchase"].search(domain, order="date_delivered, id"):
        if todo <= 0:
            break
        currency = purchase.currency_id
        run = taken.setdefault(purchase.id, [0.0, 0.0])
        prior = sum(purchase.recognition_ids.mapped("money")) + run[0]
        capacity = money_left(purchase, run[0])
        take = float_round(min(todo, capacity), KWH_DIGITS)
        if take <= 0:
            continue
        released = purchase.value_recognised + run[1]
        if take >= capacity:
            amount = currency.round(purchase.credit_money - released)  # the rest of it
        else:  # the value of all its credit consumed so far, less what was released
            amount = currency.round(currency.round(prior + take) - released)
        rows.append(
            {
                "purchase_id": purchase.id,
                "kwh": 0.0,
                "money": take,
                "amount": amount,
                "meter_id": meter.id,
                "tenant_id": purchase.tenant_id.id,
            }
        )
        run[0], run[1] = run[0] + take, run[1] + amount
        todo = float_round(todo - take, KWH_DIGITS)
    return rows, max(todo, 0.0)


def record_rows(company, day, rows):
    """Post ``rows`` (recognition rows: purchase, kWh or money, value) for local ``day`` and
    store them; return the move (empty when their value is zero)."""
    if not rows:
        return company.env["account.move"]
    move = _post_move(company, day, rows)
    engine.create(
        company.env["smartpm.credit.recognition"],
        [dict(row, company_id=company.id, day=day, move_id=move.id or False) for row in rows],
    )
    company.env["smartpm.credit.purchase"].invalidate_model()
    return move


def recognise_money_meter(company, meter, until_utc):
    """The money recognition of one money-mode meter up to ``until_utc`` (naive UTC), as the
    daily run does it (``_money_rows``: standing charges repaid, then the consumption charge
    the meter collected, FIFO): a move-out runs it before it values the closing credit.
    Return the move."""
    env = engine.as_engine(company.env["smartpm.credit.purchase"]).env
    company = company.with_env(env)
    env.cr.execute("SELECT id FROM res_company WHERE id = %s FOR NO KEY UPDATE", (company.id,))
    rows = _money_rows(env, company, meter.with_env(env), until_utc)
    return record_rows(company, local_time.local_today(company), rows)


def accounting_date(company, day, journal):
    """``day``, or the first open day after the company's lock dates."""
    locked = company._get_violated_lock_dates(day, False, journal)
    if locked:
        return max(d for d, _name in locked) + timedelta(days=1)
    return day


def _post_move(company, day, rows):
    env = company.env
    currency = company.currency_id
    amount = currency.round(sum(r["amount"] for r in rows))
    if currency.is_zero(amount):
        return company.env["account.move"]
    journal = company.smartpm_recognition_journal_id
    date = accounting_date(company, day, journal)
    by_tenant = {}
    for row in rows:
        by_tenant[row["tenant_id"]] = by_tenant.get(row["tenant_id"], 0.0) + row["amount"]
    lines = []
    charged = [r for r in rows if r.get("standing_charge_id")]
    charge_value = currency.round(sum(r["amount"] for r in charged))
    if charged and not currency.is_zero(charge_value):
        # repaid negative credit of standing charges: their income, not energy sales
        from . import standing_charge

        lines.append(
            fields.Command.create(
                {
                    "name": env._("Standing charges repaid up to %s", day),
                    "account_id": standing_charge.ensure_account(company).id,
                    "debit": 0.0,
                    "credit": charge_value,
                }
            )
        )
        amount = currency.round(amount - charge_value)
    for tenant_id, value in sorted(by_tenant.items()):
        value = currency.round(value)
        if currency.is_zero(value):
            continue
        lines.append(
            fields.Command.create(
                {
                    "name": env._("Electricity credit consumed up to %s", day),
                    "account_id": company.smartpm_prepayment_account_id.id,
                    "partner_id": tenant_id,
                    "debit": value,
                    "credit": 0.0,
                }
            )
        )
    if not currency.is_zero(amount):
        lines.append(
            fields.Command.create(
                {
                    "name": env._("Energy consumed up to %s", day),
                    "account_id": company.smartpm_energy_income_account_id.id,
                    "debit": 0.0,
                    "credit": amount,
                }
            )
        )
    move = (
        company.env["account.move"]
        .with_company(company)
        .create(
            {
                "move_type": "entry",
                "journal_id": journal.id,
                "company_id": company.id,
                "date": date,
                "ref": env._("Prepaid energy consumed up to %s", day),
                "line_ids": lines,
            }
        )
    )
    move.action_post()
    return move
