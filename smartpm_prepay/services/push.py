"""DLMS pushes of meters in push mode: authenticated, decrypted and stored by Odoo.

A bridge's push listener (``meter-bridge listen``) forwards the ciphered APDUs it received
(general-glo-ciphering DataNotifications, docs/meter-contract.md "Push") with
``smartpm.meter.job.push_ingest``. Odoo, which holds the meters' keys, does the rest:

1. the system title names a meter in push mode (else refused);
2. the GCM tag verifies under that meter's keys (else refused: forged or altered);
3. the invocation counter is above the last one accepted from that meter (else refused:
   replayed), raised in one UPDATE so that two listeners never both accept a counter;
4. the body (the push object list's values) becomes events and readings through the same
   idempotent ingest as event-log reads (an event pushed and later read is stored once),
   and the meter is seen: online, its comm-lost alarm cleared.

Why here and not in the listener: docs/job-protocol.md, "Push". Refusals answer the same
text for an unknown system title and a bad tag (no oracle of which titles exist).
"""

import logging
import re
from datetime import datetime, timedelta, timezone

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from odoo import fields

from . import ingest
from .obis import ENERGY_IMPORT, OBIS_CREDIT

_logger = logging.getLogger(__name__)

GENERAL_GLO_CIPHERING = 0xDB
DATA_NOTIFICATION = 0x0F
TAG_LEN = 12  # DLMS security suite 0: AES-GCM-128 with a 96-bit tag
SC_AUTHENTICATED = 0x10
SC_ENCRYPTED = 0x20
MAX_MESSAGES = 1000  # per push_ingest call

PUSH_HEARTBEAT = bytes([0, 0, 25, 9, 0, 255])
PUSH_STANDARD_EVENTS = bytes([0, 1, 25, 9, 0, 255])
PUSH_FRAUD_EVENTS = bytes([0, 2, 25, 9, 0, 255])
EVENT_PUSHES = {PUSH_STANDARD_EVENTS: "standard", PUSH_FRAUD_EVENTS: "fraud"}

NOT_AUTHENTICATED = "push not authenticated (unknown system title, or wrong keys or MAC)"
REPLAYED = "push replayed (invocation counter not above the last one accepted)"


class PushError(ValueError):
    pass


# ----- communication windows (Push setup attribute 4) ------------------------------------
MAX_WINDOWS = 8  # the bridge's set_push limit (docs/job-protocol.md)
_WINDOW = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")


