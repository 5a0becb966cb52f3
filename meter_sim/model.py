# SPDX-License-Identifier: GPL-2.0-or-later
"""Pure-Python state machine of one simulated prepaid meter (no sockets, no gurux).

Credit and energy are integer Wh. Time is simulated: `advance(seconds)` moves this meter
forward deterministically; the fleet ticker calls `advance_to(clock.now())`.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import random
import re
import threading
import time
import zlib
from dataclasses import dataclass, field

from . import security

# Standard event log codes (contract: docs/meter-contract.md).
# A real meter keeps its invocation counter in non-volatile memory; the simulator keeps
# nothing between runs, so each run starts its meters' counters from the wall clock: this
# many per second since COUNTER_EPOCH. A restarted simulator (`make demo` again) starts above
# every counter its previous run used (unless a meter used more than this many per second on
# average), so the head end's replay check (Odoo's push_invocation_counter) goes on accepting
# its pushes, and no GCM nonce (system title + counter) is used twice under the same key.
# 32-bit counters: this lasts until 2038.
COUNTER_PER_SECOND = 10
COUNTER_EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


def first_invocation_counter(now: float | None = None) -> int:
    """The server invocation counter a meter starts a simulator run with (see above)."""
    seconds = (time.time() if now is None else now) - COUNTER_EPOCH.timestamp()
    return max(1, int(seconds * COUNTER_PER_SECOND))


EV_POWER_DOWN = 1
EV_POWER_UP = 2
EV_CLOCK_ADJUSTED = 4
EV_CREDIT_TRIP = 59
EV_LOAD_TRIP = 60
EV_RELAY_RECONNECTED = 61
EV_REMOTE_DISCONNECT = 62
EV_REMOTE_RECONNECT = 63
EV_LOW_CREDIT = 64
EV_ZERO_CREDIT = 65
EV_CREDIT_ADDED = 66
EV_THRESHOLDS_CHANGED = 67
EV_LOAD_LIMIT_CHANGED = 68
EV_TOKEN_DUPLICATE = 69  # token refused: its transfer number was already applied
EV_TOKEN_MALFORMED = 70  # token refused: not a credit token (length, zero energy)
EV_TRANSFER_CANCELLED = 71  # a transfer number was cancelled (its token is refused for ever)
EV_CREDIT_CLEARED = 72  # a clear-credit token was applied: credit fell by its energy
# Load-trip recovery (limiter + disconnect control modes 5/6, docs/meter-contract.md)
EV_LOAD_AUTO_RECONNECT = 80  # relay closed by itself, the reconnect delay after a load trip
EV_LOAD_LOCKOUT = 81  # load trip with the hour's reconnections used up: open until remote
EV_LOAD_RECOVERY_CHANGED = 82  # reconnect delay, attempts per hour or control mode SET
# Emergency credit (Credit IC 112 0.0.19.10.1.255, docs/meter-contract.md)
EV_EMERGENCY_TAKEN = 83  # emergency credit invoked (remote ACTION or the meter's button)
EV_EMERGENCY_REPAID = 84  # a credit token repaid the emergency credit in use, in full
EV_EMERGENCY_CHANGED = 85  # emergency amount or its credit level SET
# Friendly (non-disconnect) periods (docs/meter-contract.md, "Friendly periods")
EV_FRIENDLY_TRIP_DEFERRED = 86  # credit at the trip threshold inside a friendly period
EV_FRIENDLY_SCHEDULE_CHANGED = 87  # friendly week, special days or friendly limit SET
# Standing charge (Charge IC 113 0.0.19.20.1.255, time-based, docs/meter-contract.md)
EV_CHARGE_COLLECTED = 88  # a standing charge collected from credit (one per clock pass)
EV_CHARGE_CHANGED = 89  # standing charge unit charge activated or period SET
# Time of use and money mode (docs/meter-contract.md, "Time-of-use and money mode")
EV_TOKEN_WRONG_UNIT = 73  # token refused: kWh token on a money meter, or the reverse
EV_TARIFF_CALENDAR_CHANGED = 96  # passive calendar / unit charge SET
EV_TARIFF_CALENDAR_ACTIVATED = 97  # the passive calendar became the active one
# Fraud event log codes.
EV_COVER_OPENED = 40
EV_COVER_CLOSED = 41
EV_OVER_CURRENT = 91
EV_REVERSE_CONNECTION = 92
EV_TOKEN_BAD_MAC = 93  # token refused: MAC does not verify under the meter's token key
EV_TOKEN_WRONG_METER = 94  # token refused: minted for another meter
EV_TOKEN_CANCELLED = 95  # token refused: its transfer number was cancelled (sale reversed)

STANDARD_LOG = "standard"
FRAUD_LOG = "fraud"
FRAUD_CODES = {
    EV_COVER_OPENED,
    EV_COVER_CLOSED,
    EV_OVER_CURRENT,
    EV_REVERSE_CONNECTION,
    EV_TOKEN_BAD_MAC,
    EV_TOKEN_WRONG_METER,
    EV_TOKEN_CANCELLED,
}
TAMPER_KINDS = {
    "cover_open": EV_COVER_OPENED,
    "cover_close": EV_COVER_CLOSED,
    "over_current": EV_OVER_CURRENT,
    "reverse_connection": EV_REVERSE_CONNECTION,
}

PROFILE_PERIOD_S = 900
MAX_PROFILE_ROWS = 96 * 7  # one week keeps a full-buffer read well under one 64 KiB PDU
MAX_EVENT_ROWS = 100
STEP_S = 60  # integration step; limiter and thresholds are checked at least this often
RECONNECT_WINDOW_S = 3600  # automatic reconnections are counted over a rolling hour
# Disconnect control modes (Blue Book IC 70, attribute 4) with local reconnection (h): the
# meter may close the relay itself after a local (limiter) disconnection.
LOCAL_RECONNECT_MODES = (5, 6)
# Load-trip recovery state (0.0.17.0.130.255)
RECOVERY_NORMAL = 0
RECOVERY_WAITING = 1  # tripped, reconnecting by itself at the end of the delay
RECOVERY_LOCKOUT = 2  # tripped too often in the hour: open until a remote reconnect
# Emergency credit status (Blue Book IC 112 credit_status, attribute 8)
EMERGENCY_ENABLED = 0  # configured (or amount 0) but main credit above the level
EMERGENCY_SELECTABLE = 1  # main credit at or below the level: the tenant may take it
EMERGENCY_IN_USE = 3  # taken, not yet repaid
EMERGENCY_EXHAUSTED = 4  # taken and consumed: credit at or below the trip threshold
EMERGENCY_STATUS_NAMES = {
    EMERGENCY_ENABLED: "enabled",
    EMERGENCY_SELECTABLE: "selectable",
    EMERGENCY_IN_USE: "in_use",
    EMERGENCY_EXHAUSTED: "exhausted",
}
# Friendly state (0.0.11.0.131.255)
FRIENDLY_OUTSIDE = 0
FRIENDLY_INSIDE = 1
FRIENDLY_DEFERRING = 2  # inside, and a credit trip is being deferred
FRIENDLY_STATE_NAMES = {
    FRIENDLY_OUTSIDE: "outside",
    FRIENDLY_INSIDE: "inside",
    FRIENDLY_DEFERRING: "deferring",
}
MAX_FRIENDLY_WINDOWS = 64
MAX_SPECIAL_DAYS = 128
RECOVERY_STATE_NAMES = {
    RECOVERY_NORMAL: "normal",
    RECOVERY_WAITING: "waiting",
    RECOVERY_LOCKOUT: "lockout",
}

# Token gateway results (Blue Book action-result codes), see contract.
TOKEN_OK = 0
TOKEN_DUPLICATE = 3  # read-write-denied: transfer number already applied
TOKEN_WRONG_METER = 11  # object-unavailable: the token names another meter
TOKEN_MALFORMED = 12  # type-unmatched
TOKEN_BAD_MAC = 13  # scope-of-access-violated: not signed with this meter's token key
TOKEN_CANCELLED = 15  # long-action-aborted: the transfer number was cancelled
TOKEN_OTHER = 250  # other-reason

# Token log (docs/meter-contract.md, "Token log"): what the meter did with a transfer number.
TRANSFER_NOT_APPLIED = 1
TRANSFER_APPLIED = 2
TRANSFER_CANCELLED = 3
TRANSFER_STATUS_NAMES = {
    TRANSFER_NOT_APPLIED: "not_applied",
    TRANSFER_APPLIED: "applied",
    TRANSFER_CANCELLED: "cancelled",
}
MAX_TOKEN_LOG_ROWS = 100  # rows attribute 2 shows; query and cancel know every number

TOKEN_REFUSAL_EVENTS = {
    TOKEN_DUPLICATE: EV_TOKEN_DUPLICATE,
    TOKEN_WRONG_METER: EV_TOKEN_WRONG_METER,
    TOKEN_MALFORMED: EV_TOKEN_MALFORMED,
    TOKEN_BAD_MAC: EV_TOKEN_BAD_MAC,
    TOKEN_CANCELLED: EV_TOKEN_CANCELLED,
}

EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


class SimClock:
    """Simulated wall clock: starts at `start`, runs `speed` times faster than real time.

    speed 0 freezes it (tests then drive meters with `advance`)."""

    def __init__(self, speed: float = 1.0, start: dt.datetime | None = None):
        self.speed = speed
        self.start = start or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        self._t0 = time.monotonic()

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=(time.monotonic() - self._t0) * self.speed)


@dataclass
class LoadModel:
    """Active power in W: base load shaped by a daily curve plus seeded noise."""

    base_w: float = 400.0
    peak_w: float = 1200.0  # extra load at the evening peak
    noise: float = 0.1  # relative noise, per 15-minute slot
    seed: int = 0

    def power_w(self, serial: str, t: dt.datetime) -> int:
        hour = t.hour + t.minute / 60.0
        # Morning bump around 07:00 and evening peak around 19:00.
        curve = 0.5 * math.exp(-((hour - 7.0) ** 2) / 2.0) + math.exp(-((hour - 19.0) ** 2) / 4.0)
        slot = int(t.timestamp()) // PROFILE_PERIOD_S
        p = (self.base_w + self.peak_w * curve) * (
            1.0 + self.noise * slot_noise(self.seed, serial, slot)
        )
        return max(0, int(round(p)))


@functools.lru_cache(maxsize=1 << 16)
def slot_noise(seed: int, serial: str, slot: int) -> float:
    """A meter's load noise in one 15-minute slot, in [-1, 1): seeded by meter and slot, so
    every read within the slot agrees. Cached: seeding a Random for each power reading was
    4 % of the simulator's CPU per billing read."""
    return 2 * random.Random(zlib.crc32(f"{seed}:{serial}:{slot}".encode())).random() - 1


