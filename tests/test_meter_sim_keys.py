"""The demo data's meter keys are the ones `meter-sim` derives (demo only), and the
derivation gives every meter its own keys."""

from __future__ import annotations

import pathlib
import xml.etree.ElementTree as ET

from meter_sim.model import MeterConfig
from meter_sim.security import DEMO_KEY_SEED, derive_keys

DEMO = pathlib.Path(__file__).parent.parent / "smartpm_prepay" / "demo" / "demo.xml"


def demo_meters():
    for rec in ET.parse(DEMO).getroot().iter("record"):
        if rec.get("model") == "smartpm.meter":
            yield {f.get("name"): (f.text or "").strip() for f in rec.iter("field")}


def test_demo_meters_hold_the_keys_the_simulator_derives():
    meters = list(demo_meters())
    assert len(meters) == 24
    for m in meters:
        sim = MeterConfig(m["serial_number"])  # what `meter-sim --meters 24` serves
        assert m["auth"] == "hls_gmac" and m["client_address"] == "1"
        assert m["auth_key"] == sim.authentication_key
        assert m["encryption_key"] == sim.encryption_key
        assert m["token_key"] == sim.token_key
        assert bytes.fromhex(m["system_title"]) == b"SIM" + m["serial_number"].encode()[-5:]


def test_every_meter_and_purpose_gets_its_own_key():
    keys = [k for i in range(1, 101) for k in derive_keys(f"SIM{i:05d}").values()]
    assert len(set(keys)) == len(keys) == 300
    assert derive_keys("SIM00001", "other-seed") != derive_keys("SIM00001", DEMO_KEY_SEED)
