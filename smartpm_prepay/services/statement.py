"""The tenant statement (issue 16 §6): opening credit, purchases, reversals and refunds,
consumption and closing credit of a tenant over a period of the company's local days.

Credit is counted as the prepayment books count it (services/prepayment.py, report
``smartpm.credit.balance.report``): kWh and untaxed value of the tenant's sales not
reversed, less the consumption each took first in, first out. Every line is a signed
change of that credit on one meter (``kwh``, ``value``), so per meter and in total

    opening + purchases - reversals - consumption (+ any other kind) = closing

holds by construction: the opening is the sum of all the lines before the period.

Lines come from *line providers*: functions ``provider(scope) -> iterable of dicts`` (see
``make_line``), over the tenant's whole history up to the period's end. A new kind of line
(settlement of a move-out, debt recovery...) is one more function appended to
``LINE_PROVIDERS``; purchases of any channel (``transfer``, ``fbe`` included) are lines of
``purchase_lines`` already.

Only the tenant's own rows are read (``tenant_id``: set per assignment period, see
services/tenant_periods.py), and a meter's section says the times the tenant held it:
the tenant before or after them on the same meter is never in it. The caller decides who
may see which tenant (the wizard reads with the user's rights, the portal for the
logged-in tenant only).
"""

from datetime import datetime, timedelta

import pytz

from odoo.tools import float_compare, float_round

from . import local_time, prepayment, tou
from . import settlement as settlement_service

KWH_DIGITS = prepayment.KWH_DIGITS
# lines of the same instant: purchases before reversals before the day's consumption
KIND_ORDER = {
    "purchase": 0,
    "reversal": 1,
    "standing_charge": 2,
    "consumption": 9,
    "settlement": 10,
}
# the summary's name of a kind of line (a provider's new kind may add its own), in the
# env's language: each label a literal of env._ so that the .pot export finds it


def kind_labels(env):
    return {
        "purchase": env._("Purchases"),
        "reversal": env._("Reversals and refunds"),
        "consumption": env._("Consumption"),
        "settlement": env._("Settled at move-out"),
        "standing_charge": env._("Standing charges"),
    }


class StatementScope:
    """What the providers need: the tenant, the company, the meters and the period."""

    def __init__(self, env, tenant, date_from, date_to, meter=None):
        self.env = env
        self.tenant = tenant
        self.company = statement_company(env, tenant, meter)
        self.date_from = date_from
        self.date_to = date_to
        self.start_utc = local_time.day_start_utc(self.company, date_from)
        self.end_utc = local_time.day_start_utc(self.company, date_to + timedelta(days=1))
        self.meter = meter
        self._purchases = None

    @property
    def tenant_domain(self):
        return [("tenant_id", "child_of", self.tenant.ids)]

    @property
    def meter_domain(self):
        return [("meter_id", "=", self.meter.id)] if self.meter else []

    def purchases(self):
        """The tenant's sales up to the period's end, oldest first."""
        if self._purchases is None:
            self._purchases = self.env["smartpm.credit.purchase"].search(
                [*self.tenant_domain, *self.meter_domain, ("date", "<", self.end_utc)],
                order="date, id",
            )
        return self._purchases


def make_line(kind, time, meter, kwh, value, label, **extra):
    """One line of the statement: ``kwh`` and ``value`` (untaxed) are its signed change of
    the tenant's credit on ``meter`` at ``time`` (naive UTC)."""
    return {
        "kind": kind,
        "time": time,
        "meter_id": meter.id,
        "kwh": kwh,
        "value": value,
        "label": label,
        "channel": extra.pop("channel", ""),
        "ref": extra.pop("ref", ""),
        "document": extra.pop("document", ""),
        "amount": extra.pop("amount", 0.0),
        "price_per_kwh": extra.pop("price_per_kwh", 0.0),
        **extra,
    }


# ------------------------------------------------------------------ line providers
def purchase_lines(scope):
    """Every sale (any channel and state; a reversed one is taken back by its reversal)."""
    env = scope.env
    channels = dict(scope.env["smartpm.credit.purchase"]._fields["channel"].selection)
    for purchase in scope.purchases():
        yield make_line(
            "purchase",
            purchase.date,
            purchase.meter_id,
            purchase.kwh,
            purchase.amount_untaxed,
            env._("Purchase %s", purchase.name),
            channel=channels.get(purchase.channel, purchase.channel),
            ref=purchase.external_ref or purchase.name,
            amount=purchase.amount,
            price_per_kwh=purchase.price_per_kwh,
            purchase_id=purchase.id,
        )


