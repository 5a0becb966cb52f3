"""Job executors: one job dict in (docs/job-protocol.md), one result dict out.

execute_job() opens one association for the job, runs it and releases, whatever happens.
Payload checks and result shaping are plain functions, tested without a meter.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable

from .codec import (
    datetime_to_bytes,
    decode_data,
    encode_array,
    encode_data,
    encode_structure,
    iso,
    parse_datetime,
    parse_iso,
    scale,
    to_json,
)
from .dlms import MeterConnection
from .errors import InvocationCountersUsedUp, JobError, MeterRefused, MeterUnreachable
from .log import event
from .obis import (
    CHARGE_ACTIVATE_PASSIVE,
    CHARGE_PERIOD,
    CHARGE_TIME_BASED,
    CHARGE_TOTAL_PAID,
    CHARGE_TYPE,
    CHARGE_UNIT_ACTIVE,
    CHARGE_UNIT_PASSIVE,
    CLOCK,
    CLOCK_TIME,
    CREDIT,
    CREDIT_AVAILABLE_THRESHOLD,
    CREDIT_CURRENT_AMOUNT,
    CREDIT_INVOKE,
    CREDIT_LIMIT,
    CREDIT_PRESET_AMOUNT,
    CREDIT_STATUS,
    CREDIT_WARNING_THRESHOLD,
    KNOWN_IC,
    RELAY_CONTROL_MODE,
    RELAY_CONTROL_STATE,
    RELAY_OUTPUT_STATE,
    RELAY_REMOTE_DISCONNECT,
    RELAY_REMOTE_RECONNECT,
    SCALED_CLASSES,
    TOKEN_ENTER,
    TOKEN_LOG_CANCEL,
    TOKEN_LOG_EMERGENCY,
    TOKEN_LOG_ENERGY,
    TOKEN_LOG_QUERY,
    TRANSFER_APPLIED,
    TRANSFER_CANCELLED,
    TRANSFER_NOT_APPLIED,
    normalize_obis,
)
from .object_map import EVENT_LOG_FUNCTIONS, objects_of

log = logging.getLogger("meter_bridge.executors")

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
    "set_load_recovery",
    "set_emergency_credit",
    "take_emergency_credit",
    "set_friendly_schedule",
    "set_push",
    "set_charge",
    "set_tariff_calendar",
)
MONEY_TOKEN_LEN = 21  # docs/meter-contract.md "Money token"
MONEY_TOKEN_TYPE = 0x03
MONEY_SCALE = 1000  # a money-mode meter counts 1/1000 of the currency
MAX_TOU_RATE = 63
MAX_CHARGE_PER_UNIT = 32767
CHARGE_PRICE_SCALE = -4
PRICE_SCALE_RANGE = (-4, 0)  # price scales of the consumption charge (docs/meter-contract.md)
CLEAR_TOKEN_LEN = 21  # docs/meter-contract.md "Clear-credit token"
CLEAR_TOKEN_TYPE = 0x02
MONEY_CLEAR_TOKEN_TYPE = 0x04  # docs/meter-contract.md "Money clear-credit token"
# what a clear takes off, by token type: the payload key of its amount
CLEAR_UNIT_KEYS = {CLEAR_TOKEN_TYPE: "wh", MONEY_CLEAR_TOKEN_TYPE: "money_units"}
# a money-mode meter's result keys: the same figures in currency (milli-units / 1000)
MONEY_RESULT_KEYS = {
    "credit_kwh": "credit_money",
    "cleared_kwh": "cleared_money",
    "standing_charge_kwh": "standing_charge_money",
    "standing_charge_paid_kwh": "standing_charge_paid_money",
    "emergency_in_use_kwh": "emergency_in_use_money",
    "emergency_amount_kwh": "emergency_amount_money",
    "emergency_threshold_kwh": "emergency_threshold_money",
    "emergency_repaid_kwh": "emergency_repaid_money",
    "low_credit_kwh": "low_credit_money",
    "trip_kwh": "trip_money",
    "friendly_limit_kwh": "friendly_limit_money",
}
# Load-trip recovery (docs/meter-contract.md): control modes with and without local
# reconnection (Blue Book IC 70: modes 5 and 6 add transition h to modes 1/2 and 3/4).
WITH_LOCAL_RECONNECT = {1: 5, 2: 5, 3: 6, 4: 6, 5: 5, 6: 6}
WITHOUT_LOCAL_RECONNECT = {5: 1, 6: 3}
RECOVERY_STATES = {0: "normal", 1: "waiting", 2: "lockout"}
MAX_RECONNECT_DELAY_S = 86400
MAX_RECONNECT_ATTEMPTS = 255
# Emergency credit (docs/meter-contract.md): Credit IC 112 credit_status names.
EMERGENCY_STATUSES = {
    0: "enabled",
    1: "selectable",
    2: "invoked",
    3: "in_use",
    4: "exhausted",
}
MAX_EMERGENCY_KWH = 1_000_000.0
# Friendly periods (docs/meter-contract.md): what one schedule may hold.
MAX_FRIENDLY_WINDOWS = 64
MAX_SPECIAL_DAYS = 128
MAX_UTC_OFFSET_MIN = 840
FRIENDLY_DAY_ID = 1
FRIENDLY_STATES = {0: "outside", 1: "inside", 2: "deferring"}
# Standing charge (docs/meter-contract.md): the unit charge is a long (int16) times
# 10^price_scale; the period a whole number of seconds.
MAX_CHARGE_WH = 0x7FFF * 10**6
MAX_CHARGE_PERIOD_S = 31 * 86400


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
    if job_type == "take_emergency_credit":  # its refusal names the meter's credit unit
        checked["money"] = meter.get("credit_mode") == "money"
    with MeterConnection.from_job_meter(
        meter,
        deadline_s=deadline_s,
        invocation_counter_limit=job.get("invocation_counter_limit"),
    ) as conn:
        # the vend benchmark's timeline (DEBUG: one check when off)
        event(log, logging.DEBUG, "meter_associated", job_id=job.get("id"))
        result = runner(conn, checked)
        if meter.get("credit_mode") == "money":
            result = money_mode_result(conn, job_type, result)
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
    if len(raw) == MONEY_TOKEN_LEN and raw[0] == MONEY_TOKEN_TYPE:  # money mode
        return {"token": raw, "transfer_number": int.from_bytes(raw[1:5], "big")}
    return {"token": raw, "transfer_number": int.from_bytes(raw[:4], "big")}


def validate_clear_credit(payload: dict) -> dict:
    """The clear-credit token is minted and signed by Odoo, checked by the meter, sent as
    is. The bridge reads its head (type, transfer number, amount) only to check that the
    payload says the same and to report what was cleared. A money clear token (type 4, a
    money-mode meter) carries milli-units of the currency, the payload's ``money_units``;
    internally both are ``wh``: the meter's own credit unit."""
    token = payload.get("token")
    try:
        raw = bytes.fromhex(token) if isinstance(token, str) else None
    except ValueError:
        raw = None
    if not raw or len(raw) != CLEAR_TOKEN_LEN or raw[0] not in CLEAR_UNIT_KEYS:
        raise JobError(
            f"payload.token must be a clear-credit token in hex ({CLEAR_TOKEN_LEN} bytes, "
            f"type {CLEAR_TOKEN_TYPE}, or {MONEY_CLEAR_TOKEN_TYPE} for money)",
            retryable=False,
        )
    unit = CLEAR_UNIT_KEYS[raw[0]]
    number, wh = int.from_bytes(raw[1:5], "big"), int.from_bytes(raw[5:9], "big")
    for key, value in (("transfer_number", number), (unit, wh)):
        given = payload.get(key)
        if isinstance(given, bool) or not isinstance(given, int) or given != value:
            raise JobError(
                f"payload.{key} must be the token's ({value}), not {given!r}", retryable=False
            )
    if wh <= 0:
        raise JobError(f"payload.{unit} must be above 0", retryable=False)
    return {
        "token": raw,
        "transfer_number": number,
        "wh": wh,
        "unit": "Wh" if unit == "wh" else "milli-units",
    }


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


