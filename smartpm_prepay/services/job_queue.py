"""The meter job engine: claiming, leases, retries and the effects of results.

Plain functions taking an ``env``; the models' RPC methods check access and call them.
Every state change is one short SQL statement guarded by the lease, so two bridges can never
both execute or both report the same job.
"""

import json
import logging
import select
from datetime import datetime, timedelta, timezone

import psycopg2

from odoo import fields
from odoo.exceptions import UserError
from odoo.sql_db import connection_info_for

_logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "smartpm_job"
BACKOFF_BASE_S = 10
BACKOFF_MAX_S = 3600
MAX_LEASE_S = 3600
MAX_CLAIM = 500

# Event codes of docs/meter-contract.md that become alarms.
EVENT_ALARMS = {
    ("standard", 59): "credit_trip",
    ("standard", 60): "load_trip",
    ("standard", 64): "low_credit",
    ("standard", 65): "zero_credit",
    ("fraud", 40): "cover_open",
    ("fraud", 91): "over_current",
    ("fraud", 92): "reverse_connection",
}
OBIS_CREDIT = "0.0.19.10.0.255"
OBIS_RELAY = "0.0.96.3.10.255"


class LeaseLost(UserError):
    """A report from a bridge that does not hold the job's lease: nothing was changed."""


def backoff_seconds(attempt):
    """Exponential back-off after the ``attempt``-th failed attempt (1-based)."""
    return min(BACKOFF_BASE_S * 2 ** max(attempt - 1, 0), BACKOFF_MAX_S)


def _now():
    return fields.Datetime.now()


def notify(env):
    # Delivered by PostgreSQL at commit only, so a woken bridge always finds the job.
    env.cr.execute(f"NOTIFY {NOTIFY_CHANNEL}")


def claim(env, bridge_id, limit, lease_seconds):
    """Lease up to ``limit`` due jobs to ``bridge_id``; return them as dicts for the bridge."""
    if not bridge_id or not isinstance(bridge_id, str):
        raise UserError("claim: bridge_id must be a non-empty string")
    limit = max(1, min(int(limit), MAX_CLAIM))
    lease_seconds = max(1, min(int(lease_seconds), MAX_LEASE_S))
    env.flush_all()
    env.cr.execute(
        """
        WITH due AS (
            SELECT j.id FROM smartpm_meter_job j
             WHERE (j.state = 'pending' AND j.next_attempt_at <= (clock_timestamp() at time zone 'utc'))
                OR (j.state = 'claimed' AND j.lease_until < (clock_timestamp() at time zone 'utc')
                    AND j.attempt_count < j.max_attempts)
             ORDER BY j.priority, j.id
             LIMIT %s
             FOR NO KEY UPDATE SKIP LOCKED
        )
        UPDATE smartpm_meter_job j
           SET state = 'claimed', bridge_id = %s,
               lease_until = (clock_timestamp() at time zone 'utc') + make_interval(secs => %s),
               attempt_count = COALESCE(j.attempt_count, 0) + 1,
               date_claimed = (clock_timestamp() at time zone 'utc'),
               write_date = (clock_timestamp() at time zone 'utc'), write_uid = %s
          FROM due WHERE j.id = due.id
        RETURNING j.id
        """,
        (limit, bridge_id, lease_seconds, env.uid),
    )
    ids = [row[0] for row in env.cr.fetchall()]
    jobs = env["smartpm.meter.job"].sudo().browse(ids)
    jobs.invalidate_recordset()
    return [job._prepare_bridge_values() for job in jobs.sorted(lambda j: (j.priority, j.id))]


def _lock_held_job(env, job_id, bridge_id):
    """Lock the job row; refuse unless ``bridge_id`` holds a live lease on it."""
    env.flush_all()
    env.cr.execute(
        """
        SELECT id FROM smartpm_meter_job
         WHERE id = %s AND state = 'claimed' AND bridge_id = %s
           AND lease_until >= (clock_timestamp() at time zone 'utc')
           FOR NO KEY UPDATE
        """,
        (int(job_id), bridge_id),
    )
    if not env.cr.fetchone():
        raise LeaseLost(
            f"job {job_id}: bridge {bridge_id!r} does not hold its lease (expired, "
            "reassigned or already reported); the report was ignored"
        )
    job = env["smartpm.meter.job"].sudo().browse(int(job_id))
    job.invalidate_recordset()
    return job


def complete(env, job_id, bridge_id, result):
    if not isinstance(result, dict):
        raise UserError("complete: result must be a JSON object")
    job = _lock_held_job(env, job_id, bridge_id)
    job.write(
        {
            "state": "done",
            "result": result,
            "error": False,
            "date_done": _now(),
            "lease_until": False,
        }
    )
    apply_result(job, result)
    return True