def reversal_lines(scope):
    """Reversed sales, when they were reversed, with the refund's documents."""
    env = scope.env
    reversed_ = scope.purchases().filtered(lambda p: p.state == "reversed")
    times = reversal_times(reversed_)
    for purchase in reversed_:
        when = times[purchase.id]
        if when >= scope.end_utc:
            continue
        yield make_line(
            "reversal",
            when,
            purchase.meter_id,
            -purchase.kwh,
            -purchase.amount_untaxed,
            env._("Reversal of %s", purchase.name),
            ref=purchase.external_ref or purchase.name,
            document=", ".join(refund_documents(purchase)),
            amount=-purchase.amount,
            price_per_kwh=purchase.price_per_kwh,
            purchase_id=purchase.id,
        )


def consumption_lines(scope):
    """Consumption per local day, valued first in, first out at the price the credit was
    bought at (as services/prepayment.recognise values it when run daily): a day takes the
    credit delivered before its end, oldest first; what no sale covers (credit the meter
    had before any sale) has no value and is shown as uncovered, outside the credit.
    A money-mode meter's days since its first money sale are valued per band instead
    (``money_consumption_lines``)."""
    env = scope.env
    company = scope.company
    rows = env["smartpm.consumption.daily"].search(
        [
            *scope.tenant_domain,
            *scope.meter_domain,
            ("day", "<=", scope.date_to),
            ("is_check_meter", "=", False),
        ],
        order="meter_id, day, id",
    )
    delivered = scope.purchases().filtered(lambda p: p.state == "delivered" and p.date_delivered)
    for meter in rows.meter_id:
        money_since = _money_since(scope, meter)
        if money_since:  # the meter charges money per band from then on
            rows -= rows.filtered(
                lambda r, m=meter, since=money_since: (
                    r.meter_id == m
                    and local_time.day_start_utc(company, r.day + timedelta(days=1)) > since
                )
            )
    for meter in rows.meter_id:
        layers = [
            [p, 0.0]  # purchase, kWh taken
            for p in delivered.filtered(lambda p, m=meter: p.meter_id == m).sorted(
                lambda p: (p.date_delivered, p.id)
            )
        ]
        by_day = {}
        for row in rows.filtered(lambda r, m=meter: r.meter_id == m):
            by_day[row.day] = by_day.get(row.day, 0.0) + row.kwh
        charge_takes = _standing_charge_takes(scope, meter)
        for day in sorted(by_day):
            day_end = local_time.day_start_utc(company, day + timedelta(days=1))
            # credit standing charges took before the day's end is not there to consume
            while charge_takes and charge_takes[0][0] < day_end:
                _when, purchase_id, kwh = charge_takes.pop(0)
                for layer in layers:
                    if layer[0].id == purchase_id:
                        layer[1] += kwh
            todo = float_round(by_day[day], KWH_DIGITS)
            if todo <= 0:
                continue
            kwh, value = 0.0, 0.0
            for layer in layers:
                purchase, taken = layer
                if purchase.date_delivered >= day_end:
                    break
                left = float_round(purchase.kwh - taken, KWH_DIGITS)
                if left <= 0:
                    continue
                take = min(todo, left)
                value += prepayment.value_of(purchase, taken, taken + take)
                layer[1] = taken + take
                kwh += take
                todo = float_round(todo - take, KWH_DIGITS)
                if todo <= 0:
                    break
            price = value / kwh if kwh else 0.0
            yield make_line(
                "consumption",
                day_end - timedelta(microseconds=1),
                meter,
                -float_round(kwh, KWH_DIGITS),
                -value,
                env._("Consumption"),
                day=day,
                price_per_kwh=price,
                uncovered_kwh=max(todo, 0.0),
            )


def _money_since(scope, meter):
    """When ``meter`` began to hold the tenant's credit in money (naive UTC): its first
    money-mode sale delivered, else None (its consumption is valued in kWh)."""
    if meter.credit_mode != "money":
        return None
    sales = scope.purchases().filtered(
        lambda p: p.meter_id == meter and p.credit_mode == "money" and p.date_delivered
    )
    return min(sales.mapped("date_delivered")) if sales else None


