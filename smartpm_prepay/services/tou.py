"""Time-of-use tariffs (issue 17 §6): price bands by hour, weekday and season, charged by
money-mode meters.

A TOU tariff has versions (``smartpm.tariff.tou.version``), each from a local day on, each
with its bands (a price and the meter's rate number), seasons and band hours. The meter
holds them as its activity calendar (IC 20) and the charge table of its consumption-based
Charge (IC 113) (docs/meter-contract.md, "Time-of-use and money mode"): the version in
force as the *active* calendar, the next planned one as the *passive* calendar with its
first local midnight as activation time, so a tariff change reaches the meter before it
applies and the meter switches by itself. Odoo pushes them with one ``set_tariff_calendar``
job per meter and change (a meter whose last pushed calendar is the same gets none, a
pending older push is cancelled), and a daily cron where the payload changed (a planned
version came into force, the UTC offset after a daylight-saving change).

Money on the meter is in milli-units of the tariff's currency (``MONEY_SCALE``), prices in
its charge table as ``charge_per_unit`` (a long, int16) x 10^price_scale milli-units per Wh
(= the price per kWh in currency): the version's price scale is the most precise of -4..0 at
which every band's price is a whole long (``price_scale``): 0.2500 at -4 is 2500, 25.00 at
-3 is 25000; a price no scale holds exactly is refused naming the tariff and band.
"""

import logging
from datetime import datetime, timedelta

from odoo.exceptions import UserError

from . import engine, friendly, meter_profile
from .local_time import day_start_utc, local_today

_logger = logging.getLogger(__name__)

JOB_TYPE = "set_tariff_calendar"
PRIORITY = 20  # as the meter's other settings, after credit
MONEY_SCALE = 1000  # the meter's credit unit: 1/1000 of the currency
PRICE_SCALES = range(-4, 1)  # the meter's charge table: price scales -4 (most precise)..0
MAX_CHARGE_PER_UNIT = 32767  # charge_per_unit is a long (int16)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ENERGY_RATE_OBIS = "1.0.1.8.%d.255"  # energy import in rate N (Wh)
CHARGE_OBIS = "0.0.19.20.0.255"  # consumption-based Charge, attribute 2: collected (milli)
EMPTY_CALENDAR = None  # a meter without a TOU tariff: nothing to push
SPECIAL_DAYS_FUNCTION = "tou_special_days"  # the calendar's special days table (profile)


def _weekday_names(env):
    return [
        env._("Monday"),
        env._("Tuesday"),
        env._("Wednesday"),
        env._("Thursday"),
        env._("Friday"),
        env._("Saturday"),
        env._("Sunday"),
    ]


def minutes(hours):
    """Float hours of a form (17.5) as whole minutes of the day (1050)."""
    return int(round((hours or 0.0) * 60))


def hhmm(mins):
    return f"{mins // 60:02d}:{mins % 60:02d}"


def money_units(amount):
    """``amount`` of currency as the meter's whole milli-units."""
    return int(round(amount * MONEY_SCALE))


def _per_unit(price_per_kwh, scale):
    """charge_per_unit of ``price_per_kwh`` at ``scale``, or None if not a whole long."""
    value = round(price_per_kwh, 4) * 10**-scale
    whole = int(round(value))
    if abs(value - whole) > 1e-6 or abs(whole) > MAX_CHARGE_PER_UNIT:
        return None
    return whole


def price_scale(prices):
    """The most precise price scale at which every price (per kWh) is a whole long, or
    None when none is (a price too precise for its size, or beyond 32,767 per kWh)."""
    for scale in PRICE_SCALES:
        if all(_per_unit(price, scale) is not None for price in prices):
            return scale
    return None


def charge_per_unit(price_per_kwh, scale=PRICE_SCALES[0]):
    return _per_unit(price_per_kwh, scale)


