"""Job executors: one job dict in (docs/job-protocol.md), one result dict out.

execute_job() opens one association for the job, runs it and releases, whatever happens.
Payload checks and result shaping are plain functions, tested without a meter.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable

from .codec import decode_data, encode_data, iso, parse_datetime, parse_iso, scale, to_json
from .dlms import MeterConnection
from .errors import InvocationCountersUsedUp, JobError, MeterRefused, MeterUnreachable
from .obis import (
    CLOCK,
    CLOCK_TIME,
    CREDIT,
    CREDIT_CURRENT_AMOUNT,
    CREDIT_LIMIT,
    CREDIT_WARNING_THRESHOLD,
    DISCONNECT_CONTROL,
    EVENT_LOGS,
    KNOWN_IC,
    LIMITER,
    LIMITER_THRESHOLD_ACTIVE,
    RELAY_CONTROL_STATE,
    RELAY_OUTPUT_STATE,
    RELAY_REMOTE_DISCONNECT,
    RELAY_REMOTE_RECONNECT,
    SCALED_CLASSES,
    TOKEN_ENTER,
    TOKEN_GATEWAY,
    TOKEN_LOG,
    TOKEN_LOG_CANCEL,
    TOKEN_LOG_ENERGY,
    TOKEN_LOG_QUERY,
    TRANSFER_APPLIED,
    TRANSFER_CANCELLED,
    TRANSFER_NOT_APPLIED,
    normalize_obis,
)

TOKEN_ALREADY_APPLIED = 3  # ACTION result read-write-denied: transfer number already used
# The meter's other refusals of a credit token (docs/meter-contract.md): none is retried.
TOKEN_REFUSALS = {
    11: "the token was minted for another meter",
    12: "the meter does not take this token format",
    13: "the token's MAC does not verify under this meter's token key (forged or wrong key)",
    15: "its transfer number was cancelled on the meter (the sale was reversed)",
}
# A token is sent only while the lease has at least this long to run (or a quarter of the
# lease, if shorter): after the lease Odoo may ask the meter to cancel the transfer.
LEASE_MARGIN_S = 5.0
MAX_TOKEN_BYTES = 64
UINT32_MAX = 0xFFFFFFFF
JOB_TYPES = (
    "read",
    "read_events",
    "add_credit",
    "disconnect",
    "reconnect",
    "set_load_limit",
    "set_thresholds",
    "sync_clock",
    "ping",
    "check_token",
    "clear_credit",
)
CLEAR_TOKEN_LEN = 21  # docs/meter-contract.md "Clear-credit token"
CLEAR_TOKEN_TYPE = 0x02


def execute_job(job: dict, *, deadline_s: float | None = None) -> dict:
    """Run one job on its meter; returns the result dict of docs/job-protocol.md.

    deadline_s: seconds from now the whole job (connect, association, release) may take;
    None: six times the meter's timeout_s. Raises MeterUnreachable (retry later),
    MeterRefused (the meter said no) or JobError (retryable=False for a bad payload).
    HLS-GMAC: the result carries 'invocation_counter' (the last one used), and so does
    any error raised after the association started (attribute exc.invocation_counter).
    """
    job_type = job.get("job_type")
    runner = RUNNERS.get(job_type)
    if runner is None:
        raise JobError(f"unknown job type {job_type!r}", retryable=False)
    payload = job.get("payload") or {}
    if not isinstance(payload, dict):
        raise JobError("payload must be an object", retryable=False)
    checked = VALIDATORS.get(job_type, lambda p: p)(payload)  # before touching the meter
    if job_type in ("add_credit", "clear_credit"):
        checked["lease_check"] = lambda: check_lease(job)
        checked["lease_check"]()  # no association for a job whose lease is gone
    meter = job.get("meter") or {}
    with MeterConnection.from_job_meter(
        meter,
        deadline_s=deadline_s,
        invocation_counter_limit=job.get("invocation_counter_limit"),
    ) as conn:
        result = runner(conn, checked)
        counter = conn.invocation_counter
    if counter is not None:
        result["invocation_counter"] = counter
    return result


# --- payload checks (pure) ------------------------------------------------------------------
def _number(payload: dict, key: str, *, minimum=None, allow_negative=False) -> float:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise JobError(f"payload.{key} must be a number", retryable=False)
    if not allow_negative and value < 0:
        raise JobError(f"payload.{key} must not be negative", retryable=False)
    if minimum is not None and value < minimum:
        raise JobError(f"payload.{key} must be at least {minimum}", retryable=False)
    return value


def validate_add_credit(payload: dict) -> dict:
    """The token is opaque to the bridge (minted and signed by Odoo, checked by the meter):
    it is sent as is. Only its first 4 bytes, the transfer number, are read, for the result.
    `transfer_number` and `kwh` of the payload are for people reading the job."""
    token = payload.get("token")
    try:
        raw = bytes.fromhex(token) if isinstance(token, str) else None
    except ValueError:
        raw = None
    if not raw or not 4 <= len(raw) <= MAX_TOKEN_BYTES:
        raise JobError(
            f"payload.token must be the credit token in hex (4 to {MAX_TOKEN_BYTES} bytes)",
            retryable=False,
        )
    return {"token": raw, "transfer_number": int.from_bytes(raw[:4], "big")}


def validate_clear_credit(payload: dict) -> dict:
    """The clear-credit token is minted and signed by Odoo, checked by the meter, sent as
    is. The bridge reads its head (type, transfer number, Wh) only to check that the payload
    says the same and to report what was cleared."""
    token = payload.get("token")
    try:
        raw = bytes.fromhex(token) if isinstance(token, str) else None
    except ValueError:
        raw = None
    if not raw or len(raw) != CLEAR_TOKEN_LEN or raw[0] != CLEAR_TOKEN_TYPE:
        raise JobError(
            f"payload.token must be a clear-credit token in hex ({CLEAR_TOKEN_LEN} bytes, "
            f"type {CLEAR_TOKEN_TYPE})",
            retryable=False,
        )
    number, wh = int.from_bytes(raw[1:5], "big"), int.from_bytes(raw[5:9], "big")
    for key, value in (("transfer_number", number), ("wh", wh)):
        given = payload.get(key)
        if isinstance(given, bool) or not isinstance(given, int) or given != value:
            raise JobError(
                f"payload.{key} must be the token's ({value}), not {given!r}", retryable=False
            )
    if wh <= 0:
        raise JobError("payload.wh must be above 0", retryable=False)
    return {"token": raw, "transfer_number": number, "wh": wh}


def check_lease(job: dict, now: float | None = None) -> None:
    """Refuse to go on with a job whose lease is gone or about to go: raise a retryable
    JobError. The bridge service stores the lease's end on the job (``lease_deadline``, on
    the time.monotonic() clock; absent when the executor runs outside the service)."""
    deadline = job.get("lease_deadline")
    if deadline is None:
        return
    lease_s = job.get("lease_seconds")
    margin = LEASE_MARGIN_S
    if isinstance(lease_s, (int, float)) and not isinstance(lease_s, bool) and lease_s > 0:
        margin = min(margin, lease_s / 4.0)
    left = deadline - (time.monotonic() if now is None else now)
    if left < margin:
        raise JobError(
            f"job {job.get('id')}: lease {'gone' if left <= 0 else f'ends in {left:.1f} s'}; "
            "dropped before sending anything to the meter"
        )


def validate_check_token(payload: dict) -> dict:
    number = payload.get("transfer_number")
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= UINT32_MAX:
        raise JobError("payload.transfer_number must be a uint32", retryable=False)
    return {"transfer_number": number}


def validate_set_load_limit(payload: dict) -> dict:
    value = _number(payload, "load_limit_w")
    if value != int(value) or value > UINT32_MAX:
        raise JobError("payload.load_limit_w must be a whole number of watts", retryable=False)
    return {"load_limit_w": int(value)}


def validate_set_thresholds(payload: dict) -> dict:
    low = _number(payload, "low_credit_kwh")
    trip = _number(payload, "trip_kwh", allow_negative=True)
    if trip > low:
        raise JobError("payload.trip_kwh must not be above low_credit_kwh", retryable=False)
    return {"low_credit_wh": round(low * 1000), "trip_wh": round(trip * 1000)}


def validate_read(payload: dict) -> dict:
    objects = payload.get("objects")
    if not isinstance(objects, list) or not objects:
        raise JobError("payload.objects must be a non-empty list", retryable=False)
    checked = []
    for item in objects:
        if not isinstance(item, dict):
            raise JobError("payload.objects items must be objects", retryable=False)
        try:
            obis = normalize_obis(item.get("obis"))
        except (ValueError, TypeError) as e:
            raise JobError(f"bad OBIS {item.get('obis')!r}", retryable=False) from e
        ic = item.get("ic") or KNOWN_IC.get(obis, 1)
        attribute = item.get("attribute") or 2
        if not isinstance(ic, int) or not isinstance(attribute, int):
            raise JobError(f"{obis}: ic and attribute must be integers", retryable=False)
        checked.append({"obis": obis, "ic": ic, "attribute": attribute})
    try:
        start, end = parse_iso(payload.get("from")), parse_iso(payload.get("to"))
    except ValueError as e:
        raise JobError(f"bad from/to: {e}", retryable=False) from e
    return {"objects": checked, "from": start, "to": end}


def validate_read_events(payload: dict) -> dict:
    try:
        return {"since": parse_iso(payload.get("since"))}
    except ValueError as e:
        raise JobError(f"bad since: {e}", retryable=False) from e


# --- shaping (pure) ----------------------------------------------------------------------------
def relay_name(output_state) -> str:
    return "connected" if output_state else "disconnected"


def wh_to_kwh(value) -> float:
    return round(int(value) / 1000.0, 3)


def events_from_rows(log: str, rows: list[list], since: dt.datetime | None) -> list[dict]:
    """Event-log rows [time, code, ...] → event dicts, oldest first, not before `since`."""
    events = []
    for row in rows:
        when = next((v for v in row if isinstance(v, dt.datetime)), None)
        code = next((v for v in row if isinstance(v, int) and not isinstance(v, bool)), None)
        if when is None or code is None:
            continue
        if since is not None and when < since:
            continue
        events.append({"log": log, "code": code, "time": iso(when)})
    events.sort(key=lambda e: e["time"])
    return events


def profile_rows_to_json(rows: list[list], scalers: list) -> list[list]:
    """Profile rows → [iso, v1, v2...] with each column's scaler applied."""
    out = []
    for row in rows:
        out.append(
            [to_json(scale(v, s)) if s else to_json(v) for v, s in zip(row, scalers, strict=True)]
        )
    return out