def _held_times(scope, meter):
    """[(start, end)] naive UTC of every time the tenant held ``meter`` up to the
    period's end (before the period too: the opening counts them)."""
    assignments = scope.env["smartpm.meter.assignment"].search(
        [*scope.tenant_domain, ("meter_id", "=", meter.id), ("date_start", "<", scope.end_utc)],
        order="date_start",
    )
    return _once_at_a_time(
        [(a.date_start, min(a.date_end or scope.end_utc, scope.end_utc)) for a in assignments]
    )


def _once_at_a_time(times):
    """``times`` [(start, end, *flags)] sorted by start, overlapping ones merged (flags
    or-ed): a tenant holds a meter once at a time, and assignments that overlap (taken off
    and put back with a backdated start) would count its consumption twice."""
    merged = []
    for start, end, *flags in times:
        if merged and start <= merged[-1][1]:
            last = merged[-1]
            merged[-1] = (
                last[0],
                max(last[1], end),
                *(a or b for a, b in zip(last[2:], flags, strict=True)),
            )
        else:
            merged.append((start, end, *flags))
    return merged


def money_consumption_lines(scope):
    """A money-mode meter's consumption, valued as the meter charged it: per local day and
    price band, the energy its rate register 1.0.1.8.N.255 counted (services/tou.py) while
    the tenant held it, since its first money sale, at the untaxed price of that band in
    the tariff version in force that day. One line per day and band; the credit is money,
    so the line's kWh (credit) is 0 and ``energy_kwh`` is the energy."""
    meters = scope.purchases().filtered(lambda p: p.credit_mode == "money").meter_id
    for meter in meters.filtered(lambda m: m.credit_mode == "money"):
        since = _money_since(scope, meter)
        tariff = meter._get_tariff()
        if not since or not tariff or tariff.pricing_mode != "tou":
            continue
        for start, end in _held_times(scope, meter):
            start = max(start, since)
            if start >= end:
                continue
            yield from _band_days(scope, meter, tariff, start, end)


def _band_days(scope, meter, tariff, start, end):
    """Lines of ``money_consumption_lines`` of ``meter`` between ``start`` and ``end``."""
    env, company = scope.env, scope.company
    readings = {}  # rate -> [(time, Wh)], oldest first
    for reading in (
        env["smartpm.reading"]
        .sudo()
        .search(
            [
                ("meter_id", "=", meter.id),
                ("obis", "=like", tou.ENERGY_RATE_OBIS.replace("%d", "%")),
                ("reading_time", "<=", end),
            ],
            order="reading_time, id",
        )
    ):
        rate = int(reading.obis.split(".")[4])
        if rate:  # rate 0 is the total register
            readings.setdefault(rate, []).append((reading.reading_time, reading.value))

    def register_at(rate, when):
        value = 0.0  # as tou.band_consumption: no reading yet, the register's start
        for time, wh in readings.get(rate, ()):
            if time > when:
                break
            value = wh
        return value

    days = set()
    for rows in readings.values():
        for time, _wh in rows:
            if start < time <= end:
                days.add(_local(company, time - timedelta(microseconds=1)).date())
    for day in sorted(days):
        day_start = max(local_time.day_start_utc(company, day), start)
        day_end = min(local_time.day_start_utc(company, day + timedelta(days=1)), end)
        version = tariff._tou_version_at(day)
        for band in version.band_ids.sorted("rate") if version else []:
            wh = register_at(band.rate, day_end) - register_at(band.rate, day_start)
            if wh <= 0:
                continue
            kwh = float_round(wh / 1000.0, KWH_DIGITS)
            yield make_line(
                "consumption",
                day_end - timedelta(microseconds=1),
                meter,
                0.0,
                -kwh * band.price_per_kwh,
                env._("Consumption at %(band)s", band=band.name),
                day=day,
                band=band.name,
                rate=band.rate,
                energy_kwh=kwh,
                price_per_kwh=band.price_per_kwh,
            )


def settlement_lines(scope):
    """Credit settled when the tenant left a meter (move-out or replacement,
    services/settlement.py): refunded, forfeited or moved to another meter (whose
    ``transfer`` purchase is a purchase line there). Only the credit sales covered: energy
    no sale covered is no credit here (as consumption's uncovered kWh)."""
    env = scope.env
    meters = scope.purchases().meter_id
    if not meters:
        return
    # the tenant's own settlements on meters whose sales the user may read
    settlements = (
        env["smartpm.credit.settlement"]
        .sudo()
        .search(
            [
                *scope.tenant_domain,
                ("meter_id", "in", meters.ids),
                ("date", "<", scope.end_utc),
            ],
            order="date, id",
        )
    )
    kinds = dict(settlements._fields["kind"].selection)
    for settlement in settlements:
        documents = settlement.credit_note_id | settlement.move_id
        if settlement.transfer_purchase_id:
            document = settlement.transfer_purchase_id.name
        else:
            document = ", ".join(d.name for d in documents if d.name)
        yield make_line(
            "settlement",
            settlement.date,
            settlement.meter_id.with_env(env),
            -float_round(settlement.kwh - settlement.kwh_uncovered, KWH_DIGITS),
            -settlement.amount,
            _settlement_label(settlement, kinds),
            document=document,
            amount=-settlement.amount_total if settlement.kind == "refund" else 0.0,
            settlement_id=settlement.id,
        )


