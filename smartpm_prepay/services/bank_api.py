"""The bank channel: what a bank may ask and do, shared by the SOAP endpoint
(controllers/soap.py) and the XML-RPC model ``smartpm.bank.api``.

Every function takes the env of the authenticated bank user, answers a plain dict (the
SOAP response fields, same names) and raises ``BankApiError`` with a stable code. The
callers roll back on error, so a refused request leaves nothing behind.
"""

import collections
import contextlib
import datetime as dt
import logging
import math
import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

import psycopg2.errors

from odoo.exceptions import AccessDenied, AccessError, UserError

from . import tou, vending
from .receipt import split as receipt_split
from .sale_info import sale_info

_logger = logging.getLogger(__name__)

BANK_CHANNELS = ("bank_soap", "bank_xmlrpc")
# Printable ASCII without spaces; short enough to be scoped by the bank id in external_ref.
BANK_REF_RE = re.compile(r"^[\x21-\x7e]{1,40}$")
METER_NUMBER_RE = re.compile(r"^[A-Za-z0-9-]{1,32}$")
# Above this an amount is not money but an attack or a typo (and a float loses the cents).
MAX_AMOUNT = Decimal("1e12")
MAX_AMOUNT_TEXT = 64

# Stable codes, as banks see them (SOAP fault detail, XML-RPC fault message prefix).
NOT_AUTHORISED = "NOT_AUTHORISED"
INVALID_REQUEST = "INVALID_REQUEST"
UNKNOWN_PURCHASE = "UNKNOWN_PURCHASE"
NOT_REVERSIBLE = "NOT_REVERSIBLE"
INTERNAL_ERROR = "INTERNAL_ERROR"
CODES = (
    "UNKNOWN_METER",
    "METER_NOT_SELLABLE",
    "AMOUNT_OUT_OF_RANGE",
    "CURRENCY_MISMATCH",
    "DUPLICATE_REFERENCE",
    INVALID_REQUEST,
    NOT_AUTHORISED,
    UNKNOWN_PURCHASE,
    NOT_REVERSIBLE,
    INTERNAL_ERROR,
)


class BankApiError(UserError):
    """A refused bank request; ``code`` is one of ``CODES``."""

    def __init__(self, code, message):
        assert code in CODES, code
        self.code = code
        self.detail = message
        super().__init__(f"{code}: {message}")


def from_vending_error(exc):
    return BankApiError(exc.code.upper(), exc.args[0])


# ------------------------------------------------------------------ parsing
def _small_int_text(value):
    """An int as text, without converting a huge one (str() of 10**5000 raises)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**40:
        return str(value)
    return value


def parse_reference(env, value):
    value = _small_int_text(value)
    if not isinstance(value, str) or not BANK_REF_RE.match(value.strip()):
        raise BankApiError(
            INVALID_REQUEST,
            env._("The bank reference must be 1 to 40 printable characters without spaces."),
        )
    return value.strip()


def parse_meter_number(env, value):
    value = _small_int_text(value)
    if not isinstance(value, str) or not METER_NUMBER_RE.match(value.strip()):
        raise BankApiError(INVALID_REQUEST, env._("The meter number is missing or malformed."))
    return value.strip().upper()


def parse_amount(env, value):
    """A positive, finite amount below ``MAX_AMOUNT`` as a float. Strings are read as
    decimals (SOAP), numbers as they come (XML-RPC, JSON-RPC). Anything else (``inf``,
    ``nan``, ``1e400``, ``10**400``, ``-0``, negatives, text, booleans) is INVALID_REQUEST."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise BankApiError(INVALID_REQUEST, env._("The amount must be a number."))
    if isinstance(value, str):
        if len(value) > MAX_AMOUNT_TEXT:
            raise BankApiError(INVALID_REQUEST, env._("The amount must be a number."))
        try:
            value = Decimal(value.strip())
        except (InvalidOperation, ValueError):
            raise BankApiError(INVALID_REQUEST, env._("The amount must be a number.")) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise BankApiError(INVALID_REQUEST, env._("The amount must be a finite number."))
    if isinstance(value, Decimal) and not value.is_finite():
        raise BankApiError(INVALID_REQUEST, env._("The amount must be a finite number."))
    # ints and Decimals compare exactly, whatever their size: no float overflow here
    if value <= 0:
        raise BankApiError(INVALID_REQUEST, env._("The amount must be above zero."))
    if value >= MAX_AMOUNT:
        raise BankApiError(INVALID_REQUEST, env._("The amount is too large."))
    amount = float(value)
    if not math.isfinite(amount) or amount <= 0:  # e.g. Decimal("1e-999") -> 0.0
        raise BankApiError(INVALID_REQUEST, env._("The amount must be above zero."))
    return amount


