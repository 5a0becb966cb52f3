"""The one vending path: every channel (POS, portal, bank, back office) sells credit here.

``vend`` validates the sale, takes the tenant's debts' part first (``services/debt.py``),
records a ``smartpm.credit.purchase`` with the tariff's price and tiers for the rest,
allocates the meter's next transfer number and queues the ``add_credit`` job.
It is idempotent on (channel, external reference).
"""

import logging
import math
import numbers
from decimal import Decimal

import psycopg2.errors

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tools import float_round

from . import credit_token, debt, engine, local_time, receipt, tou

_logger = logging.getLogger(__name__)

CHANNELS = [
    ("pos", "Point of Sale"),
    ("portal", "Tenant portal"),
    ("bank_soap", "Bank (SOAP)"),
    ("bank_xmlrpc", "Bank (XML-RPC)"),
    ("backoffice", "Back office"),
    ("fbe", "Free basic electricity"),  # granted by services/fbe.py only, never sold
    # credit moved from another meter at a move-out or replacement: no money (settlement.py)
    ("transfer", "Transfer"),
]
FBE_CHANNEL = "fbe"
TRANSFER_CHANNEL = "transfer"
# free kWh and credit moved from another meter never count towards the block tiers
NOT_IN_TIERS = (FBE_CHANNEL, TRANSFER_CHANNEL)
# Who may sell through each channel when not superuser (the portal sells through its
# controller, in sudo, after checking the tenant).
CHANNEL_GROUPS = {
    "pos": "smartpm_prepay.group_cashier",
    "backoffice": "smartpm_prepay.group_operator",
    "bank_soap": "smartpm_prepay.group_bank_api",
    "bank_xmlrpc": "smartpm_prepay.group_bank_api",
}
# Sales made by a machine (a bank's API user): no chatter at their birth (creation note,
# the API user as follower, the tracking of paid -> queued): it was a fifth of the bank's
# call. Their later changes (delivered, reversed) are tracked as any sale's.
QUIET_BIRTH_CHANNELS = ("bank_soap", "bank_xmlrpc")
SELLABLE_STATES = ("active", "disconnected")
CREDIT_JOB_PRIORITY = 10
MAX_REF_LEN = 64
TENANT_LOCK = 7_460_002  # advisory lock class of a tenant's sales (any fixed number)


class VendingError(UserError):
    """A sale refused; ``code`` is stable for the channels (bank answers, portal)."""

    CODES = (
        "unknown_meter",
        "meter_not_sellable",
        "amount_out_of_range",
        "currency_mismatch",
        "duplicate_reference",
        "invalid_request",
    )

    def __init__(self, code, message):
        assert code in self.CODES, code
        self.code = code
        super().__init__(message)


def check_channel_access(env, channel):
    if env.su or env.is_superuser():
        return
    group = CHANNEL_GROUPS.get(channel)
    if not group or not env.user.has_group(group):
        raise AccessError(env._("You may not sell credit through the %s channel.", channel))


def _check_request(env, amount, channel, external_ref):
    if channel not in dict(CHANNELS):
        raise VendingError("invalid_request", env._("Unknown sales channel %r.", channel))
    if channel == FBE_CHANNEL:
        raise VendingError(
            "invalid_request",
            env._("Free basic electricity is never sold: the monthly grant issues it."),
        )
    if not isinstance(external_ref, str) or not external_ref.strip():
        raise VendingError("invalid_request", env._("An external reference is required."))
    if len(external_ref.strip()) > MAX_REF_LEN:
        raise VendingError(
            "invalid_request",
            env._("The external reference is longer than %s characters.", MAX_REF_LEN),
        )
    if isinstance(amount, Decimal):  # SOAP stacks hand decimals over as Decimal
        amount = float(amount)
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise VendingError("invalid_request", env._("The amount must be a number."))
    try:
        amount = float(amount)  # an int beyond a float's range (10**400) overflows
    except (OverflowError, ValueError):
        raise VendingError(
            "invalid_request", env._("The amount must be a finite number.")
        ) from None
    if not math.isfinite(amount):  # NaN, infinities: the last line of defence
        raise VendingError("invalid_request", env._("The amount must be a finite number."))
    if amount <= 0:
        raise VendingError("amount_out_of_range", env._("The amount must be positive."))
    return amount, external_ref.strip()