def _settlement_label(settlement, kinds):
    env = settlement.env
    kind = kinds.get(settlement.kind, settlement.kind)
    if settlement.credit_mode == "money":  # a money-mode meter: its credit was currency
        # formatted before the call: Babel's extractor evaluates f-strings among the arguments
        credit = settlement_service.credit_text(settlement, settlement.money)
        label = env._("Settled at move-out: %(kind)s (credit %(credit)s)", kind=kind, credit=credit)
    else:
        label = env._("Settled at move-out: %s", kind)
    if settlement.emergency_credit or settlement.negative_credit:
        label = env._(
            "%(label)s; emergency credit in use %(emergency)s and negative credit "
            "%(negative)s not refunded, %(shortfall)s consumed without payment owed as a debt",
            label=label,
            emergency=settlement_service.credit_text(settlement, settlement.emergency_credit),
            negative=settlement_service.credit_text(settlement, settlement.negative_credit),
            shortfall=settlement_service.credit_text(settlement, settlement.shortfall),
        )
    return label


def _collected_charges(scope, meter=None):
    """The tenant's collected standing charges up to the period's end (sudo: the caller
    decided who may see the tenant; only that tenant's rows are read). Of every meter
    they were charged on, one they never bought credit for included: a charge taken from
    credit already negative is still theirs, as the standing-charge list shows it."""
    meter = scope.meter or meter
    return (
        scope.env["smartpm.standing.charge"]
        .sudo()
        .search(
            [
                *scope.tenant_domain,
                *([("meter_id", "=", meter.id)] if meter else []),
                ("state", "=", "collected"),
                ("date_collected", "<", scope.end_utc),
            ],
            order="date_collected, id",
        )
    )


def _standing_charge_takes(scope, meter):
    """[(time, purchase id, kWh)] of sold credit standing charges took on ``meter``."""
    takes = []
    for charge in _collected_charges(scope, meter):
        for row in charge.recognition_ids.filtered("purchase_id"):
            takes.append((charge.date_collected, row.purchase_id.id, row.kwh))
    return takes


def standing_charge_lines(scope):
    """Standing charges of the tariff taken from the tenant's credit (services/
    standing_charge.py): the sold credit each took, at its value; what no sale covered
    (the credit was already negative) is shown as uncovered, outside the credit."""
    env = scope.env
    periods = {"day": "%Y-%m-%d", "month": "%Y-%m"}
    for charge in _collected_charges(scope):
        covered = charge.recognition_ids.filtered("purchase_id")
        kwh = float_round(sum(covered.mapped("kwh")), KWH_DIGITS)
        yield make_line(
            "standing_charge",
            charge.date_collected,
            charge.meter_id.with_env(env),
            -kwh,
            -sum(covered.mapped("amount")),
            env._(
                "Standing charge %(period)s",
                period=charge.period_start.strftime(periods.get(charge.period, "%Y-%m-%d")),
            ),
            amount=charge.amount,
            uncovered_kwh=float_round(charge.kwh - kwh, KWH_DIGITS),
            standing_charge_id=charge.id,
        )


LINE_PROVIDERS = [
    purchase_lines,
    reversal_lines,
    consumption_lines,
    money_consumption_lines,
    settlement_lines,
    standing_charge_lines,
]