@dataclass
class Event:
    time: dt.datetime
    code: int
    log: str

    def as_json(self) -> dict:
        return {"time": self.time.isoformat(), "code": self.code, "log": self.log}


OBIS_RE = re.compile(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")


def check_object_map(serial: str, object_map) -> None:
    """An object map is {OBIS: OBIS}, dotted A.B.C.D.E.F, no two objects at one OBIS."""
    if not isinstance(object_map, dict):
        raise ValueError(f"{serial}: object_map must be an object {{contract OBIS: OBIS}}")
    for key, value in object_map.items():
        for code in (key, value):
            if not isinstance(code, str) or not OBIS_RE.match(code):
                raise ValueError(f"{serial}: object_map: {code!r} is not an OBIS code A.B.C.D.E.F")
            if any(int(part) > 255 for part in code.split(".")):
                raise ValueError(f"{serial}: object_map: {code!r} is not an OBIS code")
    if len(set(object_map.values())) != len(object_map):
        raise ValueError(f"{serial}: object_map: two objects at one OBIS code")


@dataclass
class MeterConfig:
    serial: str
    port: int = 0
    framing: str = "wrapper"  # wrapper | hdlc
    auth: str = "hls"  # hls | lls | none: mechanism of the management client (1)
    password: str = "00000000"
    # Keys (hex, 16 bytes): HLS-GMAC block cipher key and authentication key, credit-token
    # key. Empty: derived from `key_seed` and the serial (demo and tests only, see
    # meter_sim/security.py). system_title: of the meter, empty = from the serial.
    encryption_key: str = ""
    authentication_key: str = ""
    token_key: str = ""
    key_seed: str = security.DEMO_KEY_SEED
    system_title: str = ""
    server_physical_address: int = 17
    credit_kwh: float = 50.0
    low_credit_kwh: float = 5.0
    trip_kwh: float = 0.0
    load_limit_w: int = 0  # 0 = limiter off
    # Load-trip recovery: control mode (IC 70 attribute 4; 5 or 6 allow the meter to
    # reconnect by itself), reconnect delay and automatic reconnections per rolling hour.
    control_mode: int = 1
    reconnect_delay_s: int = 0
    reconnect_attempts_per_hour: int = 0
    # Emergency credit: kWh granted when taken (0 = none) and the credit level at or below
    # which it may be taken.
    emergency_credit_kwh: float = 0.0
    emergency_threshold_kwh: float = 0.0
    # Standing charge (time-based Charge): kWh taken from credit every period of seconds
    # of the meter's clock (0: none).
    standing_charge_kwh: float = 0.0
    standing_charge_period_s: int = 86400
    # Credit mode: "kwh" (tokens carry Wh) or "money" (tokens carry milli-units of the
    # currency; credit_kwh, low_credit_kwh and trip_kwh are then amounts of currency, and
    # consumption is charged at the active rate's price of the activity calendar).
    credit_mode: str = "kwh"
    load: dict = field(default_factory=dict)  # LoadModel kwargs
    # DLMS push (Push setup IC 40, meter_sim/push.py): head end "host:port" the meter
    # connects out to ("" = no push) and the heartbeat interval in meter seconds (0 = none).
    push_destination: str = ""
    push_heartbeat_s: int = 0
    serial_device: str = ""  # HDLC over a serial device instead of TCP
    # Another vendor's object map: {contract OBIS: OBIS this meter serves it at}, e.g.
    # {"0.0.19.10.0.255": "0.128.96.50.0.255"} (docs/meter-contract.md "Meter profiles").
    # Empty: the SmartPM contract's OBIS codes.
    object_map: dict = field(default_factory=dict)
    # The link (GPRS and the like; meter_sim/server.py "Slow links"): each answer goes out
    # latency_ms (+/- up to jitter_ms, uniform) after its request came in, and a request
    # frame is dropped unanswered with probability `loss` (the client times out and
    # retries). 0, 0, 0: answers at once, nothing lost.
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0

    @classmethod
    def from_dict(cls, d: dict) -> MeterConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown meter keys: {sorted(unknown)}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def __post_init__(self):
        derived = None
        for name in ("encryption_key", "authentication_key", "token_key"):
            if not getattr(self, name):
                derived = derived or security.derive_keys(self.serial, self.key_seed)
                setattr(self, name, derived[name])

    def validate(self) -> None:
        if self.framing not in ("wrapper", "hdlc"):
            raise ValueError(f"{self.serial}: framing must be wrapper or hdlc")
        if self.auth not in ("none", "lls", "hls"):
            raise ValueError(f"{self.serial}: auth must be none, lls or hls")
        if not 0 <= self.control_mode <= 6:
            raise ValueError(f"{self.serial}: control_mode must be 0 to 6")
        if self.credit_mode not in ("kwh", "money"):
            raise ValueError(f"{self.serial}: credit_mode must be kwh or money")
        if self.emergency_credit_kwh < 0:
            raise ValueError(f"{self.serial}: emergency_credit_kwh must not be negative")
        if self.standing_charge_kwh < 0 or self.standing_charge_period_s <= 0:
            raise ValueError(f"{self.serial}: standing charge >= 0 kWh, period above 0 s")
        if self.reconnect_delay_s < 0 or not 0 <= self.reconnect_attempts_per_hour <= 255:
            raise ValueError(f"{self.serial}: reconnect delay >= 0, attempts per hour 0 to 255")
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise ValueError(f"{self.serial}: latency_ms and jitter_ms must not be negative")
        if not 0 <= self.loss < 1:
            raise ValueError(f"{self.serial}: loss is a share of frames, from 0 to below 1")
        try:
            self.serial.encode("ascii")
        except UnicodeEncodeError as e:
            raise ValueError(f"{self.serial!r}: a serial is ASCII") from e
        check_object_map(self.serial, self.object_map)
        checks = [("token_key", 16)]
        if self.auth == "hls":
            checks += [("encryption_key", 16), ("authentication_key", 16), ("system_title", 8)]
        for name, size in checks:
            value = getattr(self, name)
            if name == "system_title" and not value:
                continue  # derived from the serial
            try:
                ok = len(bytes.fromhex(value)) == size
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"{self.serial}: {name} must be {size} bytes in hex")


