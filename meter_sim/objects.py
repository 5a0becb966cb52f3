# SPDX-License-Identifier: GPL-2.0-or-later
"""The DLMS/COSEM object contract of the simulated meter (docs/meter-contract.md).

OBIS constants, the gurux object collection of one meter, and the translation between
attribute values on the wire and the pure-Python `MeterModel`.
"""

from __future__ import annotations

import datetime as dt

from gurux_dlms.enums import DataType, DateTimeSkips, ErrorCode, ObjectType
from gurux_dlms.GXByteBuffer import GXByteBuffer
from gurux_dlms.internal._GXCommon import _GXCommon
from gurux_dlms.objects import (
    GXDLMSAccount,
    GXDLMSActivityCalendar,
    GXDLMSAssociationLogicalName,
    GXDLMSCaptureObject,
    GXDLMSCharge,
    GXDLMSClock,
    GXDLMSCredit,
    GXDLMSData,
    GXDLMSDisconnectControl,
    GXDLMSLimiter,
    GXDLMSObjectCollection,
    GXDLMSProfileGeneric,
    GXDLMSPushSetup,
    GXDLMSRegister,
    GXDLMSScriptTable,
    GXDLMSSpecialDaysTable,
    GXDLMSTokenGateway,
)

from . import push
from .model import (
    FRAUD_LOG,
    MAX_EVENT_ROWS,
    MAX_PROFILE_ROWS,
    PROFILE_PERIOD_S,
    STANDARD_LOG,
    MeterModel,
)

LOGICAL_DEVICE_NAME = "0.0.42.0.0.255"
SERIAL_NUMBER = "0.0.96.1.0.255"
CLOCK = "0.0.1.0.0.255"
ENERGY_IMPORT = "1.0.1.8.0.255"
ENERGY_EXPORT = "1.0.2.8.0.255"
VOLTAGE_L1 = "1.0.32.7.0.255"
CURRENT_L1 = "1.0.31.7.0.255"
POWER_IMPORT = "1.0.1.7.0.255"
LOAD_PROFILE = "1.0.99.1.0.255"
STANDARD_EVENT_LOG = "0.0.99.98.0.255"
FRAUD_EVENT_LOG = "0.0.99.98.1.255"
STANDARD_EVENT_CODE = "0.0.96.11.0.255"
FRAUD_EVENT_CODE = "0.0.96.11.1.255"
DISCONNECT_CONTROL = "0.0.96.3.10.255"
LIMITER = "0.0.17.0.0.255"
ACCOUNT = "0.0.19.0.0.255"
CREDIT = "0.0.19.10.0.255"
TOKEN_GATEWAY = "0.0.19.40.0.255"
# A second Credit (IC 112) instance: the emergency credit (credit_type 2).
EMERGENCY_CREDIT = "0.0.19.10.1.255"
CREDIT_INVOKE = 3  # IC 112 method 3 invoke_credit
EMERGENCY_CONFIGURATION = 0b00100000  # credit_configuration bit 2: must be paid back
# Manufacturer-specific (value group D 128): the meter's token log, management only.
TOKEN_LOG = "0.0.19.40.128.255"
TOKEN_LOG_QUERY = 1  # method 1 query(transfer number) -> status
TOKEN_LOG_CANCEL = 2  # method 2 cancel(transfer number) -> status after
TOKEN_LOG_ENERGY = 3  # method 3 energy(transfer number) -> Wh moved: + added, - cleared
TOKEN_LOG_EMERGENCY = 4  # method 4 (transfer number) -> Wh of it that repaid emergency credit
ASSOCIATION_LN = "0.0.40.0.0.255"
# Manufacturer-specific (value group E 128-130) load-trip recovery objects next to the
# limiter: the Blue Book has no attribute for a reconnect delay nor a count per hour.
RECONNECT_DELAY = "0.0.17.0.128.255"  # double-long-unsigned s, SET (management)
RECONNECT_ATTEMPTS = "0.0.17.0.129.255"  # unsigned, automatic reconnections per hour, SET
RECOVERY_STATE = "0.0.17.0.130.255"  # enum 0 normal, 1 waiting, 2 lockout; read only

# Friendly (non-disconnect) periods (docs/meter-contract.md, "Friendly periods"). Public
# holidays in a standard Special days table (IC 11, instance 1: instance 0 is left to the
# TOU activity calendar); the week and the limit in manufacturer-specific Data objects, as
# the Blue Book has no "no credit disconnection" window nor a friendly credit limit.
FRIENDLY_SPECIAL_DAYS = "0.0.11.0.1.255"  # IC 11 entries {index, date, day_id 1}, SET
FRIENDLY_WEEK = "0.0.11.0.128.255"  # {UTC offset min, [{weekday 1-7, start, end min}]}, SET
FRIENDLY_LIMIT = "0.0.11.0.129.255"  # double-long Wh <= 0, SET
FRIENDLY_STATE = "0.0.11.0.130.255"  # enum 0 outside, 1 inside, 2 deferring a trip; read only
FRIENDLY_DAY_ID = 1

# Standing charge (docs/meter-contract.md, "Standing charge"): a Charge (IC 113) instance,
# charge_type time-based. Instance 1: instance 0 is left to a consumption-based charge.
STANDING_CHARGE = "0.0.19.20.1.255"
CHARGE_TIME_BASED = 1  # charge_type enum: 0 consumption, 1 time, 2 payment-event based
CHARGE_ACTIVATE_PASSIVE = 2  # IC 113 method 2 activate_passive_unit_charge
CHARGE_PRIORITY = 1
# Time of use and money mode (docs/meter-contract.md, "Time-of-use and money mode"): the
# activity calendar switches the tariff rate through the tariffication script table, whose
# script N writes N to the currently active tariff; the consumption-based Charge charges
# each Wh at its rate's charge_per_unit; energy import per rate in 1.0.1.8.N.255.
ACTIVITY_CALENDAR = "0.0.13.0.0.255"  # IC 20
TARIFF_SCRIPT_TABLE = "0.0.10.0.100.255"  # IC 9, scripts 1..8
ACTIVE_TARIFF = "0.0.96.14.0.255"  # IC 1 unsigned: the rate in force
CONSUMPTION_CHARGE = "0.0.19.20.0.255"  # IC 113, charge_type 0 consumption based
TOU_OFFSET = "0.0.13.0.128.255"  # manufacturer-specific long: calendar local time - UTC, min
# the calendar's Special days table (IC 11, instance 0): public holidays, each {index, date
# (wildcards 0xFFFF / 0xFF allowed), day_id of a day profile of the activity calendar}
TOU_SPECIAL_DAYS = "0.0.11.0.0.255"
TOU_RATES = range(1, 9)
RATE_REGISTERS = {f"1.0.1.8.{n}.255": n for n in TOU_RATES}
CALENDAR_ACTIVATE = 1  # IC 20 method 1 activate_passive_calendar
CHARGE_PRICE_SCALE = -4  # the default charge_per_unit scaling: commodity 0 (Wh), price -4
CHARGE_PRICE_SCALES = range(-4, 1)  # price scales the consumption charge takes (-4..0)

# Unit enumeration values (Blue Book).
UNIT_WH = 30
UNIT_V = 35
UNIT_A = 33
UNIT_W = 27