# ------------------------------------------------------------------ helpers
def reversal_times(purchases):
    """{purchase id: naive UTC time it was reversed}: its ``date_reversed``; for a sale
    reversed before that date was kept, the tracked change of its state to *Reversed*, else
    its credit note's creation, else its last change (the daily vending report counts a
    reversal on the same day, services/daily_vending.py)."""
    times = {p.id: p.date_reversed for p in purchases if p.date_reversed}
    purchases = purchases.filtered(lambda p: not p.date_reversed)
    if not purchases:
        return times
    env = purchases.env
    field = env["ir.model.fields"].sudo()._get("smartpm.credit.purchase", "state")
    trackings = (
        env["mail.tracking.value"]
        .sudo()
        .search(
            [
                ("field_id", "=", field.id),
                ("new_value_char", "=", dict(purchases._fields["state"].selection)["reversed"]),
                ("mail_message_id.model", "=", "smartpm.credit.purchase"),
                ("mail_message_id.res_id", "in", purchases.ids),
            ]
        )
    )
    for tracking in trackings:
        message = tracking.mail_message_id
        times[message.res_id] = min(times.get(message.res_id, message.date), message.date)
    for purchase in purchases:
        if purchase.id not in times:
            note = purchase.sudo().credit_note_id
            times[purchase.id] = note.create_date if note else purchase.write_date
    return times


def refund_documents(purchase):
    """Names of the documents that gave the money of a reversed sale back."""
    purchase = purchase.sudo()
    names = []
    if purchase.credit_note_id:
        names.append(purchase.credit_note_id.name)
    line = purchase.pos_order_line_id
    if line:
        names += line.refund_orderline_ids.order_id.mapped("name")
    if purchase.channel == "portal":
        txs = purchase.env["payment.transaction"].search(
            [("smartpm_purchase_id", "=", purchase.id), ("operation", "!=", "refund")]
        )
        names += txs.child_transaction_ids.filtered(
            lambda t: t.operation == "refund" and t.state not in ("cancel", "error")
        ).mapped("reference")
    return names


def statement_company(env, tenant, meter=None):
    """The company whose local days the statement counts: the meter's, the tenant's, the
    company of the tenant's meters, else the current one."""
    if meter:
        return meter.company_id
    if tenant.company_id:
        return tenant.company_id
    meters = env["smartpm.meter"].search([("tenant_id", "=", tenant.id)], limit=1)
    return meters.company_id or env.company


def last_full_month(company, today=None):
    """(first day, last day) of the company's last full local month."""
    today = today or local_time.local_today(company)
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


def held_periods(scope, meter):
    """The times the tenant held ``meter`` within the period: (start, end, held on after
    the period) in naive UTC, end excluded."""
    assignments = scope.env["smartpm.meter.assignment"].search(
        [
            *scope.tenant_domain,
            ("meter_id", "=", meter.id),
            ("date_start", "<", scope.end_utc),
            "|",
            ("date_end", "=", False),
            ("date_end", ">", scope.start_utc),
        ],
        order="date_start",
    )
    return _once_at_a_time(
        [
            (
                max(a.date_start, scope.start_utc),
                min(a.date_end or scope.end_utc, scope.end_utc),
                not a.date_end or a.date_end >= scope.end_utc,
            )
            for a in assignments
        ]
    )


# ------------------------------------------------------------------ the statement
def tenant_statement(env, tenant, date_from, date_to, meter=None, providers=None):
    """The statement of ``tenant`` for the local days ``date_from``..``date_to``
    (included), of one ``meter`` or of all the meters they held: a dict with per meter
    ``opening_kwh``/``opening_value``, ``lines`` (time order), ``closing_kwh``/
    ``closing_value`` and ``periods`` (the times they held it), and the same in total.
    Reads with ``env``'s rights."""
    tenant.ensure_one()
    if date_to < date_from:
        date_from, date_to = date_to, date_from
    scope = StatementScope(env, tenant.with_env(env), date_from, date_to, meter)
    currency = scope.company.currency_id
    lines = [line for provider in providers or LINE_PROVIDERS for line in provider(scope)]
    for line in lines:
        line["kwh"] = float_round(line["kwh"], KWH_DIGITS)
        line["value"] = currency.round(line["value"])
    lines.sort(key=lambda x: (x["time"], KIND_ORDER.get(x["kind"], 5), x["meter_id"]))
    Meter = env["smartpm.meter"]
    meter_ids = {line["meter_id"] for line in lines}
    held = env["smartpm.meter.assignment"].search(
        [
            *scope.tenant_domain,
            *scope.meter_domain,
            ("date_start", "<", scope.end_utc),
            "|",
            ("date_end", "=", False),
            ("date_end", ">", scope.start_utc),
        ]
    )
    meter_ids |= set(held.meter_id.ids)
    sections = []
    for meter_rec in Meter.browse(sorted(meter_ids)).sorted("serial_number"):
        mine = [x for x in lines if x["meter_id"] == meter_rec.id]
        before = [x for x in mine if x["time"] < scope.start_utc]
        during = [x for x in mine if x["time"] >= scope.start_utc]
        section = _section(scope, meter_rec, before, during, currency)
        if section["periods"] or during or section["opening_kwh"] or section["opening_value"]:
            sections.append(section)
    from .sale_info import format_kwh  # noqa: PLC0415 - sale_info imports the vending chain

    statement = {
        # kWh as the reader's language writes them (the template's money: monetary widget)
        "format_kwh": lambda kwh, unit=False: format_kwh(env, kwh, KWH_DIGITS, unit),
        "tenant": tenant,
        "company": scope.company,
        "currency": currency,
        "date_from": date_from,
        "date_to": date_to,
        "tz": local_time.company_tz(scope.company).zone,
        "meters": sections,
    }
    for key in ("opening_kwh", "closing_kwh"):
        statement[key] = float_round(sum(s[key] for s in sections), KWH_DIGITS)
    for key in ("opening_value", "closing_value"):
        statement[key] = currency.round(sum(s[key] for s in sections))
    statement["totals"] = _totals([x for s in sections for x in s["lines"]], currency)
    labels = kind_labels(env)
    statement["kind_labels"] = {
        kind: labels.get(kind) or kind.replace("_", " ").title()
        for kind in set(statement["totals"]) | {"purchase", "reversal", "consumption"}
    }
    return statement