# --- runners -----------------------------------------------------------------------------------
def _credit_and_relay(conn: MeterConnection) -> tuple[float, str]:
    credit = conn.get(CREDIT[0], CREDIT[1], CREDIT_CURRENT_AMOUNT)
    relay = conn.get(DISCONNECT_CONTROL[0], DISCONNECT_CONTROL[1], RELAY_OUTPUT_STATE)
    return wh_to_kwh(credit), relay_name(relay)


def _meter_time(conn: MeterConnection) -> str | None:
    value = conn.get(CLOCK[0], CLOCK[1], CLOCK_TIME)
    if isinstance(value, (bytes, bytearray)) and len(value) == 12:
        value = parse_datetime(bytes(value))
    return iso(value) if isinstance(value, dt.datetime) else None


def run_read(conn: MeterConnection, p: dict) -> dict:
    now = iso(dt.datetime.now(dt.timezone.utc).replace(microsecond=0))
    readings, profiles, errors = [], {}, {}
    for item in p["objects"]:
        obis, ic, attribute = item["obis"], item["ic"], item["attribute"]
        try:
            if ic == 7 and attribute == 2:
                rows = (
                    conn.get_profile(obis, p["from"], p["to"])
                    if (p["from"] or p["to"])
                    else conn.get_profile(obis)
                )
                scalers = []
                for cls, col_obis, col_attr in conn.capture_objects(obis):
                    if col_attr == 2 and cls in SCALED_CLASSES:
                        scalers.append(conn.scaler_unit(col_obis, cls)[0])
                    else:
                        scalers.append(None)
                profiles[obis] = profile_rows_to_json(rows, scalers)
            else:
                value, unit = conn.get_scaled(obis, ic, attribute)
                if (
                    (obis, ic) == CLOCK
                    and attribute == CLOCK_TIME
                    and isinstance(value, (bytes, bytearray))
                ):
                    value = iso(parse_datetime(bytes(value)))  # a time, not a hex string
                elif (obis, ic) == CREDIT and attribute == CREDIT_CURRENT_AMOUNT:
                    value, unit = wh_to_kwh(value), "kWh"  # credit is kWh everywhere in Odoo
                readings.append({"obis": obis, "value": to_json(value), "unit": unit, "time": now})
        except MeterRefused as e:
            errors[obis] = str(e)
        except JobError as e:
            if e.retryable and not _is_protocol_error(e):
                raise  # meter gone: the whole job is retried
            errors[obis] = str(e)
    return {"readings": readings, "profiles": profiles, "errors": errors}


