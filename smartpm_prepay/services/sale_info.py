"""What a sales channel knows of a meter before selling: whether it is sellable (and
why not), the limits of one sale, the quote of an amount and its price in words.

One helper for the back-office wizard, the POS, the portal, the bank channel and the
``smartpm.credit.purchase`` RPC; the vending service checks everything again when it sells.
"""

from odoo.tools import float_round
from odoo.tools.misc import format_amount, formatLang

from . import debt, vending


def format_money(env, amount, currency):
    """``amount`` as the currency writes it in ``env``'s language ("$ 1.00", "1,00 €"): the
    one way receipts, statements, the portal and mails/SMS write money."""
    return format_amount(env, amount, currency)


def format_kwh(env, kwh, digits=2, unit=True, trim=False):
    """``kwh`` in ``env``'s language with ``digits`` decimals and the unit ("12.50 kWh",
    "12,50 kWh"; ``unit`` False: the number alone; ``trim``: without the trailing zeros,
    "100", "12,5", as prices and tiers are written): the one way receipts, statements, the
    portal and mails/SMS write energy."""
    kwh = kwh or 0.0
    if trim:
        while digits and float_round(kwh, digits - 1) == float_round(kwh, digits):
            digits -= 1
    number = formatLang(env, kwh, digits=digits)
    return f"{number} kWh" if unit else number


def describe_tiers(tariff, tier_breakdown):
    """How the kWh of a sale are priced, taxes included, in words: "48 kWh at $ 0.25" or
    "20 kWh at $ 0.25 + 9.37 kWh at $ 0.32"."""
    factor = tariff._tax_factor()
    return " + ".join(
        tariff.env._(
            "%(kwh)s kWh at %(price)s",
            kwh=format_kwh(tariff.env, part["kwh"], unit=False, trim=True),
            price=tariff._format_price(part["price_per_kwh"] * factor),
        )
        for part in tier_breakdown or []
    )


def describe_price(tariff, price_per_kwh, tier_breakdown):
    """The price a sale was charged, in words, as the tenant pays it (the tariff's taxes
    included, written as the tariff writes prices): one price, or the kWh of each tier."""
    parts = [p for p in (tier_breakdown or []) if p.get("kwh")]
    env = tariff.env
    per_kwh = env._("%s per kWh", tariff._format_price(price_per_kwh * tariff._tax_factor()))
    if len(parts) <= 1:
        return per_kwh
    return env._(
        "%(tiers)s (on average %(price)s)", tiers=describe_tiers(tariff, parts), price=per_kwh
    )


def tier_summary(tier_breakdown):
    """The tiers of a purchase as its record shows them, untaxed: "10.00 kWh @ 0.2500"."""
    return " + ".join(
        f"{part['kwh']:.2f} kWh @ {part['price_per_kwh']:.4f}" for part in tier_breakdown or []
    )


def describe_bands_quote(tariff, quote):
    """A money-mode quote in words: "Credit $ 10.00: Peak (Mon-Fri 17:00-21:00) $ 0.40 per
    kWh (25 kWh), Off-peak (...) $ 0.10 per kWh (100 kWh)"; the kWh are what the credit
    buys if all of it is used in that band."""
    env = tariff.env
    parts = [
        env._(
            "%(band)s (%(hours)s) %(price)s per kWh (%(kwh)s kWh)",
            band=band["name"],
            hours=band["hours"],
            price=band["label"],
            kwh=format_kwh(env, band["kwh"], unit=False, trim=True),
        )
        for band in quote["bands"]
    ]
    return env._(
        "Credit %(credit)s: %(bands)s",
        credit=format_money(env, quote["credit_money"], tariff.currency_id),
        bands=", ".join(parts),
    )


def amount_refusal(meter, amount, currency=None):
    """The ``VendingError`` that refuses ``amount`` (in ``currency``, default the tariff's)
    for the sellable ``meter`` (sudo), or None; amounts in the message in the currency."""
    try:
        tariff = vending.check_sellable(meter)
        if currency and currency != tariff.currency_id:
            vending.check_amount(tariff, meter, amount, currency)  # the mismatch
        error = meter._smartpm_amount_error(amount)
        if error:
            raise vending.VendingError("amount_out_of_range", error)
        vending.check_amount(tariff, meter, amount, currency)
    except vending.VendingError as exc:
        return exc
    return None


def company_refusal(meter, company):
    """The register books the sale: it must belong to the meter's company."""
    if company and meter.company_id != company:
        return meter.env._(
            "Meter %(meter)s belongs to %(owner)s: this register sells for %(company)s.",
            meter=meter.serial_number,
            owner=meter.company_id.name,
            company=company.name,
        )
    return False


def sale_info(meter, amount=None, currency=None, company=None):
    """What selling ``amount`` (or any amount, if None) to ``meter`` now would be.

    ``sellable``: the meter may be sold credit; ``reason`` (and ``reason_code``, the
    vending error code): why this sale cannot be made (the meter, the register's
    ``company``, the amount in ``currency``), else False; ``tariff``, ``currency``,
    ``min_amount``, ``max_amount`` (0: no maximum) and ``limits`` (in words) of one sale;
    ``warning``: the meter is out of contact; and with an acceptable ``amount``: ``quote``
    (of the tariff's ``_quote_amount``, the month's purchases counted), ``tiers`` (its
    tier breakdown), ``price_info`` and ``tiers_info`` (the price in words).
    """
    meter = meter.sudo()
    tariff = meter._get_tariff()
    company_of_meter = meter.company_id
    if tariff:
        minimum, maximum, limits = meter._smartpm_amount_limits()
    else:
        minimum, maximum = company_of_meter.smartpm_min_amount, company_of_meter.smartpm_max_amount
        limits = ""
    info = {
        "sellable": True,
        "reason": False,
        "reason_code": False,
        "tariff": tariff,
        "currency": tariff.currency_id if tariff else company_of_meter.currency_id,
        "min_amount": minimum,
        "max_amount": maximum,
        "limits": limits,
        "warning": meter._smartpm_contact_warning() or False,
        "quote": False,
        "tiers": [],
        "price_info": False,
        "tiers_info": False,
        "bands": [],
    }
    try:
        vending.check_sellable(meter)
    except vending.VendingError as exc:
        info.update(sellable=False, reason=exc.args[0], reason_code=exc.code)
        return info
    if amount is None:
        return info
    refusal = company_refusal(meter, company)
    if refusal:
        info.update(reason=refusal, reason_code="meter_not_sellable")
        return info
    error = amount_refusal(meter, amount, currency)
    if error:
        info.update(reason=error.args[0], reason_code=error.code)
        return info
    # the tenant's debts take their part first (services/debt.py)
    quote = debt.quote(meter.env, meter, tariff, amount, vending.month_kwh(meter.env, meter))
    if quote.get("bands"):  # time of use, money mode: the credit and the price per band
        info.update(
            quote=quote,
            tiers=[],
            bands=quote["bands"],
            price_info=tariff._price_description(),
            tiers_info=describe_bands_quote(tariff, quote),
        )
        return info
    info.update(
        quote=quote,
        tiers=quote["tier_breakdown"],
        price_info=describe_price(tariff, quote["price_per_kwh"], quote["tier_breakdown"]),
        tiers_info=describe_tiers(tariff, quote["tier_breakdown"]),
    )
    return info
