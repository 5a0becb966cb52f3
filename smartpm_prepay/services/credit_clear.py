"""Clearing a meter's credit on the meter itself, exactly once (issue 16 §3/§4).

``queue_clear(meter, wh, origin)`` mints a clear-credit token (services/credit_token.py,
docs/meter-contract.md "Clear-credit token"; on a money-mode meter a money clear token of
milli-units of the currency, "Money clear-credit token") on the meter's next transfer number
and queues
the engine-only ``clear_credit`` job that enters it (docs/job-protocol.md). The meter applies
a transfer number once, refuses a cancelled one, and the token is signed with the meter's
token key under its own MAC domain: a retried or replayed job never clears twice, and no
bridge can mint one.

``origin`` is the record that asked (a settlement, a meter replacement...): it is kept on the
job, and told the outcome through optional methods of its model:

- ``origin._on_credit_cleared(job, result)`` once, when the meter took the token (or had
  it already); ``result["cleared_kwh"]`` is what the meter removed;
- ``origin._on_credit_clear_failed(job)`` when the job fails for good (the meter
  refused the token, attempts used up) or is cancelled while pending. The token may have
  reached the meter before the answer was lost: never queue another clear for it, retry
  the job (``queue_clear`` for the same origin and meter returns it again).

Both run in the job's environment (superuser; as the engine when a bridge reported), inside
the transaction of the report: an exception there refuses the whole report (nothing of it
is kept). ``queue_clear`` checks no access right of the caller's: it is server code
for flows that made their own checks (as ``vending.vend`` is), never an RPC method.
"""

from odoo.exceptions import UserError

from . import credit_token, engine, vending

CLEAR_JOB_PRIORITY = vending.CREDIT_JOB_PRIORITY


def unit_key(meter):
    """The payload key of what a clear takes off ``meter``, in the unit of its credit: ``wh``
    (kWh mode) or ``money_units`` (milli-units of the currency, money mode)."""
    return "money_units" if meter.credit_mode == "money" else "wh"


def _mint(meter, key, transfer_number, units):
    if unit_key(meter) == "money_units":
        return credit_token.mint_money_clear(key, meter.serial_number, transfer_number, units)
    return credit_token.mint_clear(key, meter.serial_number, transfer_number, units)


def queue_clear(meter, wh, origin):
    """Queue the clear_credit job that takes ``wh`` (int, above 0: Wh, or milli-units of the
    currency on a money-mode meter, ``unit_key``) off ``meter``; return it.

    Under the meter's lock (the one sales take: transfer numbers follow one another). The
    same origin asking again for the same meter gets its job back, whatever its state: one
    origin, one transfer number, so neither a double click nor a retry after a lost answer
    ever clears twice. A failed or cancelled job is run again with ``action_retry`` (the
    same token: the meter applies its transfer number at most once)."""
    meter.ensure_one()
    origin.ensure_one()
    if isinstance(wh, bool) or not isinstance(wh, int) or not 0 < wh <= credit_token.UINT32_MAX:
        raise UserError(
            meter.env._(
                "Meter %(meter)s: the credit to clear is a whole number of %(unit)s above 0, "
                "not %(wh)r.",
                meter=meter.serial_number,
                unit=meter.env._("Wh")
                if unit_key(meter) == "wh"
                else meter.env._("thousandths of the currency"),
                wh=wh,
            )
        )
    env = meter.env(su=True)
    meter = meter.with_env(env)
    meter._check_can_command()
    key = meter._get_token_key()
    if not key:
        raise UserError(
            meter.env._(
                "Meter %s has no token key: its credit cannot be cleared until the owner "
                "enters the meter's key.",
                meter.serial_number,
            )
        )
    vending.lock_meter(env, meter)
    Job = env["smartpm.meter.job"]
    existing = Job.search(
        [
            ("meter_id", "=", meter.id),
            ("job_type", "=", "clear_credit"),
            ("origin_model", "=", origin._name),
            ("origin_res_id", "=", origin.id),
        ],
        limit=1,
    )
    if existing:
        if existing.payload.get(unit_key(meter)) != wh:
            raise UserError(
                meter.env._(
                    "Meter %(meter)s: %(origin)s has its clear of %(old)s Wh (retry that "
                    "job if it failed); it cannot clear %(new)s Wh too.",
                    meter=meter.serial_number,
                    origin=origin.display_name,
                    old=existing.payload.get(unit_key(meter)),
                    new=wh,
                )
            )
        return existing.with_env(origin.env)
    transfer_number = meter.last_transfer_number + 1
    if transfer_number > credit_token.UINT32_MAX:
        raise UserError(
            meter.env._("Meter %s has used up its transfer numbers.", meter.serial_number)
        )
    token = _mint(meter, key, transfer_number, wh)
    engine.as_engine(meter).last_transfer_number = transfer_number
    job = engine.create(
        Job,
        [
            {
                "meter_id": meter.id,
                "job_type": "clear_credit",
                "payload": {
                    "token": token.hex().upper(),
                    "transfer_number": transfer_number,
                    unit_key(meter): wh,
                },
                "priority": CLEAR_JOB_PRIORITY,
                "idempotency_key": f"clear_credit-{meter.id}-{transfer_number}",
                "origin_model": origin._name,
                "origin_res_id": origin.id,
            }
        ],
    )
    meter.message_post(
        body=meter.env._(
            "Clearing %(credit)s of credit on the meter (transfer %(number)s, for %(origin)s).",
            credit=_credit_text(meter, wh / 1000),
            number=transfer_number,
            origin=origin.display_name,
        )
    )
    return job.with_env(origin.env)