def fail(env, job_id, bridge_id, error, retryable=True):
    job = _lock_held_job(env, job_id, bridge_id)
    error = str(error or "unknown error")[:4000]
    if retryable and job.attempt_count < job.max_attempts:
        next_at = _now() + timedelta(seconds=backoff_seconds(job.attempt_count))
        job.write(
            {"state": "pending", "error": error, "next_attempt_at": next_at, "lease_until": False}
        )
    else:
        job.write({"state": "failed", "error": error, "lease_until": False, "date_done": _now()})
        job._on_final_failure()
    return {"state": job.state, "next_attempt_at": fields.Datetime.to_string(job.next_attempt_at)}


def extend_lease(env, job_ids, bridge_id, lease_seconds):
    lease_seconds = max(1, min(int(lease_seconds), MAX_LEASE_S))
    ids = [int(i) for i in job_ids or []]
    if not ids:
        return []
    env.cr.execute(
        """
        UPDATE smartpm_meter_job
           SET lease_until = (clock_timestamp() at time zone 'utc') + make_interval(secs => %s)
         WHERE id = ANY(%s) AND state = 'claimed' AND bridge_id = %s
           AND lease_until >= (clock_timestamp() at time zone 'utc')
        RETURNING id
        """,
        (lease_seconds, ids, bridge_id),
    )
    held = sorted(row[0] for row in env.cr.fetchall())
    env["smartpm.meter.job"].browse(held).invalidate_recordset()
    return held


def release(env, job_ids, bridge_id):
    """Give back jobs a stopping bridge claimed but did not start: no attempt is spent."""
    ids = [int(i) for i in job_ids or []]
    if not ids:
        return []
    env.cr.execute(
        """
        UPDATE smartpm_meter_job
           SET state = 'pending', bridge_id = NULL, lease_until = NULL,
               attempt_count = GREATEST(attempt_count - 1, 0),
               next_attempt_at = (clock_timestamp() at time zone 'utc')
         WHERE id = ANY(%s) AND state = 'claimed' AND bridge_id = %s
        RETURNING id
        """,
        (ids, bridge_id),
    )
    released = sorted(row[0] for row in env.cr.fetchall())
    env["smartpm.meter.job"].browse(released).invalidate_recordset()
    if released:
        notify(env)
    return released


def cancel(env, job_ids):
    """Cancel jobs no bridge holds; the guard in SQL keeps a concurrent claim() safe."""
    env.flush_all()
    env.cr.execute(
        """
        UPDATE smartpm_meter_job
           SET state = 'cancelled', date_done = (clock_timestamp() at time zone 'utc')
         WHERE id = ANY(%s) AND state IN ('pending', 'failed')
        RETURNING id
        """,
        ([int(i) for i in job_ids],),
    )
    ids = [row[0] for row in env.cr.fetchall()]
    env["smartpm.meter.job"].browse(ids).invalidate_recordset()
    return ids


def requeue_expired(env):
    """Cron: jobs whose bridge died. Retry them, or fail them after their last attempt."""
    env.cr.execute(
        """
        UPDATE smartpm_meter_job
           SET state = CASE WHEN attempt_count < max_attempts THEN 'pending' ELSE 'failed' END,
               error = COALESCE(error || E'\\n', '') || 'lease expired without a report from '
                       || COALESCE(bridge_id, '?'),
               bridge_id = NULL, lease_until = NULL,
               next_attempt_at = (clock_timestamp() at time zone 'utc'),
               date_done = CASE WHEN attempt_count < max_attempts THEN NULL
                                ELSE (clock_timestamp() at time zone 'utc') END
         WHERE state = 'claimed' AND lease_until < (clock_timestamp() at time zone 'utc')
        RETURNING id, state
        """
    )
    rows = env.cr.fetchall()
    jobs = env["smartpm.meter.job"].sudo().browse([r[0] for r in rows])
    jobs.invalidate_recordset()
    jobs.filtered(lambda j: j.state == "failed")._on_final_failure()
    return len(rows)


def wait_for_jobs(env, timeout):
    """Long-poll: return True as soon as a job may be due, False after ``timeout`` seconds."""
    timeout = max(0.0, min(float(timeout), 30.0))
    env.cr.execute(
        """
        SELECT 1 FROM smartpm_meter_job
         WHERE state = 'pending' AND next_attempt_at <= (clock_timestamp() at time zone 'utc') LIMIT 1
        """
    )
    if env.cr.fetchone() or not timeout:
        return bool(env.cr.rowcount)
    # A dedicated autocommit connection: LISTEN on Odoo's transactional cursor would only
    # see notifications after this request's transaction ends.
    _name, params = connection_info_for(env.cr.dbname)
    conn = psycopg2.connect(**params)
    try:
        conn.autocommit = True
        with conn.cursor() as cr:
            cr.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return bool(select.select([conn], [], [], timeout)[0])
    finally:
        conn.close()