def parse_time(env, value):
    """xsd:dateTime (or a datetime) to naive UTC; a time without zone is taken as UTC."""
    if isinstance(value, datetime):
        moment = value
    elif hasattr(value, "value") and isinstance(value.value, str):  # xmlrpc.client.DateTime
        try:
            moment = datetime.strptime(value.value, "%Y%m%dT%H:%M:%S")
        except ValueError:
            raise BankApiError(INVALID_REQUEST, env._("The bank time is malformed.")) from None
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise BankApiError(
                INVALID_REQUEST, env._("The bank time %s is not an ISO 8601 date and time.", value)
            ) from None
    else:
        raise BankApiError(INVALID_REQUEST, env._("The bank time is required."))
    if moment.tzinfo:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def format_time(value):
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


# ------------------------------------------------------------------ logins
LOGIN_FAILURES_KEPT = 10000


def _login_failures(registry):
    failures = getattr(registry, "_smartpm_bank_login_failures", None)
    if failures is None:
        failures = registry._smartpm_bank_login_failures = collections.defaultdict(
            lambda: (0, dt.datetime.min)
        )
    return failures


@contextlib.contextmanager
def login_throttle(env, login, source):
    """Odoo's login cooldown (same settings: ``base.login_cooldown_after`` failures, then
    ``base.login_cooldown_duration`` seconds), counted per bank login and address instead of
    per address: a bank's bad keys neither lock out another bank or the back office behind
    the same address, nor count towards (or reset) Odoo's per-address counter."""
    failures_map = _login_failures(env.registry)
    key = (login, source)
    failures, previous = failures_map[key]
    if env["res.users"]._on_login_cooldown(failures, previous):
        _logger.warning(
            "Bank login %r from %s on cooldown: %d failures, last at %s",
            login,
            source,
            failures,
            previous,
        )
        raise AccessDenied(env._("Too many login failures, please wait a bit before trying again."))
    try:
        yield
    except AccessDenied:
        if len(failures_map) > LOGIN_FAILURES_KEPT:  # random logins must not grow it for ever
            horizon = dt.datetime.now() - dt.timedelta(hours=1)
            for stale in [k for k, (_n, when) in failures_map.items() if when < horizon]:
                failures_map.pop(stale, None)
        failures_map[key] = (failures_map[key][0] + 1, dt.datetime.now())
        raise
    else:
        failures_map.pop(key, None)


# ------------------------------------------------------------------ context
def bank_context(env):
    """The bank (partner) of the calling user; only Bank API users of a bank get one."""
    user = env.user
    if not user.has_group("smartpm_prepay.group_bank_api"):
        raise BankApiError(NOT_AUTHORISED, env._("Not authorised."))
    bank = user.sudo().partner_id.commercial_partner_id
    if not bank.smartpm_is_bank or not bank.smartpm_bank_journal_id:
        _logger.warning("Bank API user %s is not a contact of a configured bank", user.login)
        raise BankApiError(NOT_AUTHORISED, env._("Not authorised: this user belongs to no bank."))
    return bank


def _external_ref(bank, reference):
    # A bank's references are its own: scope them by bank so two banks never collide.
    return f"{bank.id}:{reference}"


def _find_meter(env, number):
    # Bank users have no read access to meters (their connection data is not theirs):
    # the lookup by serial number runs in sudo, and only the answer's fields go out.
    meter = env["smartpm.meter"].sudo().search([("serial_number", "=", number)], limit=1)
    if not meter:
        raise BankApiError("UNKNOWN_METER", env._("Unknown meter %s.", number))
    return meter


def _find_purchase(env, bank, reference):
    purchase = (
        env["smartpm.credit.purchase"]
        .sudo()
        .search(
            [
                ("channel", "in", BANK_CHANNELS),
                ("external_ref", "=", _external_ref(bank, reference)),
                ("bank_partner_id", "=", bank.id),
            ],
            limit=1,
        )
    )
    if not purchase:
        raise BankApiError(
            UNKNOWN_PURCHASE, env._("No purchase with bank reference %s.", reference)
        )
    return purchase