# (OBIS, interface class, attributes a client may read): the contract in one table.
CONTRACT = [
    (LOGICAL_DEVICE_NAME, 1, (1, 2)),
    (SERIAL_NUMBER, 1, (1, 2)),
    (CLOCK, 8, (1, 2, 3, 4, 5, 6, 7, 8, 9)),
    (ENERGY_IMPORT, 3, (1, 2, 3)),
    (ENERGY_EXPORT, 3, (1, 2, 3)),
    (VOLTAGE_L1, 3, (1, 2, 3)),
    (CURRENT_L1, 3, (1, 2, 3)),
    (POWER_IMPORT, 3, (1, 2, 3)),
    (LOAD_PROFILE, 7, (1, 2, 3, 4, 7, 8)),
    (STANDARD_EVENT_LOG, 7, (1, 2, 3, 4, 7, 8)),
    (FRAUD_EVENT_LOG, 7, (1, 2, 3, 4, 7, 8)),
    (STANDARD_EVENT_CODE, 1, (1, 2)),
    (FRAUD_EVENT_CODE, 1, (1, 2)),
    (DISCONNECT_CONTROL, 70, (1, 2, 3, 4)),
    (LIMITER, 71, (1, 2, 3, 6)),
    (ACCOUNT, 111, (1, 2, 5, 13, 14)),
    (CREDIT, 112, (1, 2, 5, 6, 11)),
    # attribute 7 (credit_configuration, a bit-string) is served too, but left out here:
    # dlms-cosem 25.1.0 reads a bit-string's length as bytes, not bits, and fails on it
    (EMERGENCY_CREDIT, 112, (1, 2, 3, 4, 8, 9, 10, 11)),
    (TOKEN_GATEWAY, 115, (1, 2, 3)),
    (TOKEN_LOG, 1, (1, 2)),
    (RECONNECT_DELAY, 1, (1, 2)),
    (RECONNECT_ATTEMPTS, 1, (1, 2)),
    (RECOVERY_STATE, 1, (1, 2)),
    (FRIENDLY_SPECIAL_DAYS, 11, (1, 2)),
    (FRIENDLY_WEEK, 1, (1, 2)),
    (FRIENDLY_LIMIT, 1, (1, 2)),
    (FRIENDLY_STATE, 1, (1, 2)),
    (push.PUSH_HEARTBEAT, 40, (1, 2, 3, 4, 5, 6, 7)),
    (push.PUSH_STANDARD_EVENTS, 40, (1, 2, 3, 4, 5, 6, 7)),
    (push.PUSH_FRAUD_EVENTS, 40, (1, 2, 3, 4, 5, 6, 7)),
    (push.HEARTBEAT_INTERVAL, 1, (1, 2)),
    (STANDING_CHARGE, 113, (1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13)),
    (ACTIVITY_CALENDAR, 20, (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)),
    (TARIFF_SCRIPT_TABLE, 9, (1, 2)),
    (ACTIVE_TARIFF, 1, (1, 2)),
    (CONSUMPTION_CHARGE, 113, (1, 2, 3, 4, 5, 6, 7)),
    (TOU_OFFSET, 1, (1, 2)),
    (TOU_SPECIAL_DAYS, 11, (1, 2)),
    *((ln, 3, (1, 2, 3)) for ln in RATE_REGISTERS),
]

# What the public client (16, no authentication) may GET: identification only.
PUBLIC_OBJECTS = frozenset({LOGICAL_DEVICE_NAME, SERIAL_NUMBER, CLOCK})
# What only the management association (HLS-GMAC) may GET: not even an LLS reader.
MANAGEMENT_OBJECTS = frozenset({TOKEN_LOG})

# Registers: OBIS -> (scaler exponent, unit, wire type)
REGISTERS = {
    ENERGY_IMPORT: (0, UNIT_WH, DataType.UINT32),
    ENERGY_EXPORT: (0, UNIT_WH, DataType.UINT32),
    VOLTAGE_L1: (-1, UNIT_V, DataType.UINT16),
    CURRENT_L1: (-2, UNIT_A, DataType.UINT16),
    POWER_IMPORT: (0, UNIT_W, DataType.UINT32),
    **{ln: (0, UNIT_WH, DataType.UINT32) for ln in RATE_REGISTERS},
}

PROFILES = {
    LOAD_PROFILE: [
        (ObjectType.CLOCK, CLOCK, 2),
        (ObjectType.REGISTER, ENERGY_IMPORT, 2),
        (ObjectType.REGISTER, ENERGY_EXPORT, 2),
    ],
    STANDARD_EVENT_LOG: [(ObjectType.CLOCK, CLOCK, 2), (ObjectType.DATA, STANDARD_EVENT_CODE, 2)],
    FRAUD_EVENT_LOG: [(ObjectType.CLOCK, CLOCK, 2), (ObjectType.DATA, FRAUD_EVENT_CODE, 2)],
}


def check_object_map(object_map: dict) -> None:
    """The keys of a meter's object map are contract objects, and no mapped object lands
    on an OBIS code another object of the meter keeps (ValueError)."""
    contract = {ln for ln, _ic, _attrs in CONTRACT} | {ASSOCIATION_LN}
    unknown = sorted(set(object_map) - contract)
    if unknown:
        raise ValueError(f"object_map: {', '.join(unknown)} is no object of the simulator")
    if ASSOCIATION_LN in object_map:
        raise ValueError(f"object_map: the association view stays at {ASSOCIATION_LN}")
    kept = contract - set(object_map)
    clash = sorted(set(object_map.values()) & kept)
    if clash:
        raise ValueError(f"object_map: {', '.join(clash)} is another object's OBIS code")


def served_ln(model: MeterModel, ln: str) -> str:
    """The OBIS code this meter serves contract object ``ln`` at (its object map)."""
    return model.config.object_map.get(ln, ln)


def build_objects(serial: str, object_map: dict | None = None) -> GXDLMSObjectCollection:
    """The gurux object collection of one meter (values are filled from the model on read),
    every object new; with an object map, the mapped objects are listed and served at their
    other OBIS."""
    objs = GXDLMSObjectCollection()
    for obj in meter_objects(serial, object_map, shared=False):
        objs.append(obj)
    return objs


def meter_objects(serial: str, object_map: dict | None = None, shared: bool = True) -> list:
    """The objects one connection of a meter serves, in the order of its object list: its
    identification objects and its association view new (the association's status, context
    and mechanism change with each association), the others those of its profile, built
    once and shared by every connection of every meter with the same object map
    (`profile_objects`). shared=False builds those too."""
    if object_map:
        check_object_map(object_map)
    name = GXDLMSData(LOGICAL_DEVICE_NAME)
    name.value = serial.encode()
    number = GXDLMSData(SERIAL_NUMBER)
    number.value = serial.encode()
    for obj in (name, number):
        obj.logicalName = (object_map or {}).get(obj.logicalName, obj.logicalName)
    profile = profile_objects(object_map) if shared else _build_profile_objects(object_map)
    return [name, number, *profile, GXDLMSAssociationLogicalName(ASSOCIATION_LN)]


_PROFILE_OBJECTS: dict[tuple, tuple] = {}


def profile_objects(object_map: dict | None = None) -> tuple:
    """The objects of a meter profile that carry nothing of one meter or one association,
    built once per object map: building them for every connection took ~0.3 ms, 9 % of the
    simulator's CPU per HLS-GMAC billing read (bench/RESULTS.md). Sharing them is safe
    because nothing writes to them after this: the servers answer every SET and ACTION from
    the model (onPreWrite and onPreAction mark each one handled, so gurux never calls their
    setValue or invoke) and reads either come from the model or gurux's getValue, which only
    encodes (tests/test_meter_sim_shared_objects.py holds them to that)."""
    key = tuple(sorted((object_map or {}).items()))
    objs = _PROFILE_OBJECTS.get(key)
    if objs is None:
        objs = _PROFILE_OBJECTS.setdefault(key, tuple(_build_profile_objects(object_map)))
    return objs


