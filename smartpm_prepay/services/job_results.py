"""What a finished job means for its meter: credit, relay, state, readings and events.

The queue engine (``job_queue``) calls ``apply_result`` once a bridge's result is accepted
(lease held, result checked); it knows nothing of credit or relays. Every result may report
the meter's credit, relay and readings and events, whatever the job type (the meter said
so); a job type that means more for the meter has its function in ``RESULT_EFFECTS``. What
a job means for a sale (``add_credit``, ``check_token``) or a reading task is in the job
model's ``_on_done`` hooks, called last.
"""

from odoo import fields

from . import emergency, friendly, ingest, notify, standing_charge, tou
from .obis import OBIS_CREDIT, OBIS_RELAY


def _disconnected(meter):
    """The relay was opened on command: an active meter is now disconnected."""
    return {"state": "disconnected"} if meter.state == "active" else {}


def _reconnected(meter):
    """The relay was closed on command: a disconnected meter is active again."""
    return {"state": "active"} if meter.state == "disconnected" else {}


RESULT_EFFECTS = {
    "disconnect": _disconnected,
    "reconnect": _reconnected,
}


def apply_result(job, result, readings_out=None, invocation_counter=None):
    """What a finished job tells Odoo about its meter. Readings go to ``readings_out`` when
    given (a batch stores them in one statement), else straight to the database.
    ``invocation_counter``: the HLS-GMAC counter of the result, checked by the engine; the
    meter's stored one is only ever raised."""
    meter = job.meter_id.sudo()
    relay_before = meter.relay_state
    readings = _numeric_readings(result)
    vals = {"online_state": "online", "last_seen": fields.Datetime.now()}
    vals.update(_reported_state(result))
    effect = RESULT_EFFECTS.get(job.job_type)
    if effect:
        vals.update(effect(meter))
    vals.update(meter._smartpm_load_state_from_result(job.job_type, result))
    vals.update(emergency.values_from_result(meter, result))
    vals.update(tou.on_result(meter, result))
    if invocation_counter is not None and invocation_counter > (meter.invocation_counter or 0):
        vals["invocation_counter"] = invocation_counter
    vals.update(_state_from_readings(readings))
    if meter.credit_mode == "money" and "credit_kwh" in vals:
        vals["credit_money"] = vals.pop("credit_kwh")  # currency, not kWh (services/tou.py)
    _write_meter(meter, vals)
    if job.job_type == "reconnect" and result.get("relay") == "connected":
        # the operator's reconnect ends a load trip or lockout
        meter._smartpm_clear_load_alarms(
            ("load_trip", "load_lockout"), meter.env._("Reconnected by an operator.")
        )
    friendly.on_result(meter, result)
    standing_charge.on_result(meter, result)
    if job.job_type == "sync_clock":
        meter._smartpm_check_clock_drift(job, result)
    if (
        relay_before == "disconnected"
        and meter.relay_state == "connected"
        and job.job_type not in ("add_credit", "check_token")  # the delivery says it
    ):
        notify.meter_reconnected(meter, job)
    _store_readings(job, readings, readings_out)
    if result.get("events"):
        ingest.ingest(job.env, [], [dict(e, meter_id=meter.id) for e in result["events"]])
    job._on_done(result)


def _reported_state(result):
    """The credit and relay a result reports (add_credit, check_token, ping...)."""
    vals = {}
    if "credit_kwh" in result:
        vals["credit_kwh"] = float(result["credit_kwh"])
    if "credit_money" in result:  # a money-mode meter (services/tou.py)
        vals["credit_money"] = float(result["credit_money"])
    if result.get("relay") in ("connected", "disconnected"):
        vals["relay_state"] = result["relay"]
    return vals


def _numeric_readings(result):
    # Only numbers are readings; other values (clock, names) stay in the job's result.
    return [
        r
        for r in result.get("readings") or []
        if isinstance(r.get("value"), (int, float)) and r.get("obis")
    ]


def _state_from_readings(readings):
    """The credit and relay objects among the readings (they win over the result's keys)."""
    vals = {}
    for reading in readings:
        if reading["obis"] == OBIS_CREDIT:
            # The credit object counts Wh (docs/meter-contract.md) unless the unit says kWh.
            value = float(reading["value"])
            # (a money-mode meter's bridge says "currency": already scaled, services/tou.py)
            is_kwh = str(reading.get("unit") or "").lower() in ("kwh", "currency")
            vals["credit_kwh"] = value if is_kwh else value / 1000.0
        elif reading["obis"] == OBIS_RELAY:
            vals["relay_state"] = "connected" if reading["value"] else "disconnected"
    return vals


def _write_meter(meter, vals):
    if "state" not in vals and vals.get("relay_state", meter.relay_state) == meter.relay_state:
        # nothing worth a chatter line changed: skip tracking, it costs per job
        meter = meter.with_context(tracking_disable=True)
    meter.write(vals)


def _store_readings(job, readings, readings_out):
    # A reading task's values stay on the task until "Save data" (not in statistics).
    if not readings or (job.payload or {}).get("task_id"):
        return
    rows = [dict(r, meter_id=job.meter_id.id, source="job", job_id=job.id) for r in readings]
    if readings_out is None:
        ingest.ingest(job.env, rows, [])
    else:
        readings_out.extend(rows)
