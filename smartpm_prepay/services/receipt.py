"""The receipt of a sale: how the amount paid and the energy bought were split, as every
channel shows it (POS ticket and receipt screen, bank SOAP and XML-RPC answers, the
tenant portal, the back office's purchase form and Sell credit wizard).

One source so that the figures are the same unit for unit everywhere:

- money: ``amount`` paid = ``debt_recovered`` (the tenant's debts, services/debt.py) +
  ``credit_amount`` (what bought ``kwh``); ``debt_balance`` is what the debts still
  amount to after the sale;
- energy: ``kwh`` bought = ``emergency_repaid_kwh`` (emergency credit the tenant had taken,
  repaid first by the meter) + ``negative_repaid_kwh`` (negative credit used in a friendly
  period) + ``net_kwh`` (the credit the tenant has on top of zero from this sale);
  ``new_balance_kwh`` is the meter's credit after the token (False: not known).

A money-mode sale (a time-of-use tariff, services/tou.py) puts ``credit_money`` on the meter
instead of kWh: its receipt shows that credit = ``emergency_repaid_money`` +
``negative_repaid_money`` + ``net_money``, the energy it buys in each price band (``bands``:
what the credit buys if all of it is used in that band), the tariff's standing charge
(``standing_charge``) and the meter's balance in money (``new_balance_money``).

Until the meter has taken the token the energy split is the one expected from the meter's
last known state, recorded at the sale (``expected_split``); once delivered it is the
meter's own figures (its token log and the credit it reported), and ``from_meter`` says so.
"""

from odoo.tools import float_round

from . import emergency

# sales on their way to the meter: their kWh are not in its last known credit (as the
# meter's estimated balance counts them, models/meter.py)
_PENDING_STATES = ("paid", "queued")


def _kwh(value):
    return float_round(value or 0.0, precision_digits=3)


def _money3(value):
    """Money as a money-mode meter counts it: three decimals (its milli-units)."""
    return float_round(value or 0.0, precision_digits=3)


def _repayment(owed, credit, brought):
    """(emergency repaid, negative credit repaid, balance after) of a token bringing
    ``brought`` to a meter owing ``owed`` emergency credit with ``credit``, in the unit of
    its credit: the meter repays emergency credit first (token log method 4), then the rest
    adds to the credit, which repays negative credit simply by being summed."""
    repaid_emergency = min(brought, owed)
    rest = brought - repaid_emergency
    repaid_negative = min(-credit, rest) if credit < 0 else 0.0
    return repaid_emergency, repaid_negative, credit + rest


def expected_split(meter, kwh, money=None):
    """What a token of ``kwh`` (a money-mode sale: of ``money``, currency) should repay on
    ``meter`` (sudo, under the sale's meter lock), from the meter's last known credit and
    emergency credit in use, counting the sales not yet on the meter before it: the
    purchase's ``expected_*`` values, in kWh or, for a money-mode sale, in money."""
    pending = meter.env["smartpm.credit.purchase"].search(
        [("meter_id", "=", meter.id), ("state", "in", _PENDING_STATES)]
    )
    taken = meter.emergency_status in emergency.TAKEN
    if money is not None:
        pending = pending.filtered(lambda p: p.credit_mode == "money")
        owed = meter.emergency_in_use_money if taken else 0.0
        owed = max(0.0, owed - sum(pending.mapped("expected_emergency_repaid_money")))
        credit = meter.credit_money + sum(
            p.credit_money - p.expected_emergency_repaid_money for p in pending
        )
        repaid_emergency, repaid_negative, balance = _repayment(owed, credit, money)
        return {
            "expected_emergency_repaid_money": _money3(repaid_emergency),
            "expected_negative_repaid_money": _money3(repaid_negative),
            "expected_balance_money": _money3(balance),
        }
    pending = pending.filtered(lambda p: p.credit_mode != "money")
    owed = 0.0
    if taken:
        owed = max(
            0.0, meter.emergency_in_use_kwh - sum(pending.mapped("expected_emergency_repaid_kwh"))
        )
    credit = meter.credit_kwh + sum(p.kwh - p.expected_emergency_repaid_kwh for p in pending)
    repaid_emergency, repaid_negative, balance = _repayment(owed, credit, kwh)
    return {
        "expected_emergency_repaid_kwh": _kwh(repaid_emergency),
        "expected_negative_repaid_kwh": _kwh(repaid_negative),
        "expected_balance_kwh": _kwh(balance),
    }