def charge_table_error(version):
    """Why the version's band prices do not fit the meter's charge table, in words, or
    None: each price a long x 10^scale, one scale for the version's table."""
    bands = version.band_ids
    if not bands or price_scale(bands.mapped("price_per_kwh")) is not None:
        return None
    alone = bands.filtered(lambda b: price_scale([b.price_per_kwh]) is None)
    if alone:
        return version.env._(
            "Tariff %(tariff)s, band %(band)s: the meter's charge table cannot hold %(price)s "
            "per kWh (at most 32,767 per kWh, and only as many decimals as its size allows: "
            "up to 3.2767 with 4 decimals, 32.767 with 3, 327.67 with 2...).",
            tariff=version.tariff_id.name,
            band=alone[0].name,
            price=alone[0].price_per_kwh,
        )
    return version.env._(
        "Tariff %(tariff)s, prices from %(date)s: the meter's charge table has one scale for "
        "all bands, and no scale holds %(prices)s together: round the small prices to fewer "
        "decimals or the large ones lower.",
        tariff=version.tariff_id.name,
        date=version.date_start,
        prices=", ".join(f"{b.name} {b.price_per_kwh:g}" for b in bands.sorted("rate")),
    )


# ---------------------------------------------------------------- validation
def _seasons(version):
    """The version's seasons in the order of the year ([False] when it has none)."""
    seasons = version.season_ids.sorted(lambda s: (int(s.start_month), s.start_day))
    return list(seasons) or [False]


def _day_rules(version, season, weekday):
    field = WEEKDAYS[weekday]
    return version.rule_ids.filtered(
        lambda r: r[field] and (not r.season_id or r.season_id == season)
    ).sorted(lambda r: (minutes(r.start_hour), minutes(r.end_hour)))


def coverage_error(version):
    """The first gap or overlap of the version's band hours, in words, or None."""
    env = version.env
    tariff = version.tariff_id.name
    date = version.date_start
    if not version.rule_ids:
        return None  # being set up: not used until it has its hours (tariff._tou_version_at)
    if not version.band_ids:
        return env._(
            "Tariff %(tariff)s, prices from %(date)s: add at least one price band.",
            tariff=tariff,
            date=date,
        )
    for rule in version.rule_ids:
        start, end = minutes(rule.start_hour), minutes(rule.end_hour)
        if not 0 <= start < end <= 1440:
            return env._(
                "Tariff %(tariff)s, prices from %(date)s: band %(band)s runs from %(start)s to "
                "%(end)s; a band's hours run forward within one day, 00:00 to 24:00.",
                tariff=tariff,
                date=date,
                band=rule.band_id.name,
                start=hhmm(max(start, 0)),
                end=hhmm(max(end, 0)),
            )
        if rule.season_id and rule.season_id.version_id != version:
            return env._("Tariff %s: band hours name a season of another version.", tariff)
        if rule.band_id.version_id != version:
            return env._("Tariff %s: band hours name a band of another version.", tariff)
    days = _weekday_names(env)
    for season in _seasons(version):
        where = env._(" (season %s)", season.name) if season else ""
        for weekday in range(7):
            pos, previous = 0, None
            for rule in _day_rules(version, season, weekday):
                start, end = minutes(rule.start_hour), minutes(rule.end_hour)
                if start < pos:
                    return env._(
                        "Tariff %(tariff)s, prices from %(date)s: band %(band)s overlaps band "
                        "%(other)s on %(day)s %(start)s-%(end)s%(where)s.",
                        tariff=tariff,
                        date=date,
                        band=rule.band_id.name,
                        other=previous.band_id.name,
                        day=days[weekday],
                        start=hhmm(start),
                        end=hhmm(min(pos, end)),
                        where=where,
                    )
                if start > pos:
                    return _gap(env, tariff, date, days[weekday], pos, start, where)
                pos, previous = end, rule
            if pos < 1440:
                return _gap(env, tariff, date, days[weekday], pos, 1440, where)
    return None


def holiday_error(version):
    """Why the version's public-holiday setting cannot be used, in words, or None."""
    if version.holiday_mode != "band":
        return None
    band = version.holiday_band_id
    if not band:
        return version.env._(
            "Tariff %(tariff)s, prices from %(date)s: public holidays are charged all day in "
            "one band; choose the band.",
            tariff=version.tariff_id.name,
            date=version.date_start,
        )
    if band.version_id != version:
        return version.env._(
            "Tariff %(tariff)s, prices from %(date)s: the holiday band %(band)s is a band of "
            "other prices; choose one of this version's bands.",
            tariff=version.tariff_id.name,
            date=version.date_start,
            band=band.name,
        )
    return None


def holds_special_days(meter):
    """Whether the meter's profile has the calendar's special days table (public holidays
    charged otherwise than as the weekday need it)."""
    return meter_profile.has_function(meter, SPECIAL_DAYS_FUNCTION)