class MeterModel:
    """State of one prepaid meter. Thread-safe: every public method takes the lock."""

    def __init__(self, config: MeterConfig, seed: int = 0, start: dt.datetime | None = None):
        self.config = config
        self.serial = config.serial
        self.lock = threading.RLock()
        load = dict(config.load)
        load.setdefault("seed", seed)
        self.load = LoadModel(**load)
        self.time = start or EPOCH
        self.activation_time = self.time  # Account account_activation_time (IC 111/13)
        self.clock_offset = dt.timedelta(0)  # set by a clock SET (sync)
        self.credit_wh = int(round(config.credit_kwh * 1000))
        self.low_credit_wh = int(round(config.low_credit_kwh * 1000))
        self.trip_wh = int(round(config.trip_kwh * 1000))
        self.load_limit_w = int(config.load_limit_w)
        self.min_over_threshold_s = 0
        self.control_mode = int(config.control_mode)
        self.reconnect_delay_s = int(config.reconnect_delay_s)
        self.reconnect_attempts_per_hour = int(config.reconnect_attempts_per_hour)
        self.recovery_state = RECOVERY_NORMAL
        self._reconnect_due: dt.datetime | None = None
        self._auto_reconnects: list[dt.datetime] = []  # simulated times, last hour kept
        self.emergency_amount_wh = int(round(config.emergency_credit_kwh * 1000))
        self.emergency_threshold_wh = int(round(config.emergency_threshold_kwh * 1000))
        self.emergency_owed_wh = 0  # emergency credit taken and not yet repaid
        self.emergency_repaid: dict[int, int] = {}  # transfer number -> Wh it repaid
        self.import_wh = 0
        self.export_wh = 0
        self._frac_wh = 0.0  # sub-Wh energy not yet counted
        self.relay_connected = True
        self.disconnect_reason: str | None = None  # credit | load | remote
        self.power_override_w: int | None = None
        self.reverse = False
        self.offline = False
        # HLS-GMAC invocation counters: the meter's own (next one to use) and the last one
        # accepted from the client; both outlive connections, like a real meter's (and the
        # meter's own starts from the clock: first_invocation_counter).
        self.server_invocation_counter = first_invocation_counter()
        self.client_invocation_counter: int | None = None
        self.applied_transfers: set[int] = set()
        self.cancelled_transfers: set[int] = set()
        # transfer number -> (TRANSFER_APPLIED | TRANSFER_CANCELLED, meter time), in order
        self.token_log: dict[int, tuple[int, dt.datetime]] = {}
        # transfer number -> Wh it moved: + credit added, - credit cleared (token log method 3)
        self.token_energy: dict[int, int] = {}
        self.last_transfer_number: int | None = None
        self.last_token = b""
        self.events: list[Event] = []
        self.profile: list[tuple[dt.datetime, int, int]] = []
        self._low_flag = False
        self._zero_flag = False
        self._over_since: dt.datetime | None = None
        # Friendly periods: weekly windows (weekday 0=Monday, start min, end min) and special
        # days (dates), both in the meter's friendly local time (UTC + offset minutes).
        self.friendly_windows: list[tuple[int, int, int]] = []
        self.friendly_days: list[dt.date] = []
        self.friendly_offset_min = 0
        self.friendly_limit_wh = 0  # credit may fall to this (<= 0) inside a period
        self._trip_deferred = False
        # DLMS push (meter_sim/push.py): the Push setup attributes and the functions told of
        # every event logged (the push agent queues a DataNotification for each).
        from .push import PushSettings

        self.push = PushSettings.from_config(config)
        self.event_hooks: list = []
        # Standing charge (Charge IC 113, time-based): Wh per period of meter time, the
        # passive unit charge waiting for activation, what was collected, and the index of
        # the last period collected (meter time // period): a period is collected once.
        self.charge_unit_wh = int(round(config.standing_charge_kwh * 1000))
        self.charge_passive_wh = self.charge_unit_wh
        self.charge_period_s = int(config.standing_charge_period_s)
        self.charge_paid_wh = 0
        self.charge_last_wh = 0
        self.charge_last_time: dt.datetime | None = None
        self.charge_activation_time: dt.datetime | None = None
        self._charge_mark = self._charge_index()
        # Time of use (money mode): credit_wh then counts milli-units of the currency.
        self.credit_mode = config.credit_mode
        self.tou_offset_min = 0  # the calendar's local time = UTC + offset
        self.calendar_active: dict | None = None  # {name, seasons, weeks, days}
        self.calendar_passive: dict | None = None
        self.calendar_activate_at: dt.datetime | None = None
        # Special days table of the calendar (IC 11 0.0.11.0.0.255): (year, month, day) with
        # None for a wildcard (0xFFFF / 0xFF: every year, every month), and the day_id of the
        # active calendar's day profile that replaces the weekday's on that date.
        self.tou_special_days: list[tuple[tuple[int | None, int | None, int | None], int]] = []
        self.charges_active: dict[int, int] = {}  # rate -> charge_per_unit (price scale -4)
        self.charges_passive: dict[int, int] = {}
        # charge_per_unit x 10^price_scale milli-units per Wh (docs: -4..0)
        self.charge_scale_active = -4
        self.charge_scale_passive = -4
        self.rate_wh: dict[int, int] = {}  # energy import per rate (1.0.1.8.N.255)
        self.charge_total = 0  # milli-units the consumption charge collected (IC 113 attr 2)
        self._charge_acc = 0  # uncollected charge, 10^-4 milli-units
        self._log(EV_POWER_UP)
        self._check_credit()

    # ----- readings -----
    def meter_time(self) -> dt.datetime:
        return self.time + self.clock_offset

    def power_w(self) -> int:
        """Demanded active power (what flows when the relay is closed)."""
        if self.power_override_w is not None:
            return self.power_override_w
        return self.load.power_w(self.serial, self.time)

    def flowing_power_w(self) -> int:
        return self.power_w() if self.relay_connected else 0

    def voltage_dv(self) -> int:
        return 2300  # 230.0 V, scaler -1

    def current_ca(self) -> int:
        return int(round(self.flowing_power_w() / 230.0 * 100))  # scaler -2

    @property
    def relay_state(self) -> str:
        return "connected" if self.relay_connected else "disconnected"

    def control_state(self) -> int:
        if self.relay_connected:
            return 1
        # Open for credit or load: a reconnect is possible once the cause is gone.
        return 2 if self.disconnect_reason in ("credit", "load") else 0

    def log_events(self, log: str) -> list[Event]:
        return [e for e in self.events if e.log == log]

    def last_code(self, log: str) -> int:
        evs = self.log_events(log)
        return evs[-1].code if evs else 0

    # ----- time -----
    def advance(self, seconds: float) -> None:
        """Move simulated time forward, integrating energy and firing thresholds."""
        with self.lock:
            end = self.time + dt.timedelta(seconds=seconds)
            while self.time < end:
                nxt_slot = _next_boundary(self.time, PROFILE_PERIOD_S)
                step_end = min(end, self.time + dt.timedelta(seconds=STEP_S), nxt_slot)
                if self._reconnect_due is not None and self.time < self._reconnect_due:
                    step_end = min(step_end, self._reconnect_due)  # reconnect on time
                if self.calendar_active or self.calendar_passive:
                    # the calendar switches on whole minutes: a step never spans two rates
                    step_end = min(step_end, _next_boundary(self.time, 60))
                self._step((step_end - self.time).total_seconds())
                self.time = step_end
                self._check_auto_reconnect()
                self._collect_charges()
                self._check_friendly_end()
                if self.time == nxt_slot:
                    self._capture_profile()

    def advance_to(self, t: dt.datetime) -> None:
        with self.lock:
            if t > self.time:
                self.advance((t - self.time).total_seconds())

    def _step(self, seconds: float) -> None:
        self._check_auto_reconnect()
        self._check_limiter(seconds)
        p = self.flowing_power_w()
        if p <= 0 or seconds <= 0:
            return
        self._frac_wh += p * seconds / 3600.0
        wh = int(self._frac_wh)
        if wh:
            self._frac_wh -= wh
            if self.reverse:
                self.export_wh += wh
            else:
                self.import_wh += wh
            rate = self.active_rate()
            self.rate_wh[rate] = self.rate_wh.get(rate, 0) + wh
            # Prepaid meters bill the absolute energy, so reversing the meter saves nothing.
            if self.credit_mode == "money":
                self._charge(rate, wh)
            else:
                self.credit_wh -= wh
            self._check_credit()

    def _capture_profile(self) -> None:
        self.profile.append((self.meter_time(), self.import_wh, self.export_wh))
        del self.profile[:-MAX_PROFILE_ROWS]

    # ----- rules -----
    def _log(self, code: int) -> None:
        log = FRAUD_LOG if code in FRAUD_CODES else STANDARD_LOG
        event = Event(self.meter_time(), code, log)
        self.events.append(event)
        for hook in getattr(self, "event_hooks", ()):
            hook(self, event)
        mine = [e for e in self.events if e.log == log]
        if len(mine) > MAX_EVENT_ROWS:
            self.events.remove(mine[0])

    def _check_credit(self) -> None:
        c = self.credit_wh
        if c <= self.low_credit_wh and not self._low_flag:
            self._low_flag = True
            self._log(EV_LOW_CREDIT)
        elif c > self.low_credit_wh:
            self._low_flag = False
        if c <= 0 and not self._zero_flag:
            self._zero_flag = True
            self._log(EV_ZERO_CREDIT)
        elif c > 0:
            self._zero_flag = False
        if c <= self.trip_wh and self.relay_connected and not self._friendly_defers_trip():
            self._open("credit", EV_CREDIT_TRIP)
        elif c > self.trip_wh and not self.relay_connected and self.disconnect_reason == "credit":
            self._close()

    # ----- friendly (non-disconnect) periods -----
    def friendly_local_time(self) -> dt.datetime:
        """The meter's time in the friendly schedule's local time (naive)."""
        local = self.meter_time() + dt.timedelta(minutes=self.friendly_offset_min)
        return local.replace(tzinfo=None)

    def in_friendly_period(self) -> bool:
        local = self.friendly_local_time()
        if local.date() in self.friendly_days:
            return True
        minute = local.hour * 60 + local.minute
        wd = local.weekday()
        return any(d == wd and start <= minute < end for d, start, end in self.friendly_windows)

    def friendly_state(self) -> int:
        if self._trip_deferred and self.credit_wh <= self.trip_wh and self.relay_connected:
            return FRIENDLY_DEFERRING
        return FRIENDLY_INSIDE if self.in_friendly_period() else FRIENDLY_OUTSIDE

    def _friendly_defers_trip(self) -> bool:
        """Called by _check_credit when credit is at or below the trip threshold with the
        relay closed: True keeps the relay closed (inside a friendly period, credit above
        the friendly limit). The deferral is logged once per episode."""
        defer = self.credit_wh > self.friendly_limit_wh and self.in_friendly_period()
        if defer and not self._trip_deferred:
            self._log(EV_FRIENDLY_TRIP_DEFERRED)
        self._trip_deferred = defer
        return defer

    def _check_friendly_end(self) -> None:
        """A deferred trip: once credit is back above the threshold it is over; once the
        period ends (or the limit is reached) the meter trips."""
        if not self._trip_deferred:
            return
        if self.credit_wh > self.trip_wh or not self.relay_connected:
            self._trip_deferred = False
            return
        self._check_credit()

    def set_friendly_schedule(
        self,
        windows: list[tuple[int, int, int]] | None = None,
        special_days: list[dt.date] | None = None,
        limit_wh: int | None = None,
        offset_min: int | None = None,
    ) -> None:
        """SET of the friendly week (with its UTC offset), the special days or the limit."""
        with self.lock:
            if windows is not None:
                checked = []
                for d, start, end in windows:
                    if not (0 <= int(d) <= 6 and 0 <= int(start) < int(end) <= 1440):
                        raise ValueError(f"bad friendly window {(d, start, end)}")
                    checked.append((int(d), int(start), int(end)))
                if len(checked) > MAX_FRIENDLY_WINDOWS:
                    raise ValueError("too many friendly windows")
                self.friendly_windows = checked
            if offset_min is not None:
                if not -840 <= int(offset_min) <= 840:
                    raise ValueError("friendly UTC offset out of range")
                self.friendly_offset_min = int(offset_min)
            if special_days is not None:
                if len(special_days) > MAX_SPECIAL_DAYS:
                    raise ValueError("too many special days")
                self.friendly_days = sorted(set(special_days))
            if limit_wh is not None:
                if int(limit_wh) > 0:
                    raise ValueError("the friendly limit is at or below zero")
                self.friendly_limit_wh = int(limit_wh)
            self._log(EV_FRIENDLY_SCHEDULE_CHANGED)
            self._check_credit()

    def _check_limiter(self, seconds: float = 0.0) -> None:
        if not self.relay_connected or self.load_limit_w <= 0:
            self._over_since = None
            return
        if self.power_w() <= self.load_limit_w:
            self._over_since = None
            return
        if self._over_since is None:
            self._over_since = self.time
        over = (self.time - self._over_since).total_seconds() + seconds
        if over >= self.min_over_threshold_s:
            self._open("load", EV_LOAD_TRIP)
            self._after_load_trip()

    # ----- load-trip recovery (limiter section) -----
    def auto_reconnect_enabled(self) -> bool:
        return (
            self.control_mode in LOCAL_RECONNECT_MODES
            and self.reconnect_attempts_per_hour > 0
            and self.load_limit_w > 0
        )

    def _recent_reconnects(self) -> list[dt.datetime]:
        since = self.time - dt.timedelta(seconds=RECONNECT_WINDOW_S)
        self._auto_reconnects = [t for t in self._auto_reconnects if t > since]
        return self._auto_reconnects

    def _after_load_trip(self) -> None:
        """A load trip: reconnect after the delay while the rolling hour has attempts left,
        else lock out (stay open until a remote reconnect)."""
        if not self.auto_reconnect_enabled():
            self.recovery_state = RECOVERY_NORMAL
            self._reconnect_due = None
            return
        if len(self._recent_reconnects()) >= self.reconnect_attempts_per_hour:
            self.recovery_state = RECOVERY_LOCKOUT
            self._reconnect_due = None
            self._log(EV_LOAD_LOCKOUT)
            return
        self.recovery_state = RECOVERY_WAITING
        self._reconnect_due = self.time + dt.timedelta(seconds=self.reconnect_delay_s)

    def _check_auto_reconnect(self) -> None:
        if self._reconnect_due is None or self.time < self._reconnect_due:
            return
        self._reconnect_due = None
        if (
            self.recovery_state != RECOVERY_WAITING
            or self.relay_connected
            or self.disconnect_reason != "load"
            or not self.auto_reconnect_enabled()
        ):
            self.recovery_state = RECOVERY_NORMAL
            return
        self.recovery_state = RECOVERY_NORMAL
        self._auto_reconnects.append(self.time)
        self.relay_connected = True
        self.disconnect_reason = None
        self._over_since = None
        self._log(EV_LOAD_AUTO_RECONNECT)
        self._check_limiter()  # still over the limit: trips again (after min_over_threshold)

    def _clear_recovery(self) -> None:
        """An operator took over (remote reconnect or disconnect): no pending automatic
        reconnection, no lockout, and the hour's count starts again."""
        self.recovery_state = RECOVERY_NORMAL
        self._reconnect_due = None
        self._auto_reconnects = []

    def set_load_recovery(
        self,
        reconnect_delay_s: int | None = None,
        attempts_per_hour: int | None = None,
        control_mode: int | None = None,
    ) -> None:
        with self.lock:
            if reconnect_delay_s is not None:
                if not 0 <= int(reconnect_delay_s) <= 0xFFFFFFFF:
                    raise ValueError("reconnect delay out of range")
                self.reconnect_delay_s = int(reconnect_delay_s)
            if attempts_per_hour is not None:
                if not 0 <= int(attempts_per_hour) <= 0xFF:
                    raise ValueError("attempts per hour out of range")
                self.reconnect_attempts_per_hour = int(attempts_per_hour)
            if control_mode is not None:
                if not 0 <= int(control_mode) <= 6:
                    raise ValueError("control mode out of range")
                self.control_mode = int(control_mode)
            self._log(EV_LOAD_RECOVERY_CHANGED)
            if not self.auto_reconnect_enabled() and self.recovery_state == RECOVERY_WAITING:
                self.recovery_state = RECOVERY_NORMAL
                self._reconnect_due = None

    # ----- emergency credit (Credit IC 112, credit_type emergency) -----
    def emergency_status(self) -> int:
        with self.lock:
            if self.emergency_owed_wh > 0:
                return EMERGENCY_EXHAUSTED if self.credit_wh <= self.trip_wh else EMERGENCY_IN_USE
            if self.emergency_amount_wh > 0 and self.credit_wh <= self.emergency_threshold_wh:
                return EMERGENCY_SELECTABLE
            return EMERGENCY_ENABLED

    def take_emergency_credit(self) -> bool:
        """invoke_credit (method 3) or the meter's button: only when selectable. The amount
        joins the available credit (a relay opened for credit closes) and is owed."""
        with self.lock:
            if self.emergency_status() != EMERGENCY_SELECTABLE:
                return False
            self.emergency_owed_wh = self.emergency_amount_wh
            self.credit_wh += self.emergency_amount_wh
            self._log(EV_EMERGENCY_TAKEN)
            self._check_credit()
            return True

    def press_button(self) -> bool:
        """The meter's keypad button: takes emergency credit when it is selectable."""
        return self.take_emergency_credit()

    def _repay_emergency(self, number: int, wh: int) -> int:
        """A credit token repays the emergency credit in use first: returns the Wh of it
        that do not add to credit (kept per transfer for the token log, method 4)."""
        repaid = min(self.emergency_owed_wh, wh)
        if repaid:
            self.emergency_owed_wh -= repaid
            self.emergency_repaid[number] = repaid
            if not self.emergency_owed_wh:
                self._log(EV_EMERGENCY_REPAID)
        return repaid

    def transfer_emergency_repaid(self, transfer_number: int) -> int:
        """Token log method 4: Wh of the transfer that repaid emergency credit."""
        with self.lock:
            return self.emergency_repaid.get(int(transfer_number), 0)

    def set_emergency_credit(self, amount_wh: int | None = None, threshold_wh: int | None = None):
        with self.lock:
            if amount_wh is not None:
                if not 0 <= int(amount_wh) <= 0x7FFFFFFF:
                    raise ValueError("emergency amount out of range")
                self.emergency_amount_wh = int(amount_wh)
            if threshold_wh is not None:
                self.emergency_threshold_wh = int(threshold_wh)
            self._log(EV_EMERGENCY_CHANGED)

    # ----- standing charge (Charge IC 113, charge_type time-based) -----
    def _charge_index(self) -> int:
        """The period of meter time now (meter time // period, from the epoch, UTC)."""
        return int(self.meter_time().timestamp()) // max(self.charge_period_s, 1)

    def _collect_charges(self) -> None:
        """Collect the charge of every period the meter's clock passed since the last one
        collected: one charge per elapsed period (a clock moved forward over several days
        collects each day once), none twice (a clock moved back collects nothing until it
        passes the last collected period again). Credit may go negative: inside a friendly
        period the trip is deferred as for consumption, and the next token repays it."""
        index = self._charge_index()
        periods = index - self._charge_mark
        if periods <= 0:
            return
        self._charge_mark = index
        if self.charge_unit_wh <= 0:
            return
        wh = periods * self.charge_unit_wh
        self.credit_wh -= wh
        self.charge_paid_wh += wh
        self.charge_last_wh = wh
        self.charge_last_time = dt.datetime.fromtimestamp(
            index * self.charge_period_s, tz=dt.timezone.utc
        )
        self._log(EV_CHARGE_COLLECTED)
        self._check_credit()

    def set_charge_passive(self, unit_wh: int) -> None:
        """SET of unit_charge_passive (attribute 6): applies at activation (method 2)."""
        with self.lock:
            if not 0 <= int(unit_wh) <= 0x7FFFFFFF:
                raise ValueError("unit charge out of range")
            self.charge_passive_wh = int(unit_wh)

    def activate_charge(self) -> None:
        """activate_passive_unit_charge (method 2): the passive unit charge is active from
        now; the period in progress is not charged (collection starts at its end)."""
        with self.lock:
            self._collect_charges()  # what the old charge owes up to now
            self.charge_unit_wh = self.charge_passive_wh
            self.charge_activation_time = self.meter_time()
            self._charge_mark = self._charge_index()
            self._log(EV_CHARGE_CHANGED)

    def set_charge_period(self, period_s: int) -> None:
        with self.lock:
            if not 0 < int(period_s) <= 0xFFFFFFFF:
                raise ValueError("charge period out of range")
            self._collect_charges()
            self.charge_period_s = int(period_s)
            self._charge_mark = self._charge_index()
            self._log(EV_CHARGE_CHANGED)

    def _open(self, reason: str, code: int) -> None:
        self.relay_connected = False
        self.disconnect_reason = reason
        self._over_since = None
        self._log(code)

    def _close(self) -> None:
        self.relay_connected = True
        self.disconnect_reason = None
        self._log(EV_RELAY_RECONNECTED)

    # ----- commands (DLMS and HTTP) -----
    def apply_token(self, token: bytes) -> int:
        """Token gateway `enter`: returns an action-result code (see contract). The MAC is
        checked before the transfer number, so a forged token never passes for "already
        applied"; every refusal is logged."""
        money_kind = security.is_money_token(token) or security.is_money_clear_token(token)
        if self.credit_mode == "money":
            wrong_unit = not money_kind and len(token or b"") in (
                security.TOKEN_LEN,
                security.MONEY_TOKEN_LEN,
            )
        else:
            wrong_unit = money_kind
        if wrong_unit:
            with self.lock:
                self._log(EV_TOKEN_WRONG_UNIT)  # a kWh token never passes as money, nor back
                return TOKEN_MALFORMED
        if security.is_money_token(token):
            return self.apply_money_token(token)
        if security.is_clear_token(token):
            return self.apply_clear_token(token)
        if security.is_money_clear_token(token):
            return self.apply_clear_token(token, security.money_clear_mac_valid)
        with self.lock:
            code = self._check_token(token)
            if code != TOKEN_OK:
                self._log(TOKEN_REFUSAL_EVENTS[code])
                return code
            number, wh, _tag, _mac = security.parse_token(token)
            self.applied_transfers.add(number)
            self.token_log[number] = (TRANSFER_APPLIED, self.meter_time())
            self.last_transfer_number = number
            self.last_token = bytes(token)
            self.token_energy[number] = wh
            self.credit_wh += wh - self._repay_emergency(number, wh)
            self._log(EV_CREDIT_ADDED)
            self._check_credit()
            return TOKEN_OK

    def _check_token(self, token) -> int:
        try:
            number, wh, tag, mac = security.parse_token(token)
        except ValueError:
            return TOKEN_MALFORMED
        if tag != security.meter_tag(self.serial):
            return TOKEN_WRONG_METER
        if wh == 0:
            return TOKEN_MALFORMED
        if not security.mac_valid(self.token_key, self.serial, number, wh, mac):
            return TOKEN_BAD_MAC
        if number in self.applied_transfers:
            return TOKEN_DUPLICATE
        if number in self.cancelled_transfers:
            return TOKEN_CANCELLED
        return TOKEN_OK

    def apply_clear_token(self, token: bytes, mac_valid=security.clear_mac_valid) -> int:
        """A clear-credit token through the gateway (contract: "Clear-credit token"): the
        same checks and answers as a credit token, on the same transfer numbers; applied,
        credit falls by its energy (below zero if the tenant consumed since the settlement;
        thresholds and relay as for consumption). A money-mode meter's money clear token
        (``mac_valid`` its own MAC check) is the same in milli-units of the currency."""
        with self.lock:
            code = self._check_clear_token(token, mac_valid)
            if code != TOKEN_OK:
                self._log(TOKEN_REFUSAL_EVENTS[code])
                return code
            number, wh = _clear_fields(token)
            self.applied_transfers.add(number)
            self.token_log[number] = (TRANSFER_APPLIED, self.meter_time())
            self.token_energy[number] = -wh
            self.last_transfer_number = number
            self.last_token = bytes(token)
            self.credit_wh -= wh
            self._log(EV_CREDIT_CLEARED)
            self._check_credit()
            return TOKEN_OK

    def apply_money_token(self, token: bytes) -> int:
        """A money token on a money-mode meter: the credit token's checks and answers, on
        the same transfer numbers; applied, credit rises by its milli-units."""
        with self.lock:
            number, amount = _clear_fields(token)  # same layout as a clear token
            if int.from_bytes(token[9:13], "big") != security.meter_tag(self.serial):
                code = TOKEN_WRONG_METER
            elif amount == 0:
                code = TOKEN_MALFORMED
            elif not security.money_mac_valid(
                self.token_key, self.serial, number, amount, token[13:]
            ):
                code = TOKEN_BAD_MAC
            elif number in self.applied_transfers:
                code = TOKEN_DUPLICATE
            elif number in self.cancelled_transfers:
                code = TOKEN_CANCELLED
            else:
                code = TOKEN_OK
            if code != TOKEN_OK:
                self._log(TOKEN_REFUSAL_EVENTS[code])
                return code
            self.applied_transfers.add(number)
            self.token_log[number] = (TRANSFER_APPLIED, self.meter_time())
            self.token_energy[number] = amount
            self.last_transfer_number = number
            self.last_token = bytes(token)
            # emergency credit in use (milli-units in money mode) is repaid first
            self.credit_wh += amount - self._repay_emergency(number, amount)
            self._log(EV_CREDIT_ADDED)
            self._check_credit()
            return TOKEN_OK

    def mint_money_token(self, transfer_number: int, amount: int) -> bytes:
        return security.mint_money_token(self.token_key, self.serial, transfer_number, amount)

    def add_money(self, transfer_number: int, amount: int) -> int:
        return self.apply_token(self.mint_money_token(transfer_number, amount))

    # ----- time of use: activity calendar (IC 20) and consumption charge (IC 113) -----
    def set_tariff_calendar(
        self,
        passive: dict | None = None,
        charges: dict[int, int] | None = None,
        activate_at: dt.datetime | None = None,
        offset_min: int | None = None,
        price_scale: int = -4,
    ) -> None:
        """SET of the passive calendar, the passive unit charge, the activation time (None
        = not planned) or the calendar's UTC offset. Activation happens at that meter time,
        or at once through activate_passive_calendar()."""
        with self.lock:
            if passive is not None:
                _check_calendar(passive)
                self.calendar_passive = passive
            if charges is not None:
                for rate, cpu in charges.items():
                    if not (1 <= int(rate) <= 63 and -32768 <= int(cpu) <= 32767):
                        raise ValueError(f"bad unit charge {rate}: {cpu}")
                if not -4 <= int(price_scale) <= 0:
                    raise ValueError(f"price scale {price_scale} out of -4..0")
                self.charges_passive = {int(r): int(c) for r, c in charges.items()}
                self.charge_scale_passive = int(price_scale)
            if offset_min is not None:
                if not -840 <= int(offset_min) <= 840:
                    raise ValueError("calendar UTC offset out of range")
                self.tou_offset_min = int(offset_min)
            self.calendar_activate_at = activate_at
            self._log(EV_TARIFF_CALENDAR_CHANGED)
            self._check_calendar_activation()

    def set_passive_part(self, key: str, value) -> None:
        """SET of one attribute of the passive calendar (name, seasons, weeks, days) as
        the activity calendar object receives them; checked whole at activation."""
        with self.lock:
            if key not in ("name", "seasons", "weeks", "days"):
                raise ValueError(f"unknown calendar part {key}")
            self.calendar_passive = dict(self.calendar_passive or {}, **{key: value})
            self._log(EV_TARIFF_CALENDAR_CHANGED)

    def set_calendar_activation(self, when: dt.datetime | None) -> None:
        """SET of activate_passive_calendar_time (and the unit charge's activation time):
        None = not planned."""
        with self.lock:
            self.calendar_activate_at = when
            self._check_calendar_activation()

    def set_passive_charges(self, charges: dict[int, int], price_scale: int = -4) -> None:
        with self.lock:
            if not -4 <= int(price_scale) <= 0:
                raise ValueError(f"price scale {price_scale} out of -4..0")
            for rate, cpu in charges.items():
                if not (1 <= int(rate) <= 63 and -32768 <= int(cpu) <= 32767):
                    raise ValueError(f"bad unit charge {rate}: {cpu}")
            self.charges_passive = {int(r): int(c) for r, c in charges.items()}
            self.charge_scale_passive = int(price_scale)
            self._log(EV_TARIFF_CALENDAR_CHANGED)

    def set_tou_offset(self, offset_min: int) -> None:
        with self.lock:
            if not -840 <= int(offset_min) <= 840:
                raise ValueError("calendar UTC offset out of range")
            self.tou_offset_min = int(offset_min)

    def set_tou_special_days(
        self, entries: list[tuple[tuple[int | None, int | None, int | None], int]]
    ) -> None:
        """SET of the calendar's special days table (the whole table): [((year, month, day),
        day_id)], None a wildcard. A day_id the active calendar has no day profile of is kept
        (it may be the passive calendar's) and ignored while it has none."""
        if len(entries) > MAX_SPECIAL_DAYS:
            raise ValueError("too many special days")
        checked = []
        for (year, month, day), day_id in entries:
            if month is not None and not 1 <= month <= 12:
                raise ValueError(f"bad special day month {month}")
            if day is not None and not 1 <= day <= 31:
                raise ValueError(f"bad special day {day}")
            if year is not None and month is not None and day is not None:
                dt.date(year, month, day)  # a real date (ValueError otherwise)
            if not 0 <= int(day_id) <= 255:
                raise ValueError(f"bad day_id {day_id}")
            checked.append(((year, month, day), int(day_id)))
        with self.lock:
            self.tou_special_days = checked
            self._log(EV_TARIFF_CALENDAR_CHANGED)

    def special_day_id(self, day: dt.date) -> int | None:
        """The day_id the special days table gives ``day`` (a local date), or None."""
        for (year, month, mday), day_id in self.tou_special_days:
            if (
                (year is None or year == day.year)
                and (month is None or month == day.month)
                and (mday is None or mday == day.day)
            ):
                return day_id
        return None

    def activate_passive_calendar(self) -> bool:
        """IC 20 method 1 (and IC 113 method 2): the passive calendar and unit charge
        become the active ones. False (nothing changes) if the passive one is incomplete."""
        with self.lock:
            if self.calendar_passive is None:
                return False
            try:
                _check_calendar(self.calendar_passive)
            except ValueError:
                self.calendar_activate_at = None
                return False
            self.calendar_active = self.calendar_passive
            self.charges_active = dict(self.charges_passive)
            self.charge_scale_active = self.charge_scale_passive
            self.calendar_activate_at = None
            self._log(EV_TARIFF_CALENDAR_ACTIVATED)
            return True

    def _check_calendar_activation(self) -> None:
        if self.calendar_activate_at is not None and self.meter_time() >= self.calendar_activate_at:
            self.activate_passive_calendar()

    def tou_local_time(self) -> dt.datetime:
        local = self.meter_time() + dt.timedelta(minutes=self.tou_offset_min)
        return local.replace(tzinfo=None)

    def active_rate(self) -> int:
        """The rate the active calendar gives now (script selector of the day profile
        entry in force); 1 without a calendar."""
        self._check_calendar_activation()
        cal = self.calendar_active
        if not cal:
            return 1
        local = self.tou_local_time()
        seasons = sorted(cal["seasons"], key=lambda s: (s["start_month"], s["start_day"]))
        season = seasons[-1]  # before the first start of the year: the last season runs
        for candidate in seasons:
            if (candidate["start_month"], candidate["start_day"]) <= (local.month, local.day):
                season = candidate
        week = next(w for w in cal["weeks"] if w["name"] == season["week"])
        day_id = week["days"][local.weekday()]
        special = self.special_day_id(local.date())
        if special is not None and any(d["day_id"] == special for d in cal["days"]):
            day_id = special  # a special day (public holiday) takes its own day profile
        day = next(d for d in cal["days"] if d["day_id"] == day_id)
        minute = local.hour * 60 + local.minute
        rate = day["schedule"][0]["rate"]
        for entry in sorted(day["schedule"], key=lambda e: e["start_min"]):
            if entry["start_min"] <= minute:
                rate = entry["rate"]
        return rate

    def _charge(self, rate: int, wh: int) -> None:
        """Consumption-based charge: Wh x charge_per_unit x 10^price_scale milli-units (price
        scale -4..0), collected in whole milli-units, the remainder kept (never lost, never
        rounded up; counted in 10^-4 milli-units)."""
        step = 10 ** (self.charge_scale_active + 4)
        self._charge_acc += wh * self.charges_active.get(rate, 0) * step
        collected = self._charge_acc // 10_000
        if collected:
            self._charge_acc -= collected * 10_000
            self.credit_wh -= collected
            self.charge_total += collected

    def _check_clear_token(self, token, mac_valid=security.clear_mac_valid) -> int:
        number, wh = _clear_fields(token)
        if int.from_bytes(token[9:13], "big") != security.meter_tag(self.serial):
            return TOKEN_WRONG_METER
        if wh == 0:
            return TOKEN_MALFORMED
        if not mac_valid(self.token_key, self.serial, number, wh, token[13:]):
            return TOKEN_BAD_MAC
        if number in self.applied_transfers:
            return TOKEN_DUPLICATE
        if number in self.cancelled_transfers:
            return TOKEN_CANCELLED
        return TOKEN_OK

    def transfer_energy(self, transfer_number: int) -> int:
        """Token log method 3: Wh the transfer moved, + added, - cleared, 0 not applied."""
        with self.lock:
            return self.token_energy.get(int(transfer_number), 0)

    def mint_clear_token(self, transfer_number: int, wh: int) -> bytes:
        """A clear-credit token signed with this meter's own key (what Odoo would send)."""
        return security.mint_clear_token(self.token_key, self.serial, transfer_number, wh)

    def clear_credit(self, transfer_number: int, wh: int) -> int:
        return self.apply_token(self.mint_clear_token(transfer_number, wh))

    def clear_money(self, transfer_number: int, amount: int) -> int:
        """A money clear token of ``amount`` milli-units signed with this meter's key."""
        token = security.mint_money_clear_token(
            self.token_key, self.serial, transfer_number, amount
        )
        return self.apply_token(token)

    def transfer_status(self, transfer_number: int) -> int:
        """Token log query: TRANSFER_APPLIED, TRANSFER_CANCELLED or TRANSFER_NOT_APPLIED."""
        with self.lock:
            entry = self.token_log.get(int(transfer_number))
            return entry[0] if entry else TRANSFER_NOT_APPLIED

    def cancel_transfer(self, transfer_number: int) -> int:
        """Token log cancel: a transfer number not applied yet is refused for ever from now
        on (its token answers TOKEN_CANCELLED). Returns the status after the call: applied
        (too late, nothing changes) or cancelled. One step under the lock, so a token
        entered at the same time is either applied before or refused after."""
        with self.lock:
            number = int(transfer_number)
            status = self.transfer_status(number)
            if status == TRANSFER_NOT_APPLIED:
                self.cancelled_transfers.add(number)
                self.token_log[number] = (TRANSFER_CANCELLED, self.meter_time())
                self._log(EV_TRANSFER_CANCELLED)
                status = TRANSFER_CANCELLED
            return status

    def token_log_rows(self) -> list[tuple[int, int, dt.datetime]]:
        """(transfer_number, status, meter time) of the last MAX_TOKEN_LOG_ROWS entries."""
        with self.lock:
            rows = [(n, status, t) for n, (status, t) in self.token_log.items()]
            return rows[-MAX_TOKEN_LOG_ROWS:]

    @property
    def token_key(self) -> bytes:
        return bytes.fromhex(self.config.token_key)

    def mint_token(self, transfer_number: int, wh: int) -> bytes:
        """A token signed with this meter's own key (what Odoo would send)."""
        return security.mint_token(self.token_key, self.serial, transfer_number, wh)

    def add_credit(self, transfer_number: int, wh: int) -> int:
        return self.apply_token(self.mint_token(transfer_number, wh))

    def remote_disconnect(self) -> None:
        with self.lock:
            self._log(EV_REMOTE_DISCONNECT)
            if self.relay_connected:
                self.relay_connected = False
            self.disconnect_reason = "remote"
            self._clear_recovery()

    def remote_reconnect(self) -> bool:
        """Close the relay; refused (False) while credit is at or below the trip threshold."""
        with self.lock:
            if self.credit_wh <= self.trip_wh:
                return False
            self._log(EV_REMOTE_RECONNECT)
            self._clear_recovery()  # clears a load-trip lockout
            if not self.relay_connected:
                self._close()
            self._check_limiter()
            return True

    def set_thresholds(self, low_credit_wh: int | None = None, trip_wh: int | None = None):
        with self.lock:
            if low_credit_wh is not None:
                self.low_credit_wh = int(low_credit_wh)
            if trip_wh is not None:
                self.trip_wh = int(trip_wh)
            self._log(EV_THRESHOLDS_CHANGED)
            self._check_credit()

    def set_load_limit(self, watts: int) -> None:
        with self.lock:
            self.load_limit_w = int(watts)
            self._log(EV_LOAD_LIMIT_CHANGED)
            self._check_limiter()

    def set_load(self, watts: int | None) -> None:
        """Force the demanded power (None: back to the load model)."""
        with self.lock:
            self.power_override_w = None if watts is None else max(0, int(watts))
            self._check_limiter()

    def set_clock(self, t: dt.datetime) -> None:
        with self.lock:
            if t.tzinfo is None:
                t = t.replace(tzinfo=dt.timezone.utc)
            self.clock_offset = t - self.time
            self._log(EV_CLOCK_ADJUSTED)
            self._collect_charges()  # a clock moved forward passes periods; back, none

    def tamper(self, kind: str) -> None:
        with self.lock:
            if kind not in TAMPER_KINDS:
                raise ValueError(f"unknown tamper kind {kind!r}")
            if kind == "reverse_connection":
                self.reverse = True
            self._log(TAMPER_KINDS[kind])

    def power(self, on: bool) -> None:
        """Mains lost (power down, event 1: a real meter's last gasp) or back (power up, 2)."""
        with self.lock:
            self._log(EV_POWER_UP if on else EV_POWER_DOWN)

    def accept_client_counter(self, ic: int, record: bool = True) -> bool:
        """HLS-GMAC replay protection: accept a ciphered APDU only if its invocation counter
        is above the last accepted one; remember it if `record` (authenticated APDUs)."""
        with self.lock:
            if self.client_invocation_counter is not None and ic <= self.client_invocation_counter:
                return False
            if record:
                self.client_invocation_counter = ic
            return True

    def state(self) -> dict:
        with self.lock:
            return {
                "serial": self.serial,
                "time": self.meter_time().isoformat(),
                "credit_kwh": self.credit_wh / 1000,
                "credit_wh": self.credit_wh,
                "relay": self.relay_state,
                "disconnect_reason": self.disconnect_reason,
                "energy_kwh": self.import_wh / 1000,
                "export_kwh": self.export_wh / 1000,
                "low_credit_kwh": self.low_credit_wh / 1000,
                "trip_kwh": self.trip_wh / 1000,
                "load_limit_w": self.load_limit_w,
                "control_mode": self.control_mode,
                "reconnect_delay_s": self.reconnect_delay_s,
                "reconnect_attempts_per_hour": self.reconnect_attempts_per_hour,
                "load_recovery": RECOVERY_STATE_NAMES[self.recovery_state],
                "auto_reconnects_last_hour": len(self._recent_reconnects()),
                "emergency_credit_kwh": self.emergency_amount_wh / 1000,
                "emergency_threshold_kwh": self.emergency_threshold_wh / 1000,
                "emergency_in_use_kwh": self.emergency_owed_wh / 1000,
                "emergency_status": EMERGENCY_STATUS_NAMES[self.emergency_status()],
                "friendly": FRIENDLY_STATE_NAMES[self.friendly_state()],
                "friendly_windows": [list(w) for w in self.friendly_windows],
                "friendly_days": [d.isoformat() for d in self.friendly_days],
                "friendly_offset_min": self.friendly_offset_min,
                "friendly_limit_kwh": self.friendly_limit_wh / 1000,
                "standing_charge_kwh": self.charge_unit_wh / 1000,
                "standing_charge_period_s": self.charge_period_s,
                "standing_charge_paid_kwh": self.charge_paid_wh / 1000,
                "credit_mode": self.credit_mode,
                "active_rate": self.active_rate(),
                "rate_wh": {str(r): wh for r, wh in sorted(self.rate_wh.items())},
                "charge_total": self.charge_total,
                "calendar_active": (self.calendar_active or {}).get("name"),
                "calendar_passive": (self.calendar_passive or {}).get("name"),
                "tou_special_days": [
                    {"date": _wild_date_text(d), "day_id": i} for d, i in self.tou_special_days
                ],
                "last_transfer_number": self.last_transfer_number,
                "token_log": [
                    {
                        "transfer_number": n,
                        "status": TRANSFER_STATUS_NAMES[status],
                        "time": t.isoformat(),
                        "energy_wh": self.token_energy.get(n, 0),
                    }
                    for n, status, t in self.token_log_rows()
                ],
                "power_w": self.flowing_power_w(),
                "demand_w": self.power_w(),
                "reverse": self.reverse,
                "offline": self.offline,
                "client_invocation_counter": self.client_invocation_counter,
                "push_destination": self.push.destination,  # "" = not in push mode
                "push_heartbeat_s": self.push.heartbeat_s,
                "events": [e.as_json() for e in self.events],
            }


