"""The OBIS codes (IEC 62056-6-1) the addon names, in one place.

The meter side of each object (interface class, attributes, units) is in
``docs/meter-contract.md``; the bridge has its own copy in ``meter_bridge/obis.py`` (it does
not import the addon).
"""

import re

OBIS_RE = re.compile(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")

OBIS_CLOCK = "0.0.1.0.0.255"  # Clock (IC 8)
OBIS_CREDIT = "0.0.19.10.0.255"  # Credit (IC 112): remaining credit, Wh
OBIS_RELAY = "0.0.96.3.10.255"  # Disconnect control (IC 70)
ENERGY_IMPORT = "1.0.1.8.0.255"  # active energy import A+, Wh (IC 3)
ENERGY_EXPORT = "1.0.2.8.0.255"  # active energy export A-, Wh (IC 3)
LOAD_PROFILE = "1.0.99.1.0.255"  # load profile (Profile generic, IC 7)
PROFILE_IC = 7

# What a billing read ("read now", the daily scheduled read) asks the meter for.
BILLING_OBJECTS = [
    {"obis": OBIS_CLOCK, "ic": 8, "attribute": 2},
    {"obis": ENERGY_IMPORT, "ic": 3, "attribute": 2},
    {"obis": ENERGY_EXPORT, "ic": 3, "attribute": 2},
    {"obis": "1.0.32.7.0.255", "ic": 3, "attribute": 2},  # voltage L1
    {"obis": "1.0.31.7.0.255", "ic": 3, "attribute": 2},  # current L1
    {"obis": "1.0.1.7.0.255", "ic": 3, "attribute": 2},  # active power import
    {"obis": OBIS_CREDIT, "ic": 112, "attribute": 2},
    {"obis": OBIS_RELAY, "ic": 70, "attribute": 2},
]
