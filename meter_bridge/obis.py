"""The meter contract (docs/meter-contract.md) as constants, and OBIS/unit helpers."""

from __future__ import annotations

import functools
import re

# (OBIS, interface class)
LOGICAL_DEVICE_NAME = ("0.0.42.0.0.255", 1)
CLOCK = ("0.0.1.0.0.255", 8)
ENERGY_IMPORT = ("1.0.1.8.0.255", 3)
ENERGY_EXPORT = ("1.0.2.8.0.255", 3)
VOLTAGE_L1 = ("1.0.32.7.0.255", 3)
CURRENT_L1 = ("1.0.31.7.0.255", 3)
POWER_IMPORT = ("1.0.1.7.0.255", 3)
LOAD_PROFILE = ("1.0.99.1.0.255", 7)
STANDARD_EVENT_LOG = ("0.0.99.98.0.255", 7)
FRAUD_EVENT_LOG = ("0.0.99.98.1.255", 7)
STANDARD_EVENT_CODE = ("0.0.96.11.0.255", 1)
FRAUD_EVENT_CODE = ("0.0.96.11.1.255", 1)
DISCONNECT_CONTROL = ("0.0.96.3.10.255", 70)
LIMITER = ("0.0.17.0.0.255", 71)
ACCOUNT = ("0.0.19.0.0.255", 111)
CREDIT = ("0.0.19.10.0.255", 112)
TOKEN_GATEWAY = ("0.0.19.40.0.255", 115)
EMERGENCY_CREDIT = ("0.0.19.10.1.255", 112)  # a second Credit: credit_type emergency
TOKEN_LOG = ("0.0.19.40.128.255", 1)  # manufacturer-specific: query / cancel a transfer
# Manufacturer-specific load-trip recovery objects (docs/meter-contract.md)
RECONNECT_DELAY = ("0.0.17.0.128.255", 1)  # s before the meter reconnects by itself
RECONNECT_ATTEMPTS = ("0.0.17.0.129.255", 1)  # automatic reconnections per rolling hour
RECOVERY_STATE = ("0.0.17.0.130.255", 1)  # 0 normal, 1 waiting, 2 lockout
# Friendly (non-disconnect) periods (docs/meter-contract.md, "Friendly periods")
FRIENDLY_SPECIAL_DAYS = ("0.0.11.0.1.255", 11)  # standard Special days table, instance 1
# DLMS push (docs/meter-contract.md "Push"): Push setup IC 40, one per push, and the
# manufacturer-specific heartbeat interval (Data, double-long-unsigned s)
PUSH_SETUPS = (("0.0.25.9.0.255", 40), ("0.1.25.9.0.255", 40), ("0.2.25.9.0.255", 40))
PUSH_HEARTBEAT_INTERVAL = ("0.0.25.9.128.255", 1)
FRIENDLY_WEEK = ("0.0.11.0.128.255", 1)  # {UTC offset min, [{weekday 1-7, start, end}]}
FRIENDLY_LIMIT = ("0.0.11.0.129.255", 1)  # Wh, <= 0
FRIENDLY_STATE = ("0.0.11.0.130.255", 1)  # 0 outside, 1 inside, 2 deferring a trip
# Standing charge: a time-based Charge (docs/meter-contract.md, "Standing charge")
STANDING_CHARGE = ("0.0.19.20.1.255", 113)
CHARGE_TOTAL_PAID = 2
CHARGE_TYPE = 3
CHARGE_UNIT_ACTIVE = 5
CHARGE_UNIT_PASSIVE = 6
CHARGE_PERIOD = 8
CHARGE_LAST_COLLECTION_TIME = 10
CHARGE_ACTIVATE_PASSIVE = 2  # IC 113 method 2 activate_passive_unit_charge
CHARGE_TIME_BASED = 1
# Time of use and money mode (docs/meter-contract.md, "Time-of-use and money mode")
ACTIVITY_CALENDAR = ("0.0.13.0.0.255", 20)  # passive 6-9, activation time 10
TARIFF_SCRIPT_TABLE = "0.0.10.0.100.255"  # the day profiles' script: selector = rate
ACTIVE_TARIFF = ("0.0.96.14.0.255", 1)  # unsigned: the rate in force
CONSUMPTION_CHARGE = ("0.0.19.20.0.255", 113)  # 2 collected, 5/6 unit charge, 7 activation
TOU_OFFSET = ("0.0.13.0.128.255", 1)  # long: the calendar's local time - UTC, minutes
# the calendar's Special days table (instance 0): {index, date, day_id of a day profile}
TOU_SPECIAL_DAYS = ("0.0.11.0.0.255", 11)

EVENT_LOGS = {"standard": STANDARD_EVENT_LOG, "fraud": FRAUD_EVENT_LOG}