def _section(scope, meter, before, during, currency):
    opening_kwh = float_round(sum(x["kwh"] for x in before), KWH_DIGITS)
    opening_value = currency.round(sum(x["value"] for x in before))
    kwh, value = opening_kwh, opening_value
    for line in during:
        kwh = float_round(kwh + line["kwh"], KWH_DIGITS)
        value = currency.round(value + line["value"])
        line["balance_kwh"], line["balance_value"] = kwh, value
        line["local_time"] = _local(scope.company, line["time"])
    return {
        "meter": meter,
        "periods": [
            (_local(scope.company, start), _local(scope.company, end), still_held)
            for start, end, still_held in held_periods(scope, meter)
        ],
        "opening_kwh": opening_kwh,
        "opening_value": opening_value,
        "lines": during,
        "closing_kwh": kwh,
        "closing_value": value,
        "totals": _totals(during, currency),
        "bands": held_bands(scope, meter),
    }


def held_bands(scope, meter):
    """Time of use: what the meter's rate registers counted per band while the tenant held
    it within the period (services/tou.band_consumption over each of those times): the
    tenant before or after them on the meter is not in it, as in the consumption lines."""
    if meter.credit_mode != "money":
        return []
    bands = {}
    for start, end, _still_held in held_periods(scope, meter):
        for band in tou.band_consumption(meter, start, end):
            total = bands.setdefault(band["rate"], {**band, "kwh": 0.0, "amount": 0.0})
            # priced at the version in force at the end of the last time held
            total.update(name=band["name"], price=band["price"])
            total["kwh"] = round(total["kwh"] + band["kwh"], 3)
            total["amount"] = round(total["amount"] + band["amount"], 6)
    return [bands[rate] for rate in sorted(bands)]


def _totals(lines, currency):
    """{kind: {"kwh", "value", "count"}}, signed as the lines are."""
    totals = {}
    for line in lines:
        t = totals.setdefault(line["kind"], {"kwh": 0.0, "value": 0.0, "count": 0})
        t["kwh"] = float_round(t["kwh"] + line["kwh"], KWH_DIGITS)
        t["value"] = currency.round(t["value"] + line["value"])
        t["count"] += 1
    return totals


def _local(company, when):
    """Naive local time of the company for naive UTC ``when``."""
    if not isinstance(when, datetime):
        return when
    return pytz.utc.localize(when).astimezone(local_time.company_tz(company)).replace(tzinfo=None)


def is_balanced(statement):
    """Opening plus the lines is the closing, per meter and in total (kWh and value)."""
    currency = statement["currency"]
    all_lines = [x for section in statement["meters"] for x in section["lines"]]
    checks = [(section, section["lines"]) for section in statement["meters"]]
    checks.append((statement, all_lines))
    for section, lines in checks:
        kwh = section["opening_kwh"] + sum(x["kwh"] for x in lines)
        value = section["opening_value"] + sum(x["value"] for x in lines)
        if float_compare(kwh, section["closing_kwh"], precision_digits=KWH_DIGITS):
            return False
        if currency.compare_amounts(value, section["closing_value"]):
            return False
    return True