def charges_holidays(tariff, today=None):
    """Whether a version of ``tariff`` in force or planned charges public holidays
    otherwise than as the weekday they fall on (the meters then need special days)."""
    if tariff.pricing_mode != "tou":
        return False
    current = tariff._tou_version_at(today)
    versions = tariff.tou_version_ids.filtered(
        lambda v: not current or v.date_start >= current.date_start
    )
    return any(v.holiday_mode != "weekday" for v in versions)


def special_days_error(meters, tariff):
    """Why ``meters`` (money mode, on ``tariff``) cannot be charged its public holidays, in
    words naming the meters and their profiles, or None: a profile without the calendar's
    special days table cannot hold them, and a head end does not send a setting the meter
    cannot hold (the holidays would be charged as weekdays with no one told)."""
    unable = meters.sudo().filtered(
        lambda m: m.credit_mode == "money" and not holds_special_days(m)
    )
    if not unable:
        return None
    env = meters.env
    return env._(
        "Tariff %(tariff)s charges public holidays otherwise than as the weekday, but meter "
        "%(meters)s cannot hold public holidays: its meter profile %(profiles)s has no "
        "calendar special days object (Configuration, Meter profiles: add the line "
        "'Calendar special days (holidays)' if the meter model has one), or charge the "
        "holidays as the weekday.",
        tariff=tariff.name,
        meters=", ".join(unable[:5].mapped("serial_number"))
        + (env._(" and %s more", len(unable) - 5) if len(unable) > 5 else ""),
        profiles=", ".join(unable.profile_id.mapped("name")),
    )


def _gap(env, tariff, date, day, start, end, where):
    return env._(
        "Tariff %(tariff)s, prices from %(date)s: no band covers %(day)s %(start)s-%(end)s"
        "%(where)s.",
        tariff=tariff,
        date=date,
        day=day,
        start=hhmm(start),
        end=hhmm(end),
        where=where,
    )


# ---------------------------------------------------------------- in words
def band_hours_text(version, band):
    """When ``band`` applies, in words: "Mon-Fri 17:00-21:00; Sat, Sun 00:00-24:00"."""
    short = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    parts = []
    for rule in version.rule_ids.filtered(lambda r: r.band_id == band):
        days = [short[i] for i, f in enumerate(WEEKDAYS) if rule[f]]
        if len(days) == 7:
            day_text = version.env._("every day")
        elif days == short[:5]:
            day_text = "Mon-Fri"
        else:
            day_text = ", ".join(days)
        text = f"{day_text} {hhmm(minutes(rule.start_hour))}-{hhmm(minutes(rule.end_hour))}"
        if rule.season_id:
            text += f" ({rule.season_id.name})"
        parts.append(text)
    env = version.env
    if version.holiday_mode == "band":
        if band == version.holiday_band_id:
            parts.append(env._("public holidays all day"))
        elif parts:
            return env._("%s, not on public holidays", "; ".join(parts))
    elif version.holiday_mode == "sunday" and any(
        r.sun for r in version.rule_ids if r.band_id == band
    ):
        parts.append(env._("public holidays as Sundays"))
    return "; ".join(parts)


def price_bands(tariff, version=None):
    """[{rate, name, price (tax included), label, hours}] of the version in force (or
    ``version``), as the customer pays them."""
    version = version or tariff._tou_version_at()
    if not version:
        return []
    factor = tariff._tax_factor()
    return [
        {
            "rate": band.rate,
            "name": band.name,
            "price": band.price_per_kwh * factor,
            "price_untaxed": band.price_per_kwh,
            "label": tariff._format_price(band.price_per_kwh * factor),
            "hours": band_hours_text(version, band),
        }
        for band in version.band_ids.sorted("rate")
    ]


def describe_bands(tariff, bands=None, with_hours=True):
    """ "Peak (Mon-Fri 17:00-21:00) $ 0.40 per kWh, Off-peak (...) $ 0.10 per kWh"."""
    bands = price_bands(tariff) if bands is None else bands
    parts = []
    for band in bands:
        name = f"{band['name']} ({band['hours']})" if with_hours and band["hours"] else band["name"]
        parts.append(tariff.env._("%(band)s %(price)s per kWh", band=name, price=band["label"]))
    return ", ".join(parts)


