"""Where a meter holds each function: its profile's object map (docs/meter-contract.md,
"Meter profiles").

Odoo sends the map of the meter's profile in the jobs' ``meter.object_map`` (in each job,
or once per claim: below): ``{function: {"obis": "A.B.C.D.E.F", "ic": class id,
"attribute": n}}`` (``push_setup``: a list of them). A job without a map (an older Odoo)
runs on the SmartPM contract's objects, the constants of meter_bridge/obis.py. With a map,
a function the map does not name is not on the meter: a job that needs it fails (not
retried), and the extras of other jobs' results (emergency credit, standing charge) are
left out without asking the meter.

A bridge that claims with ``object_maps: "per_claim"`` gets each distinct map once per
claim: every job of a profile names its map by ``meter.object_map_key``, and only the first
job of each key carries ``meter.object_map``. :class:`ObjectMapCache` parses each map once
and gives every job of the key the parsed map; a job whose key came without its map fails
(retried), it never falls back to the contract's map.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from . import obis as o
from .errors import JobError

# function -> (the SmartPM contract's (OBIS, IC), classes the bridge can drive it as,
# default attribute of its value or None: the class's own attributes).
FUNCTIONS: dict[str, tuple[tuple[str, int], frozenset, int | None]] = {
    "clock": (o.CLOCK, frozenset({8}), o.CLOCK_TIME),
    "credit": (o.CREDIT, frozenset({112}), o.CREDIT_CURRENT_AMOUNT),
    "emergency_credit": (o.EMERGENCY_CREDIT, frozenset({112}), None),
    "relay": (o.DISCONNECT_CONTROL, frozenset({70}), None),
    "limiter": (o.LIMITER, frozenset({71}), o.LIMITER_THRESHOLD_ACTIVE),
    "token_gateway": (o.TOKEN_GATEWAY, frozenset({115}), None),
    "token_log": (o.TOKEN_LOG, frozenset({1}), None),
    "standard_event_log": (o.STANDARD_EVENT_LOG, frozenset({7}), None),
    "fraud_event_log": (o.FRAUD_EVENT_LOG, frozenset({7}), None),
    "standing_charge": (o.STANDING_CHARGE, frozenset({113}), None),
    "consumption_charge": (o.CONSUMPTION_CHARGE, frozenset({113}), None),
    "activity_calendar": (o.ACTIVITY_CALENDAR, frozenset({20}), None),
    "tariff_script_table": ((o.TARIFF_SCRIPT_TABLE, 9), frozenset({9}), None),
    "active_tariff": (o.ACTIVE_TARIFF, frozenset({1}), None),
    "tou_offset": (o.TOU_OFFSET, frozenset({1}), None),
    "tou_special_days": (o.TOU_SPECIAL_DAYS, frozenset({11}), None),
    "push_heartbeat": (o.PUSH_HEARTBEAT_INTERVAL, frozenset({1}), None),
    "reconnect_delay": (o.RECONNECT_DELAY, frozenset({1}), None),
    "reconnect_attempts": (o.RECONNECT_ATTEMPTS, frozenset({1}), None),
    "recovery_state": (o.RECOVERY_STATE, frozenset({1}), None),
    "friendly_special_days": (o.FRIENDLY_SPECIAL_DAYS, frozenset({11}), None),
    "friendly_week": (o.FRIENDLY_WEEK, frozenset({1}), None),
    "friendly_limit": (o.FRIENDLY_LIMIT, frozenset({1}), None),
    "friendly_state": (o.FRIENDLY_STATE, frozenset({1}), None),
}
PUSH_SETUP = "push_setup"  # the one function a meter has several objects of (IC 40)
PUSH_SETUP_IC = 40
EVENT_LOG_FUNCTIONS = {"standard": "standard_event_log", "fraud": "fraud_event_log"}


@dataclass(frozen=True)
class MapEntry:
    obis: str
    ic: int
    attribute: int | None = None


def _entry(function: str, raw, allowed: frozenset, default_attr) -> MapEntry:
    if not isinstance(raw, dict):
        raise JobError(f"object map: {function} must be an object {{obis, ic}}", retryable=False)
    try:
        obis = o.normalize_obis(raw.get("obis"))
    except (TypeError, ValueError) as e:
        raise JobError(
            f"object map: {function}: {raw.get('obis')!r} is not an OBIS code", retryable=False
        ) from e
    ic = raw.get("ic")
    if isinstance(ic, bool) or ic not in allowed:
        raise JobError(
            f"object map: {function} at {obis} must be interface class "
            f"{' or '.join(str(c) for c in sorted(allowed))}, not {ic!r}",
            retryable=False,
        )
    attribute = raw.get("attribute") or default_attr
    if attribute is not None and (
        isinstance(attribute, bool) or not isinstance(attribute, int) or not 1 <= attribute <= 127
    ):
        raise JobError(f"object map: {function}: bad attribute {attribute!r}", retryable=False)
    return MapEntry(obis, ic, attribute if default_attr is not None else None)


class ObjectMap:
    """The functions of one meter (``entry(name)``) and the push setups."""

    def __init__(self, entries: dict[str, MapEntry], push_setups: tuple[MapEntry, ...]):
        self._entries = entries
        self.push_setups = push_setups
        # the contract's (OBIS, IC) of each function that this meter holds elsewhere
        self._moved = {}
        for name, entry in entries.items():
            (obis, ic), _allowed, attr = FUNCTIONS[name]
            self._moved[(obis, ic)] = (name, entry)

    @classmethod
    def default(cls) -> ObjectMap:
        """The SmartPM contract (meter_sim's object list)."""
        entries = {
            name: MapEntry(obis, ic, attr) for name, ((obis, ic), _a, attr) in FUNCTIONS.items()
        }
        return cls(entries, tuple(MapEntry(obis, ic) for obis, ic in o.PUSH_SETUPS))

    @classmethod
    def from_meter(cls, meter: dict) -> ObjectMap:
        """The map of job['meter'] (``object_map``: as Odoo sent it, or already parsed by
        :class:`ObjectMapCache`), or the contract's without one. A job that names a map by
        its key without the map (a per-claim answer it was not resolved in) fails, retried:
        another vendor's meter must never be driven by the contract's codes."""
        meter = meter or {}
        raw = meter.get("object_map")
        if isinstance(raw, ObjectMap):
            return raw
        if raw is None:
            key = meter.get("object_map_key")
            if key is not None:
                raise JobError(
                    f"object map {key} was not in this job's claim; claim it again",
                    retryable=True,
                )
            return DEFAULT_MAP
        return cls.parse(raw)

    @classmethod
    def parse(cls, raw) -> ObjectMap:
        if not isinstance(raw, dict):
            raise JobError("meter.object_map must be an object", retryable=False)
        unknown = sorted(set(raw) - set(FUNCTIONS) - {PUSH_SETUP})
        if unknown:
            raise JobError(
                f"object map: unknown function {', '.join(unknown)}; known: "
                f"{', '.join(sorted([*FUNCTIONS, PUSH_SETUP]))}",
                retryable=False,
            )
        entries = {}
        for name, value in raw.items():
            if name == PUSH_SETUP:
                continue
            _contract, allowed, attr = FUNCTIONS[name]
            entries[name] = _entry(name, value, allowed, attr)
        pushes = raw.get(PUSH_SETUP) or []
        if not isinstance(pushes, list):
            raise JobError("object map: push_setup must be a list", retryable=False)
        push_setups = tuple(_entry(PUSH_SETUP, p, frozenset({PUSH_SETUP_IC}), None) for p in pushes)
        seen: dict[str, str] = {}
        for name, entry in [*entries.items(), *((PUSH_SETUP, p) for p in push_setups)]:
            if entry.obis in seen:
                raise JobError(
                    f"object map: {seen[entry.obis]} and {name} both at {entry.obis}",
                    retryable=False,
                )
            seen[entry.obis] = name
        return cls(entries, push_setups)

    def has(self, function: str) -> bool:
        return function in self._entries

    def entry(self, function: str) -> MapEntry:
        try:
            return self._entries[function]
        except KeyError:
            raise JobError(
                f"this meter's profile has no {function.replace('_', ' ')} object",
                retryable=False,
            ) from None

    def __getitem__(self, function: str) -> tuple[str, int]:
        """(OBIS, IC) of a function, as the constants of meter_bridge/obis.py."""
        entry = self.entry(function)
        return entry.obis, entry.ic

    def attribute(self, function: str) -> int:
        attr = self.entry(function).attribute
        assert attr is not None, function  # only functions with a value attribute
        return attr

    def translate(self, obis: str, ic: int, attribute: int) -> tuple[str, int, int]:
        """A read of a contract object (as Odoo names it) → where this meter holds it. The
        value attribute of credit and limiter follows the map; other attributes stay."""
        moved = self._moved.get((obis, ic))
        if moved is None:
            return obis, ic, attribute
        name, entry = moved
        default_attr = FUNCTIONS[name][2]
        if default_attr is not None and attribute == default_attr:
            attribute = entry.attribute
        return entry.obis, entry.ic, attribute


DEFAULT_MAP = ObjectMap.default()


class ObjectMapCache:
    """Each object map of a claim parsed once (``object_maps: "per_claim"``).

    :meth:`resolve` walks a claim's jobs in order: the first job of a key carries the map,
    which is parsed (or taken from the cache when the same key came with an equal map in
    an earlier claim: the key is a hash of the content, the equality check costs a few
    microseconds against a parse) and set, parsed, on every job of the key in this claim.
    A later job's key is looked up in this claim's maps only, so a miss is the
    job's own retryable failure (:meth:`ObjectMap.from_meter`), never another map. A map
    that does not parse is left as sent on every job of its key: each fails with the
    reason, not retried, as a per-job map does. Bounded (least recently used out); a cache,
    not state: a restarted bridge parses again. Thread-safe."""

    def __init__(self, size=64):
        self.size = size
        self._parsed = OrderedDict()  # key -> (raw, ObjectMap)
        self._lock = threading.Lock()
        self.parses = 0  # maps parsed (tests, benches)

    def resolve(self, jobs):
        in_claim = {}  # key -> ObjectMap, or the raw map that does not parse
        for job in jobs:
            meter = job.get("meter") if isinstance(job, dict) else None
            if not isinstance(meter, dict):
                continue
            key = meter.get("object_map_key")
            if key is None:
                continue  # a per-job map (or none): parsed with its job, as always
            raw = meter.get("object_map")
            if raw is not None and not isinstance(raw, ObjectMap):
                in_claim[key] = self._parse(key, raw)
            if key in in_claim:
                meter["object_map"] = in_claim[key]
        return jobs

    def _parse(self, key, raw):
        with self._lock:
            hit = self._parsed.get(key)
            if hit is not None and hit[0] == raw:
                self._parsed.move_to_end(key)
                return hit[1]
        try:
            parsed = ObjectMap.parse(raw)
        except JobError:
            return raw  # each job of the key fails with the reason
        with self._lock:
            self.parses += 1
            self._parsed[key] = (raw, parsed)
            self._parsed.move_to_end(key)
            while len(self._parsed) > self.size:
                self._parsed.popitem(last=False)
        return parsed


def objects_of(conn) -> ObjectMap:
    """The object map of a connection (test doubles without one: the contract's)."""
    return getattr(conn, "objects", None) or DEFAULT_MAP
