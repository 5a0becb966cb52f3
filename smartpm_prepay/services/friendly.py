"""Friendly (non-disconnect) periods (issue 17 §2): the company's schedule for its meters.

A company names a working-time calendar (``resource.calendar``): its attendances are the
hours of the week when no meter trips for credit, its global leaves the public holidays
(whole local days). The meter holds the schedule (docs/meter-contract.md, "Friendly
periods") and decides by itself; Odoo builds it here and pushes it with one
``set_friendly_schedule`` job per meter and change: a meter whose last pushed schedule is the
same gets none, a pending older push is cancelled. A daily cron rebuilds the schedule (the
next year's holidays on 1 January, the UTC offset after a daylight-saving change) and pushes
only where it changed; a meter becoming active gets it at once.
"""

import logging
from datetime import date, datetime, timedelta

import pytz

from . import engine
from .local_time import company_tz, local_today

_logger = logging.getLogger(__name__)

JOB_TYPE = "set_friendly_schedule"
PRIORITY = 20  # as the meter's other settings (meter.THRESHOLD_PRIORITY), after credit
HOLIDAY_HORIZON_DAYS = 366
MAX_SPECIAL_DAYS = 128  # what the meter holds (docs/meter-contract.md)
MAX_WINDOWS = 64
# A meter out of the box: no friendly period. A company without the feature sends this.
EMPTY_SCHEDULE = {
    "utc_offset_min": 0,
    "windows": [],
    "special_days": [],
    "friendly_limit_kwh": 0.0,
}
ALARM_TYPE = "friendly_deferred"


def limit_key(credit_mode):
    """The payload key of the friendly limit in the unit of a meter's credit: kWh, or the
    currency on a money-mode meter (which counts milli-units, not Wh)."""
    return "friendly_limit_money" if credit_mode == "money" else "friendly_limit_kwh"


def empty_schedule(credit_mode="kwh"):
    """A meter out of the box (no friendly period), in the unit of its credit."""
    schedule = dict(EMPTY_SCHEDULE)
    del schedule["friendly_limit_kwh"]
    schedule[limit_key(credit_mode)] = 0.0
    return schedule


def company_limit(company, credit_mode="kwh"):
    """How far below zero (a figure >= 0) a meter of this credit mode may go inside a
    friendly period: the company's limit in kWh, or in its currency for money meters."""
    company = company.sudo()
    if credit_mode == "money":
        return company.currency_id.round(company.smartpm_friendly_limit_money or 0.0)
    return round(company.smartpm_friendly_limit_kwh or 0.0, 3)


