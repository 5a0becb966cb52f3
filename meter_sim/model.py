# SPDX-License-Identifier: GPL-2.0-or-later
"""Pure-Python state machine of one simulated prepaid meter (no sockets, no gurux).

Credit and energy are integer Wh. Time is simulated: `advance(seconds)` moves this meter
forward deterministically; the fleet ticker calls `advance_to(clock.now())`.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import threading
import time
import zlib
from dataclasses import dataclass, field

from . import security

# Standard event log codes (contract: docs/meter-contract.md).
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
        rng = random.Random(zlib.crc32(f"{self.seed}:{serial}:{slot}".encode()))
        p = (self.base_w + self.peak_w * curve) * (1.0 + self.noise * (2 * rng.random() - 1))
        return max(0, int(round(p)))


@dataclass
class Event:
    time: dt.datetime
    code: int
    log: str

    def as_json(self) -> dict:
        return {"time": self.time.isoformat(), "code": self.code, "log": self.log}


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
    load: dict = field(default_factory=dict)  # LoadModel kwargs
    serial_device: str = ""  # HDLC over a serial device instead of TCP

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
        try:
            self.serial.encode("ascii")
        except UnicodeEncodeError as e:
            raise ValueError(f"{self.serial!r}: a serial is ASCII") from e
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
        self.clock_offset = dt.timedelta(0)  # set by a clock SET (sync)
        self.credit_wh = int(round(config.credit_kwh * 1000))
        self.low_credit_wh = int(round(config.low_credit_kwh * 1000))
        self.trip_wh = int(round(config.trip_kwh * 1000))
        self.load_limit_w = int(config.load_limit_w)
        self.min_over_threshold_s = 0
        self.import_wh = 0
        self.export_wh = 0
        self._frac_wh = 0.0  # sub-Wh energy not yet counted
        self.relay_connected = True
        self.disconnect_reason: str | None = None  # credit | load | remote
        self.power_override_w: int | None = None
        self.reverse = False
        self.offline = False
        # HLS-GMAC invocation counters: the meter's own (next one to use) and the last one
        # accepted from the client; both outlive connections, like a real meter's.
        self.server_invocation_counter = 1
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
                self._step((step_end - self.time).total_seconds())
                self.time = step_end
                if self.time == nxt_slot:
                    self._capture_profile()

    def advance_to(self, t: dt.datetime) -> None:
        with self.lock:
            if t > self.time:
                self.advance((t - self.time).total_seconds())

    def _step(self, seconds: float) -> None:
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
            # Prepaid meters bill the absolute energy, so reversing the meter saves nothing.
            self.credit_wh -= wh
            self._check_credit()

    def _capture_profile(self) -> None:
        self.profile.append((self.meter_time(), self.import_wh, self.export_wh))
        del self.profile[:-MAX_PROFILE_ROWS]

    # ----- rules -----
    def _log(self, code: int) -> None:
        log = FRAUD_LOG if code in FRAUD_CODES else STANDARD_LOG
        self.events.append(Event(self.meter_time(), code, log))
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
        if c <= self.trip_wh and self.relay_connected:
            self._open("credit", EV_CREDIT_TRIP)
        elif c > self.trip_wh and not self.relay_connected and self.disconnect_reason == "credit":
            self._close()

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
        if security.is_clear_token(token):
            return self.apply_clear_token(token)
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
            self.credit_wh += wh
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

    def apply_clear_token(self, token: bytes) -> int:
        """A clear-credit token through the gateway (contract: "Clear-credit token"): the
        same checks and answers as a credit token, on the same transfer numbers; applied,
        credit falls by its energy (below zero if the tenant consumed since the settlement;
        thresholds and relay as for consumption)."""
        with self.lock:
            code = self._check_clear_token(token)
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

    def _check_clear_token(self, token) -> int:
        number, wh = _clear_fields(token)
        if int.from_bytes(token[9:13], "big") != security.meter_tag(self.serial):
            return TOKEN_WRONG_METER
        if wh == 0:
            return TOKEN_MALFORMED
        if not security.clear_mac_valid(self.token_key, self.serial, number, wh, token[13:]):
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

    def remote_reconnect(self) -> bool:
        """Close the relay; refused (False) while credit is at or below the trip threshold."""
        with self.lock:
            if self.credit_wh <= self.trip_wh:
                return False
            self._log(EV_REMOTE_RECONNECT)
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

    def tamper(self, kind: str) -> None:
        with self.lock:
            if kind not in TAMPER_KINDS:
                raise ValueError(f"unknown tamper kind {kind!r}")
            if kind == "reverse_connection":
                self.reverse = True
            self._log(TAMPER_KINDS[kind])

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
                "events": [e.as_json() for e in self.events],
            }


def _clear_fields(token: bytes) -> tuple[int, int]:
    """(transfer_number, energy_wh) of a clear-credit token (security.is_clear_token)."""
    return int.from_bytes(token[1:5], "big"), int.from_bytes(token[5:9], "big")


def _next_boundary(t: dt.datetime, period: int) -> dt.datetime:
    ts = t.timestamp()
    return dt.datetime.fromtimestamp((int(ts) // period + 1) * period, tz=dt.timezone.utc)