def split(purchase):
    """The figures of ``purchase``'s receipt (a dict, see the module's docstring), with
    ``lines``: the same figures in words, as every channel prints them."""
    p = purchase.sudo()
    from_meter = p.state == "delivered"
    if from_meter:
        emergency_kwh, negative_kwh = p.emergency_repaid_kwh, p.debt_repaid_kwh
        result = p.job_id.result or {}
        balance = _kwh(float(result["credit_kwh"])) if "credit_kwh" in result else False
    else:
        emergency_kwh = p.expected_emergency_repaid_kwh
        negative_kwh = p.expected_negative_repaid_kwh
        # a reversed sale brings nothing; an old sale without the expectation: unknown
        known = p.state != "reversed" and p.expected_balance_kwh
        balance = p.expected_balance_kwh if known else False
    values = {
        "reference": p.name,
        "state": p.state,
        "transfer_number": p.transfer_number,
        "currency": p.currency_id.name,
        "amount": p.amount,
        "debt_recovered": p.debt_recovered,
        "debt_balance": p.debt_balance_after,
        "credit_amount": p.credit_amount,
        "has_debt": bool(p.debt_recovered or p.debt_balance_after),
        "kwh": _kwh(p.kwh),
        "emergency_repaid_kwh": _kwh(emergency_kwh),
        "negative_repaid_kwh": _kwh(negative_kwh),
        "net_kwh": _kwh(p.kwh - emergency_kwh - negative_kwh),
        "has_repayment": bool(emergency_kwh or negative_kwh),
        "new_balance_kwh": balance,
        "from_meter": from_meter,
    }
    if p.credit_mode == "money":
        values.update(_money_values(p))
    values["lines"] = lines(p.env, p.currency_id, values)
    return values


def _money_values(purchase):
    """The money-mode part of ``purchase``'s receipt: its bands (tax included) with the
    kWh its credit buys in each, the tariff's standing charge, what the credit repays
    (expected at the sale, the meter's own figures once delivered) and the meter's credit
    after the token (expected, then the bridge's ``credit_money``)."""
    from . import tou

    if purchase.state == "delivered":
        emergency_money = purchase.emergency_repaid_money
        negative_money = purchase.debt_repaid_money
    else:
        emergency_money = purchase.expected_emergency_repaid_money
        negative_money = purchase.expected_negative_repaid_money
    return money_values(
        purchase.tariff_id,
        purchase.credit_money,
        tou.receipt_bands(purchase),
        emergency_money,
        negative_money,
        _money_balance(purchase),
    )


def money_values(tariff, credit_money, bands, emergency_money, negative_money, balance):
    """A money-mode receipt's figures (a sale's or a quote's): ``bands`` as
    ``tou.receipt_bands`` gives them, what the credit repays and the balance after it
    (False: not known)."""
    bands = [
        dict(band, label=tariff._format_price(band["price"]) if tariff else str(band["price"]))
        for band in bands
    ]
    charge = False
    if tariff and tariff.standing_charge_amount > 0:
        charge = {
            "amount": tariff.standing_charge_amount,
            "period": tariff.standing_charge_period,
        }
    return {
        "credit_mode": "money",
        "credit_money": credit_money,
        # what the meter keeps of the token's money (expected, then its own figures)
        "emergency_repaid_money": emergency_money,
        "negative_repaid_money": negative_money,
        "net_money": _money3(credit_money - emergency_money - negative_money),
        "has_repayment": bool(emergency_money or negative_money),
        "bands": bands,
        "standing_charge": charge,
        "new_balance_money": balance,
        "new_balance_kwh": False,
    }


def quote_split(meter, info):
    """The receipt a sale of ``info`` (``sale_info.sale_info`` with an accepted amount)
    would print now, for a preview (the POS popup): the same figures and lines as
    ``split`` of the purchase it would make, nothing recorded."""
    meter = meter.sudo()
    quote = info["quote"]
    expected = expected_split(meter, quote["kwh"])
    emergency_kwh = expected["expected_emergency_repaid_kwh"]
    negative_kwh = expected["expected_negative_repaid_kwh"]
    debt_recovered = quote.get("debt_recovered", 0.0)
    debt_balance = quote.get("debt_balance", 0.0)
    values = {
        "reference": False,
        "state": False,
        "transfer_number": False,
        "currency": info["currency"].name,
        "amount": quote["amount"],  # what is paid: the debts' part and the credit's
        "debt_recovered": debt_recovered,
        "debt_balance": debt_balance,
        "credit_amount": quote.get("credit_amount", quote["amount"]),
        "has_debt": bool(debt_recovered or debt_balance),
        "kwh": _kwh(quote["kwh"]),
        "emergency_repaid_kwh": emergency_kwh,
        "negative_repaid_kwh": negative_kwh,
        "net_kwh": _kwh(quote["kwh"] - emergency_kwh - negative_kwh),
        "has_repayment": bool(emergency_kwh or negative_kwh),
        "new_balance_kwh": expected["expected_balance_kwh"],
        "from_meter": False,
    }
    if "credit_money" in quote:  # a money-mode sale: its credit, bands and repayments
        money = expected_split(meter, 0.0, quote["credit_money"])
        values.update(
            money_values(
                info["tariff"],
                quote["credit_money"],
                _quote_bands(info["tariff"], quote),
                money["expected_emergency_repaid_money"],
                money["expected_negative_repaid_money"],
                money["expected_balance_money"],
            )
        )
    values["lines"] = lines(meter.env, info["currency"], values)
    return values