# ---------------------------------------------------------------- building the schedule
def utc_offset_min(company, now=None):
    """The company's UTC offset in minutes at ``now`` (naive UTC, default now)."""
    now = now or datetime.utcnow()
    offset = pytz.utc.localize(now).astimezone(company_tz(company)).utcoffset()
    return int(offset.total_seconds() // 60)


def _minutes(hours):
    return max(0, min(1440, int(round(hours * 60))))


def calendar_windows(calendar):
    """The calendar's attendances as meter windows (weekday 0 = Monday, minutes of the local
    day), merged where they touch or overlap; lunch breaks are not friendly."""
    by_day = {}
    for att in calendar.attendance_ids:
        if att.display_type or att.day_period == "lunch":
            continue
        start, end = _minutes(att.hour_from), _minutes(att.hour_to)
        if end > start:
            by_day.setdefault(int(att.dayofweek), []).append((start, end))
    windows = []
    for day in sorted(by_day):
        merged = []
        for start, end in sorted(by_day[day]):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        windows += [{"weekday": day, "start_min": s, "end_min": e} for s, e in merged]
    return windows[:MAX_WINDOWS]


def _holiday_domain(company, calendar, start_utc, end_utc):
    """Global leaves of the calendar (or of every calendar of the company), as Odoo's own
    ``resource.calendar`` counts public holidays, overlapping [start, end)."""
    return [
        ("resource_id", "=", False),
        ("time_type", "=", "leave"),
        ("calendar_id", "in", [False, calendar.id]),
        ("company_id", "in", [False, company.id]),
        ("date_from", "<", end_utc),
        ("date_to", ">", start_utc),
    ]


def holiday_dates(company, calendar, today=None):
    """Local dates that a public holiday touches, from ``today`` for a year (at most what
    the meter holds, the nearest first)."""
    today = today or local_today(company)
    tz = company_tz(company)
    start = tz.localize(datetime.combine(today, datetime.min.time())).astimezone(pytz.utc)
    end = start + timedelta(days=HOLIDAY_HORIZON_DAYS)
    leaves = (
        calendar.env["resource.calendar.leaves"]
        .sudo()
        .search(
            _holiday_domain(company, calendar, start.replace(tzinfo=None), end.replace(tzinfo=None))
        )
    )
    days = set()
    for leave in leaves:
        first = pytz.utc.localize(leave.date_from).astimezone(tz).date()
        # a leave ending at local midnight does not touch the next day
        last = (pytz.utc.localize(leave.date_to) - timedelta(seconds=1)).astimezone(tz).date()
        day = max(first, today)
        while day <= last and day < today + timedelta(days=HOLIDAY_HORIZON_DAYS):
            days.add(day)
            day += timedelta(days=1)
    return [d.isoformat() for d in sorted(days)[:MAX_SPECIAL_DAYS]]


def year_holidays(company, calendar, today):
    """Local dates (iso strings) of the public holidays of ``today``'s calendar year and the
    next one (at most what the meter holds, the earliest first).

    Whole calendar years, not a year from today: a holiday that passed stays in the table
    (the meter never matches a past date again) until the year ends, so the payload, and
    with it each meter's push, changes when the owner changes a holiday or on 1 January,
    not the day after each holiday (docs/job-protocol.md). The friendly schedule and the
    time-of-use special days (services/tou.py) both count holidays so."""
    days = set()
    for year in (today.year, today.year + 1):
        days.update(
            d
            for d in holiday_dates(company, calendar, date(year, 1, 1))
            if d.startswith(f"{year:04d}-")
        )
    return sorted(days)[:MAX_SPECIAL_DAYS]


def build_schedule(company, now=None, credit_mode="kwh"):
    """The payload of ``set_friendly_schedule`` for the company's meters of ``credit_mode``:
    the limit is ``friendly_limit_kwh``, or ``friendly_limit_money`` (currency) for
    money-mode meters."""
    company = company.sudo()
    calendar = company.smartpm_friendly_calendar_id
    if not company.smartpm_friendly_enabled or not calendar:
        return empty_schedule(credit_mode)
    today = local_today(company, now)
    return {
        "utc_offset_min": utc_offset_min(company, now),
        "windows": calendar_windows(calendar),
        "special_days": year_holidays(company, calendar, today),
        limit_key(credit_mode): -abs(company_limit(company, credit_mode)),
    }


# ---------------------------------------------------------------- pushing it
def _last_pushed(env, meters):
    """meter id -> payload of its newest friendly job that is not cancelled nor failed."""
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
    """One ``set_friendly_schedule`` job for each commandable meter whose last pushed
    schedule differs from its company's at ``now`` (naive UTC, default now; all of them
    with ``force``); pending older pushes are cancelled. Returns the jobs created."""
    meters = meters.sudo()._commandable()
    Job = env["smartpm.meter.job"]
    if not meters:
        return Job.sudo().browse()
    schedules = {}
    for meter in meters:
        key = (meter.company_id.id, meter.credit_mode)
        if key not in schedules:
            schedules[key] = build_schedule(
                meter.company_id, now=now, credit_mode=meter.credit_mode
            )
    last = _last_pushed(env, meters)

    def schedule_of(meter):
        return schedules[(meter.company_id.id, meter.credit_mode)]

    stale = meters.filtered(
        lambda m: force or last.get(m.id, empty_schedule(m.credit_mode)) != schedule_of(m)
    )
    if not stale:
        return Job.sudo().browse()
    stale._supersede(JOB_TYPE)
    return engine.create(
        Job,
        [
            {
                "meter_id": meter.id,
                "job_type": JOB_TYPE,
                "payload": schedule_of(meter),
                "priority": PRIORITY,
            }
            for meter in stale
        ],
    )


def push_companies(env, companies, now=None):
    """The schedule of ``companies`` changed (settings, calendar, holidays): their meters."""
    if not companies:
        return
    meters = (
        env["smartpm.meter"]
        .sudo()
        .search([("company_id", "in", companies.ids), ("state", "in", ("active", "disconnected"))])
    )
    push(env, meters, now=now)


def companies_of_calendars(env, calendars):
    """Companies whose friendly schedule follows one of ``calendars``."""
    return env["res.company"].sudo().search([("smartpm_friendly_calendar_id", "in", calendars.ids)])


def companies_of_leaves(env, leaves):
    """Companies whose public holidays include one of these leaves (global ones only)."""
    leaves = leaves.sudo().filtered(lambda leave: not leave.resource_id)
    if not leaves:
        return env["res.company"]
    companies = env["res.company"].sudo().search([("smartpm_friendly_calendar_id", "!=", False)])
    return companies.filtered(
        lambda c: any(
            (not lv.calendar_id or lv.calendar_id == c.smartpm_friendly_calendar_id)
            and (not lv.company_id or lv.company_id == c)
            for lv in leaves
        )
    )


def refresh_all(env, now=None):
    """Daily cron: every company's schedule again (the next year's holidays on 1 January,
    the UTC offset after a daylight-saving change); only changed ones are pushed."""
    companies = env["res.company"].sudo().search([])
    for company in companies:
        try:
            with env.cr.savepoint():
                push_companies(env, company, now=now)
        except Exception:
            _logger.exception("friendly schedule of %s not pushed", company.name)


# ---------------------------------------------------------------- what the meter reports
def clear_alarms(meters, message, before=None):
    """The meter is out of its deferred trip (credit back, or it tripped): open friendly
    alarms are cleared (those before ``before``, a datetime, when given)."""
    domain = [
        ("meter_id", "in", meters.ids),
        ("alarm_type", "=", ALARM_TYPE),
        ("state", "in", ("new", "acknowledged")),
    ]
    if before:
        domain.append(("meter_time", "<=", before))
    alarms = meters.env["smartpm.alarm"].sudo().search(domain)
    if alarms:
        alarms._clear(message)


def on_alarms(alarms):
    """New alarms from the meter's events: a credit trip ends the deferral before it."""
    for alarm in alarms.filtered(lambda a: a.alarm_type == "credit_trip"):
        clear_alarms(
            alarm.meter_id,
            alarm.env._("The friendly period ended: the meter tripped."),
            before=alarm.meter_time,
        )


def on_result(meter, result):
    """A job result reported the meter's credit: above the trip threshold again (a purchase
    repaid the friendly debt), its friendly alarm is over."""
    key = "credit_money" if meter and meter.credit_mode == "money" else "credit_kwh"
    if key not in result or not meter:
        return
    _low, trip = meter._get_thresholds()  # in the unit of the meter's credit
    if float(result[key]) > trip:
        clear_alarms(meter, meter.env._("Credit bought: the friendly-period debt is repaid."))


def open_alarm(meter):
    """The meter's open friendly alarm, if any (the newest)."""
    return (
        meter.env["smartpm.alarm"]
        .sudo()
        .search(
            [
                ("meter_id", "=", meter.id),
                ("alarm_type", "=", ALARM_TYPE),
                ("state", "in", ("new", "acknowledged")),
            ],
            order="meter_time desc",
            limit=1,
        )
    )


def portal_notice(meter):
    """(level, text) for the tenant's meter page while a trip is deferred, else None."""
    if not open_alarm(meter):
        return None
    return (
        "warning",
        meter.env._(
            "Friendly period: your credit has run out but the power stays on until the "
            "period ends (or the credit reaches %(limit)s). What you use now is repaid "
            "from your next purchase: buy credit before the period ends.",
            limit=format_limit(meter),
        ),
    )


def format_limit(meter):
    """The friendly limit of ``meter`` as the tenant reads it, in the unit of its credit and
    the language of ``meter``'s env: "-5.0 kWh", or the company's currency on a money-mode
    meter ("-10.00 €")."""
    from .sale_info import format_kwh, format_money

    limit = company_limit(meter.sudo().company_id, meter.sudo().credit_mode)
    if meter.sudo().credit_mode == "money":
        return format_money(meter.env, -abs(limit) or 0.0, meter.sudo().company_id.currency_id)
    return format_kwh(meter.env, -abs(limit) or 0.0, digits=1)


def receipt_values(purchase):
    """The receipt's friendly-debt line: what of the purchase repaid the meter's negative
    credit (``debt_repaid_kwh``, from the credit the meter reported after the token)."""
    purchase = purchase.sudo()
    result = purchase.job_id.result or {}
    if purchase.state != "delivered" or not purchase.debt_repaid_kwh:
        return {}
    return {
        "meter_credit_after_kwh": float(result.get("credit_kwh", 0.0)),
        "debt_repaid_kwh": purchase.debt_repaid_kwh,
    }