# ---------------------------------------------------------------- quote (money mode)
def quote_money(tariff, amount):
    """What ``amount`` (tax included) puts on a money-mode meter: its untaxed part, as
    credit in the tariff's currency; the meter charges it at each band's price."""
    untaxed, tax = tariff._split_taxes(amount)
    bands = price_bands(tariff)
    return {
        "amount": tariff.currency_id.round(amount),
        "amount_untaxed": untaxed,
        "amount_tax": tax,
        "kwh": 0.0,
        "price_per_kwh": 0.0,
        "month_kwh_before": 0.0,
        "tier_breakdown": [],
        "credit_money": untaxed,
        # what the credit buys if all of it went in one band, for the receipt
        "bands": [
            dict(band, kwh=round(untaxed / band["price_untaxed"], 2) if untaxed else 0.0)
            for band in bands
        ],
    }


def receipt_bands(purchase):
    """The bands of a money-mode sale as its receipt shows them (taxes included): name,
    hours, price and the kWh the credit buys if all of it is used in that band."""
    if purchase.credit_mode != "money":
        return []
    factor = purchase.tariff_id._tax_factor() if purchase.tariff_id else 1.0
    return [
        {
            "name": band["name"],
            "hours": band.get("hours", ""),
            "price": round(band["price_untaxed"] * factor, 4),
            "kwh": band.get("kwh", 0.0),
        }
        for band in purchase.band_prices or []
    ]


# ---------------------------------------------------------------- the meter's calendar
def version_calendar(version):
    """The version as the meter's activity calendar and charge table (payload part)."""
    scale = price_scale(version.band_ids.mapped("price_per_kwh"))
    if scale is None:
        raise UserError(charge_table_error(version))
    seasons, weeks, day_ids, days = [], [], {}, []
    for i, season in enumerate(_seasons(version), start=1):
        week = []
        for weekday in range(7):
            schedule = []
            for rule in _day_rules(version, season, weekday):
                rate = rule.band_id.rate
                if not schedule or schedule[-1][1] != rate:
                    schedule.append((minutes(rule.start_hour), rate))
            key = tuple(schedule)
            if key not in day_ids:
                day_ids[key] = len(day_ids) + 1
                days.append(
                    {
                        "day_id": day_ids[key],
                        "schedule": [{"start_min": s, "rate": r} for s, r in schedule],
                    }
                )
            week.append(day_ids[key])
        seasons.append(
            {
                "name": f"S{i}",
                "start_month": int(season.start_month) if season else 1,
                "start_day": season.start_day if season else 1,
                "week": f"W{i}",
            }
        )
        weeks.append({"name": f"W{i}", "days": week})
    if version.holiday_mode == "band" and version.holiday_band_id:
        key = ((0, version.holiday_band_id.rate),)  # the holiday: one band all day
        if key not in day_ids:
            day_ids[key] = len(day_ids) + 1
            days.append({"day_id": day_ids[key], "schedule": [{"start_min": 0, "rate": key[0][1]}]})
    return {
        "name": f"T{version.tariff_id.id}-{version.date_start:%Y%m%d}",
        "seasons": seasons,
        "weeks": weeks,
        "days": days,
        "charges": [
            {"rate": band.rate, "charge_per_unit": charge_per_unit(band.price_per_kwh, scale)}
            for band in version.band_ids.sorted("rate")
        ],
        "price_scale": scale,
    }


def _season_of(calendar, day):
    """The calendar's season (dict) a local date is in, as the meter chooses it."""
    seasons = sorted(calendar["seasons"], key=lambda s: (s["start_month"], s["start_day"]))
    season = seasons[-1]  # before the first start of the year: the last season runs
    for candidate in seasons:
        if (candidate["start_month"], candidate["start_day"]) <= (day.month, day.day):
            season = candidate
    return season


def holiday_day_id(version, calendar, day):
    """The day profile (day_id of ``calendar``, the version's) a public holiday on the
    local date ``day`` is charged with, or None: as the weekday it falls on."""
    if version.holiday_mode == "sunday":
        season = _season_of(calendar, day)
        week = next(w for w in calendar["weeks"] if w["name"] == season["week"])
        return week["days"][6]
    if version.holiday_mode == "band" and version.holiday_band_id:
        schedule = [{"start_min": 0, "rate": version.holiday_band_id.rate}]
        return next(d["day_id"] for d in calendar["days"] if d["schedule"] == schedule)
    return None