def _resolve_currency(env, currency):
    if not currency or hasattr(currency, "_name"):
        return currency or None
    if isinstance(currency, str):
        found = (
            env["res.currency"]
            .sudo()
            .with_context(active_test=False)
            .search([("name", "=", currency.upper())], limit=1)
        )
        if not found:
            raise VendingError("currency_mismatch", env._("Unknown currency %s.", currency))
        return found
    raise VendingError("invalid_request", env._("The currency must be an ISO code."))


def find_existing(env, channel, external_ref, ref_channels=None):
    """The sale of ``external_ref`` on ``channel``, or on any of ``ref_channels`` when the
    reference space spans several channels (a bank's SOAP and XML-RPC)."""
    channels = tuple(ref_channels or (channel,))
    return (
        env["smartpm.credit.purchase"]
        .sudo()
        .search([("channel", "in", channels), ("external_ref", "=", external_ref)], limit=1)
    )


def _check_same_request(purchase, meter, amount):
    if purchase.meter_id != meter or purchase.currency_id.compare_amounts(purchase.amount, amount):
        raise VendingError(
            "duplicate_reference",
            purchase.env._(
                "Reference %(ref)s was already used on %(channel)s for another sale "
                "(%(purchase)s).",
                ref=purchase.external_ref,
                channel=purchase.channel,
                purchase=purchase.name,
            ),
        )
    return purchase


def check_sellable(meter):
    """Raise unless credit may be sold for ``meter`` (sudo record); return its tariff."""
    if not meter.active or meter.state not in SELLABLE_STATES:
        raise VendingError(
            "meter_not_sellable",
            meter.env._(
                "Meter %s is not in service: credit cannot be sold for it.", meter.serial_number
            ),
        )
    if not meter.tenant_id:
        raise VendingError(
            "meter_not_sellable",
            meter.env._(
                "Meter %s has no tenant: credit cannot be sold for it.", meter.serial_number
            ),
        )
    moving = (
        meter.env["smartpm.move.out"]
        .sudo()
        .search([("meter_id", "=", meter.id), ("state", "not in", ("draft", "done"))], limit=1)
    )
    if moving:
        raise VendingError(
            "meter_not_sellable",
            meter.env._(
                "Meter %(meter)s is being moved out (%(ref)s): credit cannot be sold for it "
                "until its tenant's credit is settled and cleared.",
                meter=meter.serial_number,
                ref=moving.name,
            ),
        )
    tariff = meter._get_tariff()
    if not tariff:
        raise VendingError(
            "meter_not_sellable",
            meter.env._(
                "Meter %s has no tariff (on the meter or its tenant).", meter.serial_number
            ),
        )
    check_credit_mode(meter, tariff)
    return tariff


def check_credit_mode(meter, tariff):
    """A time-of-use tariff sells money to a money-mode meter, any other kWh to a kWh
    meter; a TOU tariff needs prices in force (services/tou.py)."""
    tou_tariff = tariff.pricing_mode == "tou"
    if tou_tariff != (meter.credit_mode == "money"):
        raise VendingError(
            "meter_not_sellable",
            meter.env._(
                "Meter %(meter)s holds credit in %(mode)s but tariff %(tariff)s is %(pricing)s: "
                "credit cannot be sold until the meter's credit mode and tariff agree.",
                meter=meter.serial_number,
                mode=dict(meter._fields["credit_mode"].selection)[meter.credit_mode],
                tariff=tariff.name,
                pricing=meter.env._("time of use") if tou_tariff else meter.env._("priced per kWh"),
            ),
        )
    if tou_tariff and not tariff._tou_version_at(local_time.local_today(meter.company_id)):
        raise VendingError(
            "meter_not_sellable",
            meter.env._("Tariff %s has no time-of-use prices in force yet.", tariff.name),
        )


