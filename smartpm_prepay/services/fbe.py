"""Free basic electricity (issue 17 §7): the monthly free kWh of a social tariff's tenants.

Once per tenant per company-local month, each tenant holding a meter on a social tariff
(``smartpm.tariff.fbe_social``) receives the tariff's ``fbe_kwh_month`` as a zero-amount
purchase on the ``fbe`` channel (``vending.grant_free``): its own transfer number and token,
delivered by an ``add_credit`` job like any sale. Its reference ``FBE-<tenant id>-<YYYY-MM>``
is unique on the channel (the purchases' unique (channel, external_ref) index), so whatever
runs it (two crons at once, the Manager's button, a run again after a crash after the
commit) a tenant has one grant a month.

Rules (docs/vending.md):
- per tenant, not per meter: the grant goes to the tenant's main meter, the first they hold
  (earliest open assignment, then the meter's id) among their meters in service on a social
  tariff; its kWh are that meter's tariff's;
- the cron runs daily and grants what the current month still owes: a tenant who moves in
  mid-month receives the month's full grant at the next run (a month that is over is not
  granted afterwards);
- FBE kWh do not count towards the block tiers (``vending.month_kwh``) and carry no value:
  no invoice, no liability, recognised at price 0 (services/prepayment.py).
"""

import logging

import psycopg2.errors

from . import engine, local_time, vending

_logger = logging.getLogger(__name__)

REF_PREFIX = "FBE"
# what a concurrent grant of the same tenant or meter makes this one raise (it waits for
# the meter's lock, or its snapshot predates that grant's commit): skipped, it is granted
_RACE_ERRORS = (psycopg2.errors.LockNotAvailable, psycopg2.errors.SerializationFailure)


def month_key(company, when=None):
    """The company's local month of ``when`` (naive UTC, default now) as ``YYYY-MM``."""
    return local_time.local_today(company, when).strftime("%Y-%m")


def external_ref(tenant, month):
    return f"{REF_PREFIX}-{tenant.id}-{month}"


def _social_meter_domain(companies):
    return [
        ("company_id", "in", companies.ids),
        ("active", "=", True),
        ("state", "in", vending.SELLABLE_STATES),
        ("tenant_id", "!=", False),
        "|",
        ("tariff_id.fbe_social", "=", True),
        "&",
        ("tariff_id", "=", False),
        ("tenant_id.smartpm_tariff_id.fbe_social", "=", True),
    ]


def _assignment_start(meter):
    """When the meter's tenant took it (its open assignment), for the tenant's main meter."""
    opened = meter.assignment_ids.filtered(
        lambda a: not a.date_end and a.tenant_id == meter.tenant_id
    )
    return min(opened.mapped("date_start")) if opened else meter.create_date


def main_meters(env, companies):
    """{tenant: their main meter on a social tariff} of ``companies`` (sudo records)."""
    meters = env["smartpm.meter"].sudo().search(_social_meter_domain(companies), order="id")
    by_tenant = {}
    for meter in meters.sorted(lambda m: (_assignment_start(m), m.id)):
        by_tenant.setdefault(meter.tenant_id, meter)
    return by_tenant


def grant_due(env, companies=None, tariffs=None, commit_every=None):
    """Grant this month's free basic electricity to every tenant of ``companies`` (default
    all) who has not had it; with ``tariffs``, only to tenants whose main meter is on one
    of them. Each tenant in its own savepoint: one that fails (a meter without a token key,
    a concurrent run holding it) does not stop the others. ``commit_every`` (the cron's,
    never in tests): commit after that many grants, so that the meters' locks are not held
    for the whole run (a grant is whole in its commit: purchase, transfer number and job).
    Return ``{"granted": purchases, "already": purchases, "errors": [(tenant, message)]}``."""
    sudo_env = engine.as_engine(env["smartpm.credit.purchase"]).env
    Purchase = sudo_env["smartpm.credit.purchase"]
    if companies is None:
        companies = sudo_env["res.company"].search([])
    companies = companies.with_env(sudo_env)
    result = {"granted": Purchase, "already": Purchase, "errors": []}
    todo = []
    for tenant, meter in main_meters(sudo_env, companies).items():
        tariff = meter._get_tariff()
        if tariffs is None or tariff in tariffs:
            todo.append((tenant, meter, tariff, external_ref(tenant, month_key(meter.company_id))))
    # the month's grants already made, in one query (the cron's next runs find them all)
    done = {
        p.external_ref: p
        for p in Purchase.search(
            [("channel", "=", vending.FBE_CHANNEL), ("external_ref", "in", [t[3] for t in todo])]
        )
    }
    for tenant, meter, tariff, ref in todo:
        if ref in done:
            result["already"] |= done[ref]
            continue
        try:
            with sudo_env.cr.savepoint():
                purchase, created = vending.grant_free(sudo_env, meter, tariff.fbe_kwh_month, ref)
        except vending.VendingError as exc:
            if exc.code == "duplicate_reference":  # a concurrent run committed it first
                continue
            _logger.warning("free basic electricity %s not granted: %s", ref, exc)
            result["errors"].append((tenant, str(exc)))
            continue
        except _RACE_ERRORS as exc:
            _logger.info("free basic electricity %s being granted by another run: %s", ref, exc)
            continue
        result["granted" if created else "already"] |= purchase
        if commit_every and created and not len(result["granted"]) % commit_every:
            sudo_env.cr.commit()
    _logger.info(
        "free basic electricity: %s granted, %s already granted, %s not granted",
        len(result["granted"]),
        len(result["already"]),
        len(result["errors"]),
    )
    return result


def describe(env, result):
    """``grant_due``'s result in words, for the Manager's button."""
    text = env._(
        "%(granted)s tenant(s) granted free basic electricity, %(already)s already had it "
        "this month.",
        granted=len(result["granted"]),
        already=len(result["already"]),
    )
    if result["errors"]:
        text += " " + env._(
            "Not granted: %s", "; ".join(f"{t.name}: {m}" for t, m in result["errors"])
        )
    return text