# Attributes / methods used by the executors.
CLOCK_TIME = 2
RELAY_OUTPUT_STATE = 2
RELAY_CONTROL_STATE = 3
RELAY_CONTROL_MODE = 4
RELAY_REMOTE_DISCONNECT = 1
RELAY_REMOTE_RECONNECT = 2
LIMITER_THRESHOLD_ACTIVE = 3
CREDIT_CURRENT_AMOUNT = 2
CREDIT_WARNING_THRESHOLD = 5
CREDIT_LIMIT = 6
TOKEN_ENTER = 1
TOKEN_LOG_QUERY = 1
TOKEN_LOG_CANCEL = 2
TOKEN_LOG_ENERGY = 3  # Wh a transfer moved: + credit added, - credit cleared
TOKEN_LOG_EMERGENCY = 4  # Wh of a transfer that repaid emergency credit
CREDIT_TYPE = 3
CREDIT_STATUS = 8
CREDIT_PRESET_AMOUNT = 9
CREDIT_AVAILABLE_THRESHOLD = 10
CREDIT_INVOKE = 3  # IC 112 method 3 invoke_credit
# Token log statuses (docs/meter-contract.md)
TRANSFER_NOT_APPLIED = 1
TRANSFER_APPLIED = 2
TRANSFER_CANCELLED = 3
PROFILE_BUFFER = 2
PROFILE_CAPTURE_OBJECTS = 3

# Interface classes whose attribute 2 is scaled by attribute 3 (scaler_unit).
SCALED_CLASSES = {3: 3, 4: 3, 5: 3}

# Default interface class per OBIS for the field engineer's CLI (any OBIS not here is Data).
KNOWN_IC = {
    obis: ic
    for obis, ic in (
        LOGICAL_DEVICE_NAME,
        CLOCK,
        ENERGY_IMPORT,
        ENERGY_EXPORT,
        VOLTAGE_L1,
        CURRENT_L1,
        POWER_IMPORT,
        LOAD_PROFILE,
        STANDARD_EVENT_LOG,
        FRAUD_EVENT_LOG,
        STANDARD_EVENT_CODE,
        FRAUD_EVENT_CODE,
        DISCONNECT_CONTROL,
        LIMITER,
        ACCOUNT,
        CREDIT,
        EMERGENCY_CREDIT,
        TOKEN_GATEWAY,
        TOKEN_LOG,
        RECONNECT_DELAY,
        RECONNECT_ATTEMPTS,
        RECOVERY_STATE,
        STANDING_CHARGE,
    )
}

# DLMS unit enumeration (Blue Book, table "Physical units"), the ones a meter actually sends.
UNITS = {
    1: "a",
    2: "mo",
    3: "wk",
    4: "d",
    5: "h",
    6: "min",
    7: "s",
    8: "°",
    9: "°C",
    10: "currency",
    11: "m",
    12: "m/s",
    13: "m3",
    14: "m3",
    15: "m3/h",
    16: "m3/h",
    17: "m3/d",
    18: "m3/d",
    19: "l",
    20: "kg",
    21: "N",
    22: "Nm",
    23: "Pa",
    24: "bar",
    25: "J",
    26: "J/h",
    27: "W",
    28: "VA",
    29: "var",
    30: "Wh",
    31: "VAh",
    32: "varh",
    33: "A",
    34: "C",
    35: "V",
    36: "V/m",
    37: "F",
    38: "Ω",
    39: "Ωm2/m",
    40: "Wb",
    41: "T",
    42: "A/m",
    43: "H",
    44: "Hz",
    45: "1/(Wh)",
    46: "1/(varh)",
    47: "1/(VAh)",
    48: "V2h",
    49: "A2h",
    50: "kg/s",
    51: "S",
    52: "K",
    53: "1/(V2h)",
    54: "1/(A2h)",
    55: "1/m3",
    56: "%",
    57: "Ah",
    60: "Wh/m3",
    61: "J/m3",
    62: "Mol %",
    63: "g/m3",
    64: "Pa s",
    65: "J/kg",
    70: "dBm",
    71: "dBµV",
    72: "dB",
    253: "",
    254: "",
    255: "",
}

_OBIS_RE = re.compile(r"^\s*(\d+)[.\-:](\d+)[.\-:](\d+)[.\-:](\d+)[.\-:](\d+)(?:[.\-:*](\d+))?\s*$")


@functools.lru_cache(maxsize=4096)  # a few codes, parsed several times per GET
def parse_obis(text: str) -> tuple[int, int, int, int, int, int]:
    """'1.0.1.8.0.255', '1-0:1.8.0.255' or '1.0.1.8.0' → six ints (F defaults to 255).

    Not Obis.from_string: it drops a sixth group other than 255.
    """
    match = _OBIS_RE.match(text or "")
    if not match:
        raise ValueError(f"not an OBIS code: {text!r}")
    parts = [int(p) if p is not None else 255 for p in match.groups()]
    if any(p > 255 for p in parts):
        raise ValueError(f"not an OBIS code: {text!r}")
    return tuple(parts)  # type: ignore[return-value]


def obis_str(parts) -> str:
    return ".".join(str(p) for p in parts)


def normalize_obis(text: str) -> str:
    return obis_str(parse_obis(text))


def unit_name(code: int | None) -> str:
    if code is None:
        return ""
    return UNITS.get(code, str(code))