def _is_protocol_error(e: JobError) -> bool:
    # not the meter gone nor the job's invocation counters used up: those end the whole job
    return not isinstance(e, (MeterUnreachable, InvocationCountersUsedUp))


def run_read_events(conn: MeterConnection, p: dict) -> dict:
    events = []
    for log, (obis, _ic) in EVENT_LOGS.items():
        if p["since"] is not None:
            rows = conn.get_profile(
                obis, p["since"], dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
            )
        else:
            rows = conn.get_profile(obis)
        events.extend(events_from_rows(log, rows, p["since"]))
    events.sort(key=lambda e: e["time"])
    return {"events": events}


def run_add_credit(conn: MeterConnection, p: dict) -> dict:
    if "lease_check" in p:
        p["lease_check"]()  # right before the token goes out: never after the lease
    try:
        code, _ = conn.action(
            TOKEN_GATEWAY[0],
            TOKEN_GATEWAY[1],
            TOKEN_ENTER,
            encode_data(9, p["token"]),
            accept=(0, TOKEN_ALREADY_APPLIED),
        )
    except MeterRefused as e:
        if e.code in TOKEN_REFUSALS:
            raise MeterRefused(
                f"meter refused the credit token of transfer {p['transfer_number']}: "
                f"{TOKEN_REFUSALS[e.code]} (result {e.code})",
                code=e.code,
            ) from e
        raise
    credit_kwh, relay = _credit_and_relay(conn)
    return {
        "transfer_number": p["transfer_number"],
        "already_applied": code == TOKEN_ALREADY_APPLIED,
        "credit_kwh": credit_kwh,
        "relay": relay,
    }


