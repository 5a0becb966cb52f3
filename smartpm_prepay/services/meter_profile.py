"""Meter profiles: which OBIS code holds each function on a meter model
(docs/meter-contract.md "Meter profiles"), checked here and sent to the bridge with every
job, or once per claim to a bridge that asks (docs/job-protocol.md, ``meter.object_map``,
"Claim options").

The bridge keeps the SmartPM contract's codes as defaults (meter_bridge/object_map.py has
the same table); a meter without a profile gets no map and runs on them.
"""

import re

OBIS_RE = re.compile(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")

# function -> (label, the SmartPM contract's OBIS, interface classes the bridge drives it
# as, default value attribute or None: the class's own attributes)
FUNCTIONS = {
    "clock": ("Clock", "0.0.1.0.0.255", (8,), 2),
    "credit": ("Credit (remaining credit)", "0.0.19.10.0.255", (112,), 2),
    "emergency_credit": ("Emergency credit", "0.0.19.10.1.255", (112,), None),
    "relay": ("Relay (disconnect control)", "0.0.96.3.10.255", (70,), None),
    "limiter": ("Load limiter", "0.0.17.0.0.255", (71,), 3),
    "token_gateway": ("Token gateway", "0.0.19.40.0.255", (115,), None),
    "token_log": ("Token log (query / cancel a transfer)", "0.0.19.40.128.255", (1,), None),
    "standard_event_log": ("Standard event log", "0.0.99.98.0.255", (7,), None),
    "fraud_event_log": ("Fraud event log", "0.0.99.98.1.255", (7,), None),
    "standing_charge": ("Standing charge (time-based Charge)", "0.0.19.20.1.255", (113,), None),
    "consumption_charge": (
        "Consumption charge (time-of-use prices)",
        "0.0.19.20.0.255",
        (113,),
        None,
    ),
    "activity_calendar": ("Activity calendar (time of use)", "0.0.13.0.0.255", (20,), None),
    "tariff_script_table": ("Tariff script table", "0.0.10.0.100.255", (9,), None),
    "active_tariff": ("Rate in force", "0.0.96.14.0.255", (1,), None),
    "tou_offset": ("Calendar UTC offset", "0.0.13.0.128.255", (1,), None),
    "tou_special_days": ("Calendar special days (holidays)", "0.0.11.0.0.255", (11,), None),
    "push_setup": ("Push setup (one line each)", None, (40,), None),
    "push_heartbeat": ("Push heartbeat interval", "0.0.25.9.128.255", (1,), None),
    "reconnect_delay": ("Reconnect delay", "0.0.17.0.128.255", (1,), None),
    "reconnect_attempts": ("Reconnect attempts per hour", "0.0.17.0.129.255", (1,), None),
    "recovery_state": ("Load-trip recovery state", "0.0.17.0.130.255", (1,), None),
    "friendly_special_days": ("Friendly special days", "0.0.11.0.1.255", (11,), None),
    "friendly_week": ("Friendly week", "0.0.11.0.128.255", (1,), None),
    "friendly_limit": ("Friendly credit limit", "0.0.11.0.129.255", (1,), None),
    "friendly_state": ("Friendly state", "0.0.11.0.130.255", (1,), None),
}
# functions added to the contract after the SmartPM profile of a database was made: an
# upgrade adds them to it (models/meter_profile._add_new_smartpm_functions)
ADDED_FUNCTIONS = ("tou_special_days",)
SMARTPM_PUSH_SETUPS = ("0.0.25.9.0.255", "0.1.25.9.0.255", "0.2.25.9.0.255")
# What every prepaid meter needs for a sale to reach it and be seen: credit, the relay,
# the token gateway and the clock.
REQUIRED_FUNCTIONS = ("credit", "relay", "token_gateway", "clock")
MULTI_FUNCTIONS = ("push_setup",)
CHALLENGE_MIN, CHALLENGE_MAX = 8, 64  # HLS challenge bytes (Green Book)


def function_selection():
    return [(key, label) for key, (label, *_rest) in FUNCTIONS.items()]


def smartpm_lines():
    """The SmartPM contract's object map, as profile lines (the simulator's objects)."""
    lines = []
    for key, (_label, obis, classes, attr) in FUNCTIONS.items():
        for code in SMARTPM_PUSH_SETUPS if key == "push_setup" else (obis,):
            lines.append({"function": key, "obis": code, "ic": classes[0], "attribute": attr or 0})
    return lines


def check_obis(code):
    """True for a dotted A.B.C.D.E.F code, each group 0..255."""
    return bool(OBIS_RE.match(code or "")) and all(int(p) <= 255 for p in code.split("."))


def problems(env, lines):
    """What is wrong with a profile's object lines (function, obis, ic, attribute dicts):
    a list of messages in ``env``'s language, empty when it is right."""
    out = []
    seen_functions, seen_obis = set(), {}
    for line in lines:
        function, obis = line["function"], (line["obis"] or "").strip()
        label, _contract, classes, attr = FUNCTIONS[function]
        if function in seen_functions and function not in MULTI_FUNCTIONS:
            out.append(env._("%(function)s is listed twice", function=label))
        seen_functions.add(function)  # present, even when its code is wrong (said below)
        if not check_obis(obis):
            out.append(
                env._(
                    "%(function)s: '%(obis)s' is not an OBIS code; write six numbers 0-255 "
                    "with dots, e.g. 0.0.19.10.0.255",
                    function=label,
                    obis=obis,
                )
            )
            continue
        if line["ic"] not in classes:
            out.append(
                env._(
                    "%(function)s at %(obis)s must be interface class %(classes)s, not %(ic)s",
                    function=label,
                    obis=obis,
                    classes=" or ".join(str(c) for c in classes),
                    ic=line["ic"],
                )
            )
        if attr is not None and not 1 <= (line.get("attribute") or attr) <= 127:
            out.append(env._("%(function)s: the attribute is 1 to 127", function=label))
        if obis in seen_obis:
            out.append(
                env._("%(a)s and %(b)s are both at %(obis)s", a=seen_obis[obis], b=label, obis=obis)
            )
        seen_obis[obis] = label
    for function in REQUIRED_FUNCTIONS:
        if function not in seen_functions:
            out.append(
                env._(
                    "the %(function)s object is missing: every prepaid meter needs one",
                    function=FUNCTIONS[function][0],
                )
            )
    return out


def object_map(lines):
    """Profile lines -> the ``object_map`` of a job's meter (docs/job-protocol.md)."""
    out = {}
    for line in lines:
        function = line["function"]
        entry = {"obis": line["obis"].strip(), "ic": line["ic"]}
        if FUNCTIONS[function][3] is not None:
            entry["attribute"] = line.get("attribute") or FUNCTIONS[function][3]
        if function in MULTI_FUNCTIONS:
            out.setdefault(function, []).append(entry)
        else:
            out[function] = entry
    return out


def bridge_values(meter, profiles=None):
    """What a job of ``meter`` carries of its profile (under sudo): nothing without one,
    and the bridge then uses the SmartPM contract. ``profiles``: {profile id: values}
    already built in this claim (filled here), or None."""
    profile = meter.profile_id
    if not profile:
        return {}
    if profiles is not None and profile.id in profiles:
        return profiles[profile.id]
    values = {
        "profile": profile.name,
        "object_map": object_map(profile._object_lines()),
        "hls_challenge_length": profile.hls_challenge_length,
        "token_format": profile.token_format,
    }
    if profiles is not None:
        profiles[profile.id] = values
    return values


def has_function(meter, function):
    """Whether ``meter`` holds ``function``: its profile lists it (a meter without a profile
    runs on the SmartPM contract, which has every function)."""
    profile = meter.sudo().profile_id
    return not profile or function in profile.object_ids.mapped("function")


METER_DEFAULT_FIELDS = (
    "framing",
    "client_address",
    "server_logical_address",
    "server_physical_address",
    "auth",
)


def meter_defaults(profile):
    """The connection defaults a profile gives a new meter of its model."""
    return {name: profile[name] for name in METER_DEFAULT_FIELDS}


def with_profile_defaults(env, vals):
    """``vals`` of a new meter with its profile's defaults where it says nothing (a meter
    without a profile in vals keeps the meter's own defaults, as before profiles)."""
    if vals.get("profile_id"):
        profile = env["smartpm.meter.profile"].browse(vals["profile_id"])
        for name, value in meter_defaults(profile).items():
            vals.setdefault(name, value)
    return vals
