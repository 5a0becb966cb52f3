"""The daily vending report: a company's local day of sales per channel and per seller.

A *seller* is who took the money: the POS order's cashier, the back-office user who sold,
the bank of a bank sale; portal sales are the tenants' own (one row), free basic
electricity the monthly grant (one row). Each sale is counted once, on the local day of its
``date`` (the company's time zone, services/local_time.py), whatever its state now; a
reversal is counted on the day the sale was reversed (``date_reversed``), under the sale's
channel and seller. Standing charges are taken from the meters' credit, not sold
at a till: they are listed apart, on the day they were collected. All of these dates are
written once, so a closed day prints the same figures whenever it is printed.
"""

from collections import defaultdict

from . import local_time, refunds, statement, vending

# the report's channels, in the order it prints them (credit moved between meters at a
# move-out is no sale and is left out)
REPORT_CHANNELS = ("pos", "portal", "bank_soap", "bank_xmlrpc", "backoffice", "fbe")
# channels whose seller is an Odoo user (a cashier prints these figures of their own)
USER_CHANNELS = ("pos", "backoffice")
FIGURES = (
    "count",
    "amount",
    "credit_kwh",
    "credit_money",
    "debt_recovered",
    "fbe_count",
    "fbe_kwh",
    "reversal_count",
    "reversal_amount",
    "debt_restored",
    "net",
)


def _zero():
    return dict.fromkeys(FIGURES, 0.0)


def seller_of(purchase):
    """``(key, label, user)`` of who took the money for ``purchase`` (read in sudo)."""
    channel = purchase.channel
    if channel == "pos":
        user = purchase.pos_order_line_id.order_id.user_id or purchase.create_uid
        return ("user", user.id), user.name, user
    if channel == "backoffice":
        user = purchase.create_uid
        return ("user", user.id), user.name, user
    if channel in ("bank_soap", "bank_xmlrpc"):
        bank = purchase.bank_partner_id
        return ("bank", bank.id), bank.name or purchase.env._("(no bank)"), None
    if channel == "portal":
        return ("portal", 0), purchase.env._("Tenants (online payment)"), None
    return ("fbe", 0), purchase.env._("Monthly grant"), None


def reversal_amount(purchase):
    """What is given back when ``purchase`` is reversed (docs/accounting.md, Tenant debts):
    the whole amount paid on every channel (``refunds.refund_amount``: the credit note and
    the debt recovered, which the reversal owes again)."""
    return refunds.refund_amount(purchase)


def _reversed_in(env, company, start, end):
    """The sales of ``company`` reversed in [start, end) (naive UTC): by ``date_reversed``;
    a sale reversed before that field was kept, by the time the statement gives it
    (services/statement.reversal_times: the tracked change of its state to reversed)."""
    Purchase = env["smartpm.credit.purchase"]
    reversed_ = [("company_id", "=", company.id), ("state", "=", "reversed")]
    dated = Purchase.search(
        reversed_ + [("date_reversed", ">=", start), ("date_reversed", "<", end)]
    )
    undated = Purchase.search(reversed_ + [("date_reversed", "=", False)])
    times = statement.reversal_times(undated)
    return dated | undated.filtered(lambda p: start <= times[p.id] < end)


def daily_vending(env, company, day, channel=None, user=None):
    """The figures of ``company``'s local ``day`` (a date): a dict with ``sections`` (one per
    channel: ``rows`` per seller and ``total``), ``total`` (the grand total), the standing
    charges collected that day and the purchases counted (for the books' check).

    ``channel``: one channel only; ``user``: only the sales that Odoo user took (POS and back
    office), as a cashier's own report. Read in sudo: the caller checks who may see what."""
    env = env(su=True)
    start, end = local_time.day_bounds_utc(company, day)
    Purchase = env["smartpm.credit.purchase"]
    channels = [channel] if channel else list(REPORT_CHANNELS)
    if user:
        channels = [c for c in channels if c in USER_CHANNELS]
    base = [("company_id", "=", company.id), ("channel", "in", channels)]
    sales = Purchase.search(base + [("date", ">=", start), ("date", "<", end)], order="id")
    reversals = _reversed_in(env, company, start, end).filtered(lambda p: p.channel in channels)
    if user:
        sales = sales.filtered(lambda p: seller_of(p)[2] == user)
        reversals = reversals.filtered(lambda p: seller_of(p)[2] == user)

    rows = defaultdict(_zero)  # (channel, seller key) -> figures
    labels = {}
    for sale in sales:
        key, label, _user = seller_of(sale)
        labels[(sale.channel, key)] = label
        row = rows[(sale.channel, key)]
        if sale.channel == vending.FBE_CHANNEL:
            row["fbe_count"] += 1
            row["fbe_kwh"] += sale.kwh
            continue
        row["count"] += 1
        row["amount"] += sale.amount
        row["debt_recovered"] += sale.debt_recovered
        if sale.credit_mode == "money":
            row["credit_money"] += sale.credit_money
        else:
            row["credit_kwh"] += sale.kwh
    for sale in reversals:
        key, label, _user = seller_of(sale)
        labels[(sale.channel, key)] = label
        row = rows[(sale.channel, key)]
        row["reversal_count"] += 1
        row["reversal_amount"] += reversal_amount(sale)
        # its recovery undone: the debt is owed again (money kept or given back as above)
        row["debt_restored"] += sale.debt_recovered
    for row in rows.values():
        row["net"] = row["amount"] - row["reversal_amount"]

    names = dict(Purchase._fields["channel"]._description_selection(env))
    sections = []
    grand = _zero()
    for ch in channels:
        keys = sorted((k for k in rows if k[0] == ch), key=lambda k: labels[k].lower())
        if not keys:
            continue
        total = _zero()
        for key in keys:
            for figure in FIGURES:
                total[figure] += rows[key][figure]
        for figure in FIGURES:
            grand[figure] += total[figure]
        sections.append(
            {
                "channel": ch,
                "name": names.get(ch, ch),
                "rows": [dict(rows[k], seller=labels[k]) for k in keys],
                "total": total,
            }
        )

    charges = env["smartpm.standing.charge"]
    if not channel and not user:
        charges = charges.search(
            [
                ("company_id", "=", company.id),
                ("state", "=", "collected"),
                ("date_collected", ">=", start),
                ("date_collected", "<", end),
            ]
        )
    return {
        "company": company,
        "currency": company.currency_id,
        "day": day,
        "tz": local_time.company_tz(company).zone,
        "start_utc": start,
        "end_utc": end,
        "channel": channel and names.get(channel, channel),
        "user": user,
        "sections": sections,
        "total": grand,
        "standing_charge_count": len(charges),
        "standing_charge_amount": sum(charges.mapped("amount")),
        "standing_charge_kwh": sum(charges.mapped("kwh")),
        "standing_charge_money": sum(charges.mapped("money")),
        "sales": sales,
        "reversals": reversals,
    }