def check_amount(tariff, meter, amount, currency=None):
    if currency and currency != tariff.currency_id:
        raise VendingError(
            "currency_mismatch",
            tariff.env._(
                "Meter %(meter)s is sold in %(expected)s, not %(given)s.",
                meter=meter.serial_number,
                expected=tariff.currency_id.name,
                given=currency.name,
            ),
        )
    cur = tariff.currency_id
    if abs(cur.round(amount) - amount) > 1e-9:
        raise VendingError(
            "invalid_request",
            tariff.env._(
                "The amount %(amount)s has more decimals than %(currency)s allows.",
                amount=amount,
                currency=cur.name,
            ),
        )
    minimum, maximum = tariff._get_amount_limits(meter.company_id)
    if cur.compare_amounts(amount, minimum) < 0 or (
        maximum and cur.compare_amounts(amount, maximum) > 0
    ):
        raise VendingError(
            "amount_out_of_range",
            tariff.env._(
                "The amount must be between %(min)s and %(max)s %(currency)s.",
                min=minimum,
                max=maximum or "∞",
                currency=cur.name,
            ),
        )


def month_kwh(env, meter, when=None, tenant=None):
    """kWh bought by the tenant (default the meter's tenant of now) in the company's local
    calendar month of ``when`` (naive UTC, default now), over all their meters of the
    meter's company, reversals and free basic electricity excluded: the tiers count what the
    tenant bought, so a new tenant on a meter starts at the first tier whatever the previous
    one bought. A meter without a tenant counts its own sales."""
    tenant = meter.tenant_id if tenant is None else tenant
    start = local_time.month_start_utc(meter.company_id, when)
    env["smartpm.credit.purchase"].flush_model()
    if tenant:
        who, param = "tenant_id = %s AND company_id = %s", (tenant.id, meter.company_id.id)
    else:
        who, param = "meter_id = %s", (meter.id,)
    env.cr.execute(
        f"""
        SELECT COALESCE(SUM(kwh), 0) FROM smartpm_credit_purchase
         WHERE {who} AND date >= %s AND state != 'reversed' AND channel NOT IN %s
        """,
        (*param, start, NOT_IN_TIERS),
    )
    return env.cr.fetchone()[0]


def _token_key(meter):
    """The meter's token key; a meter without one cannot be sold credit."""
    key = meter._get_token_key()
    if not key:
        raise VendingError(
            "meter_not_sellable",
            meter.env._(
                "Meter %s has no token key: credit cannot be sold for it until the owner "
                "enters the meter's key.",
                meter.serial_number,
            ),
        )
    return key


def mint_money_token(meter, transfer_number, amount):
    """The money token (hex) of a sale to a money-mode meter (services/credit_token.py)."""
    key = _token_key(meter)
    units = credit_token.money_units(amount)
    if not 0 < units <= credit_token.UINT32_MAX or transfer_number > credit_token.UINT32_MAX:
        raise VendingError(
            "amount_out_of_range",
            meter.env._(
                "Meter %(meter)s cannot take a token of %(amount)s.",
                meter=meter.serial_number,
                amount=amount,
            ),
        )
    return credit_token.mint_money(key, meter.serial_number, transfer_number, units).hex().upper()


def mint_token(meter, transfer_number, kwh):
    """The credit token (hex) of a sale: signed with the meter's token key, see
    services/credit_token.py. The sale is refused if the meter has no token key."""
    key = _token_key(meter)
    wh = credit_token.energy_wh(kwh)
    if not 0 < wh <= credit_token.UINT32_MAX or transfer_number > credit_token.UINT32_MAX:
        raise VendingError(
            "amount_out_of_range",
            meter.env._(
                "Meter %(meter)s cannot take a token of %(kwh)s kWh.",
                meter=meter.serial_number,
                kwh=kwh,
            ),
        )
    return credit_token.mint(key, meter.serial_number, transfer_number, wh).hex().upper()