def _quote_bands(tariff, quote):
    """A money quote's bands (``tou.quote_money``) as ``tou.receipt_bands`` gives a sale's."""
    factor = tariff._tax_factor()
    return [
        {
            "name": band["name"],
            "hours": band.get("hours", ""),
            "price": round(band["price_untaxed"] * factor, 4),
            "kwh": band.get("kwh", 0.0),
        }
        for band in quote.get("bands") or []
    ]


def lines(env, currency, values):
    """The receipt's lines ``[{"key", "label", "value"}]``: money and kWh (two decimals) as
    ``env``'s language writes them (``sale_info.format_money``, ``format_kwh``); the debt
    lines only for a tenant with debts, the repayment lines only when the sale repays (or
    is expected to repay) emergency or negative credit."""
    from .sale_info import format_kwh, format_money

    def money(amount):
        return format_money(env, amount, currency)

    def kwh(value):
        return format_kwh(env, value)

    expected = "" if values["from_meter"] else env._(" (expected)")
    rows = [("amount", env._("Amount paid"), money(values["amount"]))]
    if values["has_debt"]:
        rows += [
            ("debt_recovered", env._("Debt recovered"), money(values["debt_recovered"])),
            ("debt_balance", env._("Debt balance left"), money(values["debt_balance"])),
            ("credit_amount", env._("Credit bought"), money(values["credit_amount"])),
        ]
    if values.get("credit_mode") == "money":
        rows += _money_rows(env, money, values)
        return [{"key": key, "label": label, "value": value} for key, label, value in rows]
    rows.append(("kwh", env._("Energy bought"), kwh(values["kwh"])))
    if values["emergency_repaid_kwh"]:
        rows.append(
            (
                "emergency_repaid_kwh",
                env._("Emergency credit repaid") + expected,
                kwh(values["emergency_repaid_kwh"]),
            )
        )
    if values["negative_repaid_kwh"]:
        rows.append(
            (
                "negative_repaid_kwh",
                env._("Negative credit repaid") + expected,
                kwh(values["negative_repaid_kwh"]),
            )
        )
    if values["has_repayment"]:
        rows.append(("net_kwh", env._("Net energy added") + expected, kwh(values["net_kwh"])))
    if values["new_balance_kwh"] is not False:
        label = env._("New balance") if values["from_meter"] else env._("Estimated new balance")
        rows.append(("new_balance_kwh", label, kwh(values["new_balance_kwh"])))
    if values["transfer_number"]:
        rows.append(("transfer_number", env._("Transfer number"), str(values["transfer_number"])))
    return [{"key": key, "label": label, "value": value} for key, label, value in rows]


def _money_balance(purchase):
    """The meter's credit after the token: reported once delivered, else expected at the
    sale (False: a reversed sale, or one sold before the expectation was recorded)."""
    if purchase.state != "delivered":
        known = purchase.state != "reversed" and purchase.expected_balance_money
        return purchase.currency_id.round(purchase.expected_balance_money) if known else False
    result = purchase.job_id.result or {}
    if "credit_money" not in result:
        return False
    return purchase.currency_id.round(float(result["credit_money"]))


def _money_rows(env, money, values):
    """A money-mode sale's lines after the amounts: the credit on the meter, what it repays
    (expected until the meter took it), the energy it buys band by band, the standing
    charge, the meter's new balance in money."""
    from .sale_info import format_kwh

    expected = "" if values["from_meter"] else env._(" (expected)")
    rows = [("credit_money", env._("Credit added to the meter"), money(values["credit_money"]))]
    if values.get("emergency_repaid_money"):
        rows.append(
            (
                "emergency_repaid_money",
                env._("Emergency credit repaid") + expected,
                money(values["emergency_repaid_money"]),
            )
        )
    if values.get("negative_repaid_money"):
        rows.append(
            (
                "negative_repaid_money",
                env._("Negative credit repaid") + expected,
                money(values["negative_repaid_money"]),
            )
        )
    if values.get("emergency_repaid_money") or values.get("negative_repaid_money"):
        rows.append(("net_money", env._("Net credit added") + expected, money(values["net_money"])))
    for i, band in enumerate(values["bands"], start=1):
        rows.append(
            (
                f"band_{i}",
                env._(
                    "Energy it buys at %(band)s (%(price)s per kWh)",
                    band=band["name"],
                    price=band["label"],
                ),
                format_kwh(env, band["kwh"]),
            )
        )
    charge = values["standing_charge"]
    if charge:
        per = env._("per day") if charge["period"] == "day" else env._("per month")
        rows.append(
            (
                "standing_charge",
                env._("Standing charge (taken from the credit)"),
                f"{money(charge['amount'])} {per}",
            )
        )
    if values["new_balance_money"] is not False:
        label = env._("New balance") if values["from_meter"] else env._("Estimated new balance")
        rows.append(("new_balance_money", label, money(values["new_balance_money"])))
    if values["transfer_number"]:
        rows.append(("transfer_number", env._("Transfer number"), str(values["transfer_number"])))
    return rows


def text_of(rows):
    """Receipt lines as plain text, one "label: value" a line."""
    return "\n".join(f"{row['label']}: {row['value']}" for row in rows)
