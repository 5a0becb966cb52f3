"""Days and months as the property's company lives them.

A "day" of consumption, of the dashboard, of the tiers' month or of a bank's reconciliation
is the company's local day (its partner's time zone, UTC when none): the same for the cron,
the back office, the portal and the bank, whoever looks. The database holds naive UTC.
"""

from datetime import datetime, time, timedelta

import pytz


def company_tz(company):
    """The company's time zone (a pytz zone)."""
    return pytz.timezone(company.partner_id.tz or "UTC")


def local_today(company, now=None):
    """The company's local date at ``now`` (naive UTC, default the current time)."""
    now = now or datetime.utcnow()
    return pytz.utc.localize(now).astimezone(company_tz(company)).date()


def day_start_utc(company, day):
    """Naive UTC start of the company's local ``day`` (a date)."""
    tz = company_tz(company)
    return tz.localize(datetime.combine(day, time.min)).astimezone(pytz.utc).replace(tzinfo=None)


def day_bounds_utc(company, day):
    """[start, end) of the company's local ``day`` in naive UTC (23 or 25 hours on DST days)."""
    return day_start_utc(company, day), day_start_utc(company, day + timedelta(days=1))


def month_start_utc(company, when=None):
    """Naive UTC start of the company's local month holding ``when`` (naive UTC, default
    now): the month of the daily consumption rows and of the tariff's tiers."""
    return day_start_utc(company, local_today(company, when).replace(day=1))
