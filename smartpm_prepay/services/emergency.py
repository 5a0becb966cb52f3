"""Emergency credit (issue 17 §1, docs/meter-contract.md "Emergency credit").

The tariff says how much (kWh; on a money-mode meter, currency: ``emergency_credit_money``)
and below which credit level a tenant may take it; the meter holds it as a second Credit
object, in the unit of its credit. Settings reach the meters once per change
(``set_emergency_credit``); a take (portal, cashier) is one ``take_emergency_credit`` job
per meter at a time; what the meter reports (status, kWh in use, kWh a token repaid) comes
back in job results (``values_from_result``). The meter's own button shows in the next
result that reads the object (ping, billing read, add_credit).
"""

from odoo.exceptions import UserError

from . import engine

PUSH_PRIORITY = 20
TAKE_PRIORITY = 5  # the tenant may be in the dark: before reads and settings
STATUSES = ("enabled", "selectable", "in_use", "exhausted")
TAKEN = ("in_use", "exhausted")
SETTING_FIELDS = (
    "emergency_credit_kwh",
    "emergency_threshold_kwh",
    "emergency_credit_money",
    "emergency_threshold_money",
    "pricing_mode",
)


def is_money(meter):
    return meter.credit_mode == "money"


def settings_of(meter):
    """(amount, credit level) in force on a meter, in its credit's unit (kWh, or currency
    on a money-mode meter): its tariff's (own or tenant's)."""
    tariff = meter._get_tariff()
    if not tariff:
        return 0.0, 0.0
    if is_money(meter):
        return tariff.emergency_credit_money, tariff.emergency_threshold_money
    return tariff.emergency_credit_kwh, tariff.emergency_threshold_kwh


def payload_of(meter):
    """The ``set_emergency_credit`` payload: kWh keys, or money keys on a money meter."""
    amount, level = settings_of(meter)
    unit = "money" if is_money(meter) else "kwh"
    return {f"amount_{unit}": amount, f"threshold_{unit}": level}


def level_text(meter, level):
    """The credit level in words, in the meter's unit."""
    if is_money(meter):
        tariff = meter._get_tariff()
        return (tariff.currency_id if tariff else meter.company_id.currency_id).format(level)
    return meter.env._("%s kWh", level)


def settings_before(meters):
    return {m.id: settings_of(m) for m in meters}


def push_changed(meters, before):
    """Push to the meters whose settings in force changed since ``before`` (once per change;
    a pending push of an older setting is superseded)."""
    if before:
        changed = meters.filtered(lambda m: m.id in before and settings_of(m) != before[m.id])
        push(changed)


def push(meters):
    meters = meters.sudo()._commandable()
    meters._supersede("set_emergency_credit")
    vals_list = []
    for meter in meters:
        vals_list.append(
            {
                "meter_id": meter.id,
                "job_type": "set_emergency_credit",
                "payload": payload_of(meter),
                "priority": PUSH_PRIORITY,
            }
        )
    return engine.create(meters.env["smartpm.meter.job"], vals_list)


def refusal(meter):
    """Why this meter's tenant may not take emergency credit now (None: they may)."""
    amount, level = settings_of(meter)
    if not amount:
        return meter.env._(
            "The tariff of meter %(meter)s gives no emergency credit.", meter=meter.display_name
        )
    if not meter._commandable():
        return meter.env._("Meter %(meter)s is not in service.", meter=meter.display_name)
    if meter.emergency_status in TAKEN:
        return meter.env._(
            "Emergency credit is already in use on meter %(meter)s: the next purchase repays it.",
            meter=meter.display_name,
        )
    credit = meter.credit_money if is_money(meter) else meter.credit_kwh
    if credit > level:
        return meter.env._(
            "Emergency credit becomes available on meter %(meter)s when its credit falls to "
            "%(level)s.",
            meter=meter.display_name,
            level=level_text(meter, level),
        )
    return None


def pending_take(meter):
    return (
        meter.env["smartpm.meter.job"]
        .sudo()
        .search(
            [
                ("meter_id", "=", meter.id),
                ("job_type", "=", "take_emergency_credit"),
                ("state", "in", ("pending", "claimed")),
            ],
            limit=1,
        )
    )


def take(meter, origin):
    """Queue the take of emergency credit on ``meter`` (sudo record; the caller checked who
    may). Idempotent: while a take is on its way, the same job is returned (the meter row is
    locked, so two requests at once make one job). Raises UserError when not eligible."""
    meter = meter.sudo()
    meter.ensure_one()
    meter.env.cr.execute("SELECT id FROM smartpm_meter WHERE id = %s FOR NO KEY UPDATE", [meter.id])
    meter.invalidate_recordset(["credit_kwh", "credit_money", "emergency_status"])
    job = pending_take(meter)
    if job:
        return job
    reason = refusal(meter)
    if reason:
        raise UserError(reason)
    job = engine.create(
        meter.env["smartpm.meter.job"],
        [
            {
                "meter_id": meter.id,
                "job_type": "take_emergency_credit",
                "payload": {},
                "priority": TAKE_PRIORITY,
                "max_attempts": 5,
            }
        ],
    )
    meter.message_post(body=meter.env._("Emergency credit requested (%(origin)s).", origin=origin))
    return job


def max_in_use(meter):
    """The most emergency credit ``meter`` can have in use, in its credit's unit, as Odoo
    knows it: the amount its tariff gives now, or a larger one an earlier setting gave it
    (the ``set_emergency_credit`` jobs the meter took: it keeps a setting until the next
    push). A meter gives no more than it was told; a report above this is not the meter's."""
    meter = meter.sudo()
    amount = settings_of(meter)[0] or 0.0
    key = "amount_money" if is_money(meter) else "amount_kwh"
    pushed = meter.env["smartpm.meter.job"].search(
        [
            ("meter_id", "=", meter.id),
            ("job_type", "=", "set_emergency_credit"),
            ("state", "=", "done"),
        ]
    )
    for job in pushed:
        value = (job.payload or {}).get(key)
        if isinstance(value, (int, float)):
            amount = max(amount, float(value))
    return amount


def values_from_result(meter, result):
    """Meter values from a job result that reports the emergency credit object."""
    status = result.get("emergency_status")
    if status not in STATUSES:
        return {}
    vals = {"emergency_status": status}
    for key in ("emergency_in_use_kwh", "emergency_in_use_money"):
        if isinstance(result.get(key), (int, float)):
            vals[key] = float(result[key])
    return vals