def _money(currency, amount):
    return f"{amount:.{currency.decimal_places}f}"


def receipt(purchase):
    p = purchase.sudo()
    return {
        "reference": p.name,
        "meterNumber": p.meter_id.serial_number,
        "tenantName": p.tenant_id.name or "",
        "tenantNumber": p.tenant_id.tenant_number or "",
        "amount": _money(p.currency_id, p.amount),
        "currency": p.currency_id.name,
        "kwh": f"{p.kwh:.3f}",
        "pricePerKwh": f"{p.price_per_kwh:.4f}",
        "state": p.state,
        "transferNumber": p.transfer_number,
        "bankReference": p.bank_reference or "",
        "bankTime": format_time(p.bank_time),
        "date": format_time(p.date),
        # the debt split: amount = debtRecovered + creditAmount (creditAmount bought kwh)
        "debtRecovered": _money(p.currency_id, p.debt_recovered),
        "debtBalance": _money(p.currency_id, p.debt_balance_after),
        "creditAmount": _money(p.currency_id, p.credit_amount),
        "hasDebt": bool(p.debt_recovered or p.debt_balance_after),
        # the energy split (services/receipt.py): kwh = emergencyRepaidKwh +
        # negativeCreditRepaidKwh + netKwh; expected until the meter has the token
        **_repayment(p),
        **_tou_receipt(p),
    }


def _repayment(purchase):
    split = receipt_split(purchase)
    balance = split["new_balance_kwh"]
    return {
        "emergencyRepaidKwh": f"{split['emergency_repaid_kwh']:.3f}",
        "negativeCreditRepaidKwh": f"{split['negative_repaid_kwh']:.3f}",
        "netKwh": f"{split['net_kwh']:.3f}",
        "newBalanceKwh": "" if balance is False else f"{balance:.3f}",
        "splitFromMeter": split["from_meter"],
        "hasRepayment": split["has_repayment"],
    }


def _tou_receipt(p):
    """Money-mode sale (time of use): the credit on the meter and the bands' prices."""
    if p.credit_mode != "money":
        return {}
    bands = "; ".join(
        f"{b['name']} ({b['hours']}) {b['price']:.4f} per kWh" for b in tou.receipt_bands(p)
    )
    split = receipt_split(p)
    balance = split["new_balance_money"]
    return {
        "creditMoney": _money(p.currency_id, p.credit_money),
        "priceBands": bands,
        # the money split, as the kWh one: creditMoney = emergencyRepaidMoney +
        # negativeCreditRepaidMoney + netMoney (the meter's milli-units); expected until
        # the meter has the token (splitFromMeter)
        "emergencyRepaidMoney": f"{split['emergency_repaid_money']:.3f}",
        "negativeCreditRepaidMoney": f"{split['negative_repaid_money']:.3f}",
        "netMoney": f"{split['net_money']:.3f}",
        "newBalanceMoney": "" if balance is False else _money(p.currency_id, balance),
    }


# ------------------------------------------------------------------ operations
def query_customer(env, meter_number):
    bank_context(env)
    meter = _find_meter(env, parse_meter_number(env, meter_number)).sudo()
    info = sale_info(meter)
    tariff, currency = info["tariff"], info["currency"]
    return {
        "meterNumber": meter.serial_number,
        "tenantName": meter.tenant_id.name or "",
        "tenantNumber": meter.tenant_id.tenant_number or "",
        "meterState": meter.state,
        "sellable": info["sellable"],
        "tariffPrice": f"{tariff.price_per_kwh:.4f}" if tariff else "0.0000",
        "currency": currency.name,
        "minimumAmount": _money(currency, info["min_amount"]),
        "maximumAmount": _money(currency, info["max_amount"]),
        **(
            {"priceDescription": tariff._price_description()}
            if tariff and tariff.pricing_mode == "tou"
            else {}
        ),
    }


