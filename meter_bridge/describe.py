"""COSEM values described for a person: what `meter-bridge read` prints (pure, no sockets).

describe(raw, ic, attribute) decodes one encoded Data value keeping its types, and names
what the Blue Book says the attribute is: date-times (octet-string(12) or date-time) as ISO
with their deviation and clock status, scaler_unit structures (IC 3/4/5 attribute 3) as
"10^-1 V", enumerations of the classes the bridge knows by name, structures and arrays
item by item. The result is a dict for --json ("type", "value", "text" and, per type,
"iso"/"deviation_min"/"status", "scaler"/"unit", "enum"/"name", "items").
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .codec import MAX_DEPTH, MAX_ITEMS, DataError, _decode, _length, to_json
from .obis import unit_name

TYPE_NAMES = {
    0: "null-data",
    1: "array",
    2: "structure",
    3: "boolean",
    4: "bit-string",
    5: "double-long",
    6: "double-long-unsigned",
    9: "octet-string",
    10: "visible-string",
    12: "utf8-string",
    13: "bcd",
    15: "integer",
    16: "long",
    17: "unsigned",
    18: "long-unsigned",
    20: "long64",
    21: "long64-unsigned",
    22: "enum",
    23: "float32",
    24: "float64",
    25: "date-time",
    26: "date",
    27: "time",
    255: "dont-care",
}

# (class id, attribute) whose octet-string(12) is a date-time (Blue Book 4.5 / 4.6.x)
DATETIME_ATTRIBUTES = {
    (8, 2),  # Clock time
    (8, 5),  # daylight_savings_begin
    (8, 6),  # daylight_savings_end
    (4, 5),  # Extended register capture_time
    (5, 6),  # Demand register capture_time
    (5, 7),  # Demand register start_time_current
    (111, 13),  # Account account_activation_time
    (111, 14),  # Account account_closure_time
    (112, 11),  # Credit period (date-time of the last change)
    (115, 3),  # Token gateway token_time
}
SCALER_UNIT_ATTRIBUTES = {(3, 3), (4, 3), (5, 4)}

# enum attributes by (class id, attribute): value -> name (Blue Book)
ENUMS: dict[tuple[int, int], dict[int, str]] = {
    (8, 9): {
        0: "not defined",
        1: "internal crystal",
        2: "mains frequency 50 Hz",
        3: "mains frequency 60 Hz",
        4: "GPS",
        5: "radio controlled",
    },
    (70, 3): {0: "disconnected", 1: "connected", 2: "ready for reconnection"},
    (70, 4): {i: f"mode {i}" + (" (always connected)" if i == 0 else "") for i in range(7)},
    (112, 3): {
        0: "token credit",
        1: "reserved credit",
        2: "emergency credit",
        3: "time-based credit",
        4: "consumption-based credit",
    },
    (112, 8): {0: "enabled", 1: "selectable", 2: "invoked", 3: "in use", 4: "exhausted"},
    (115, 5): {0: "remote communications", 1: "local communications", 2: "manual entry"},
}
# enums inside structures, by (class id, attribute): one mapping per item (None: no enum)
STRUCTURE_ENUMS: dict[tuple[int, int], list] = {
    (111, 2): [
        {1: "credit mode", 2: "prepayment mode"},
        {1: "new (inactive)", 2: "active", 3: "closed"},
    ],
    (115, 6): [
        {
            0: "format OK",
            1: "authentication OK",
            2: "validation OK",
            3: "token execution OK",
            4: "token format failure",
            5: "authentication failure",
            6: "validation result failure",
            7: "token execution result failure",
            8: "token received, not yet processed",
        },
        None,
    ],
}

# Clock status bits (Blue Book 4.1.6.1)
CLOCK_STATUS = [
    (0x01, "invalid value"),
    (0x02, "doubtful value"),
    (0x04, "different clock base"),
    (0x08, "invalid clock status"),
    (0x80, "daylight saving active"),
]


def clock_status(status: int) -> list[str]:
    return [name for bit, name in CLOCK_STATUS if status & bit]


def describe_datetime(raw: bytes) -> dict:
    """A COSEM date-time (12 bytes) as the meter states it: local time with its offset (the
    deviation is minutes from local time to UTC, so local = UTC - deviation), the deviation,
    the clock status, and 'not specified' parts (0xFF) named."""
    if len(raw) != 12:
        raise DataError("date-time is 12 bytes")
    year = int.from_bytes(raw[0:2], "big")
    month, day, weekday = raw[2], raw[3], raw[4]
    hour, minute, second, hundredths = raw[5], raw[6], raw[7], raw[8]
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    status = raw[11]
    out: dict[str, Any] = {"type": "date-time", "value": raw.hex()}
    out["deviation_min"] = None if deviation == -0x8000 else deviation
    out["status"] = None if status == 0xFF else clock_status(status)
    parts = {
        "year": year == 0xFFFF,
        "month": month == 0xFF,
        "day": day == 0xFF,
        "hour": hour == 0xFF,
        "minute": minute == 0xFF,
        "second": second == 0xFF,
    }
    wild = [k for k, v in parts.items() if v]
    if wild or month in (0xFD, 0xFE) or day in (0xFD, 0xFE):
        # a pattern (e.g. daylight savings "last Sunday of March, 02:00"): fields as given
        def f(v, width, unspecified=0xFF):
            return "*" * width if v == unspecified else str(v).zfill(width)

        day_text = {0xFD: "2nd-last", 0xFE: "last"}.get(day, f(day, 2))
        month_text = {0xFD: "DST end", 0xFE: "DST begin"}.get(month, f(month, 2))
        text = (
            f"{f(year, 4, 0xFFFF)}-{month_text}-{day_text} {f(hour, 2)}:{f(minute, 2)}:"
            f"{f(second, 2)}"
        )
        if weekday != 0xFF:
            text += f" weekday {weekday}"
        out.update(iso=None, unspecified=wild, text=text + _dev_text(out))
        return out
    try:
        tz = (
            dt.timezone.utc
            if deviation == -0x8000
            else dt.timezone(dt.timedelta(minutes=-deviation))
        )
        value = dt.datetime(
            year,
            month,
            day,
            hour,
            minute,
            second,
            0 if hundredths == 0xFF else hundredths * 10_000,
            tzinfo=tz,
        )
    except ValueError as e:
        out.update(iso=None, text=f"invalid date-time {raw.hex()} ({e})")
        return out
    iso = value.isoformat()
    out.update(
        iso=iso,
        utc=value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
        text=iso + _dev_text(out),
    )
    return out


def _dev_text(out: dict) -> str:
    bits = []
    if out["deviation_min"] is None:
        bits.append("deviation not specified")
    else:
        bits.append(f"deviation {out['deviation_min']} min")
    if out["status"]:
        bits.append("status: " + ", ".join(out["status"]))
    return " (" + "; ".join(bits) + ")"


def looks_like_datetime(raw: bytes) -> bool:
    """An octet-string of 12 bytes whose fields are all in the date-time ranges."""
    if len(raw) != 12:
        return False
    year = int.from_bytes(raw[0:2], "big")
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    return (
        (1970 <= year <= 2200 or year == 0xFFFF)
        and (1 <= raw[2] <= 12 or raw[2] in (0xFD, 0xFE, 0xFF))
        and (1 <= raw[3] <= 31 or raw[3] in (0xFD, 0xFE, 0xFF))
        and (1 <= raw[4] <= 7 or raw[4] == 0xFF)
        and (raw[5] <= 23 or raw[5] == 0xFF)
        and (raw[6] <= 59 or raw[6] == 0xFF)
        and (raw[7] <= 59 or raw[7] == 0xFF)
        and (raw[8] <= 99 or raw[8] == 0xFF)
        and (-840 <= deviation <= 840 or deviation == -0x8000)
    )


# --- typed decoding ------------------------------------------------------------------------
def decode_typed(buf: bytes) -> tuple[dict, bytes]:
    """(typed tree of the first Data value, the bytes after it). Nodes: {"tag", "type",
    "value"} with "items" for arrays and structures; same bounds as codec.decode_data."""
    node, pos = _typed(bytes(buf), 0, 0, [MAX_ITEMS])
    return node, bytes(buf[pos:])


def _typed(buf: bytes, pos: int, depth: int, budget: list) -> tuple[dict, int]:
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise DataError("value too large or too deeply nested")
    if pos >= len(buf):
        raise DataError("truncated value")
    tag = buf[pos]
    name = TYPE_NAMES.get(tag, f"tag {tag}")
    if tag in (1, 2):
        count, p = _length(buf, pos + 1)
        if count > len(buf) - p:
            raise DataError("array/structure count larger than the data")
        items = []
        for _ in range(count):
            item, p = _typed(buf, p, depth + 1, budget)
            items.append(item)
        return {"tag": tag, "type": name, "items": items}, p
    value, end = _decode(buf, pos, depth, budget)
    node = {"tag": tag, "type": name, "value": value}
    if tag == 25:
        node["raw"] = buf[pos + 1 : end]
    return node, end


def describe(raw: bytes, ic: int = 1, attribute: int = 2) -> dict:
    """Describe one GET answer (encoded Data) of attribute `attribute` of class `ic`."""
    node, trailing = decode_typed(raw)
    out = _describe(node, int(ic), int(attribute), top=True)
    if trailing:
        out["trailing_bytes"] = trailing.hex()
    return out


def _describe(node: dict, ic: int, attribute: int, top: bool = False, names=None) -> dict:
    tag, name = node["tag"], node["type"]
    key = (ic, attribute)
    if tag == 2 and top and key in SCALER_UNIT_ATTRIBUTES and len(node["items"]) == 2:
        scaler, unit = node["items"][0].get("value"), node["items"][1].get("value")
        if isinstance(scaler, int) and isinstance(unit, int):
            unit_text = unit_name(unit) or f"unit {unit}"
            return {
                "type": "scaler_unit",
                "value": [scaler, unit],
                "scaler": scaler,
                "unit": unit_text,
                "text": f"10^{scaler} {unit_text}",
            }
    if tag in (1, 2):
        per_item = STRUCTURE_ENUMS.get(key) if (top and tag == 2) else None
        items = [
            _describe(
                i, ic, attribute, names=per_item[n] if per_item and n < len(per_item) else None
            )
            for n, i in enumerate(node["items"])
        ]
        return {
            "type": name,
            "value": [i["value"] for i in items],
            "items": items,
            "text": "{" + ", ".join(i["text"] for i in items) + "}"
            if tag == 2
            else "[" + ", ".join(i["text"] for i in items) + "]",
        }
    if tag == 25:
        return describe_datetime(bytes(node["raw"]))
    if tag == 9:
        raw = bytes(node["value"])
        if len(raw) == 12 and ((top and key in DATETIME_ATTRIBUTES) or looks_like_datetime(raw)):
            return describe_datetime(raw)
        return {"type": name, "value": to_json(raw), "text": _octets_text(raw)}
    if tag == 22:
        names = (ENUMS.get(key) if top else names) or {}
        value = node["value"]
        label = names.get(value)
        out = {"type": "enum", "value": value, "enum": value, "name": label}
        out["text"] = f"{value} ({label})" if label else f"enum {value}"
        return out
    value = to_json(node["value"])
    return {"type": name, "value": value, "text": "null" if value is None else str(value)}


def _octets_text(raw: bytes) -> str:
    if raw and all(32 <= b < 127 for b in raw):
        return raw.decode("ascii")
    return raw.hex() if raw else "(empty)"
