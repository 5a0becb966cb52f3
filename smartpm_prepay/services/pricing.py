"""Tariff arithmetic: money <-> kWh through block tiers. Pure functions, no ``env``.

A tariff is a list of bands ``[(from_kwh, price_per_kwh), ...]`` sorted by ``from_kwh``,
the first starting at 0. The position in the bands is the kWh already bought in the month:
a purchase that crosses a band boundary pays each part at its band's price.
"""

import math

from odoo.tools import float_round


def _band_ends(bands):
    """[(start, end, price)] with end = inf for the last band."""
    out = []
    for i, (start, price) in enumerate(bands):
        end = bands[i + 1][0] if i + 1 < len(bands) else math.inf
        out.append((float(start), end, float(price)))
    return out


def money_to_kwh(net_amount, bands, month_kwh=0.0, kwh_rounding=0.01):
    """kWh that ``net_amount`` (taxes excluded) buys from position ``month_kwh``.

    kWh are rounded DOWN to ``kwh_rounding``: the customer never gets energy not paid for.
    Returns ``(kwh, breakdown)``; ``breakdown`` lists the parts per band:
    ``{"from_kwh", "to_kwh", "kwh", "price_per_kwh", "amount"}`` (unrounded amounts).
    """
    if net_amount <= 0:
        return 0.0, []
    remaining = float(net_amount)
    pos = float(month_kwh or 0.0)
    parts = []
    for start, end, price in _band_ends(bands):
        if pos >= end:
            continue
        pos = max(pos, start)
        capacity = end - pos
        affordable = remaining / price
        take = min(capacity, affordable)
        parts.append({"from_kwh": pos, "to_kwh": pos + take, "kwh": take, "price_per_kwh": price})
        remaining -= take * price
        pos += take
        if affordable <= capacity or remaining <= 1e-12:
            break
    total = float_round(
        sum(p["kwh"] for p in parts), precision_rounding=kwh_rounding, rounding_method="DOWN"
    )
    # Re-split the rounded total so the breakdown adds up to what the meter receives.
    return total, kwh_breakdown(total, bands, month_kwh)


def kwh_breakdown(kwh, bands, month_kwh=0.0):
    """How ``kwh`` bought from position ``month_kwh`` split over the bands."""
    parts = []
    pos = float(month_kwh or 0.0)
    left = float(kwh)
    for start, end, price in _band_ends(bands):
        if left <= 1e-9:
            break
        if pos >= end:
            continue
        pos = max(pos, start)
        take = min(end - pos, left)
        parts.append(
            {
                "from_kwh": pos,
                "to_kwh": pos + take,
                "kwh": take,
                "price_per_kwh": price,
                "amount": take * price,
            }
        )
        pos += take
        left -= take
    return parts


def kwh_to_money(kwh, bands, month_kwh=0.0):
    """Net price (taxes excluded, unrounded) of ``kwh`` bought from position ``month_kwh``."""
    return sum(p["amount"] for p in kwh_breakdown(kwh, bands, month_kwh))
