"""A vendor-style meter: the simulator serving its objects at other OBIS codes (meter_sim
``object_map``), and the profile object map that lets the bridge (and Odoo) drive it by
configuration alone. Shared by the bridge and end-to-end tests of meter profiles."""

from __future__ import annotations

from meter_bridge.object_map import FUNCTIONS, PUSH_SETUP

# contract OBIS (meter_sim's) -> where the vendor-style meter serves it
SIM_OBJECT_MAP = {
    "0.0.1.0.0.255": "0.1.1.0.0.255",  # clock
    "0.0.19.10.0.255": "0.128.96.50.0.255",  # credit
    "0.0.19.10.1.255": "0.128.96.50.1.255",  # emergency credit
    "0.0.96.3.10.255": "0.1.96.3.10.255",  # relay (disconnect control)
    "0.0.17.0.0.255": "0.1.17.0.0.255",  # limiter
    "0.0.19.40.0.255": "0.128.96.51.0.255",  # token gateway
    "0.0.19.40.128.255": "0.128.96.52.0.255",  # token log
    "0.0.99.98.0.255": "0.0.99.98.4.255",  # standard event log
    "0.0.99.98.1.255": "0.0.99.98.5.255",  # fraud event log
    "0.0.19.20.1.255": "0.128.96.53.0.255",  # standing charge
}
MOVED_FUNCTIONS = (
    "clock",
    "credit",
    "emergency_credit",
    "relay",
    "limiter",
    "token_gateway",
    "token_log",
    "standard_event_log",
    "fraud_event_log",
    "standing_charge",
)


def vendor_object_map() -> dict:
    """The vendor-style profile's map, as Odoo sends it (job meter ``object_map``): the
    SmartPM codes with the vendor's where they differ."""
    out = {}
    for name, ((obis, ic), _classes, attr) in FUNCTIONS.items():
        entry = {"obis": SIM_OBJECT_MAP.get(obis, obis), "ic": ic}
        if attr is not None:
            entry["attribute"] = attr
        out[name] = entry
    out[PUSH_SETUP] = [
        {"obis": o, "ic": 40} for o in ("0.0.25.9.0.255", "0.1.25.9.0.255", "0.2.25.9.0.255")
    ]
    return out