def validate_set_load_recovery(payload: dict) -> dict:
    out = {}
    for key, top in (
        ("reconnect_delay_s", MAX_RECONNECT_DELAY_S),
        ("reconnect_attempts_per_hour", MAX_RECONNECT_ATTEMPTS),
    ):
        value = _number(payload, key)
        if value != int(value) or value > top:
            raise JobError(f"payload.{key} must be a whole number from 0 to {top}", retryable=False)
        out[key] = int(value)
    return out


def validate_set_emergency_credit(payload: dict) -> dict:
    """{"amount_kwh", "threshold_kwh"}; a money-mode meter's {"amount_money",
    "threshold_money"} (currency): internally the meter's credit unit (Wh, milli-units)."""
    unit = "money" if "amount_money" in payload else "kwh"
    amount = _number(payload, f"amount_{unit}")
    threshold = _number(payload, f"threshold_{unit}", allow_negative=True)
    for key, value in ((f"amount_{unit}", amount), (f"threshold_{unit}", threshold)):
        if abs(value) > MAX_EMERGENCY_KWH:
            raise JobError(f"payload.{key} must be within {MAX_EMERGENCY_KWH:g}", retryable=False)
    return {"amount_wh": int(round(amount * 1000)), "threshold_wh": int(round(threshold * 1000))}


def validate_set_charge(payload: dict) -> dict:
    """{"charge_kwh": kWh taken every period (3 decimals: whole Wh), "period_s": seconds};
    a money-mode meter's {"charge_money": currency (3 decimals: whole milli-units), ...}.
    Internally ``charge_wh``: the meter's credit unit (Wh, or milli-units)."""
    key = "charge_money" if "charge_money" in payload else "charge_kwh"
    kwh = _number(payload, key)
    wh = round(kwh * 1000)
    if abs(kwh * 1000 - wh) > 1e-6 or wh > MAX_CHARGE_WH:
        raise JobError(
            f"payload.{key} must be whole {'Wh' if key == 'charge_kwh' else 'milli-units'} "
            "within range",
            retryable=False,
        )
    try:
        unit_charge_scaled(wh)
    except ValueError as e:
        raise JobError(f"payload.{key}: {e}", retryable=False) from e
    period = _whole(payload.get("period_s"), "period_s", 1, MAX_CHARGE_PERIOD_S)
    return {"charge_wh": wh, "period_s": period}


def unit_charge_scaled(wh: int) -> tuple[int, int]:
    """(charge_per_unit, price_scale) with charge_per_unit x 10^price_scale == wh exactly
    and charge_per_unit a long (int16): a charge that does not fit is refused, never
    rounded (Odoo's figure and the meter's must be the same, unit for unit)."""
    scale = 0
    while wh > 0x7FFF and wh % 10 == 0:
        wh //= 10
        scale += 1
    if wh > 0x7FFF:
        raise ValueError("not representable as a unit charge (a long times a power of ten)")
    return wh, scale


def validate_take_emergency_credit(payload: dict) -> dict:
    if payload:
        raise JobError("take_emergency_credit takes no payload", retryable=False)
    return {}