def lock_meter(env, meter):
    """Serialise sales of one meter, and of its tenant: tiers and transfer numbers depend on
    the ones before."""
    env.flush_all()
    env.cr.execute("SELECT id FROM smartpm_meter WHERE id = %s FOR NO KEY UPDATE", (meter.id,))
    if meter.tenant_id:
        # the tiers count the tenant's month over all their meters: one sale per tenant at
        # a time (always after the meter's lock, so two locks never wait on each other)
        env.cr.execute("SELECT pg_advisory_xact_lock(%s, %s)", (TENANT_LOCK, meter.tenant_id.id))
    meter.invalidate_recordset(["last_transfer_number"])


def vend(
    env,
    meter,
    amount,
    channel,
    external_ref,
    *,
    currency=None,
    bank_partner=None,
    extra_vals=None,
    ref_channels=None,
):
    """Sell ``amount`` (tax included) of credit for ``meter``; return the purchase.

    The same (channel, external_ref) returns the first purchase and creates nothing; the same
    reference with another meter or amount raises ``VendingError("duplicate_reference")``.
    ``ref_channels``: the channels whose references are one space with ``channel``'s (the
    first sale of the reference on any of them is the one answered).
    """
    amount, external_ref = _check_request(env, amount, channel, external_ref)
    check_channel_access(env, channel)
    sudo_env = env(su=True)
    if not meter or not meter.exists():
        raise VendingError("unknown_meter", env._("Unknown meter."))
    meter = meter.with_env(sudo_env)
    currency = _resolve_currency(sudo_env, currency)

    existing = find_existing(sudo_env, channel, external_ref, ref_channels)
    if existing:
        return _check_same_request(existing, meter, amount).with_env(env)
    if channel in QUIET_BIRTH_CHANNELS:
        sudo_env = sudo_env(context=dict(sudo_env.context, tracking_disable=True))
        meter = meter.with_env(sudo_env)

    tariff = check_sellable(meter)
    check_amount(tariff, meter, amount, currency)

    lock_meter(sudo_env, meter)
    # the tenant's debts first (services/debt.py); the rest buys energy at the tariff
    recovery = debt.plan(sudo_env, meter, tariff, amount)
    credit_amount = tariff.currency_id.round(amount - recovery.total)
    quote, transfer_number, token = _quote_and_mint(sudo_env, meter, tariff, credit_amount)
    vals = _prepare_purchase_values(
        meter, tariff, quote, channel, external_ref, transfer_number, token, bank_partner
    )
    vals.update(amount=amount, debt_recovered=recovery.total)  # credit_amount: the rest
    # the receipt's energy split until the meter has the token (services/receipt.py)
    vals.update(receipt.expected_split(meter, quote["kwh"], quote.get("credit_money")))
    purchase = _create_purchase(env, sudo_env, dict(vals, **(extra_vals or {})))
    debt.record(purchase, recovery)
    purchase._queue_delivery()
    _logger.info(
        "credit sold: %s %s %s kWh on %s via %s (%s)",
        purchase.name,
        purchase.amount,
        purchase.kwh,
        meter.serial_number,
        channel,
        external_ref,
    )
    return purchase.with_env(env)


def _quote_and_mint(env, meter, tariff, amount):
    """Under the meter's lock: the quote at this month's tiers, the meter's next transfer
    number (taken here) and the token for it."""
    if meter.credit_mode == "money":
        quote = tou.quote_money(tariff, amount)
        if quote["credit_money"] <= 0:
            raise VendingError("amount_out_of_range", env._("The amount buys no credit."))
        transfer_number = meter.last_transfer_number + 1
        token = mint_money_token(meter, transfer_number, quote["credit_money"])
        engine.as_engine(meter).last_transfer_number = transfer_number
        return quote, transfer_number, token
    quote = tariff._quote_amount(amount, month_kwh(env, meter))
    if quote["kwh"] <= 0:
        raise VendingError("amount_out_of_range", env._("The amount buys no energy."))
    transfer_number = meter.last_transfer_number + 1
    token = mint_token(meter, transfer_number, quote["kwh"])
    engine.as_engine(meter).last_transfer_number = transfer_number
    return quote, transfer_number, token