def _credit_text(meter, value):
    """``value`` of the meter's credit in words: "4.5 kWh", or the money of a money meter."""
    if value is None:
        return ""
    if meter.credit_mode == "money":
        tariff = meter._get_tariff()
        currency = tariff.currency_id if tariff else meter.company_id.currency_id
        return f"{currency.symbol or currency.name} {value:.3f}".rstrip("0").rstrip(".")
    return meter.env._("%s kWh", value)


def _origin(job):
    if not job.origin_model or not job.origin_res_id or job.origin_model not in job.env:
        return None
    record = job.env[job.origin_model].browse(job.origin_res_id).exists()
    return record or None


def on_cleared(job, result):
    """The meter took the token (or had it already): called from the job's _on_done."""
    meter = job.meter_id.sudo()
    meter.message_post(
        body=job.env._(
            "Credit cleared on the meter: %(credit)s (transfer %(number)s%(again)s).",
            credit=_credit_text(meter, result.get("cleared_money", result.get("cleared_kwh"))),
            number=result.get("transfer_number"),
            again=job.env._(", already applied") if result.get("already_applied") else "",
        )
    )
    origin = _origin(job)
    if origin is not None and hasattr(origin, "_on_credit_cleared"):
        origin._on_credit_cleared(job, result)


def on_clear_failed(job):
    """The job failed for good or was cancelled: called from the job model."""
    origin = _origin(job)
    if origin is not None and hasattr(origin, "_on_credit_clear_failed"):
        origin._on_credit_clear_failed(job)


def resign_if_key_changed(job):
    """A clear token the meter refused because the meter's key in Odoo was wrong (the owner
    has corrected it since) is signed again with the current key before a retry: same
    transfer number and Wh, so the meter still applies that transfer at most once."""
    job.ensure_one()
    job = engine.as_engine(job)
    meter = job.meter_id
    key = meter._get_token_key()
    payload = job.payload or {}
    old = bytes.fromhex(payload.get("token") or "")
    verify = (
        credit_token.verify_money_clear
        if unit_key(meter) == "money_units"
        else credit_token.verify_clear
    )
    if not key or verify(key, meter.serial_number, old):
        return False
    number, wh = payload["transfer_number"], payload[unit_key(meter)]
    token = _mint(meter, key, number, wh)
    job.payload = dict(payload, token=token.hex().upper())
    meter.message_post(
        body=job.env._(
            "Clear-credit token of transfer %s signed again with the meter's current token key.",
            number,
        )
    )
    return True
