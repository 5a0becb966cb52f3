"""What a sales channel knows of a meter before selling: whether it is sellable (and
why not), the limits of one sale, the quote of an amount and its price in words.

One helper for the back office wizard, the POS, the portal, the bank channel and the
``smartpm.credit.purchase`` RPC; the vending service checks everything again when it sells.
"""

from odoo import _
from odoo.tools.misc import format_amount


def format_money(env, amount, currency):
    """``amount`` as the currency writes it ("$ 1.00"), for messages and screens."""
    return format_amount(env, amount, currency)


def describe_price(tariff, price_per_kwh, tier_breakdown):
    """The price a sale was charged, in words, as the tenant pays it (the tariff's taxes
    included, written as the tariff writes prices): one price, or the kWh of each tier."""
    parts = [p for p in (tier_breakdown or []) if p.get("kwh")]
    per_kwh = _("%s per kWh", tariff._format_price(price_per_kwh * tariff._tax_factor()))
    if len(parts) <= 1:
        return per_kwh
    tiers = tariff._quote_description({"tier_breakdown": parts})
    return _("%(tiers)s (on average %(price)s)", tiers=tiers, price=per_kwh)