def run_clear_credit(conn: MeterConnection, p: dict) -> dict:
    """Enter the clear-credit token. "Already applied" (a retry after a cut connection) is
    success: the Wh that transfer took off is then read from the meter's token log (method
    3), so the result says what the meter did, not what the job asked."""
    number = p["transfer_number"]
    if "lease_check" in p:
        p["lease_check"]()  # right before the token goes out: never after the lease
    try:
        code, _ = conn.action(
            TOKEN_GATEWAY[0],
            TOKEN_GATEWAY[1],
            TOKEN_ENTER,
            encode_data(9, p["token"]),
            accept=(0, TOKEN_ALREADY_APPLIED),
        )
    except MeterRefused as e:
        if e.code in TOKEN_REFUSALS:
            raise MeterRefused(
                f"meter refused the clear-credit token of transfer {number}: "
                f"{TOKEN_REFUSALS[e.code]} (result {e.code})",
                code=e.code,
            ) from e
        raise
    cleared_wh = p["wh"]
    if code == TOKEN_ALREADY_APPLIED:
        moved = _token_log_energy(conn, number)
        if moved != -p["wh"]:
            raise JobError(
                f"transfer {number} is applied on the meter but moved {moved} Wh, not the "
                f"clear of {p['wh']} Wh this job carries",
                retryable=False,
            )
        cleared_wh = -moved
    credit_kwh, relay = _credit_and_relay(conn)
    return {
        "transfer_number": number,
        "already_applied": code == TOKEN_ALREADY_APPLIED,
        "cleared_kwh": wh_to_kwh(cleared_wh),
        "credit_kwh": credit_kwh,
        "relay": relay,
    }


def _token_log_energy(conn: MeterConnection, number: int) -> int:
    """Token log method 3: Wh the transfer moved (+ added, - cleared; no data = none)."""
    obis, ic = TOKEN_LOG
    _code, data = conn.action(obis, ic, TOKEN_LOG_ENERGY, encode_data(6, number))
    value = decode_data(data) if data else 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise JobError(f"token log energy of transfer {number}: unexpected answer {value!r}")
    return value


def _token_log_call(conn: MeterConnection, method: int, number: int) -> int:
    obis, ic = TOKEN_LOG
    _code, data = conn.action(obis, ic, method, encode_data(6, number))
    status = decode_data(data) if data else None
    statuses = (TRANSFER_NOT_APPLIED, TRANSFER_APPLIED, TRANSFER_CANCELLED)
    if status not in statuses:
        raise JobError(f"token log of transfer {number}: unexpected answer {status!r}")
    return status