def parse_windows(text):
    """The meter's communication windows, "06:00-08:00, 18:30-24:00" (times of the meter's
    day, UTC), as [[start_min, end_min]] sorted; empty text: any time. ValueError (its text
    says what is wrong) for anything else: a window must start before it ends, not cross
    midnight (two windows), not overlap another; at most MAX_WINDOWS."""
    windows = []
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        match = _WINDOW.fullmatch(part)
        if not match:
            raise ValueError(f"{part!r} is not HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or not start < end <= 1440:
            raise ValueError(f"{part!r}: from 00:00 to 24:00, the start before the end")
        windows.append([start, end])
    windows.sort()
    if len(windows) > MAX_WINDOWS:
        raise ValueError(f"at most {MAX_WINDOWS} windows")
    for (_s1, e1), (s2, _e2) in zip(windows, windows[1:], strict=False):
        if s2 < e1:
            raise ValueError("windows overlap")
    return windows


def format_windows(windows):
    """[[start_min, end_min]] as parse_windows reads them."""
    return ", ".join(
        f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in windows or []
    )


def longest_closed(windows):
    """The longest time the windows keep the meter silent (between two windows, across
    midnight); zero without windows (any time)."""
    if not windows:
        return timedelta(0)
    gaps = [b[0] - a[1] for a, b in zip(windows, windows[1:], strict=False)]
    gaps.append(1440 - windows[-1][1] + windows[0][0])
    return timedelta(minutes=max(gaps))


# ----- decoding (pure) -----------------------------------------------------------------


def _length(buf, pos):
    """A-XDR length at ``pos``: (length, next position)."""
    if pos >= len(buf):
        raise PushError("truncated")
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    n = first & 0x7F
    if not 0 < n <= 4 or pos + 1 + n > len(buf):
        raise PushError("bad length")
    return int.from_bytes(buf[pos + 1 : pos + 1 + n], "big"), pos + 1 + n


def parse_ciphered(apdu):
    """(system title, security control, invocation counter, ciphertext+tag) of a
    general-glo-ciphering APDU."""
    if len(apdu) < 2 or apdu[0] != GENERAL_GLO_CIPHERING:
        raise PushError("not a general-glo-ciphering APDU")
    title_len, pos = _length(apdu, 1)
    if title_len != 8:
        raise PushError("system title is not 8 bytes")
    title = apdu[pos : pos + 8]
    length, pos = _length(apdu, pos + 8)
    rest = apdu[pos:]
    if len(rest) != length or length < 5 + TAG_LEN:
        raise PushError("bad ciphered length")
    return title, rest[0], int.from_bytes(rest[1:5], "big"), rest[5:]


def decrypt(security_control, title, counter, data, encryption_key, authentication_key):
    """The plain APDU; PushError unless authenticated and encrypted with these keys."""
    if security_control & 0x0F or not (
        security_control & SC_AUTHENTICATED and security_control & SC_ENCRYPTED
    ):
        raise PushError("a push must be authenticated and encrypted (suite 0)")
    iv = title + counter.to_bytes(4, "big")
    cipher = Cipher(
        algorithms.AES(encryption_key), modes.GCM(iv, data[-TAG_LEN:], min_tag_length=TAG_LEN)
    ).decryptor()
    cipher.authenticate_additional_data(bytes([security_control]) + authentication_key)
    try:
        return cipher.update(data[:-TAG_LEN]) + cipher.finalize()
    except InvalidTag as exc:
        raise PushError("bad GCM tag") from exc


def decode_data(buf, pos=0, depth=0):
    """One A-XDR value at ``pos``: (value, next position). Structures and arrays are lists,
    octet strings bytes."""
    if depth > 8 or pos >= len(buf):
        raise PushError("bad data")
    tag = buf[pos]
    pos += 1
    if tag in (0x01, 0x02):  # array, structure
        n, pos = _length(buf, pos)
        out = []
        for _i in range(n):
            value, pos = decode_data(buf, pos, depth + 1)
            out.append(value)
        return out, pos
    if tag in (0x09, 0x0A):  # octet-string, visible-string
        n, pos = _length(buf, pos)
        if pos + n > len(buf):
            raise PushError("truncated string")
        value = bytes(buf[pos : pos + n])
        return (value if tag == 0x09 else value.decode("ascii", "replace")), pos + n
    if tag == 0x03:
        return bool(buf[pos]), pos + 1
    if tag == 0x00:
        return None, pos
    sizes = {
        0x0F: (1, True),
        0x10: (2, True),
        0x11: (1, False),
        0x12: (2, False),
        0x05: (4, True),
        0x06: (4, False),
        0x14: (8, True),
        0x15: (8, False),
        0x16: (1, False),
    }
    if tag not in sizes:
        raise PushError(f"data type {tag} not expected in a push")
    size, signed = sizes[tag]
    if pos + size > len(buf):
        raise PushError("truncated number")
    return int.from_bytes(buf[pos : pos + size], "big", signed=signed), pos + size


def parse_notification(plain):
    """The body of a DataNotification (its own date-time ignored: the body has the clock)."""
    if len(plain) < 6 or plain[0] != DATA_NOTIFICATION:
        raise PushError("not a DataNotification")
    pos = 5  # tag, long-invoke-id-and-priority
    if plain[pos] == 0:
        pos += 1
    else:
        n, pos = _length(plain, pos)
        pos += n
    body, end = decode_data(plain, pos)
    if end != len(plain):
        raise PushError("trailing bytes")
    return body


def cosem_datetime(raw):
    """A COSEM date-time (12 bytes) as naive UTC."""
    if not isinstance(raw, bytes) or len(raw) != 12:
        raise PushError("bad date-time")
    year = (raw[0] << 8) | raw[1]
    hundredths = 0 if raw[8] == 0xFF else raw[8]
    dev = int.from_bytes(raw[9:11], "big", signed=True)
    t = datetime(year, raw[2], raw[3], raw[5], raw[6], raw[7], hundredths * 10000)
    if dev != -0x8000:
        t = t + timedelta(minutes=dev)  # Blue Book: deviation = local to UTC, in minutes
    return t


def interpret(body, serial):
    """(events, readings, state) of a push body (docs/meter-contract.md, "Push")."""
    if not isinstance(body, list) or len(body) != 6:
        raise PushError("push body is not the contract's structure of 6")
    setup, name, clock = body[0], body[1], body[2]
    if name != serial.encode():
        raise PushError("logical device name is not the meter's")
    at = cosem_datetime(clock)
    iso = at.replace(tzinfo=timezone.utc).isoformat()
    if setup == PUSH_HEARTBEAT:
        _s, _n, _c, credit_wh, energy_wh, relay = body
        readings = [
            {"obis": OBIS_CREDIT, "value": credit_wh, "unit": "Wh", "time": iso},
            {"obis": ENERGY_IMPORT, "value": energy_wh, "unit": "Wh", "time": iso},
        ]
        return [], readings, {"credit_wh": credit_wh, "relay": relay}
    if setup in EVENT_PUSHES:
        _s, _n, _c, code, credit_wh, relay = body
        event = {"log": EVENT_PUSHES[setup], "code": code, "time": iso}
        return [event], [], {"credit_wh": credit_wh, "relay": relay}
    raise PushError("unknown push setup")


# ----- Odoo ----------------------------------------------------------------------------


def _push_meters(env, titles):
    """{system title hex: (id, serial, encryption key, authentication key)} of meters in
    push mode (keys are secrets: read in SQL by the engine, never returned)."""
    env.cr.execute(
        """
        SELECT upper(system_title), id, serial_number, encryption_key, auth_key
          FROM smartpm_meter
         WHERE push_enabled AND active AND upper(system_title) = ANY(%s)
        """,
        (list(titles),),
    )
    return {row[0]: row[1:] for row in env.cr.fetchall()}


def _accept_counter(env, meter_id, counter):
    env.cr.execute(
        """
        UPDATE smartpm_meter SET push_invocation_counter = %s
         WHERE id = %s AND (push_invocation_counter IS NULL OR push_invocation_counter < %s)
        RETURNING id
        """,
        (counter, meter_id, counter),
    )
    return bool(env.cr.fetchone())


def ingest_pushes(env, bridge_id, messages):
    """push_ingest: one answer per message, in order (see the module docstring)."""
    if not isinstance(messages, list) or len(messages) > MAX_MESSAGES:
        raise PushError(f"messages must be a list of at most {MAX_MESSAGES}")
    parsed = []
    for msg in messages:
        try:
            apdu = bytes.fromhex(str((msg or {}).get("apdu") or ""))
            parsed.append(parse_ciphered(apdu))
        except (ValueError, AttributeError, TypeError) as exc:
            parsed.append(PushError(str(exc)))
    env.flush_all()
    meters = _push_meters(env, {p[0].hex().upper() for p in parsed if isinstance(p, tuple)})
    answers, events, readings, seen = [], [], [], {}
    for p in parsed:
        if isinstance(p, Exception):
            answers.append({"ok": False, "error": f"not a push: {p}"})
            continue
        title, sc, counter, data = p
        meter = meters.get(title.hex().upper())
        try:
            if not meter or not meter[2] or not meter[3]:
                raise PushError("unknown system title")
            meter_id, serial, ekey, akey = meter
            plain = decrypt(sc, title, counter, data, bytes.fromhex(ekey), bytes.fromhex(akey))
        except (PushError, ValueError) as exc:
            _logger.info("push of %s refused: %s", title.hex().upper(), exc)
            answers.append({"ok": False, "error": NOT_AUTHENTICATED})
            continue
        try:
            evs, rds, state = interpret(parse_notification(plain), serial)
        except PushError as exc:
            answers.append({"ok": False, "error": f"push of {serial} not understood: {exc}"})
            continue
        if not _accept_counter(env, meter_id, counter):
            answers.append({"ok": False, "error": REPLAYED})
            continue
        events += [dict(e, meter_id=meter_id) for e in evs]
        readings += [dict(r, meter_id=meter_id, source="push") for r in rds]
        seen[meter_id] = state
        answers.append({"ok": True, "serial": serial, "events": len(evs), "readings": len(rds)})
    if seen:
        ingest.ingest(env, readings, events)
        _mark_seen(env, seen)
    return answers


def _mark_seen(env, states):
    """The meters spoke: online, seen now, credit and relay as pushed; comm-lost cleared.
    One UPDATE for the meters whose relay is as Odoo knew it (the usual heartbeat); the ORM
    (tracked, so the chatter shows it) for those whose relay moved."""
    now = fields.Datetime.now()
    ids = list(states)
    env.flush_all()
    env.cr.execute(
        """
        UPDATE smartpm_meter m
           SET online_state = 'online', last_seen = %s, push_last_at = %s,
               credit_kwh = v.credit_kwh, write_date = %s, write_uid = %s
          FROM unnest(%s::int[], %s::float8[], %s::varchar[]) AS v(id, credit_kwh, relay)
         WHERE m.id = v.id AND m.relay_state = v.relay
        RETURNING m.id
        """,
        (
            now,
            now,
            now,
            env.uid,
            ids,
            [states[i]["credit_wh"] / 1000.0 for i in ids],
            ["connected" if states[i]["relay"] else "disconnected" for i in ids],
        ),
    )
    done = {row[0] for row in env.cr.fetchall()}
    meters = env["smartpm.meter"].sudo().browse(ids)
    meters.invalidate_recordset(["online_state", "last_seen", "push_last_at", "credit_kwh"])
    for meter in meters.filtered(lambda m: m.id not in done):
        state = states[meter.id]
        meter.write(
            {
                "online_state": "online",
                "last_seen": now,
                "push_last_at": now,
                "credit_kwh": state["credit_wh"] / 1000.0,
                "relay_state": "connected" if state["relay"] else "disconnected",
            }
        )
    meters._smartpm_clear_comm_lost(env._("The meter pushed again."))