# ------------------------------------------------------------------------- results
def _parse_time(value):
    if not value:
        return _now()
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise UserError(f"not an ISO 8601 time: {value!r}") from exc
    if parsed.tzinfo:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


def apply_result(job, result):
    """What a finished job tells Odoo about its meter."""
    meter = job.meter_id.sudo()
    vals = {"online_state": "online", "last_seen": _now()}
    if "credit_kwh" in result:
        vals["credit_kwh"] = float(result["credit_kwh"])
    if result.get("relay") in ("connected", "disconnected"):
        vals["relay_state"] = result["relay"]
    if job.job_type == "disconnect" and meter.state == "active":
        vals["state"] = "disconnected"
    elif job.job_type == "reconnect" and meter.state == "disconnected":
        vals["state"] = "active"
    counter = result.get("invocation_counter")
    if isinstance(counter, int) and counter > (meter.invocation_counter or 0):
        vals["invocation_counter"] = counter
    readings = result.get("readings") or []
    # Only numbers are readings: a read of the clock brings back an octet string.
    readings = [r for r in readings if isinstance(r.get("value"), (int, float))]
    for reading in readings:
        if reading.get("obis") == OBIS_CREDIT:
            # The credit object counts Wh (docs/meter-contract.md) unless the unit says kWh.
            value = float(reading["value"])
            is_kwh = str(reading.get("unit") or "").lower() == "kwh"
            vals["credit_kwh"] = value if is_kwh else value / 1000.0
    meter.write(vals)
    # A reading task's values stay on the task until "Save data" (not in statistics).
    if readings and not (job.payload or {}).get("task_id"):
        ingest(
            job.env,
            [dict(r, meter_id=meter.id, source="job", job_id=job.id) for r in readings],
            [],
        )
    if result.get("events"):
        ingest(job.env, [], [dict(e, meter_id=meter.id) for e in result["events"]])
    job._on_done(result)


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
            raise UserError(f"ingest: unknown meter in {json.dumps(item, default=str)[:200]}")
        out.append(int(meter_id))
    return out


def ingest(env, readings, events):
    """Store readings and meter events; the same one sent twice is stored once."""
    readings, events = list(readings or []), list(events or [])
    new_readings = new_events = 0
    if readings:
        meter_ids = _meter_ids_by_key(env, readings)
        rows = []
        for meter_id, r in zip(meter_ids, readings):
            if not r.get("obis") or r.get("value") is None:
                raise UserError("ingest: every reading needs an obis code and a value")
            rows.append(
                (
                    meter_id,
                    str(r["obis"]),
                    _parse_time(r.get("time")),
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
                (meter_id, obis, reading_time, value, unit, source, job_id,
                 create_uid, write_uid, create_date, write_date, company_id)
            SELECT v.meter_id, v.obis, v.t, v.value, v.unit, v.source, v.job_id, v.uid, v.uid,
                   clock_timestamp() at time zone 'utc', clock_timestamp() at time zone 'utc',
                   m.company_id  -- the stored related field: the company record rule needs it
              FROM unnest(%s::int[], %s::varchar[], %s::timestamp[], %s::float8[],
                          %s::varchar[], %s::varchar[], %s::int[], %s::int[])
                   AS v(meter_id, obis, t, value, unit, source, job_id, uid)
              JOIN smartpm_meter m ON m.id = v.meter_id
            ON CONFLICT (meter_id, obis, reading_time) DO NOTHING
            """,
            [list(col) for col in zip(*rows)],
        )
        new_readings = env.cr.rowcount
    if events:
        meter_ids = _meter_ids_by_key(env, events)
        alarms = []
        for meter_id, e in zip(meter_ids, events):
            alarm_type = EVENT_ALARMS.get((e.get("log"), e.get("code")))
            if alarm_type:
                alarms.append(
                    {
                        "meter_id": meter_id,
                        "alarm_type": alarm_type,
                        "meter_time": _parse_time(e.get("time")),
                        "event_code": e.get("code"),
                    }
                )
        new_events = env["smartpm.alarm"].sudo()._create_from_events(alarms)
    env.invalidate_all()
    return {"readings": new_readings, "events": new_events}