def _build_profile_objects(object_map: dict | None) -> list:
    objs = []
    clock = GXDLMSClock(CLOCK)
    objs.append(clock)
    by_ln = {CLOCK: clock}
    for ln, (scaler, unit, _wire) in REGISTERS.items():
        reg = GXDLMSRegister(ln)
        reg.scaler = 10.0**scaler
        reg.unit = unit
        reg.value = 0
        objs.append(reg)
        by_ln[ln] = reg
    for ln in (STANDARD_EVENT_CODE, FRAUD_EVENT_CODE):
        d = GXDLMSData(ln)
        d.value = 0
        objs.append(d)
        by_ln[ln] = d
    for ln, cols in PROFILES.items():
        pg = GXDLMSProfileGeneric(ln)
        for _ot, col_ln, attr in cols:
            pg.captureObjects.append((by_ln[col_ln], GXDLMSCaptureObject(attr, 0)))
        pg.capturePeriod = PROFILE_PERIOD_S if ln == LOAD_PROFILE else 0
        objs.append(pg)
    objs.append(GXDLMSDisconnectControl(DISCONNECT_CONTROL))
    limiter = GXDLMSLimiter(LIMITER)
    limiter.monitoredValue = by_ln[POWER_IMPORT]
    limiter.monitoredAttributeIndex = 2
    objs.append(limiter)
    objs.append(GXDLMSAccount(ACCOUNT))
    objs.append(GXDLMSCredit(CREDIT))
    objs.append(GXDLMSCredit(EMERGENCY_CREDIT))
    objs.append(GXDLMSTokenGateway(TOKEN_GATEWAY))
    objs.append(GXDLMSData(TOKEN_LOG))
    for ln in (RECONNECT_DELAY, RECONNECT_ATTEMPTS, RECOVERY_STATE):
        objs.append(GXDLMSData(ln))
    objs.append(GXDLMSSpecialDaysTable(FRIENDLY_SPECIAL_DAYS))
    for ln in (FRIENDLY_WEEK, FRIENDLY_LIMIT, FRIENDLY_STATE):
        objs.append(GXDLMSData(ln))
    for ln in push.PUSH_SETUPS:
        setup = GXDLMSPushSetup(ln)
        setup.version = 0  # served as version 0 (docs/meter-contract.md "Push"); gurux says 2
        objs.append(setup)
    objs.append(GXDLMSData(push.HEARTBEAT_INTERVAL))
    objs.append(GXDLMSCharge(STANDING_CHARGE))
    objs.append(GXDLMSActivityCalendar(ACTIVITY_CALENDAR))
    objs.append(GXDLMSScriptTable(TARIFF_SCRIPT_TABLE))
    objs.append(GXDLMSData(ACTIVE_TARIFF))
    objs.append(GXDLMSCharge(CONSUMPTION_CHARGE))
    objs.append(GXDLMSData(TOU_OFFSET))
    objs.append(GXDLMSSpecialDaysTable(TOU_SPECIAL_DAYS))
    for obj in objs:
        obj.logicalName = (object_map or {}).get(obj.logicalName, obj.logicalName)
    return objs


# ----- encoding helpers (gurux's encoder, our types) -----


def encode(settings, data_type, value) -> bytes:
    bb = GXByteBuffer()
    _GXCommon.setData(settings, bb, data_type, value)
    return bytes(bb.array())


def datetime_bytes(t: dt.datetime) -> bytes:
    """COSEM date-time (12 bytes) in UTC, deviation 0, status 0."""
    t = t.astimezone(dt.timezone.utc)
    return bytes(
        [
            t.year >> 8,
            t.year & 0xFF,
            t.month,
            t.day,
            t.isoweekday(),
            t.hour,
            t.minute,
            t.second,
            t.microsecond // 10000,
            0x00,
            0x00,
            0x00,
        ]
    )


def datetime_from_bytes(b: bytes) -> dt.datetime:
    b = bytes(b)
    if len(b) != 12:
        raise ValueError("COSEM date-time must be 12 bytes")
    year = (b[0] << 8) | b[1]
    hundredths = 0 if b[8] == 0xFF else b[8]
    dev = int.from_bytes(b[9:11], "big", signed=True)
    t = dt.datetime(year, b[2], b[3], b[5], b[6], b[7], hundredths * 10000)
    if dev == -0x8000:  # deviation not specified: take it as UTC
        dev = 0
    # Blue Book 4.1.6.1: deviation is minutes from local time to UTC (UTC+01:00 is -60).
    return t.replace(tzinfo=dt.timezone(dt.timedelta(minutes=-dev))).astimezone(dt.timezone.utc)


def _struct(settings, items) -> bytes:
    """items: list of (DataType, value) pairs or pre-encoded bytes."""
    out = bytearray([DataType.STRUCTURE, len(items)])
    for it in items:
        out += it if isinstance(it, (bytes, bytearray)) else encode(settings, *it)
    return bytes(out)