def _check_calendar(cal: dict) -> None:
    """An activity calendar: seasons naming weeks, weeks of 7 day ids, day schedules."""
    try:
        weeks = {w["name"]: w for w in cal["weeks"]}
        day_ids = {d["day_id"] for d in cal["days"]}
        if not cal["seasons"] or any(s["week"] not in weeks for s in cal["seasons"]):
            raise ValueError("every season names a week")
        for w in weeks.values():
            if len(w["days"]) != 7 or any(d not in day_ids for d in w["days"]):
                raise ValueError("a week has 7 known day ids")
        for d in cal["days"]:
            if not d["schedule"] or any(
                not 0 <= e["start_min"] < 1440 or not 1 <= e["rate"] <= 63 for e in d["schedule"]
            ):
                raise ValueError("a day schedule has entries 00:00-23:59, rates 1-63")
    except (KeyError, TypeError) as e:
        raise ValueError(f"malformed activity calendar ({e})") from e


def _wild_date_text(date: tuple[int | None, int | None, int | None]) -> str:
    """(2026, 12, None) as "2026-12-**" (a wildcard as stars)."""
    year, month, day = date
    return "-".join(
        [
            "****" if year is None else f"{year:04d}",
            "**" if month is None else f"{month:02d}",
            "**" if day is None else f"{day:02d}",
        ]
    )


def _clear_fields(token: bytes) -> tuple[int, int]:
    """(transfer_number, energy_wh) of a clear-credit token (security.is_clear_token)."""
    return int.from_bytes(token[1:5], "big"), int.from_bytes(token[5:9], "big")


def _next_boundary(t: dt.datetime, period: int) -> dt.datetime:
    ts = t.timestamp()
    return dt.datetime.fromtimestamp((int(ts) // period + 1) * period, tz=dt.timezone.utc)