def public_holidays(company, today):
    """Local dates (date objects) of the company's public holidays of the year of ``today``
    and the next one: the global leaves of its friendly-period calendar, the one list the
    owner keeps, counted as the friendly schedule counts them (``friendly.year_holidays``:
    whole calendar years, so a passing holiday pushes nothing)."""
    calendar = company.smartpm_friendly_calendar_id
    if not calendar:
        return []
    return [
        datetime.strptime(d, "%Y-%m-%d").date()
        for d in friendly.year_holidays(company, calendar, today)
    ]


def special_days(tariff, company, today, active, passive, calendars):
    """The special days table of the payload: each public holiday with the day profile of
    the version in force that day (the active one, or the passive one from its start; a
    holiday of a later version comes with the push that makes it the passive one)."""
    out = []
    for day in public_holidays(company, today):
        version = tariff._tou_version_at(day)
        if version not in (active, passive):
            continue
        day_id = holiday_day_id(version, calendars[version.id], day)
        if day_id is not None:
            out.append({"date": day.isoformat(), "day_id": day_id})
    return out


def build_payload(meter, now=None):
    """The ``set_tariff_calendar`` payload of a money-mode meter, or None. A meter whose
    profile has no special days table gets none (the key left out: the bridge does not
    touch the table), never a job sure to fail; Odoo refuses to charge its holidays
    otherwise than as weekdays (``special_days_error``)."""
    tariff = meter._get_tariff()
    if meter.credit_mode != "money" or not tariff or tariff.pricing_mode != "tou":
        return EMPTY_CALENDAR
    company = meter.company_id
    today = local_today(company, now)
    active = tariff._tou_version_at(today)
    if not active:
        return EMPTY_CALENDAR
    passive = tariff._tou_next_version(today)
    activate_at = None
    if passive:
        activate_at = day_start_utc(company, passive.date_start).isoformat() + "+00:00"
    calendars = {active.id: version_calendar(active)}
    if passive:
        calendars[passive.id] = version_calendar(passive)
    payload = {
        "utc_offset_min": friendly.utc_offset_min(company, now),
        "active": calendars[active.id],
        "passive": calendars[passive.id] if passive else None,
        "activate_at": activate_at,
    }
    if holds_special_days(meter):
        payload["special_days"] = special_days(tariff, company, today, active, passive, calendars)
    return payload


def _last_pushed(env, meters):
    if not meters:
        return {}
    env["smartpm.meter.job"].flush_model(["meter_id", "job_type", "state", "payload"])
    env.cr.execute(
        """
        SELECT DISTINCT ON (meter_id) meter_id, payload FROM smartpm_meter_job
         WHERE meter_id = ANY(%s) AND job_type = %s AND state NOT IN ('cancelled', 'failed')
         ORDER BY meter_id, id DESC
        """,
        (meters.ids, JOB_TYPE),
    )
    return dict(env.cr.fetchall())


def push(env, meters, force=False, now=None):
    """One ``set_tariff_calendar`` job for each commandable money-mode meter whose last
    pushed calendar differs from the one its tariff gives now. Returns the jobs created."""
    meters = meters.sudo()._commandable().filtered(lambda m: m.credit_mode == "money")
    Job = env["smartpm.meter.job"]
    # the payload depends on the meter's tariff, company and profile (whether it holds
    # special days) only: built once for each
    by_pair = {}
    payloads = {}
    for m in meters:
        pair = (m._get_tariff().id, m.company_id.id, m.profile_id.id)
        if pair not in by_pair:
            by_pair[pair] = build_payload(m, now)
        payloads[m.id] = by_pair[pair]
    meters = meters.filtered(lambda m: payloads[m.id])
    if not meters:
        return Job.sudo().browse()
    last = _last_pushed(env, meters)
    stale = meters.filtered(lambda m: force or last.get(m.id) != payloads[m.id])
    if not stale:
        return Job.sudo().browse()
    stale._supersede(JOB_TYPE)
    return engine.create(
        Job,
        [
            {
                "meter_id": meter.id,
                "job_type": JOB_TYPE,
                "payload": payloads[meter.id],
                "priority": PRIORITY,
            }
            for meter in stale
        ],
    )