def _array(rows: list[bytes]) -> bytes:
    out = bytearray([DataType.ARRAY])
    n = len(rows)
    # A-XDR length: short form below 128, else 0x8N + N bytes.
    if n < 0x80:
        out.append(n)
    else:
        nb = n.to_bytes((n.bit_length() + 7) // 8, "big")
        out += bytes([0x80 | len(nb)]) + nb
    for r in rows:
        out += r
    return bytes(out)


def _capture_objects(settings, model, ln) -> bytes:
    rows = []
    for ot, col_ln, attr in PROFILES[ln]:
        col_ln = served_ln(model, col_ln)
        rows.append(
            _struct(
                settings,
                [
                    (DataType.UINT16, int(ot)),
                    (DataType.OCTET_STRING, _GXCommon.logicalNameToBytes(col_ln)),
                    (DataType.INT8, attr),
                    (DataType.UINT16, 0),
                ],
            )
        )
    return _array(rows)


class AttributeError_(Exception):
    """A GET/SET that the meter refuses with the given DLMS error code."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def _profile_rows(model: MeterModel, ln: str):
    if ln == LOAD_PROFILE:
        return [
            (t, [(DataType.UINT32, imp), (DataType.UINT32, exp)]) for t, imp, exp in model.profile
        ]
    log = STANDARD_LOG if ln == STANDARD_EVENT_LOG else FRAUD_LOG
    return [(e.time, [(DataType.UINT8, e.code)]) for e in model.log_events(log)]


def _select_rows(rows, selector, parameters):
    """Selective access: 1 = range on the clock column, 2 = entry (1-based, inclusive)."""
    if not selector:
        return rows
    if selector == 1:
        params = list(parameters)
        lo, hi = (_as_datetime(v) for v in params[1:3])
        return [r for r in rows if lo <= r[0] <= hi]
    if selector == 2:
        params = list(parameters)
        first = int(params[0]) if params[0] else 1
        last = int(params[1]) if len(params) > 1 and params[1] else len(rows)
        return rows[first - 1 : last]
    raise AttributeError_(ErrorCode.OTHER_REASON)


def _as_datetime(v) -> dt.datetime:
    if isinstance(v, (bytes, bytearray)):
        return datetime_from_bytes(v)
    # gurux may already have decoded it to GXDateTime
    value = getattr(v, "value", v)
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    raise AttributeError_(ErrorCode.UNMATCHED_TYPE)


def read_attribute(
    settings, model: MeterModel, ln: str, index: int, selector=0, parameters=None
) -> bytes | None:
    """Encoded value of attribute `index` of object `ln`, or None to let gurux answer."""
    reader = _reader_of(ln)
    if reader is None:
        return None
    with model.lock:
        return reader(settings, model, ln, index, selector, parameters)


def _read_name(settings, model, ln, index, *_selection):
    if index == 2:
        return encode(settings, DataType.OCTET_STRING, model.serial.encode())
    return None


# Blue Book 4.1.6.1: a date-time with every field "not specified" (0xFF, deviation 0x8000)
DATETIME_NOT_SPECIFIED = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00\xff"
# Daylight savings begin/end as the EU rule, a pattern: last Sunday (day 0xFE = last of the
# month, day of week 7) of March / October at 01:00 UTC, any year. The meter keeps UTC
# (daylight_savings_enabled, attribute 8, is FALSE): the rule is stated, not applied.
DST_BEGIN = b"\xff\xff\x03\xfe\x07\x01\x00\x00\x00\x00\x00\xff"
DST_END = b"\xff\xff\x0a\xfe\x07\x01\x00\x00\x00\x00\x00\xff"
CLOCK_BASE_CRYSTAL = 1


def _octets(settings, raw: bytes) -> bytes:
    return encode(settings, DataType.OCTET_STRING, raw)


def _time_or_unspecified(t: dt.datetime | None) -> bytes:
    return datetime_bytes(t) if t is not None else DATETIME_NOT_SPECIFIED


def _read_clock(settings, model, ln, index, *_selection):
    if index == 2:
        return encode(settings, DataType.OCTET_STRING, datetime_bytes(model.meter_time()))
    if index == 3:
        return encode(settings, DataType.INT16, 0)
    if index == 5:  # daylight_savings_begin (gurux answered hardware-fault)
        return _octets(settings, DST_BEGIN)
    if index == 6:  # daylight_savings_end
        return _octets(settings, DST_END)
    if index == 9:  # clock_base
        return encode(settings, DataType.ENUM, CLOCK_BASE_CRYSTAL)
    return None


def _read_register(settings, model, ln, index, *_selection):
    scaler, unit, wire = REGISTERS[ln]
    if index == 2:
        value = {
            ENERGY_IMPORT: model.import_wh,
            ENERGY_EXPORT: model.export_wh,
            VOLTAGE_L1: model.voltage_dv(),
            CURRENT_L1: model.current_ca(),
            POWER_IMPORT: model.flowing_power_w(),
            **{r: model.rate_wh.get(n, 0) for r, n in RATE_REGISTERS.items()},
        }[ln]
        return encode(settings, wire, value)
    if index == 3:
        return _struct(settings, [(DataType.INT8, scaler), (DataType.ENUM, unit)])
    return None


def _read_event_code(settings, model, ln, index, *_selection):
    if index == 2:
        log = STANDARD_LOG if ln == STANDARD_EVENT_CODE else FRAUD_LOG
        return encode(settings, DataType.UINT8, model.last_code(log))
    return None


def _read_profile(settings, model, ln, index, selector, parameters):
    if index == 2:
        rows = _select_rows(_profile_rows(model, ln), selector, parameters)
        return _array(
            [
                _struct(settings, [(DataType.OCTET_STRING, datetime_bytes(t)), *vals])
                for t, vals in rows
            ]
        )
    if index == 3:
        return _capture_objects(settings, model, ln)
    if index == 4:
        return encode(settings, DataType.UINT32, PROFILE_PERIOD_S if ln == LOAD_PROFILE else 0)
    if index == 7:
        return encode(settings, DataType.UINT32, len(_profile_rows(model, ln)))
    if index == 8:
        cap = MAX_PROFILE_ROWS if ln == LOAD_PROFILE else MAX_EVENT_ROWS
        return encode(settings, DataType.UINT32, cap)
    return None


def _read_disconnect_control(settings, model, ln, index, *_selection):
    if index == 2:
        return encode(settings, DataType.BOOLEAN, model.relay_connected)
    if index == 3:
        return encode(settings, DataType.ENUM, model.control_state())
    if index == 4:
        return encode(settings, DataType.ENUM, model.control_mode)
    return None


def _read_load_recovery(settings, model, ln, index, *_selection):
    if index != 2:
        return None
    if ln == RECONNECT_DELAY:
        return encode(settings, DataType.UINT32, model.reconnect_delay_s)
    if ln == RECONNECT_ATTEMPTS:
        return encode(settings, DataType.UINT8, model.reconnect_attempts_per_hour)
    return encode(settings, DataType.ENUM, model.recovery_state)


def _read_limiter(settings, model, ln, index, *_selection):
    if index == 2:
        return _struct(
            settings,
            [
                (DataType.UINT16, int(ObjectType.REGISTER)),
                (DataType.OCTET_STRING, _GXCommon.logicalNameToBytes(POWER_IMPORT)),
                (DataType.INT8, 2),
            ],
        )
    if index in (3, 4, 5):
        return encode(settings, DataType.UINT32, model.load_limit_w)
    if index in (6, 7):
        return encode(settings, DataType.UINT32, model.min_over_threshold_s)
    return None


def _read_account(settings, model, ln, index, *_selection):
    if index == 2:
        # account_mode_and_status: payment mode 2 = prepayment, status 2 = active
        return _struct(settings, [(DataType.ENUM, 2), (DataType.ENUM, 2)])
    if index == 5:
        # available_credit: what the Credit objects hold for the customer now. The token
        # credit's current_credit_amount already includes emergency credit taken (it joins
        # the available credit and is owed, see MeterModel.take_emergency_credit).
        return encode(settings, DataType.INT32, model.credit_wh)
    if index == 13:  # account_activation_time: the meter's first start
        return _octets(settings, _time_or_unspecified(getattr(model, "activation_time", None)))
    if index == 14:  # account_closure_time: the account is active, not closed
        return _octets(settings, DATETIME_NOT_SPECIFIED)
    return None


def _read_credit(settings, model, ln, index, *_selection):
    if index == 2:
        return encode(settings, DataType.INT32, model.credit_wh)
    if index == 5:
        return encode(settings, DataType.INT32, model.low_credit_wh)
    if index == 6:
        return encode(settings, DataType.INT32, model.trip_wh)
    if index == 11:  # period: no credit period on this meter
        return _octets(settings, DATETIME_NOT_SPECIFIED)
    return None


def _read_emergency_credit(settings, model, ln, index, *_selection):
    values = {
        2: (DataType.INT32, model.emergency_owed_wh),
        3: (DataType.ENUM, 2),  # credit_type: emergency credit
        4: (DataType.UINT8, 2),  # priority: after the token credit
        8: (DataType.ENUM, model.emergency_status()),
        9: (DataType.INT32, model.emergency_amount_wh),
        10: (DataType.INT32, model.emergency_threshold_wh),
    }
    if index == 7:  # bit-string of 8 bits, bit 0 first
        return bytes([DataType.BITSTRING, 8, EMERGENCY_CONFIGURATION])
    if index == 11:  # period: no credit period on this meter
        return _octets(settings, DATETIME_NOT_SPECIFIED)
    if index in values:
        return encode(settings, *values[index])
    return None


def _read_token_gateway(settings, model, ln, index, *_selection):
    if index == 2:
        return encode(settings, DataType.OCTET_STRING, model.last_token)
    if index == 3:  # token_time: when the last token was entered
        entry = model.token_log.get(model.last_transfer_number)
        return _octets(settings, _time_or_unspecified(entry[1] if entry else None))
    return None


def _read_token_log(settings, model, ln, index, *_selection):
    if index != 2:
        return None
    return _array(
        [
            _struct(
                settings,
                [
                    (DataType.UINT32, number),
                    (DataType.ENUM, status),
                    (DataType.OCTET_STRING, datetime_bytes(t)),
                ],
            )
            for number, status, t in model.token_log_rows()
        ]
    )


def date_bytes(d: dt.date) -> bytes:
    """COSEM date (5 bytes), day of week not specified."""
    return bytes([d.year >> 8, d.year & 0xFF, d.month, d.day, 0xFF])


def date_from_bytes(b) -> dt.date:
    b = bytes(b)
    if len(b) != 5:
        raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
    return dt.date((b[0] << 8) | b[1], b[2], b[3])


def _read_friendly(settings, model, ln, index, *_selection):
    if index != 2:
        return None
    if ln == FRIENDLY_SPECIAL_DAYS:
        return _array(
            [
                _struct(
                    settings,
                    [
                        (DataType.UINT16, i),
                        (DataType.OCTET_STRING, date_bytes(d)),
                        (DataType.UINT8, FRIENDLY_DAY_ID),
                    ],
                )
                for i, d in enumerate(model.friendly_days)
            ]
        )
    if ln == FRIENDLY_WEEK:
        windows = _array(
            [
                _struct(
                    settings,
                    [(DataType.UINT8, d + 1), (DataType.UINT16, start), (DataType.UINT16, end)],
                )
                for d, start, end in model.friendly_windows
            ]
        )
        return _struct(settings, [(DataType.INT16, model.friendly_offset_min), windows])
    if ln == FRIENDLY_LIMIT:
        return encode(settings, DataType.INT32, model.friendly_limit_wh)
    return encode(settings, DataType.ENUM, model.friendly_state())


def _write_friendly(model: MeterModel, ln: str, value) -> int:
    """SET of the special days, the week or the limit (the whole value each time)."""
    if ln == FRIENDLY_LIMIT:
        model.set_friendly_schedule(limit_wh=_as_int(value))
        return ErrorCode.OK
    if not isinstance(value, (list, tuple)):
        raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
    if ln == FRIENDLY_SPECIAL_DAYS:
        days = []
        for entry in value:
            if not isinstance(entry, (list, tuple)) or len(entry) != 3:
                raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
            if _as_int(entry[2]) == FRIENDLY_DAY_ID:
                days.append(date_from_bytes(entry[1]))
        model.set_friendly_schedule(special_days=days)
        return ErrorCode.OK
    if len(value) != 2 or not isinstance(value[1], (list, tuple)):
        raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
    windows = []
    for w in value[1]:
        if not isinstance(w, (list, tuple)) or len(w) != 3:
            raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
        day, start, end = (_as_int(v) for v in w)
        windows.append((day - 1, start, end))
    model.set_friendly_schedule(windows=windows, offset_min=_as_int(value[0]))
    return ErrorCode.OK


def _standing_unit_charge(settings, wh: int) -> bytes:
    """unit_charge structure: {charge_per_unit_scaling {commodity_scale, price_scale},
    commodity {class_id, logical_name, attribute_index}, charge_table [{index, charge}]}:
    the credit object's current amount, charged ``wh`` (charge_per_unit x 10^price_scale)."""
    scale = 0
    while wh > 0x7FFF and wh % 10 == 0:
        wh //= 10
        scale += 1
    table = _array([_struct(settings, [(DataType.OCTET_STRING, b""), (DataType.INT16, wh)])])
    return _struct(
        settings,
        [
            _struct(settings, [(DataType.INT8, 0), (DataType.INT8, scale)]),
            _struct(
                settings,
                [
                    (DataType.UINT16, 112),
                    (DataType.OCTET_STRING, _GXCommon.logicalNameToBytes(CREDIT)),
                    (DataType.INT8, 2),
                ],
            ),
            table,
        ],
    )


# ----- time of use -----
def _season_start_bytes(month: int, day: int) -> bytes:
    """COSEM date-time of a season start: every year (0xFFFF), from midnight."""
    return bytes([0xFF, 0xFF, month, day, 0xFF, 0, 0, 0, 0, 0x80, 0x00, 0xFF])


def _time_bytes(minute: int) -> bytes:
    return bytes([minute // 60, minute % 60, 0, 0])


def _calendar_parts(settings, cal: dict | None):
    """(name, seasons, weeks, days) of a calendar, encoded as IC 20 attributes 2-5."""
    cal = cal or {}
    name = encode(settings, DataType.OCTET_STRING, (cal.get("name") or "").encode())
    seasons = _array(
        [
            _struct(
                settings,
                [
                    (DataType.OCTET_STRING, s["name"].encode()),
                    (DataType.OCTET_STRING, _season_start_bytes(s["start_month"], s["start_day"])),
                    (DataType.OCTET_STRING, s["week"].encode()),
                ],
            )
            for s in cal.get("seasons") or []
        ]
    )
    weeks = _array(
        [
            _struct(
                settings,
                [(DataType.OCTET_STRING, w["name"].encode())]
                + [(DataType.UINT8, d) for d in w["days"]],
            )
            for w in cal.get("weeks") or []
        ]
    )
    script = _GXCommon.logicalNameToBytes(TARIFF_SCRIPT_TABLE)
    days = _array(
        [
            _struct(
                settings,
                [
                    (DataType.UINT8, d["day_id"]),
                    _array(
                        [
                            _struct(
                                settings,
                                [
                                    (DataType.OCTET_STRING, _time_bytes(e["start_min"])),
                                    (DataType.OCTET_STRING, script),
                                    (DataType.UINT16, e["rate"]),
                                ],
                            )
                            for e in d["schedule"]
                        ]
                    ),
                ],
            )
            for d in cal.get("days") or []
        ]
    )
    return name, seasons, weeks, days


def _wild_date_bytes(date) -> bytes:
    """COSEM date (5 octets) of (year, month, day), None as the wildcard; weekday 0xFF."""
    year, month, day = date
    year = 0xFFFF if year is None else year
    return bytes(
        [year >> 8, year & 0xFF, 0xFF if month is None else month, 0xFF if day is None else day]
        + [0xFF]
    )


def _wild_date(b) -> tuple[int | None, int | None, int | None]:
    b = bytes(b)
    if len(b) != 5:
        raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
    year = (b[0] << 8) | b[1]
    # 0xFD / 0xFE (last day, daylight-saving begin/end) are not supported: refused
    if b[2] in (0xFD, 0xFE) or b[3] in (0xFD, 0xFE):
        raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
    return (
        None if year == 0xFFFF else year,
        None if b[2] == 0xFF else b[2],
        None if b[3] == 0xFF else b[3],
    )


def _read_tou_special_days(settings, model, ln, index, *_selection):
    if index != 2:
        return None
    return _array(
        [
            _struct(
                settings,
                [
                    (DataType.UINT16, i),
                    (DataType.OCTET_STRING, _wild_date_bytes(date)),
                    (DataType.UINT8, day_id),
                ],
            )
            for i, (date, day_id) in enumerate(model.tou_special_days)
        ]
    )


def _write_tou_special_days(model: MeterModel, value) -> int:
    """SET of the whole special days table: [{index, date, day_id}]."""
    if not isinstance(value, (list, tuple)):
        raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
    entries = []
    for entry in value:
        if not isinstance(entry, (list, tuple)) or len(entry) != 3:
            raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
        entries.append((_wild_date(entry[1]), _as_int(entry[2])))
    model.set_tou_special_days(entries)
    return ErrorCode.OK


def _activation_bytes(model) -> bytes:
    if model.calendar_activate_at is None:
        return bytes([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0xFF])
    return datetime_bytes(model.calendar_activate_at)


def _read_calendar(settings, model, ln, index, *_selection):
    if 2 <= index <= 5:
        return _calendar_parts(settings, model.calendar_active)[index - 2]
    if 6 <= index <= 9:
        return _calendar_parts(settings, model.calendar_passive)[index - 6]
    if index == 10:
        return encode(settings, DataType.OCTET_STRING, _activation_bytes(model))
    return None


def _unit_charge(settings, charges: dict[int, int], price_scale=CHARGE_PRICE_SCALE) -> bytes:
    return _struct(
        settings,
        [
            _struct(settings, [(DataType.INT8, 0), (DataType.INT8, price_scale)]),
            _struct(
                settings,
                [
                    (DataType.UINT16, int(ObjectType.REGISTER)),
                    (DataType.OCTET_STRING, _GXCommon.logicalNameToBytes(ENERGY_IMPORT)),
                    (DataType.INT8, 2),
                ],
            ),
            _array(
                [
                    _struct(settings, [(DataType.OCTET_STRING, bytes([r])), (DataType.INT16, c)])
                    for r, c in sorted(charges.items())
                ]
            ),
        ],
    )


def unit_charge_wh(value) -> int:
    """Wh of a unit_charge structure SET by a client (one charge table entry)."""
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
    scaling, _commodity, table = value
    if not isinstance(scaling, (list, tuple)) or len(scaling) != 2:
        raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
    price_scale = _as_int(scaling[1])
    if not isinstance(table, (list, tuple)) or len(table) != 1:
        raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
    entry = table[0]
    if not isinstance(entry, (list, tuple)) or len(entry) != 2:
        raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
    charge = _as_int(entry[1])
    if charge < 0 or not 0 <= price_scale <= 6:
        raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
    return charge * 10**price_scale


def _read_standing_charge(settings, model, ln, index, *_selection):
    def when(t):
        return datetime_bytes(t) if t else bytes([0xFF] * 12)

    values = {
        2: (DataType.INT32, model.charge_paid_wh),
        3: (DataType.ENUM, CHARGE_TIME_BASED),
        4: (DataType.UINT8, CHARGE_PRIORITY),
        7: (DataType.OCTET_STRING, when(model.charge_activation_time)),
        8: (DataType.UINT32, model.charge_period_s),
        10: (DataType.OCTET_STRING, when(model.charge_last_time)),
        11: (DataType.INT32, model.charge_last_wh),
        12: (DataType.INT32, 0),  # no total to collect: a standing charge runs for ever
        13: (DataType.UINT16, 10000),  # proportion: all of it, in 1/10000
    }
    if index == 5:
        return _standing_unit_charge(settings, model.charge_unit_wh)
    if index == 6:
        return _standing_unit_charge(settings, model.charge_passive_wh)
    if index == 9:  # charge_configuration bit-string: none set
        return bytes([DataType.BITSTRING, 8, 0])
    if index in values:
        return encode(settings, *values[index])
    return None


def _read_charge(settings, model, ln, index, *_selection):
    if index == 2:
        return encode(settings, DataType.INT32, model.charge_total)
    if index == 3:
        return encode(settings, DataType.ENUM, 0)  # consumption based collection
    if index == 4:
        return encode(settings, DataType.UINT8, 1)
    if index == 5:
        return _unit_charge(settings, model.charges_active, model.charge_scale_active)
    if index == 6:
        return _unit_charge(settings, model.charges_passive, model.charge_scale_passive)
    if index == 7:
        return encode(settings, DataType.OCTET_STRING, _activation_bytes(model))
    if index == 10:  # last_collection_time: the charge collects as it counts, no collection
        return encode(settings, DataType.OCTET_STRING, DATETIME_NOT_SPECIFIED)
    return None


def _read_scripts(settings, model, ln, index, *_selection):
    if index != 2:
        return None
    target = _GXCommon.logicalNameToBytes(ACTIVE_TARIFF)
    return _array(
        [
            _struct(
                settings,
                [
                    (DataType.UINT16, n),
                    _array(
                        [
                            _struct(
                                settings,
                                [
                                    (DataType.ENUM, 1),  # write attribute
                                    (DataType.UINT16, int(ObjectType.DATA)),
                                    (DataType.OCTET_STRING, target),
                                    (DataType.INT8, 2),
                                    (DataType.UINT8, n),
                                ],
                            )
                        ]
                    ),
                ],
            )
            for n in TOU_RATES
        ]
    )


def _read_tou_data(settings, model, ln, index, *_selection):
    if index != 2:
        return None
    if ln == ACTIVE_TARIFF:
        return encode(settings, DataType.UINT8, model.active_rate())
    return encode(settings, DataType.INT16, model.tou_offset_min)


def _octet_value(value) -> bytes:
    value = getattr(value, "value", value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise AttributeError_(ErrorCode.UNMATCHED_TYPE)


def _optional_datetime(value) -> dt.datetime | None:
    raw = getattr(value, "value", value)
    if isinstance(raw, (bytes, bytearray)) and len(raw) == 12 and raw[0:2] == b"\xff\xff":
        return None  # not specified: no activation planned
    skip = getattr(value, "skip", None)  # gurux decoded it: GXDateTime with skipped parts
    if skip is not None and int(skip) & int(DateTimeSkips.YEAR):
        return None
    return _as_datetime(value)


def _write_calendar(model: MeterModel, index: int, value) -> int:
    """SET of the passive calendar (attributes 6-9) or its activation time (10)."""
    if index == 10:
        model.set_calendar_activation(_optional_datetime(value))
        return ErrorCode.OK
    if index == 6:
        model.set_passive_part("name", _octet_value(value).decode("ascii", "replace"))
        return ErrorCode.OK
    if not isinstance(value, (list, tuple)):
        raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
    if index == 7:
        seasons = []
        for entry in value:
            name, start, week = entry
            start = _octet_value(start)
            seasons.append(
                {
                    "name": _octet_value(name).decode("ascii", "replace"),
                    "start_month": start[2],
                    "start_day": start[3],
                    "week": _octet_value(week).decode("ascii", "replace"),
                }
            )
        model.set_passive_part("seasons", seasons)
    elif index == 8:
        weeks = []
        for entry in value:
            if len(entry) != 8:
                raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
            weeks.append(
                {
                    "name": _octet_value(entry[0]).decode("ascii", "replace"),
                    "days": [_as_int(d) for d in entry[1:]],
                }
            )
        model.set_passive_part("weeks", weeks)
    elif index == 9:
        days = []
        for day_id, schedule in value:
            entries = []
            for start, _script, selector in schedule:
                start = _octet_value(start)
                entries.append({"start_min": start[0] * 60 + start[1], "rate": _as_int(selector)})
            days.append({"day_id": _as_int(day_id), "schedule": entries})
        model.set_passive_part("days", days)
    else:
        return ErrorCode.READ_WRITE_DENIED
    return ErrorCode.OK


def _write_charge(model: MeterModel, index: int, value) -> int:
    """SET of the passive unit charge (6) or its activation time (7, the calendar's)."""
    if index == 7:
        model.set_calendar_activation(_optional_datetime(value))
        return ErrorCode.OK
    if index != 6:
        return ErrorCode.READ_WRITE_DENIED
    try:
        scaling, _commodity, table = value
        commodity_scale, price_scale = (_as_int(v) for v in scaling)
    except (TypeError, ValueError) as e:
        raise AttributeError_(ErrorCode.UNMATCHED_TYPE) from e
    if commodity_scale != 0 or price_scale not in CHARGE_PRICE_SCALES:
        return ErrorCode.OTHER_REASON  # this meter charges Wh at price scales -4..0 only
    charges = {}
    for index_, cpu in table:
        raw = _octet_value(index_)
        if len(raw) != 1:
            raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
        charges[raw[0]] = _as_int(cpu)
    model.set_passive_charges(charges, price_scale)
    return ErrorCode.OK


# The objects whose values come from the meter model; gurux answers the others.
_READERS = {
    LOGICAL_DEVICE_NAME: _read_name,
    SERIAL_NUMBER: _read_name,
    CLOCK: _read_clock,
    STANDARD_EVENT_CODE: _read_event_code,
    FRAUD_EVENT_CODE: _read_event_code,
    DISCONNECT_CONTROL: _read_disconnect_control,
    LIMITER: _read_limiter,
    ACCOUNT: _read_account,
    CREDIT: _read_credit,
    EMERGENCY_CREDIT: _read_emergency_credit,
    TOKEN_GATEWAY: _read_token_gateway,
    TOKEN_LOG: _read_token_log,
    RECONNECT_DELAY: _read_load_recovery,
    RECONNECT_ATTEMPTS: _read_load_recovery,
    RECOVERY_STATE: _read_load_recovery,
    FRIENDLY_SPECIAL_DAYS: _read_friendly,
    FRIENDLY_WEEK: _read_friendly,
    FRIENDLY_LIMIT: _read_friendly,
    FRIENDLY_STATE: _read_friendly,
    push.PUSH_HEARTBEAT: lambda *a: _read_push(*a),
    push.PUSH_STANDARD_EVENTS: lambda *a: _read_push(*a),
    push.PUSH_FRAUD_EVENTS: lambda *a: _read_push(*a),
    push.HEARTBEAT_INTERVAL: lambda *a: _read_push(*a),
    STANDING_CHARGE: _read_standing_charge,
    ACTIVITY_CALENDAR: _read_calendar,
    CONSUMPTION_CHARGE: _read_charge,
    TARIFF_SCRIPT_TABLE: _read_scripts,
    ACTIVE_TARIFF: _read_tou_data,
    TOU_OFFSET: _read_tou_data,
    TOU_SPECIAL_DAYS: _read_tou_special_days,
}


def _reader_of(ln):
    if ln in REGISTERS:
        return _read_register
    if ln in PROFILES:
        return _read_profile
    return _READERS.get(ln)


def write_attribute(model: MeterModel, ln: str, index: int, value) -> int:
    """Apply a SET; returns a DLMS error code (0 = success)."""
    try:
        if ln == CLOCK and index == 2:
            model.set_clock(_as_datetime(value))
            return ErrorCode.OK
        if ln == LIMITER and index == 3:
            model.set_load_limit(_as_int(value))
            return ErrorCode.OK
        if ln == LIMITER and index == 6:
            with model.lock:
                model.min_over_threshold_s = _as_int(value)
            return ErrorCode.OK
        if (ln, index) in _LOAD_RECOVERY_SETS:
            return _write_load_recovery(model, ln, _as_int(value))
        if ln in (FRIENDLY_SPECIAL_DAYS, FRIENDLY_WEEK, FRIENDLY_LIMIT) and index == 2:
            return _write_friendly(model, ln, value)
        if ln in push.PUSH_SETUPS or ln == push.HEARTBEAT_INTERVAL:
            return _write_push(model, ln, index, value)
        if ln == ACTIVITY_CALENDAR and 6 <= index <= 10:
            return _write_calendar(model, index, value)
        if ln == CONSUMPTION_CHARGE and index in (6, 7):
            return _write_charge(model, index, value)
        if ln == TOU_OFFSET and index == 2:
            model.set_tou_offset(_as_int(value))
            return ErrorCode.OK
        if ln == TOU_SPECIAL_DAYS and index == 2:
            return _write_tou_special_days(model, value)
        if ln == CREDIT and index == 5:
            model.set_thresholds(low_credit_wh=_as_int(value))
            return ErrorCode.OK
        if ln == CREDIT and index == 6:
            model.set_thresholds(trip_wh=_as_int(value))
            return ErrorCode.OK
        if ln == EMERGENCY_CREDIT and index == 9:
            model.set_emergency_credit(amount_wh=_as_int(value))
            return ErrorCode.OK
        if ln == EMERGENCY_CREDIT and index == 10:
            model.set_emergency_credit(threshold_wh=_as_int(value))
            return ErrorCode.OK
        if ln == STANDING_CHARGE and index == 6:
            model.set_charge_passive(unit_charge_wh(value))
            return ErrorCode.OK
        if ln == STANDING_CHARGE and index == 8:
            model.set_charge_period(_as_int(value))
            return ErrorCode.OK
    except AttributeError_ as e:
        return e.code
    except (TypeError, ValueError):
        return ErrorCode.UNMATCHED_TYPE
    return ErrorCode.READ_WRITE_DENIED


_LOAD_RECOVERY_SETS = {(RECONNECT_DELAY, 2), (RECONNECT_ATTEMPTS, 2), (DISCONNECT_CONTROL, 4)}


def _write_load_recovery(model: MeterModel, ln: str, value: int) -> int:
    """SET of the reconnect delay, the attempts per hour or the control mode (0-6; modes
    5 and 6 let the meter reconnect by itself, model.LOCAL_RECONNECT_MODES)."""
    limits = {RECONNECT_DELAY: 0xFFFFFFFF, RECONNECT_ATTEMPTS: 0xFF, DISCONNECT_CONTROL: 6}
    if not 0 <= value <= limits[ln]:
        return ErrorCode.UNMATCHED_TYPE
    key = {
        RECONNECT_DELAY: "reconnect_delay_s",
        RECONNECT_ATTEMPTS: "attempts_per_hour",
        DISCONNECT_CONTROL: "control_mode",
    }[ln]
    model.set_load_recovery(**{key: value})
    return ErrorCode.OK


def _as_int(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
    return int(value)


def invoke_method(model: MeterModel, ln: str, index: int, parameters) -> int:
    """Run an ACTION; returns the action-result code (0 = success)."""
    if ln == DISCONNECT_CONTROL and index == 1:
        model.remote_disconnect()
        return ErrorCode.OK
    if ln == DISCONNECT_CONTROL and index == 2:
        return ErrorCode.OK if model.remote_reconnect() else ErrorCode.TEMPORARY_FAILURE
    if ln == TOKEN_GATEWAY and index == 1:
        if not isinstance(parameters, (bytes, bytearray)):
            return ErrorCode.UNMATCHED_TYPE
        return model.apply_token(bytes(parameters))
    if ln == ACTIVITY_CALENDAR and index == CALENDAR_ACTIVATE:
        ok = model.activate_passive_calendar()
        return ErrorCode.OK if ok else ErrorCode.TEMPORARY_FAILURE
    if ln == EMERGENCY_CREDIT and index == CREDIT_INVOKE:
        parameters = getattr(parameters, "value", parameters)  # gurux decodes enum to GXEnum
        if isinstance(parameters, bool) or not isinstance(parameters, int):
            return ErrorCode.UNMATCHED_TYPE
        # not selectable (credit above the level, already in use, no amount): refused
        return ErrorCode.OK if model.take_emergency_credit() else ErrorCode.TEMPORARY_FAILURE
    if ln == STANDING_CHARGE and index == CHARGE_ACTIVATE_PASSIVE:
        model.activate_charge()
        return ErrorCode.OK
    return ErrorCode.READ_WRITE_DENIED


def invoke_token_log(model: MeterModel, index: int, parameters) -> tuple[int, int]:
    """Token log ACTION: (action-result code, value returned as double-long). Query and
    cancel return a status, model.TRANSFER_NOT_APPLIED / _APPLIED / _CANCELLED; energy the
    Wh the transfer moved (+ credit added, - credit cleared, 0 = no return data: nothing).
    The argument is the transfer number, double-long-unsigned."""
    if index not in (TOKEN_LOG_QUERY, TOKEN_LOG_CANCEL, TOKEN_LOG_ENERGY, TOKEN_LOG_EMERGENCY):
        return ErrorCode.READ_WRITE_DENIED, 0
    try:
        number = _as_int(parameters)
    except AttributeError_ as e:
        return e.code, 0
    if not 0 <= number <= 0xFFFFFFFF:
        return ErrorCode.UNMATCHED_TYPE, 0
    if index == TOKEN_LOG_QUERY:
        return ErrorCode.OK, model.transfer_status(number)
    if index == TOKEN_LOG_ENERGY:
        return ErrorCode.OK, model.transfer_energy(number)
    if index == TOKEN_LOG_EMERGENCY:
        return ErrorCode.OK, model.transfer_emergency_repaid(number)
    return ErrorCode.OK, model.cancel_transfer(number)


# ----- DLMS push (Push setup IC 40, meter_sim/push.py; docs/meter-contract.md "Push") -----

# Push object list (attribute 2) of each push setup: (class id, OBIS, attribute). The
# DataNotification body is a structure of these values, in this order; an event push
# carries the event's own time and code (as the event log's row).
PUSH_OBJECTS = {
    push.PUSH_HEARTBEAT: [
        (40, push.PUSH_HEARTBEAT, 1),
        (1, LOGICAL_DEVICE_NAME, 2),
        (8, CLOCK, 2),
        (112, CREDIT, 2),
        (3, ENERGY_IMPORT, 2),
        (70, DISCONNECT_CONTROL, 2),
    ],
    push.PUSH_STANDARD_EVENTS: [
        (40, push.PUSH_STANDARD_EVENTS, 1),
        (1, LOGICAL_DEVICE_NAME, 2),
        (8, CLOCK, 2),
        (1, STANDARD_EVENT_CODE, 2),
        (112, CREDIT, 2),
        (70, DISCONNECT_CONTROL, 2),
    ],
    push.PUSH_FRAUD_EVENTS: [
        (40, push.PUSH_FRAUD_EVENTS, 1),
        (1, LOGICAL_DEVICE_NAME, 2),
        (8, CLOCK, 2),
        (1, FRAUD_EVENT_CODE, 2),
        (112, CREDIT, 2),
        (70, DISCONNECT_CONTROL, 2),
    ],
}
TRANSPORT_TCP = 0  # send_destination_and_method: transport_service TCP
MESSAGE_AXDR = 0  # message: A-XDR encoded xDLMS APDU


def push_body(model: MeterModel, setup: str, event=None) -> bytes:
    """The values of `setup`'s push object list now (or at `event`), one A-XDR structure."""
    values = []
    for _ic, ln, _attr in PUSH_OBJECTS[setup]:
        if ln == setup:
            values.append(
                (DataType.OCTET_STRING, _GXCommon.logicalNameToBytes(served_ln(model, ln)))
            )
        elif ln == LOGICAL_DEVICE_NAME:
            values.append((DataType.OCTET_STRING, model.serial.encode()))
        elif ln == CLOCK:
            t = event.time if event is not None else model.meter_time()
            values.append((DataType.OCTET_STRING, datetime_bytes(t)))
        elif ln in (STANDARD_EVENT_CODE, FRAUD_EVENT_CODE):
            values.append((DataType.UINT8, event.code if event is not None else 0))
        elif ln == CREDIT:
            values.append((DataType.INT32, model.credit_wh))
        elif ln == ENERGY_IMPORT:
            values.append((DataType.UINT32, model.import_wh & 0xFFFFFFFF))
        elif ln == DISCONNECT_CONTROL:
            values.append((DataType.BOOLEAN, model.relay_connected))
    return _struct(None, values)


def _window_time(minute: int) -> bytes:
    """A date-time with every date field "not specified": a time of day, every day."""
    if minute >= 1440:
        h, m = 23, 59
        s = 59
    else:
        h, m, s = minute // 60, minute % 60, 0
    return bytes([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, h, m, s, 0xFF, 0x80, 0x00, 0xFF])


def _window_minute(b) -> int:
    b = bytes(b)
    if len(b) != 12:
        raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
    if b[5] == 23 and b[6] == 59 and b[7] == 59:
        return 1440
    if b[5] > 23 or b[6] > 59:
        raise AttributeError_(ErrorCode.UNMATCHED_TYPE)
    return b[5] * 60 + b[6]


def _read_push(settings, model, ln, index, *_selection):
    p = model.push
    if ln == push.HEARTBEAT_INTERVAL:
        return encode(settings, DataType.UINT32, p.heartbeat_s) if index == 2 else None
    if index == 2:
        return _array(
            [
                _struct(
                    settings,
                    [
                        (DataType.UINT16, ic),
                        (DataType.OCTET_STRING, _GXCommon.logicalNameToBytes(obj)),
                        (DataType.INT8, attr),
                        (DataType.UINT16, 0),
                    ],
                )
                for ic, obj, attr in PUSH_OBJECTS[ln]
            ]
        )
    if index == 3:
        return _struct(
            settings,
            [
                (DataType.ENUM, TRANSPORT_TCP),
                (DataType.OCTET_STRING, p.destination.encode()),
                (DataType.ENUM, MESSAGE_AXDR),
            ],
        )
    if index == 4:
        return _array(
            [
                _struct(
                    settings,
                    [
                        (DataType.OCTET_STRING, _window_time(start)),
                        (DataType.OCTET_STRING, _window_time(end)),
                    ],
                )
                for start, end in p.windows
            ]
        )
    if index == 5:
        return encode(settings, DataType.UINT16, p.randomisation_s)
    if index == 6:
        return encode(settings, DataType.UINT8, p.retries)
    if index == 7:
        return encode(settings, DataType.UINT16, p.repetition_delay_s)
    return None


def _write_push(model: MeterModel, ln: str, index: int, value) -> int:
    """SET of a push setup's destination, window, randomisation, retries or repetition
    delay (the three push setups share them), or of the heartbeat interval."""
    p = model.push
    value = getattr(value, "value", value)  # gurux may hand enums as GXEnum
    with model.lock:
        if ln == push.HEARTBEAT_INTERVAL:
            if index != 2:
                return ErrorCode.READ_WRITE_DENIED
            v = _as_int(value)
            if not 0 <= v <= 0xFFFFFFFF:
                return ErrorCode.UNMATCHED_TYPE
            p.heartbeat_s = v
            return ErrorCode.OK
        if index == 3:
            if not isinstance(value, (list, tuple)) or len(value) != 3:
                return ErrorCode.UNMATCHED_TYPE
            transport, dest, message = (getattr(v, "value", v) for v in value)
            if transport != TRANSPORT_TCP or message != MESSAGE_AXDR:
                return ErrorCode.UNMATCHED_TYPE  # only TCP and A-XDR APDUs
            if not isinstance(dest, (bytes, bytearray)):
                return ErrorCode.UNMATCHED_TYPE
            text = bytes(dest).decode("ascii", "replace")
            probe = push.PushSettings(destination=text)
            if text and probe.address() is None:
                return ErrorCode.UNMATCHED_TYPE  # "host:port" or empty (push off)
            p.destination = text
            return ErrorCode.OK
        if index == 4:
            if not isinstance(value, (list, tuple)):
                return ErrorCode.UNMATCHED_TYPE
            windows = []
            for w in value:
                if not isinstance(w, (list, tuple)) or len(w) != 2:
                    return ErrorCode.UNMATCHED_TYPE
                start, end = (_window_minute(x) for x in w)
                if start >= end:
                    return ErrorCode.UNMATCHED_TYPE
                windows.append((start, end))
            p.windows = windows
            return ErrorCode.OK
        limits = {
            5: ("randomisation_s", 0xFFFF),
            6: ("retries", 0xFF),
            7: ("repetition_delay_s", 0xFFFF),
        }
        if index in limits:
            name, top = limits[index]
            v = _as_int(value)
            if not 0 <= v <= top:
                return ErrorCode.UNMATCHED_TYPE
            setattr(p, name, v)
            return ErrorCode.OK
    return ErrorCode.READ_WRITE_DENIED
