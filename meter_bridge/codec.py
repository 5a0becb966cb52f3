"""A bounded codec for COSEM data (A-XDR, IEC 62056-6-2): pure, no sockets.

Every decoded value is bounded in size (items) and depth, so a lying meter cannot make the
bridge allocate without limit; datetimes as the Blue Book's octet-string(12).
"""

from __future__ import annotations

import datetime as dt
import struct
from typing import Any

MAX_ITEMS = 500_000  # data elements in one decoded value
MAX_DEPTH = 32
UTC = dt.timezone.utc


class DataError(ValueError):
    """Bytes that are not a valid COSEM Data value."""


_FIXED = {
    3: 1,
    5: 4,
    6: 4,
    13: 1,
    15: 1,
    16: 2,
    17: 1,
    18: 2,
    20: 8,
    21: 8,
    22: 1,
    23: 4,
    24: 8,
    25: 12,
    26: 5,
    27: 4,
}
_SIGNED = {5, 15, 16, 20}
_INT_TAGS = {5, 6, 13, 15, 16, 17, 18, 20, 21, 22}


def _length(buf: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(buf):
        raise DataError("truncated length")
    first = buf[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    n = first & 0x7F
    if n == 0 or n > 4 or pos + n > len(buf):
        raise DataError("bad or truncated length")
    return int.from_bytes(buf[pos : pos + n], "big"), pos + n


def decode_data(buf: bytes | bytearray) -> Any:
    """Decode exactly one A-XDR Data value.

    Python values: None, bool, int, float, bytes (octet-string), str (visible and UTF-8
    strings; bit-strings as '0101...'), datetime/date/time, lists (array, structure).
    Raises DataError on truncated, oversized or trailing data, in time linear in len(buf).
    """
    buf = bytes(buf)
    budget = [MAX_ITEMS]
    value, pos = _decode(buf, 0, 0, budget)
    if pos != len(buf):
        raise DataError(f"{len(buf) - pos} trailing bytes after the value")
    return value


def decode_data_prefix(buf: bytes | bytearray) -> tuple[Any, bytes]:
    """Decode the first A-XDR Data value of buf; returns (value, the bytes after it).

    What other clients do (Gurux's GXDLMSClient reads one value and ignores the rest): a
    meter that pads its answer, or appends stray bytes, still gives its value. The caller
    decides whether trailing bytes are acceptable and logs them. Same bounds as
    decode_data: raises DataError on a truncated, oversized or too deep value."""
    buf = bytes(buf)
    value, pos = _decode(buf, 0, 0, [MAX_ITEMS])
    return value, buf[pos:]


def _decode(buf: bytes, pos: int, depth: int, budget: list) -> tuple[Any, int]:
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise DataError("value too large or too deeply nested")
    if pos >= len(buf):
        raise DataError("truncated value")
    tag = buf[pos]
    pos += 1
    if tag in (0, 255):
        return None, pos
    if tag in (1, 2):
        count, pos = _length(buf, pos)
        # each element needs at least one byte: refuse absurd counts before looping
        if count > len(buf) - pos:
            raise DataError("array/structure count larger than the data")
        items = []
        for _ in range(count):
            item, pos = _decode(buf, pos, depth + 1, budget)
            items.append(item)
        return items, pos
    if tag == 4:
        bits, pos = _length(buf, pos)
        nbytes = (bits + 7) // 8
        if pos + nbytes > len(buf):
            raise DataError("truncated bit-string")
        raw = int.from_bytes(buf[pos : pos + nbytes], "big")
        text = format(raw, f"0{nbytes * 8}b")[:bits] if nbytes else ""
        return text, pos + nbytes
    if tag in (9, 10, 12):
        n, pos = _length(buf, pos)
        if pos + n > len(buf):
            raise DataError("truncated string")
        raw = buf[pos : pos + n]
        pos += n
        if tag == 9:
            return raw, pos
        return raw.decode("utf-8" if tag == 12 else "latin-1", errors="replace"), pos
    if tag in _FIXED:
        n = _FIXED[tag]
        if pos + n > len(buf):
            raise DataError("truncated value")
        raw = buf[pos : pos + n]
        pos += n
        if tag == 3:
            return raw[0] != 0, pos
        if tag in _INT_TAGS:
            return int.from_bytes(raw, "big", signed=tag in _SIGNED), pos
        if tag == 23:
            return struct.unpack(">f", raw)[0], pos
        if tag == 24:
            return struct.unpack(">d", raw)[0], pos
        if tag == 25:
            return parse_datetime(raw), pos
        if tag == 26:
            return _parse_date(raw), pos
        return _parse_time(raw), pos
    raise DataError(f"unsupported data tag {tag}")


def data_tag(raw: bytes) -> int:
    if not raw:
        raise DataError("empty value")
    return raw[0]


def _enc_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    size = (n.bit_length() + 7) // 8
    return bytes([0x80 | size]) + n.to_bytes(size, "big")


def encode_data(tag: int, value: Any) -> bytes:
    """Encode a simple Data value of the given tag (the types a SET or ACTION needs)."""
    if tag == 0:
        return b"\x00"
    if tag == 3:
        return bytes([3, 1 if value else 0])
    if tag in _INT_TAGS:
        n = _FIXED[tag]
        try:
            return bytes([tag]) + int(value).to_bytes(n, "big", signed=tag in _SIGNED)
        except OverflowError as e:
            raise DataError(f"{value} does not fit data type {tag}") from e
    if tag == 9:
        raw = datetime_to_bytes(value) if isinstance(value, dt.datetime) else bytes(value)
        return b"\x09" + _enc_len(len(raw)) + raw
    if tag in (10, 12):
        raw = str(value).encode("ascii" if tag == 10 else "utf-8")
        return bytes([tag]) + _enc_len(len(raw)) + raw
    if tag == 25:
        return b"\x19" + datetime_to_bytes(value)
    if tag == 23:
        return b"\x17" + struct.pack(">f", value)
    if tag == 24:
        return b"\x18" + struct.pack(">d", value)
    raise DataError(f"cannot encode data type {tag}")


def encode_array(items: list[bytes]) -> bytes:
    """An array of already encoded Data values."""
    return b"\x01" + _enc_len(len(items)) + b"".join(items)


def encode_structure(items: list[bytes]) -> bytes:
    """A structure of already encoded Data values."""
    return b"\x02" + _enc_len(len(items)) + b"".join(items)


def parse_datetime(raw: bytes) -> dt.datetime | None:
    """COSEM date-time (12 bytes) → aware datetime, None when unspecified.

    No deviation (0x8000) is read as UTC. Deviation is minutes from local time to UTC
    (Blue Book), so local = UTC - deviation.
    """
    if len(raw) != 12:
        raise DataError("date-time is 12 bytes")
    year = int.from_bytes(raw[0:2], "big")
    month, day, hour, minute, second, hundredths = raw[2], raw[3], raw[5], raw[6], raw[7], raw[8]
    if year == 0xFFFF or month in (0xFF, 0xFD, 0xFE) or day in (0xFF, 0xFD, 0xFE):
        return None
    hour = 0 if hour == 0xFF else hour
    minute = 0 if minute == 0xFF else minute
    second = 0 if second == 0xFF else second
    micro = 0 if hundredths == 0xFF else hundredths * 10_000
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    try:
        tz = UTC if deviation == -0x8000 else dt.timezone(dt.timedelta(minutes=-deviation))
        return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError as e:
        raise DataError(f"invalid date-time: {e}") from e


def _parse_date(raw: bytes):
    year = int.from_bytes(raw[0:2], "big")
    try:
        return dt.date(year, raw[2], raw[3])
    except ValueError:
        return None


def _parse_time(raw: bytes):
    try:
        return dt.time(raw[0], raw[1], 0 if raw[2] == 0xFF else raw[2])
    except ValueError:
        return None


def datetime_to_bytes(value: dt.datetime) -> bytes:
    """Aware datetime → COSEM date-time in UTC (deviation 0); naive is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    v = value.astimezone(UTC)
    return (
        v.year.to_bytes(2, "big")
        + bytes(
            [v.month, v.day, v.isoweekday(), v.hour, v.minute, v.second, v.microsecond // 10_000]
        )
        + b"\x00\x00"  # deviation: UTC
        + b"\x00"  # clock status: ok
    )


def scale(value: Any, scaler: int | None) -> Any:
    """Apply a COSEM scaler; integers stay integers when the scaler is >= 0."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not scaler:
        return value
    if scaler > 0 and isinstance(value, int):
        return value * 10**scaler
    return round(value * 10.0**scaler, max(0, -scaler))


def to_json(value: Any) -> Any:
    """Decoded COSEM value → JSON-friendly value (bytes as text if printable, else hex)."""
    if isinstance(value, dt.datetime):
        return iso(value)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
        if raw and all(32 <= b < 127 for b in raw):
            return raw.decode("ascii")
        return raw.hex()
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    value = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)
