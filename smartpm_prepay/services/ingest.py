"""Readings and meter events into Odoo: idempotent, batched, from a bridge or from Odoo.

The same reading (meter, OBIS, time) or event sent twice is stored once
(docs/job-protocol.md). Events whose code the meter contract names become alarms.
"""

import json
from datetime import datetime, timezone

from odoo import fields
from odoo.exceptions import UserError

from . import tenant_periods

# Event codes of docs/meter-contract.md that become alarms.
EVENT_ALARMS = {
    ("standard", 59): "credit_trip",
    ("standard", 60): "load_trip",
    ("standard", 64): "low_credit",
    ("standard", 65): "zero_credit",
    ("standard", 80): "load_reconnected",  # load trip: reconnected by itself after the delay
    ("standard", 81): "load_lockout",  # load trip: reconnections of the hour used up
    ("standard", 86): "friendly_deferred",  # credit trip deferred: a friendly period
    ("fraud", 40): "cover_open",
    ("fraud", 91): "over_current",
    ("fraud", 92): "reverse_connection",
    ("fraud", 93): "token_forged",  # token refused: MAC invalid
    ("fraud", 94): "token_other_meter",  # token refused: another meter's
    ("fraud", 95): "token_cancelled",  # token refused: its transfer was cancelled
}


def parse_time(env, value):
    """A time from a bridge or a result (ISO 8601, maybe with an offset) as naive UTC; now
    when there is none."""
    if not value:
        return fields.Datetime.now()
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise UserError(env._("not an ISO 8601 time: %r", value)) from exc
    if parsed.tzinfo:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


def _meter_ids_by_key(env, items):
    """Map the ``meter``/``meter_id``/``serial_number`` of ingested items to meter ids."""
    serials = {
        str(i.get("serial_number") or i.get("meter"))
        for i in items
        if not i.get("meter_id") and (i.get("serial_number") or i.get("meter"))
    }
    by_serial = {}
    if serials:
        env.cr.execute(
            "SELECT serial_number, id FROM smartpm_meter WHERE serial_number = ANY(%s)",
            (list(serials),),
        )
        by_serial = dict(env.cr.fetchall())
    out = []
    for item in items:
        meter_id = item.get("meter_id") or by_serial.get(
            str(item.get("serial_number") or item.get("meter"))
        )
        if not meter_id:
            raise UserError(
                env._("ingest: unknown meter in %s", json.dumps(item, default=str)[:200])
            )
        out.append(int(meter_id))
    return out


def ingest(env, readings, events):
    """Store readings and meter events; the same one sent twice is stored once."""
    readings, events = list(readings or []), list(events or [])
    new_readings = _insert_readings(env, readings) if readings else 0
    new_events = _create_alarms(env, events) if events else 0
    env["smartpm.reading"].invalidate_model()
    return {"readings": new_readings, "events": new_events}


def _insert_readings(env, readings):
    """One INSERT for the batch; a reading already stored is skipped. Returns how many were
    new."""
    meter_ids = _meter_ids_by_key(env, readings)
    rows = []
    for meter_id, r in zip(meter_ids, readings, strict=True):
        if not r.get("obis") or not isinstance(r.get("value"), (int, float)):
            raise UserError(env._("ingest: every reading needs an obis code and a numeric value"))
        rows.append(
            (
                meter_id,
                str(r["obis"]),
                parse_time(env, r.get("time")),
                float(r["value"]),
                r.get("unit") or None,
                r.get("source") or "bridge",
                r.get("job_id"),
                env.uid,
            )
        )
    env.cr.execute(
        """
        INSERT INTO smartpm_reading
            (meter_id, company_id, tenant_id, obis, reading_time, value, unit, source, job_id,
             create_uid, write_uid, create_date, write_date)
        SELECT v.meter_id, m.company_id, {tenant_at}, v.obis, v.t, v.value, v.unit,
               v.source, v.job_id,
               v.uid, v.uid,
               clock_timestamp() at time zone 'utc', clock_timestamp() at time zone 'utc'
          FROM unnest(%s::int[], %s::varchar[], %s::timestamp[], %s::float8[],
                      %s::varchar[], %s::varchar[], %s::int[], %s::int[])
               AS v(meter_id, obis, t, value, unit, source, job_id, uid)
          JOIN smartpm_meter m ON m.id = v.meter_id
        ON CONFLICT (meter_id, obis, reading_time) DO NOTHING
        """.format(tenant_at=tenant_periods.tenant_at_sql("v.meter_id", "v.t")),
        [list(col) for col in zip(*rows, strict=True)],
    )
    return env.cr.rowcount


def _create_alarms(env, events):
    """The events that mean an alarm (EVENT_ALARMS) become alarms, once each. Returns how
    many were new."""
    meter_ids = _meter_ids_by_key(env, events)
    alarms = []
    for meter_id, e in zip(meter_ids, events, strict=True):
        alarm_type = EVENT_ALARMS.get((e.get("log"), e.get("code")))
        if alarm_type:
            alarms.append(
                {
                    "meter_id": meter_id,
                    "alarm_type": alarm_type,
                    # whole seconds, as the column stores them: the same event read from
                    # the log and pushed compares equal (services/push.py)
                    "meter_time": parse_time(env, e.get("time")).replace(microsecond=0),
                    "event_code": e.get("code"),
                }
            )
    return env["smartpm.alarm"].sudo()._create_from_events(alarms)


def ingest_held(env, bridge_id, readings, events):
    """ingest() for a bridge: only readings and events of meters whose jobs ``bridge_id``
    (of this user) holds under a live lease; otherwise the whole call is refused and
    nothing is stored. An unknown meter and another bridge's get the same answer."""
    readings, events = list(readings or []), list(events or [])
    if not all(isinstance(i, dict) for i in readings + events):
        raise UserError(env._("ingest: readings and events must be objects"))
    env.flush_all()
    env.cr.execute(
        """
        SELECT m.id, m.serial_number FROM smartpm_meter_job j
          JOIN smartpm_meter m ON m.id = j.meter_id
         WHERE j.state = 'claimed' AND j.bridge_id = %s AND j.bridge_user_id = %s
           AND j.lease_until >= (clock_timestamp() at time zone 'utc')
        """,
        (bridge_id, env.uid),
    )
    held = env.cr.fetchall()
    by_key = {str(mid): mid for mid, _s in held} | {serial: mid for mid, serial in held}
    rows = []
    for item in readings + events:
        key = item.get("meter_id") or item.get("serial_number") or item.get("meter")
        meter_id = by_key.get(str(key)) if key not in (None, False, "") else None
        if not meter_id:
            raise UserError(
                env._(
                    "ingest: meter %(meter)r has no job that bridge %(bridge)r holds; "
                    "nothing was stored",
                    meter=str(key)[:40],
                    bridge=bridge_id,
                )
            )
        rows.append(dict(item, meter_id=meter_id))
    return ingest(env, rows[: len(readings)], rows[len(readings) :])