# what the purchase keeps of the tariff's quote (_quote_amount)
_QUOTE_FIELDS = (
    "amount amount_untaxed amount_tax kwh price_per_kwh month_kwh_before tier_breakdown"
).split()


def _prepare_purchase_values(
    meter, tariff, quote, channel, external_ref, transfer_number, token, bank_partner
):
    return {
        "meter_id": meter.id,
        "tenant_id": meter.tenant_id.id,
        "company_id": meter.company_id.id,
        "tariff_id": tariff.id,
        "currency_id": tariff.currency_id.id,
        "channel": channel,
        "external_ref": external_ref,
        "bank_partner_id": bank_partner.id if bank_partner else False,
        "transfer_number": transfer_number,
        "token": token,
        "state": "paid",
        "date": fields.Datetime.now(),
        **{k: quote[k] for k in _QUOTE_FIELDS},
        "credit_mode": "money" if "credit_money" in quote else "kwh",
        "credit_money": quote.get("credit_money", 0.0),
        "band_prices": quote.get("bands") or False,
    }


def _create_purchase(env, sudo_env, vals):
    Purchase = engine.as_engine(sudo_env["smartpm.credit.purchase"])
    try:
        with env.cr.savepoint():
            return Purchase.create(vals)
    except psycopg2.errors.UniqueViolation as exc:
        # a concurrent sale committed the same reference first (on another meter)
        raise VendingError(
            "duplicate_reference",
            env._("Reference %s is being used by another sale.", vals["external_ref"]),
        ) from exc


def grant_free(env, meter, kwh, external_ref):
    """Issue ``kwh`` of free basic electricity to ``meter``'s tenant: a zero-amount purchase
    on the ``fbe`` channel with its own transfer number and token, delivered like any sale.
    The engine's only (services/fbe.py, with ``engine.as_engine``): credit without payment
    exists nowhere else. Return ``(purchase, created)``; the same reference returns the
    first grant. Two grants racing on one meter meet at its row lock (the loser gets a
    lock or serialisation error) or at the unique (channel, external_ref) index."""
    if not engine.is_engine(env):
        raise AccessError(env._("Free basic electricity is granted by the monthly job only."))
    sudo_env = env(su=True)
    meter = meter.with_env(sudo_env)
    existing = find_existing(sudo_env, FBE_CHANNEL, external_ref)
    if existing:
        return existing, False
    tariff = check_sellable(meter)
    if meter.credit_mode == "money":
        raise VendingError(
            "meter_not_sellable",
            env._(
                "Meter %s holds credit in money (time of use): free basic electricity is "
                "granted in kWh.",
                meter.serial_number,
            ),
        )
    lock_meter(sudo_env, meter)
    kwh = float_round(kwh, precision_rounding=tariff.kwh_rounding, rounding_method="DOWN")
    if kwh <= 0:
        raise VendingError("amount_out_of_range", env._("The grant holds no energy."))
    quote = {
        "amount": 0.0,
        "amount_untaxed": 0.0,
        "amount_tax": 0.0,
        "kwh": kwh,
        "price_per_kwh": 0.0,
        # where the tenant's paid kWh are; the grant itself is outside the tiers
        "month_kwh_before": month_kwh(sudo_env, meter),
        "tier_breakdown": [],
    }
    transfer_number = meter.last_transfer_number + 1
    token = mint_token(meter, transfer_number, kwh)
    engine.as_engine(meter).last_transfer_number = transfer_number
    vals = _prepare_purchase_values(
        meter, tariff, quote, FBE_CHANNEL, external_ref, transfer_number, token, None
    )
    vals.update(receipt.expected_split(meter, kwh))
    purchase = _create_purchase(env, sudo_env, vals)
    purchase._queue_delivery()
    _logger.info(
        "free basic electricity: %s %s kWh on %s (%s)",
        purchase.name,
        kwh,
        meter.serial_number,
        external_ref,
    )
    return purchase, True