def _whole(value, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise JobError(
            f"payload.{key} must be a whole number from {low} to {high}", retryable=False
        )
    return value


def validate_set_friendly_schedule(payload: dict) -> dict:
    """Weekly windows (weekday 0 = Monday, minutes of the local day, start < end, no window
    across midnight: split it), special days as ISO dates, the limit (<= 0) in kWh
    (``friendly_limit_kwh``) or, on a money-mode meter, in currency
    (``friendly_limit_money``), all in the local time UTC + utc_offset_min. Internally
    ``friendly_limit_wh``: the meter's credit unit (Wh, or milli-units)."""
    offset = _whole(payload.get("utc_offset_min"), "utc_offset_min", -MAX_UTC_OFFSET_MIN, 840)
    windows = payload.get("windows")
    if not isinstance(windows, list) or len(windows) > MAX_FRIENDLY_WINDOWS:
        raise JobError(
            f"payload.windows must be a list of at most {MAX_FRIENDLY_WINDOWS}", retryable=False
        )
    checked = []
    for i, w in enumerate(windows):
        if not isinstance(w, dict):
            raise JobError(f"payload.windows[{i}] must be an object", retryable=False)
        day = _whole(w.get("weekday"), f"windows[{i}].weekday", 0, 6)
        start = _whole(w.get("start_min"), f"windows[{i}].start_min", 0, 1439)
        end = _whole(w.get("end_min"), f"windows[{i}].end_min", 1, 1440)
        if end <= start:
            raise JobError(f"payload.windows[{i}] must end after it starts", retryable=False)
        checked.append((day, start, end))
    days = payload.get("special_days")
    if not isinstance(days, list) or len(days) > MAX_SPECIAL_DAYS:
        raise JobError(
            f"payload.special_days must be a list of at most {MAX_SPECIAL_DAYS} dates",
            retryable=False,
        )
    dates = []
    for i, d in enumerate(days):
        try:
            dates.append(dt.date.fromisoformat(d))
        except (TypeError, ValueError) as e:
            raise JobError(
                f"payload.special_days[{i}] must be a YYYY-MM-DD date", retryable=False
            ) from e
    key = "friendly_limit_money" if "friendly_limit_money" in payload else "friendly_limit_kwh"
    limit = _number(payload, key, allow_negative=True)
    if limit > 0:
        raise JobError(f"payload.{key} must be at or below 0", retryable=False)
    return {
        "utc_offset_min": offset,
        "windows": checked,
        "special_days": sorted(set(dates)),
        "friendly_limit_wh": round(limit * 1000),
    }


def validate_set_thresholds(payload: dict) -> dict:
    """{"low_credit_kwh", "trip_kwh"}; a money-mode meter's {"low_credit_money",
    "trip_money"} (currency): internally the meter's credit unit (Wh, milli-units)."""
    unit = "money" if "low_credit_money" in payload else "kwh"
    low = _number(payload, f"low_credit_{unit}")
    trip = _number(payload, f"trip_{unit}", allow_negative=True)
    if trip > low:
        raise JobError(f"payload.trip_{unit} must not be above low_credit_{unit}", retryable=False)
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
    m = objects_of(conn)
    credit = conn.get(*m["credit"], m.attribute("credit"))
    relay = conn.get(*m["relay"], RELAY_OUTPUT_STATE)
    return wh_to_kwh(credit), relay_name(relay)


def _meter_time(conn: MeterConnection) -> str | None:
    m = objects_of(conn)
    value = conn.get(*m["clock"], m.attribute("clock"))
    if isinstance(value, (bytes, bytearray)) and len(value) == 12:
        value = parse_datetime(bytes(value))
    return iso(value) if isinstance(value, dt.datetime) else None


def run_read(conn: MeterConnection, p: dict) -> dict:
    # to the microsecond: Odoo stores one reading per meter, OBIS and time (a retry's
    # repeat is stored once), so two reads within one second must not share a time
    now = iso(dt.datetime.now(dt.timezone.utc))
    readings, profiles, errors = [], {}, {}
    m = objects_of(conn)
    for item in p["objects"]:
        # Odoo names the SmartPM contract's objects; the meter may hold them elsewhere
        obis, ic, attribute = item["obis"], item["ic"], item["attribute"]
        at, at_ic, at_attr = m.translate(obis, ic, attribute)
        try:
            if ic == 7 and attribute == 2:
                rows = (
                    conn.get_profile(at, p["from"], p["to"])
                    if (p["from"] or p["to"])
                    else conn.get_profile(at)
                )
                scalers = []
                for cls, col_obis, col_attr in conn.capture_objects(at):
                    if col_attr == 2 and cls in SCALED_CLASSES:
                        scalers.append(conn.scaler_unit(col_obis, cls)[0])
                    else:
                        scalers.append(None)
                profiles[obis] = profile_rows_to_json(rows, scalers)
            else:
                value, unit = conn.get_scaled(at, at_ic, at_attr)
                if (
                    (obis, ic) == CLOCK  # as Odoo names it
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
    result = {"readings": readings, "profiles": profiles, "errors": errors}
    if any((i["obis"], i["ic"]) == CREDIT for i in p["objects"]):
        result.update(_emergency_if_any(conn))  # a billing read reports emergency credit
    return result


def _is_protocol_error(e: JobError) -> bool:
    # not the meter gone nor the job's invocation counters used up: those end the whole job
    return not isinstance(e, (MeterUnreachable, InvocationCountersUsedUp))


def run_read_events(conn: MeterConnection, p: dict) -> dict:
    events = []
    m = objects_of(conn)
    for log, function in EVENT_LOG_FUNCTIONS.items():
        if not m.has(function):
            continue  # this meter's profile has no such log
        obis = m[function][0]
        if p["since"] is not None:
            rows = conn.get_profile(
                obis, p["since"], dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
            )
        else:
            rows = conn.get_profile(obis)
        events.extend(events_from_rows(log, rows, p["since"]))
    events.sort(key=lambda e: e["time"])
    return {"events": events}


def _enter_token(conn: MeterConnection, p: dict, what: str) -> int:
    """Enter the token of ``p`` in the token gateway, right after the lease check: the
    meter's result, 0 or TOKEN_ALREADY_APPLIED. A refusal of the token names ``what`` was
    refused, its transfer number and the meter's reason."""
    if "lease_check" in p:
        p["lease_check"]()  # right before the token goes out: never after the lease
    try:
        code, _ = conn.action(
            *objects_of(conn)["token_gateway"],
            TOKEN_ENTER,
            encode_data(9, p["token"]),
            accept=(0, TOKEN_ALREADY_APPLIED),
        )
    except MeterRefused as e:
        if e.code in TOKEN_REFUSALS:
            raise MeterRefused(
                f"meter refused the {what} of transfer {p['transfer_number']}: "
                f"{TOKEN_REFUSALS[e.code]} (result {e.code})",
                code=e.code,
            ) from e
        raise
    event(log, logging.DEBUG, "token_entered", transfer_number=p["transfer_number"], code=code)
    return code


def run_add_credit(conn: MeterConnection, p: dict) -> dict:
    code = _enter_token(conn, p, "credit token")
    credit_kwh, relay = _credit_and_relay(conn)
    return {
        "transfer_number": p["transfer_number"],
        "already_applied": code == TOKEN_ALREADY_APPLIED,
        "credit_kwh": credit_kwh,
        "relay": relay,
        **_emergency_if_any(conn, p["transfer_number"]),
    }


def run_clear_credit(conn: MeterConnection, p: dict) -> dict:
    """Enter the clear-credit token. "Already applied" (a retry after a cut connection) is
    success: the Wh that transfer took off is then read from the meter's token log (method
    3), so the result says what the meter did, not what the job asked."""
    number = p["transfer_number"]
    code = _enter_token(conn, p, "clear-credit token")
    cleared_wh = p["wh"]
    if code == TOKEN_ALREADY_APPLIED:
        moved = _token_log_energy(conn, number)
        if moved != -p["wh"]:
            raise JobError(
                f"transfer {number} is applied on the meter but moved {moved} {p['unit']}, "
                f"not the clear of {p['wh']} {p['unit']} this job carries",
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
    obis, ic = objects_of(conn)["token_log"]
    _code, data = conn.action(obis, ic, TOKEN_LOG_ENERGY, encode_data(6, number))
    value = decode_data(data) if data else 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise JobError(f"token log energy of transfer {number}: unexpected answer {value!r}")
    return value


def _token_log_call(conn: MeterConnection, method: int, number: int) -> int:
    obis, ic = objects_of(conn)["token_log"]
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
    obis, ic = objects_of(conn)["relay"]
    output = conn.get(obis, ic, RELAY_OUTPUT_STATE)
    control = conn.get(obis, ic, RELAY_CONTROL_STATE)
    return {"relay": relay_name(output), "control_state": int(control)}


def run_disconnect(conn: MeterConnection, p: dict) -> dict:
    obis, ic = objects_of(conn)["relay"]
    conn.action(obis, ic, RELAY_REMOTE_DISCONNECT, encode_data(15, 0))
    return _relay_result(conn)


def run_reconnect(conn: MeterConnection, p: dict) -> dict:
    obis, ic = objects_of(conn)["relay"]
    conn.action(obis, ic, RELAY_REMOTE_RECONNECT, encode_data(15, 0))
    return _relay_result(conn)


def run_set_load_limit(conn: MeterConnection, p: dict) -> dict:
    m = objects_of(conn)
    obis, ic = m["limiter"]
    attribute = m.attribute("limiter")
    conn.set_value(obis, ic, attribute, p["load_limit_w"])
    return {"load_limit_w": int(conn.get(obis, ic, attribute))}


def control_mode_for(current: int, auto_reconnect: bool) -> int:
    """The disconnect control mode that allows (or not) local reconnection and keeps the
    rest of the meter's mode (manual disconnection, remote reconnection). Mode 0 (no
    disconnector) stays 0."""
    table = WITH_LOCAL_RECONNECT if auto_reconnect else WITHOUT_LOCAL_RECONNECT
    return table.get(current, current)


def run_set_load_recovery(conn: MeterConnection, p: dict) -> dict:
    """Reconnect delay and attempts per hour (manufacturer objects), then the control mode
    that lets the meter reconnect by itself (attempts > 0) or not. Switching off, the mode
    goes first, so the meter never reconnects with half-written settings."""
    auto = p["reconnect_attempts_per_hour"] > 0
    relay_obis, relay_ic = objects_of(conn)["relay"]
    mode = int(conn.get(relay_obis, relay_ic, RELAY_CONTROL_MODE))
    wanted = control_mode_for(mode, auto)
    steps = [
        (objects_of(conn)["reconnect_delay"], p["reconnect_delay_s"], 6),
        (objects_of(conn)["reconnect_attempts"], p["reconnect_attempts_per_hour"], 17),
    ]
    if wanted != mode:
        mode_step = ((relay_obis, relay_ic), wanted, 22)
        steps = steps + [mode_step] if auto else [mode_step, *steps]
    for (obis, ic), value, tag in steps:
        attr = RELAY_CONTROL_MODE if obis == relay_obis else 2
        conn.set_value(obis, ic, attr, value, tag=tag)
    return read_load_recovery(conn)


def read_load_recovery(conn: MeterConnection) -> dict:
    relay_obis, relay_ic = objects_of(conn)["relay"]
    state = int(conn.get(*objects_of(conn)["recovery_state"], 2))
    output = conn.get(relay_obis, relay_ic, RELAY_OUTPUT_STATE)
    return {
        "reconnect_delay_s": int(conn.get(*objects_of(conn)["reconnect_delay"], 2)),
        "reconnect_attempts_per_hour": int(conn.get(*objects_of(conn)["reconnect_attempts"], 2)),
        "control_mode": int(conn.get(relay_obis, relay_ic, RELAY_CONTROL_MODE)),
        "load_recovery": RECOVERY_STATES.get(state, f"unknown ({state})"),
        "relay": relay_name(output),
    }


def read_emergency(conn: MeterConnection) -> dict:
    """The emergency credit object: status, kWh in use (taken, not repaid), amount, level."""
    obis, ic = objects_of(conn)["emergency_credit"]
    status = int(conn.get(obis, ic, CREDIT_STATUS))
    return {
        "emergency_status": EMERGENCY_STATUSES.get(status, f"unknown ({status})"),
        "emergency_in_use_kwh": wh_to_kwh(conn.get(obis, ic, CREDIT_CURRENT_AMOUNT)),
        "emergency_amount_kwh": wh_to_kwh(conn.get(obis, ic, CREDIT_PRESET_AMOUNT)),
        "emergency_threshold_kwh": wh_to_kwh(conn.get(obis, ic, CREDIT_AVAILABLE_THRESHOLD)),
    }


def _emergency_if_any(conn: MeterConnection, transfer_number: int | None = None) -> dict:
    """Emergency state for the results of other jobs (ping, read, add_credit), and with a
    transfer number the kWh it repaid (token log method 4). A meter without the object
    (another profile) answers with an error: the result then has no emergency keys."""
    if not objects_of(conn).has("emergency_credit"):
        return {}  # not in the meter's profile: not even asked
    try:
        out = read_emergency(conn)
        if transfer_number is not None and objects_of(conn).has("token_log"):
            obis, ic = objects_of(conn)["token_log"]
            _c, data = conn.action(obis, ic, TOKEN_LOG_EMERGENCY, encode_data(6, transfer_number))
            value = decode_data(data) if data else 0
            if isinstance(value, bool) or not isinstance(value, int):
                raise JobError(f"emergency repaid by transfer {transfer_number}: {value!r}")
            out["emergency_repaid_kwh"] = wh_to_kwh(value)
    except MeterRefused:
        return {}
    return out


def run_set_emergency_credit(conn: MeterConnection, p: dict) -> dict:
    obis, ic = objects_of(conn)["emergency_credit"]
    conn.set_value(obis, ic, CREDIT_PRESET_AMOUNT, p["amount_wh"], tag=5)
    conn.set_value(obis, ic, CREDIT_AVAILABLE_THRESHOLD, p["threshold_wh"], tag=5)
    return read_emergency(conn)


def run_take_emergency_credit(conn: MeterConnection, p: dict) -> dict:
    """invoke_credit on the emergency credit. Already in use (a retry whose answer was lost,
    or the tenant pressed the meter's button) is success with ``already_in_use``; not
    selectable (credit above the level, no amount) is a non-retryable refusal."""
    obis, ic = objects_of(conn)["emergency_credit"]
    before = read_emergency(conn)
    already = before["emergency_status"] in ("in_use", "exhausted")
    if not already:
        if before["emergency_status"] != "selectable":
            # the meter's credit unit: Wh, or milli-units of the currency on a money meter
            level = (
                f"{before['emergency_threshold_kwh']:.3f} (currency)"
                if p.get("money")
                else f"{before['emergency_threshold_kwh']} kWh"
            )
            raise MeterRefused(
                f"emergency credit is not selectable ({before['emergency_status']}: credit "
                f"above {level} or no amount set)"
            )
        conn.action(obis, ic, CREDIT_INVOKE, encode_data(17, 2))
    credit_kwh, relay = _credit_and_relay(conn)
    return {
        **read_emergency(conn),
        "already_in_use": already,
        "credit_kwh": credit_kwh,
        "relay": relay,
    }


def run_set_charge(conn: MeterConnection, p: dict) -> dict:
    """The standing charge: period (attribute 8), unit charge passive (6), then
    activate_passive_unit_charge (method 2); read back. A retry writes the same: the meter
    collects what the old charge owed before it activates, and never a period twice."""
    obis, ic = objects_of(conn)["standing_charge"]
    charge_type = int(conn.get(obis, ic, CHARGE_TYPE))
    if charge_type != CHARGE_TIME_BASED:
        raise MeterRefused(f"{obis} is not a time-based charge (charge_type {charge_type})")
    per_unit, scale = unit_charge_scaled(p["charge_wh"])
    credit_obis, credit_ic = objects_of(conn)["credit"]
    unit = encode_structure(
        [
            encode_structure([encode_data(15, 0), encode_data(15, scale)]),
            encode_structure(
                [
                    encode_data(18, credit_ic),
                    encode_data(9, bytes(int(x) for x in credit_obis.split("."))),
                    encode_data(15, 2),
                ]
            ),
            encode_array([encode_structure([encode_data(9, b""), encode_data(16, per_unit)])]),
        ]
    )
    conn.set_value(obis, ic, CHARGE_PERIOD, p["period_s"], tag=6)
    conn.set(obis, ic, CHARGE_UNIT_PASSIVE, unit)
    conn.action(obis, ic, CHARGE_ACTIVATE_PASSIVE, encode_data(15, 0))
    credit_kwh, relay = _credit_and_relay(conn)
    return {**read_charge(conn), "credit_kwh": credit_kwh, "relay": relay}


def read_charge(conn: MeterConnection) -> dict:
    """The standing charge in force: kWh per period, the period, and all it collected."""
    obis, ic = objects_of(conn)["standing_charge"]
    unit = conn.get(obis, ic, CHARGE_UNIT_ACTIVE)
    try:
        (_commodity_scale, price_scale), _commodity, table = unit
        wh = sum(int(charge) for _index, charge in table) * 10 ** int(price_scale)
    except (TypeError, ValueError) as e:
        raise JobError(f"standing charge: unexpected unit charge from the meter ({e})") from e
    return {
        "standing_charge_kwh": wh_to_kwh(wh),
        "standing_charge_period_s": int(conn.get(obis, ic, CHARGE_PERIOD)),
        "standing_charge_paid_kwh": wh_to_kwh(conn.get(obis, ic, CHARGE_TOTAL_PAID)),
    }


def _charge_if_any(conn: MeterConnection) -> dict:
    """The standing charge for a ping's result; a meter without the object: nothing."""
    if not objects_of(conn).has("standing_charge"):
        return {}
    try:
        return read_charge(conn)
    except MeterRefused:
        return {}


def _cosem_date(d: dt.date) -> bytes:
    return bytes([d.year >> 8, d.year & 0xFF, d.month, d.day, 0xFF])


def run_set_friendly_schedule(conn: MeterConnection, p: dict) -> dict:
    """The week (with its UTC offset), the special days, then the limit; read back. Each
    SET replaces the whole value, so a retry after a cut connection writes the same."""
    week = encode_structure(
        [
            encode_data(16, p["utc_offset_min"]),
            encode_array(
                [
                    encode_structure(
                        [encode_data(17, d + 1), encode_data(18, start), encode_data(18, end)]
                    )
                    for d, start, end in p["windows"]
                ]
            ),
        ]
    )
    days = encode_array(
        [
            encode_structure(
                [
                    encode_data(18, i),
                    encode_data(9, _cosem_date(d)),
                    encode_data(17, FRIENDLY_DAY_ID),
                ]
            )
            for i, d in enumerate(p["special_days"])
        ]
    )
    conn.set(*objects_of(conn)["friendly_week"], 2, week)
    conn.set(*objects_of(conn)["friendly_special_days"], 2, days)
    conn.set_value(*objects_of(conn)["friendly_limit"], 2, p["friendly_limit_wh"], tag=5)
    return read_friendly_schedule(conn)


def read_friendly_schedule(conn: MeterConnection) -> dict:
    week = conn.get(*objects_of(conn)["friendly_week"], 2)
    days = conn.get(*objects_of(conn)["friendly_special_days"], 2)
    state = int(conn.get(*objects_of(conn)["friendly_state"], 2))
    try:
        offset, windows = week
        windows = [
            {"weekday": int(d) - 1, "start_min": int(start), "end_min": int(end)}
            for d, start, end in windows
        ]
        special_days = []
        for _index, raw, day_id in days:
            raw = bytes(raw)
            if day_id == FRIENDLY_DAY_ID:
                special_days.append(dt.date((raw[0] << 8) | raw[1], raw[2], raw[3]).isoformat())
    except (TypeError, ValueError, IndexError) as e:
        raise JobError(f"friendly schedule: unexpected answer from the meter ({e})") from e
    credit_kwh, relay = _credit_and_relay(conn)
    return {
        "utc_offset_min": int(offset),
        "windows": windows,
        "special_days": special_days,
        "friendly_limit_kwh": wh_to_kwh(conn.get(*objects_of(conn)["friendly_limit"], 2)),
        "friendly": FRIENDLY_STATES.get(state, f"unknown ({state})"),
        "credit_kwh": credit_kwh,
        "relay": relay,
    }


# --- time of use and money mode ---------------------------------------------------------
def money_mode_result(conn: MeterConnection, job_type: str, result: dict) -> dict:
    """A money-mode meter's credit is currency (milli-units), not Wh: the result says
    `credit_money` instead of `credit_kwh`; a credit delivery adds what the consumption
    charge had collected in all (`charge_total`), where Odoo starts recognising money."""
    for kwh_key, money_key in MONEY_RESULT_KEYS.items():
        if kwh_key in result:
            result[money_key] = result.pop(kwh_key)
    for reading in result.get("readings") or []:
        if reading.get("obis") == CREDIT[0] and reading.get("unit") == "kWh":  # as Odoo names it
            reading["unit"] = "currency"  # milli-units / 1000: the tariff's currency
    if job_type == "add_credit":
        total = conn.get(*objects_of(conn)["consumption_charge"], 2)
        result["charge_total"] = int(total) / MONEY_SCALE
    return result


def _calendar(value, key: str) -> dict:
    if not isinstance(value, dict):
        raise JobError(f"payload.{key} must be a calendar object", retryable=False)
    try:
        name = str(value["name"])
        seasons = [
            (
                str(s["name"]),
                _whole(s["start_month"], "start_month", 1, 12),
                _whole(s["start_day"], "start_day", 1, 31),
                str(s["week"]),
            )
            for s in value["seasons"]
        ]
        weeks = [
            (str(w["name"]), [_whole(d, "day_id", 0, 255) for d in w["days"]])
            for w in value["weeks"]
        ]
        days = [
            (
                _whole(d["day_id"], "day_id", 0, 255),
                [
                    (
                        _whole(e["start_min"], "start_min", 0, 1439),
                        _whole(e["rate"], "rate", 1, MAX_TOU_RATE),
                    )
                    for e in d["schedule"]
                ],
            )
            for d in value["days"]
        ]
        charges = {
            _whole(c["rate"], "rate", 1, MAX_TOU_RATE): _whole(
                c["charge_per_unit"], "charge_per_unit", -MAX_CHARGE_PER_UNIT, MAX_CHARGE_PER_UNIT
            )
            for c in value["charges"]
        }
        # charge_per_unit x 10^price_scale milli-units per Wh (-4 when not said: 10^-4)
        price_scale = _whole(
            value.get("price_scale", CHARGE_PRICE_SCALE), "price_scale", *PRICE_SCALE_RANGE
        )
    except (KeyError, TypeError) as e:
        raise JobError(f"payload.{key} is not a calendar ({e})", retryable=False) from e
    week_names = {w[0] for w in weeks}
    day_ids = {d[0] for d in days}
    if (
        not seasons
        or any(s[3] not in week_names for s in seasons)
        or any(len(w[1]) != 7 or set(w[1]) - day_ids for w in weeks)
        or any(not d[1] for d in days)
    ):
        raise JobError(f"payload.{key}: seasons, weeks and days do not agree", retryable=False)
    return {
        "name": name,
        "seasons": seasons,
        "weeks": weeks,
        "days": days,
        "charges": charges,
        "price_scale": price_scale,
    }


def _wild_date(text, key: str) -> tuple[int | None, int | None, int | None]:
    """ "2026-12-16" or with wildcards "****-12-25" (every year), "2026-**-01" (every
    month) as (year, month, day), None a wildcard."""
    parts = text.split("-") if isinstance(text, str) else []
    if len(parts) != 3 or [len(x) for x in parts] != [4, 2, 2]:
        raise JobError(f"payload.{key} must be a YYYY-MM-DD date (* as wildcard)", False)
    try:
        year, month, day = (None if set(x) == {"*"} else int(x) for x in parts)
        if year is not None and month is not None and day is not None:
            dt.date(year, month, day)
        if (month is not None and not 1 <= month <= 12) or (day is not None and not 1 <= day <= 31):
            raise ValueError(text)
        if year is not None and not 1 <= year < 0xFFFF:
            raise ValueError(text)
    except ValueError as e:
        raise JobError(f"payload.{key}: {text!r} is not a date", retryable=False) from e
    return year, month, day


def _special_days(value, calendars: list[dict]) -> list[tuple] | None:
    """[{date, day_id}] of the calendar's special days table (None: not in the payload,
    the table is left as it is). Each day_id must be a day profile of one of the calendars
    (the active or the passive one: the table serves both, the meter looks the day_id up in
    the calendar active on the date)."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_SPECIAL_DAYS:
        raise JobError(
            f"payload.special_days must be a list of at most {MAX_SPECIAL_DAYS} entries", False
        )
    known = {d[0] for cal in calendars for d in cal["days"]}
    out, seen = [], set()
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise JobError(f"payload.special_days[{i}] must be an object {{date, day_id}}", False)
        date = _wild_date(entry.get("date"), f"special_days[{i}].date")
        day_id = _whole(entry.get("day_id"), f"special_days[{i}].day_id", 0, 255)
        if day_id not in known:
            raise JobError(
                f"payload.special_days[{i}]: day_id {day_id} is no day profile of the calendars",
                retryable=False,
            )
        if date in seen:
            raise JobError(f"payload.special_days[{i}]: {entry['date']} given twice", False)
        seen.add(date)
        out.append((date, day_id))
    return out


def validate_set_tariff_calendar(payload: dict) -> dict:
    """`{"utc_offset_min", "active": calendar, "passive": calendar | null, "activate_at":
    iso | null, "special_days": [{date, day_id}] (optional)}`; a calendar is {name, seasons,
    weeks, days, charges} (docs/job-protocol.md)."""
    offset = _whole(payload.get("utc_offset_min"), "utc_offset_min", -840, 840)
    active = _calendar(payload.get("active"), "active")
    passive = payload.get("passive")
    passive = _calendar(passive, "passive") if passive is not None else None
    activate_at = payload.get("activate_at")
    if passive is not None:
        when = parse_iso(activate_at) if isinstance(activate_at, str) else None
        if when is None:
            raise JobError("payload.activate_at is required with a passive calendar", False)
    else:
        when = None
    special = _special_days(
        payload.get("special_days"), [c for c in (active, passive) if c is not None]
    )
    return {
        "utc_offset_min": offset,
        "active": active,
        "passive": passive,
        "activate_at": when,
        "special_days": special,
    }


def _wild_date_bytes(date: tuple) -> bytes:
    """COSEM date (year, month, day, day of week 0xFF) with 0xFFFF / 0xFF wildcards."""
    year, month, day = date
    year = 0xFFFF if year is None else year
    month = 0xFF if month is None else month
    day = 0xFF if day is None else day
    return bytes([year >> 8, year & 0xFF, month, day, 0xFF])


def _wild_date_text(raw) -> str:
    raw = bytes(raw)
    year = (raw[0] << 8) | raw[1]
    return "-".join(
        [
            "****" if year == 0xFFFF else f"{year:04d}",
            "**" if raw[2] == 0xFF else f"{raw[2]:02d}",
            "**" if raw[3] == 0xFF else f"{raw[3]:02d}",
        ]
    )


def _write_special_days(conn: MeterConnection, days: list[tuple]) -> None:
    """The calendar's special days table, whole (a retry writes the same)."""
    conn.set(
        *objects_of(conn)["tou_special_days"],
        2,
        encode_array(
            [
                encode_structure(
                    [
                        encode_data(18, i),
                        encode_data(9, _wild_date_bytes(date)),
                        encode_data(17, day_id),
                    ]
                )
                for i, (date, day_id) in enumerate(days)
            ]
        ),
    )


def read_special_days(conn: MeterConnection) -> list[dict]:
    raw = conn.get(*objects_of(conn)["tou_special_days"], 2)
    try:
        return [{"date": _wild_date_text(d), "day_id": int(i)} for _index, d, i in raw]
    except (TypeError, ValueError, IndexError) as e:
        raise JobError(f"special days: unexpected answer from the meter ({e})") from e


def _special_days_shape(days: list[tuple]) -> list[dict]:
    return [{"date": _wild_date_text(_wild_date_bytes(d)), "day_id": i} for d, i in days]


def _season_start(month: int, day: int) -> bytes:
    return bytes([0xFF, 0xFF, month, day, 0xFF, 0, 0, 0, 0, 0x80, 0x00, 0xFF])


NOT_SPECIFIED_TIME = bytes([0xFF] * 9 + [0x80, 0x00, 0xFF])


def _write_passive(conn: MeterConnection, cal: dict, activate: bytes) -> None:
    """The passive calendar (IC 20 attributes 6-9), the passive unit charge (IC 113
    attribute 6) and both activation times. Each SET replaces the whole value."""
    obis, ic = objects_of(conn)["activity_calendar"]
    script = bytes(int(x) for x in objects_of(conn)["tariff_script_table"][0].split("."))
    conn.set(obis, ic, 6, encode_data(9, cal["name"].encode()))
    conn.set(
        obis,
        ic,
        7,
        encode_array(
            [
                encode_structure(
                    [
                        encode_data(9, name.encode()),
                        encode_data(9, _season_start(month, day)),
                        encode_data(9, week.encode()),
                    ]
                )
                for name, month, day, week in cal["seasons"]
            ]
        ),
    )
    conn.set(
        obis,
        ic,
        8,
        encode_array(
            [
                encode_structure(
                    [encode_data(9, name.encode())] + [encode_data(17, d) for d in days]
                )
                for name, days in cal["weeks"]
            ]
        ),
    )
    conn.set(
        obis,
        ic,
        9,
        encode_array(
            [
                encode_structure(
                    [
                        encode_data(17, day_id),
                        encode_array(
                            [
                                encode_structure(
                                    [
                                        encode_data(9, bytes([start // 60, start % 60, 0, 0])),
                                        encode_data(9, script),
                                        encode_data(18, rate),
                                    ]
                                )
                                for start, rate in schedule
                            ]
                        ),
                    ]
                )
                for day_id, schedule in cal["days"]
            ]
        ),
    )
    cobis, cic = objects_of(conn)["consumption_charge"]
    energy = bytes([1, 0, 1, 8, 0, 255])
    conn.set(
        cobis,
        cic,
        6,
        encode_structure(
            [
                encode_structure([encode_data(15, 0), encode_data(15, cal["price_scale"])]),
                encode_structure([encode_data(18, 3), encode_data(9, energy), encode_data(15, 2)]),
                encode_array(
                    [
                        encode_structure([encode_data(9, bytes([rate])), encode_data(16, cpu)])
                        for rate, cpu in sorted(cal["charges"].items())
                    ]
                ),
            ]
        ),
    )
    conn.set(cobis, cic, 7, encode_data(9, activate))
    conn.set(obis, ic, 10, encode_data(9, activate))


def run_set_tariff_calendar(conn: MeterConnection, p: dict) -> dict:
    """The UTC offset; the active calendar written as passive and activated at once (IC 20
    method 1), then the next one as passive with its activation time; read back. A retry
    writes the same (the meter's passive calendar is replaced whole)."""
    conn.set_value(*objects_of(conn)["tou_offset"], 2, p["utc_offset_min"], tag=16)
    special = p.get("special_days")
    if special is not None and (special or objects_of(conn).has("tou_special_days")):
        # before the calendars: the day profiles the table names are in both (validated),
        # and a holiday today is charged as one from the moment the job ends
        _write_special_days(conn, special)
    current = read_calendar(conn)
    passive = p["passive"]
    if passive is not None and current["active"] == _shape(passive):
        # the job ran after the activation time: the meter already runs the planned
        # calendar by itself; writing the older one back would undo the tariff change
        result = dict(current)
        result["credit_kwh"], result["relay"] = _credit_and_relay(conn)
        return _with_special_days(conn, result, special)
    if current["active"] != _shape(p["active"]):
        _write_passive(conn, p["active"], NOT_SPECIFIED_TIME)
        conn.action(*objects_of(conn)["activity_calendar"], 1, encode_data(15, 0))
    if passive is not None:
        _write_passive(conn, passive, datetime_to_bytes(p["activate_at"]))
    result = read_calendar(conn)
    if result["active"] != _shape(p["active"]) or (
        p["passive"] is not None and result["passive"] != _shape(p["passive"])
    ):
        raise JobError("tariff calendar: the meter read back another calendar than written")
    credit, relay = _credit_and_relay(conn)
    result.update(credit_kwh=credit, relay=relay)
    return _with_special_days(conn, result, special)


def _with_special_days(conn: MeterConnection, result: dict, special: list | None) -> dict:
    """The special days table read back (when the job wrote one), checked."""
    if special is None or not (special or objects_of(conn).has("tou_special_days")):
        return result
    result["special_days"] = read_special_days(conn)
    if result["special_days"] != _special_days_shape(special):
        raise JobError("tariff calendar: the meter read back other special days than written")
    return result


def _shape(cal: dict) -> dict:
    """A checked calendar as read_calendar returns it (JSON-like)."""
    return {
        "name": cal["name"],
        "seasons": [
            {"name": n, "start_month": m, "start_day": d, "week": w}
            for n, m, d, w in cal["seasons"]
        ],
        "weeks": [{"name": n, "days": list(days)} for n, days in cal["weeks"]],
        "days": [
            {"day_id": i, "schedule": [{"start_min": s, "rate": r} for s, r in sched]}
            for i, sched in cal["days"]
        ],
        "charges": [{"rate": r, "charge_per_unit": c} for r, c in sorted(cal["charges"].items())],
        "price_scale": cal["price_scale"],
    }


def _read_one(conn: MeterConnection, first: int) -> dict:
    obis, ic = objects_of(conn)["activity_calendar"]
    name, seasons, weeks, days = (conn.get(obis, ic, first + i) for i in range(4))
    try:
        return {
            "name": bytes(name).decode("ascii", "replace"),
            "seasons": [
                {
                    "name": bytes(n).decode("ascii", "replace"),
                    "start_month": bytes(start)[2],
                    "start_day": bytes(start)[3],
                    "week": bytes(w).decode("ascii", "replace"),
                }
                for n, start, w in seasons
            ],
            "weeks": [
                {"name": bytes(w[0]).decode("ascii", "replace"), "days": [int(d) for d in w[1:]]}
                for w in weeks
            ],
            "days": [
                {
                    "day_id": int(day_id),
                    "schedule": [
                        {"start_min": bytes(t)[0] * 60 + bytes(t)[1], "rate": int(sel)}
                        for t, _script, sel in schedule
                    ],
                }
                for day_id, schedule in days
            ],
        }
    except (TypeError, ValueError, IndexError) as e:
        raise JobError(f"tariff calendar: unexpected answer from the meter ({e})") from e


def _read_charges(conn: MeterConnection, attr: int) -> dict:
    """{"charges": [{rate, charge_per_unit}], "price_scale"} of a unit charge attribute."""
    value = conn.get(*objects_of(conn)["consumption_charge"], attr)
    try:
        (_commodity_scale, price_scale), _commodity, table = value
        return {
            "charges": [
                {"rate": bytes(index)[0], "charge_per_unit": int(cpu)} for index, cpu in table
            ],
            "price_scale": int(price_scale),
        }
    except (TypeError, ValueError, IndexError) as e:
        raise JobError(f"unit charge: unexpected answer from the meter ({e})") from e


def read_calendar(conn: MeterConnection) -> dict:
    """Active and passive calendars with their unit charges, the activation time, the UTC
    offset and the rate in force, as the meter holds them."""
    active = dict(_read_one(conn, 2), **_read_charges(conn, 5))
    passive = dict(_read_one(conn, 6), **_read_charges(conn, 6))
    raw = conn.get(*objects_of(conn)["activity_calendar"], 10)
    when = parse_datetime(bytes(raw)) if isinstance(raw, (bytes, bytearray)) else raw
    return {
        "utc_offset_min": int(conn.get(*objects_of(conn)["tou_offset"], 2)),
        "active": active,
        "passive": passive if passive["name"] else None,
        "activate_at": iso(when) if isinstance(when, dt.datetime) else None,
        "active_rate": int(conn.get(*objects_of(conn)["active_tariff"], 2)),
        "charge_total": int(conn.get(*objects_of(conn)["consumption_charge"], 2)) / MONEY_SCALE,
    }


def run_set_thresholds(conn: MeterConnection, p: dict) -> dict:
    obis, ic = objects_of(conn)["credit"]
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
    # the drift: the meter's time less UTC at the middle of the GET (the answer's delay
    # counts half each way), seconds, positive when the meter runs ahead
    asked = dt.datetime.now(dt.timezone.utc)
    before = _meter_time(conn)
    answered = dt.datetime.now(dt.timezone.utc)
    m = objects_of(conn)
    now = dt.datetime.now(dt.timezone.utc)
    conn.set(*m["clock"], m.attribute("clock"), encode_data(9, now))
    result = {"meter_time_before": before, "meter_time": _meter_time(conn)}
    if before:
        meter_before = dt.datetime.fromisoformat(before.replace("Z", "+00:00"))
        if meter_before.tzinfo is None:
            meter_before = meter_before.replace(tzinfo=dt.timezone.utc)
        middle = asked + (answered - asked) / 2
        result["clock_drift_s"] = round((meter_before - middle).total_seconds(), 3)
    return result


def run_ping(conn: MeterConnection, p: dict) -> dict:
    meter_time = _meter_time(conn)
    credit_kwh, relay = _credit_and_relay(conn)
    return {
        "meter_time": meter_time,
        "credit_kwh": credit_kwh,
        "relay": relay,
        **_emergency_if_any(conn),
        **_charge_if_any(conn),
    }


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
    "set_load_recovery": run_set_load_recovery,
    "set_emergency_credit": run_set_emergency_credit,
    "take_emergency_credit": run_take_emergency_credit,
    "set_friendly_schedule": run_set_friendly_schedule,
    "set_push": lambda conn, p: run_set_push(conn, p),
    "set_charge": run_set_charge,
    "set_tariff_calendar": run_set_tariff_calendar,
}
VALIDATORS: dict[str, Callable[[dict], dict]] = {
    "read": validate_read,
    "read_events": validate_read_events,
    "add_credit": validate_add_credit,
    "set_load_limit": validate_set_load_limit,
    "set_thresholds": validate_set_thresholds,
    "check_token": validate_check_token,
    "clear_credit": validate_clear_credit,
    "set_load_recovery": validate_set_load_recovery,
    "set_emergency_credit": validate_set_emergency_credit,
    "take_emergency_credit": validate_take_emergency_credit,
    "set_friendly_schedule": validate_set_friendly_schedule,
    "set_push": lambda payload: validate_set_push(payload),
    "set_charge": validate_set_charge,
    "set_tariff_calendar": validate_set_tariff_calendar,
}


# ----- set_push (docs/job-protocol.md; docs/meter-contract.md "Push") -----
PUSH_LIMITS = {
    "heartbeat_s": 7 * 86400,
    "retries": 255,
    "repetition_delay_s": 65535,
    "randomisation_s": 65535,
}
MAX_PUSH_DESTINATION = 255
MAX_PUSH_WINDOWS = 8


def validate_set_push(payload: dict) -> dict:
    dest = payload.get("destination")
    if not isinstance(dest, str) or len(dest) > MAX_PUSH_DESTINATION:
        raise JobError("payload.destination must be host:port or empty (push off)", False)
    host, sep, port = dest.rpartition(":")
    if dest and not (sep and host and port.isdigit() and 0 < int(port) < 65536):
        raise JobError("payload.destination must be host:port or empty (push off)", False)
    out = {"destination": dest}
    for key, top in PUSH_LIMITS.items():
        value = _number(payload, key)
        if value != int(value) or value > top:
            raise JobError(f"payload.{key} must be a whole number from 0 to {top}", False)
        out[key] = int(value)
    windows = payload.get("windows", [])
    if not isinstance(windows, list) or len(windows) > MAX_PUSH_WINDOWS:
        raise JobError(f"payload.windows must be a list of at most {MAX_PUSH_WINDOWS}", False)
    out["windows"] = []
    for w in windows:
        ok = (
            isinstance(w, list)
            and len(w) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in w)
        )
        if not ok or not 0 <= w[0] < w[1] <= 1440:
            raise JobError("payload.windows: [start_min, end_min], 0 <= start < end <= 1440", False)
        out["windows"].append([w[0], w[1]])
    return out


def _window_time(minute: int) -> bytes:
    """A COSEM date-time of a time of day, every day (date fields not specified)."""
    h, m, s = (23, 59, 59) if minute >= 1440 else (minute // 60, minute % 60, 0)
    return bytes([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, h, m, s, 0xFF, 0x80, 0x00, 0xFF])


def _window_minute(raw: bytes) -> int:
    raw = bytes(raw)
    return 1440 if raw[5:8] == bytes([23, 59, 59]) else raw[5] * 60 + raw[6]


def _push_setups(conn: MeterConnection) -> list[tuple[str, int]]:
    setups = [(e.obis, e.ic) for e in objects_of(conn).push_setups]
    if not setups:
        raise JobError("this meter's profile has no push setup object", retryable=False)
    return setups


def run_set_push(conn: MeterConnection, p: dict) -> dict:
    """Every push setup: destination (TCP, A-XDR APDUs), windows, randomisation, retries,
    repetition delay; then the heartbeat interval; read back from every push setup. Turning
    push off (empty destination) writes the heartbeat first, so no heartbeat is pushed to a
    half-written setup."""
    windows = encode_array(
        [
            encode_structure([encode_data(9, _window_time(a)), encode_data(9, _window_time(b))])
            for a, b in p["windows"]
        ]
    )
    destination = encode_structure(
        [encode_data(22, 0), encode_data(9, p["destination"].encode("ascii")), encode_data(22, 0)]
    )
    hb_obis, hb_ic = objects_of(conn)["push_heartbeat"]
    heartbeat = encode_data(6, p["heartbeat_s"])
    if not p["destination"]:
        conn.set(hb_obis, hb_ic, 2, heartbeat)
    for obis, ic in _push_setups(conn):
        conn.set(obis, ic, 3, destination)
        conn.set(obis, ic, 4, windows)
        conn.set(obis, ic, 5, encode_data(18, p["randomisation_s"]))
        conn.set(obis, ic, 6, encode_data(17, p["retries"]))
        conn.set(obis, ic, 7, encode_data(18, p["repetition_delay_s"]))
    if p["destination"]:
        conn.set(hb_obis, hb_ic, 2, heartbeat)
    result = read_push(conn)
    wanted = {k: p[k] for k in result if k in p}
    if {k: result[k] for k in wanted} != wanted:
        raise JobError(f"the meter's push settings read back differ: {result}", retryable=False)
    return result


def read_push(conn: MeterConnection) -> dict:
    """The push settings of every push setup; they must agree (else the result says so)."""
    seen = []
    for obis, ic in _push_setups(conn):
        dest = conn.get(obis, ic, 3)
        windows = conn.get(obis, ic, 4) or []
        seen.append(
            {
                "destination": bytes(dest[1]).decode("ascii", "replace"),
                "windows": [[_window_minute(a), _window_minute(b)] for a, b in windows],
                "randomisation_s": int(conn.get(obis, ic, 5)),
                "retries": int(conn.get(obis, ic, 6)),
                "repetition_delay_s": int(conn.get(obis, ic, 7)),
            }
        )
    hb_obis, hb_ic = objects_of(conn)["push_heartbeat"]
    out = dict(seen[0], heartbeat_s=int(conn.get(hb_obis, hb_ic, 2)))
    if any(s != seen[0] for s in seen[1:]):
        out["push_setups_differ"] = True
    return out