def run_check_token(conn: MeterConnection, p: dict) -> dict:
    """Did the meter apply this transfer number? If not, cancel it (the meter refuses its
    token for ever), so that "not applied" is final. The meter's cancel answers "applied"
    when the token got in first, so there is no gap between the two calls."""
    number = p["transfer_number"]
    status = _token_log_call(conn, TOKEN_LOG_QUERY, number)
    if status == TRANSFER_NOT_APPLIED:
        status = _token_log_call(conn, TOKEN_LOG_CANCEL, number)
    if status == TRANSFER_NOT_APPLIED:
        raise JobError(f"meter did not cancel transfer {number}")
    credit_kwh, relay = _credit_and_relay(conn)
    return {
        "transfer_number": number,
        "applied": status == TRANSFER_APPLIED,
        "cancelled": status == TRANSFER_CANCELLED,
        "credit_kwh": credit_kwh,
        "relay": relay,
    }


def _relay_result(conn: MeterConnection) -> dict:
    obis, ic = DISCONNECT_CONTROL
    output = conn.get(obis, ic, RELAY_OUTPUT_STATE)
    control = conn.get(obis, ic, RELAY_CONTROL_STATE)
    return {"relay": relay_name(output), "control_state": int(control)}


def run_disconnect(conn: MeterConnection, p: dict) -> dict:
    obis, ic = DISCONNECT_CONTROL
    conn.action(obis, ic, RELAY_REMOTE_DISCONNECT, encode_data(15, 0))
    return _relay_result(conn)


def run_reconnect(conn: MeterConnection, p: dict) -> dict:
    obis, ic = DISCONNECT_CONTROL
    conn.action(obis, ic, RELAY_REMOTE_RECONNECT, encode_data(15, 0))
    return _relay_result(conn)


def run_set_load_limit(conn: MeterConnection, p: dict) -> dict:
    obis, ic = LIMITER
    conn.set_value(obis, ic, LIMITER_THRESHOLD_ACTIVE, p["load_limit_w"])
    return {"load_limit_w": int(conn.get(obis, ic, LIMITER_THRESHOLD_ACTIVE))}


def run_set_thresholds(conn: MeterConnection, p: dict) -> dict:
    obis, ic = CREDIT
    # lower the trip first when both move down, so the meter never sees trip > low
    order = [(CREDIT_WARNING_THRESHOLD, p["low_credit_wh"]), (CREDIT_LIMIT, p["trip_wh"])]
    current_low = conn.get(obis, ic, CREDIT_WARNING_THRESHOLD)
    if isinstance(current_low, int) and p["low_credit_wh"] < current_low:
        order.reverse()
    for attr, value in order:
        conn.set_value(obis, ic, attr, value)
    return {
        "low_credit_kwh": wh_to_kwh(conn.get(obis, ic, CREDIT_WARNING_THRESHOLD)),
        "trip_kwh": wh_to_kwh(conn.get(obis, ic, CREDIT_LIMIT)),
    }


def run_sync_clock(conn: MeterConnection, p: dict) -> dict:
    before = _meter_time(conn)
    obis, ic = CLOCK
    now = dt.datetime.now(dt.timezone.utc)
    conn.set(obis, ic, CLOCK_TIME, encode_data(9, now))
    return {"meter_time_before": before, "meter_time": _meter_time(conn)}


def run_ping(conn: MeterConnection, p: dict) -> dict:
    meter_time = _meter_time(conn)
    credit_kwh, relay = _credit_and_relay(conn)
    return {"meter_time": meter_time, "credit_kwh": credit_kwh, "relay": relay}


RUNNERS: dict[str, Callable[[MeterConnection, dict], dict]] = {
    "read": run_read,
    "read_events": run_read_events,
    "add_credit": run_add_credit,
    "disconnect": run_disconnect,
    "reconnect": run_reconnect,
    "set_load_limit": run_set_load_limit,
    "set_thresholds": run_set_thresholds,
    "sync_clock": run_sync_clock,
    "ping": run_ping,
    "check_token": run_check_token,
    "clear_credit": run_clear_credit,
}
VALIDATORS: dict[str, Callable[[dict], dict]] = {
    "read": validate_read,
    "read_events": validate_read_events,
    "add_credit": validate_add_credit,
    "set_load_limit": validate_set_load_limit,
    "set_thresholds": validate_set_thresholds,
    "check_token": validate_check_token,
    "clear_credit": validate_clear_credit,
}