def purchase(env, channel, meter_number, amount, currency, bank_reference, bank_time):
    """Sell credit for the bank; the same reference again returns the first receipt."""
    assert channel in BANK_CHANNELS
    bank = bank_context(env)
    reference = parse_reference(env, bank_reference)
    number = parse_meter_number(env, meter_number)
    amount = parse_amount(env, amount)
    moment = parse_time(env, bank_time)
    if currency in (None, False, ""):  # XML-RPC has no None: False or "" mean "any"
        currency = None
    elif not isinstance(currency, str):
        raise BankApiError(INVALID_REQUEST, env._("The currency must be an ISO 4217 code."))
    meter = _find_meter(env, number)
    external_ref = _external_ref(bank, reference)
    try:
        # The bank's reference space spans both protocols: a reference first used over the
        # other protocol answers that sale (or DUPLICATE_REFERENCE), in vend's one search.
        sale = vending.vend(
            env,
            meter,
            amount,
            channel,
            external_ref,
            currency=currency or None,
            bank_partner=bank,
            extra_vals={"bank_reference": reference, "bank_time": moment},
            ref_channels=BANK_CHANNELS,
        )
    except vending.VendingError as exc:
        if _is_reference_race(exc):
            _retry_in_new_transaction(env)
        if exc.code == "duplicate_reference":  # not the scoped external_ref in the message
            raise BankApiError(
                "DUPLICATE_REFERENCE",
                env._("Bank reference %s was already used for another sale.", reference),
            ) from exc
        raise from_vending_error(exc) from exc
    sale_sudo = sale.sudo()
    if not sale_sudo.invoice_id and sale_sudo.state != "reversed":
        # the invoice and payment are posted right after the answer (credit_purchase)
        sale_sudo._defer_invoice_and_payment(bank.smartpm_bank_journal_id)
    return receipt(sale_sudo)


# unique indexes on a bank's references: (channel, external_ref), (bank, bank_reference)
REFERENCE_CONSTRAINTS = (
    "smartpm_credit_purchase_channel_ref_uniq",
    "smartpm_credit_purchase_bank_reference_uniq",
)


def _is_reference_race(exc):
    """A concurrent request committed a sale with this reference after our snapshot."""
    cause = exc.__cause__
    return (
        isinstance(cause, psycopg2.errors.UniqueViolation)
        and cause.diag.constraint_name in REFERENCE_CONSTRAINTS
    )


def _retry_in_new_transaction(env):
    """Raise a real serialization failure, which Odoo answers by retrying the whole request
    in a new transaction (SOAP and RPC alike): there the sale committed meanwhile is visible,
    and the request gets its receipt, or DUPLICATE_REFERENCE if it differs."""
    _logger.info("bank reference taken by a concurrent request: retrying")
    env.cr.execute(
        "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'serialization_failure', "
        "MESSAGE = 'bank reference taken by a concurrent request'; END $$"
    )


def query_purchase(env, bank_reference):
    bank = bank_context(env)
    return receipt(_find_purchase(env, bank, parse_reference(env, bank_reference)))


def reverse_purchase(env, bank_reference):
    """Undo a sale whose credit provably did not reach the meter: its delivery cancelled,
    a credit note refunded through the bank's journal. Never claimed by a bridge: reversed
    at once. Attempted: the receipt says ``pending_check`` until the meter has answered
    (ask again: the same answer, nothing done twice), then ``reversed``, or the sale is
    delivered and the answer is NOT_REVERSIBLE. A reversed sale answers its receipt."""
    bank = bank_context(env)
    sale = _find_purchase(env, bank, parse_reference(env, bank_reference))
    if sale.state in ("reversed", "pending_check"):
        return receipt(sale)
    if sale.state == "delivered":
        raise BankApiError(
            NOT_REVERSIBLE,
            env._(
                "%(ref)s was delivered: the credit is on meter %(meter)s, it cannot be reversed.",
                ref=sale.name,
                meter=sale.meter_id.serial_number,
            ),
        )
    if sale.state not in ("paid", "queued", "failed"):
        raise BankApiError(
            NOT_REVERSIBLE,
            env._(
                "%(ref)s is %(state)s: only an undelivered sale can be reversed.",
                ref=sale.name,
                state=sale.state,
            ),
        )
    try:
        # reversed now or once the meter has answered: the credit note is then refunded
        # through the bank's journal (credit_purchase._reverse_now)
        sale.action_reverse()
    except (UserError, AccessError) as exc:
        raise BankApiError(NOT_REVERSIBLE, exc.args[0]) from exc
    return receipt(sale)