def meters_of_tariffs(env, tariffs, all_states=False):
    """Money-mode meters of ``tariffs`` (their own or their tenant's): active and
    disconnected ones, or any but decommissioned with ``all_states``."""
    states = ("draft", "active", "disconnected") if all_states else ("active", "disconnected")
    return (
        env["smartpm.meter"]
        .sudo()
        .search(
            [
                ("credit_mode", "=", "money"),
                ("state", "in", states),
                "|",
                ("tariff_id", "in", tariffs.ids),
                "&",
                ("tariff_id", "=", False),
                ("tenant_id.smartpm_tariff_id", "in", tariffs.ids),
            ]
        )
    )


def push_companies(env, companies):
    """The public holidays of ``companies`` changed (a holiday added, moved or removed,
    another friendly-period calendar): their money-mode meters whose calendar payload
    changed get it, once (push compares with the last pushed payload)."""
    if not companies:
        return
    meters = (
        env["smartpm.meter"]
        .sudo()
        .search(
            [
                ("company_id", "in", companies.ids),
                ("credit_mode", "=", "money"),
                ("state", "in", ("active", "disconnected")),
            ]
        )
    )
    push(env, meters)


def refresh_all(env, now=None):
    """Daily cron: every money-mode meter's calendar again; only changed ones are pushed
    (a planned version came into force and the one after it is now the passive one, the
    UTC offset after a daylight-saving change)."""
    meters = env["smartpm.meter"].sudo().search([("credit_mode", "=", "money")])
    try:
        with env.cr.savepoint():
            push(env, meters, now=now)
    except Exception:
        _logger.exception("time-of-use calendars not pushed")


def on_result(meter, result):
    """What a ``set_tariff_calendar`` read-back tells: the calendar the meter runs."""
    vals = {}
    if isinstance(result.get("active"), dict):
        vals["tou_calendar_active"] = result["active"].get("name") or False
        passive = result.get("passive")
        vals["tou_calendar_passive"] = (passive or {}).get("name") or False
    return vals


# ---------------------------------------------------------------- consumption per band
def _register_at(env, meter, obis, when):
    """Value of the newest reading of ``obis`` at or before ``when`` (naive UTC)."""
    reading = (
        env["smartpm.reading"]
        .sudo()
        .search(
            [("meter_id", "=", meter.id), ("obis", "=", obis), ("reading_time", "<=", when)],
            order="reading_time desc, id desc",
            limit=1,
        )
    )
    return reading.value if reading else None


def band_consumption(meter, start, end):
    """[{rate, name, kwh, price, amount}] of ``meter`` between ``start`` and ``end`` (naive
    UTC), from its per-rate energy registers 1.0.1.8.N.255 read at or before each end
    (a rate without readings is left out). Priced at the version in force at ``end``."""
    env = meter.env
    tariff = meter._get_tariff()
    if not tariff or tariff.pricing_mode != "tou":
        return []
    version = tariff._tou_version_at(local_today(meter.company_id, end))
    out = []
    for band in version.band_ids.sorted("rate") if version else []:
        obis = ENERGY_RATE_OBIS % band.rate
        after = _register_at(env, meter, obis, end)
        if after is None:
            continue
        before = _register_at(env, meter, obis, start) or 0.0
        kwh = max(after - before, 0.0) / 1000.0  # the registers count Wh
        out.append(
            {
                "rate": band.rate,
                "name": band.name,
                "kwh": round(kwh, 3),
                "price": band.price_per_kwh,
                "amount": round(kwh * band.price_per_kwh, 6),
            }
        )
    return out


def money_consumed(env, meter, until):
    """Money (currency, untaxed) the meter's consumption-based Charge collected up to
    ``until`` (naive UTC) since the meter's first money-mode sale was delivered, from the
    readings of the Charge's total_amount_paid (``CHARGE_OBIS``), or None without one."""
    first = (
        env["smartpm.credit.purchase"]
        .sudo()
        .search(
            [
                ("meter_id", "=", meter.id),
                ("credit_mode", "=", "money"),
                ("state", "=", "delivered"),
            ],
            order="date_delivered, id",
            limit=1,
        )
    )
    if not first:
        return None
    total = _register_at(env, meter, CHARGE_OBIS, until)
    if total is None:
        return None
    # the bridge reports the Charge's total in the meter's milli-units
    return max(total / MONEY_SCALE - first.charge_total_at_delivery, 0.0)


def now_utc():
    return datetime.utcnow()


def next_midnight(company, day):
    return day_start_utc(company, day + timedelta(days=1))
