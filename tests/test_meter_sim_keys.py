"""The demo data's meter keys are the ones `meter-sim` derives (demo only), and the
derivation gives every meter its own keys."""

from __future__ import annotations

import pathlib
import re
import xml.etree.ElementTree as ET

from meter_sim.model import MeterConfig
from meter_sim.security import DEMO_KEY_SEED, derive_keys

DEMO = pathlib.Path(__file__).parent.parent / "smartpm_prepay" / "demo"


def demo_meters():
    """The simulated meters of the demo data (SIM…; not the check meter nobody serves)."""
    for path in sorted(DEMO.glob("*.xml")):
        for rec in ET.parse(path).getroot().iter("record"):
            fields = {f.get("name"): (f.text or "").strip() for f in rec.iter("field")}
            if rec.get("model") == "smartpm.meter" and "auth_key" in fields:
                yield fields


def test_demo_meters_hold_the_keys_the_simulator_derives():
    meters = list(demo_meters())
    # what scripts/demo.sh serves: `meter-sim --meters 25 --base-port 4100`
    assert [m["serial_number"] for m in meters] == [f"SIM{i:05d}" for i in range(1, 26)]
    for m in meters:
        assert int(m["port"]) == 4100 + int(m["serial_number"][3:]) - 1
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


def test_the_demo_simulator_serves_the_demo_s_money_meters_in_money_mode():
    """scripts/demo.sh starts every meter the demo data holds in money mode (credit_mode)
    with `--money-meters`, and no other."""
    money = sorted(m["serial_number"] for m in demo_meters() if m.get("credit_mode") == "money")
    assert money == ["SIM00025"]
    script = (DEMO.parent.parent / "scripts" / "demo.sh").read_text()
    served = re.search(r"meter-sim --meters (\d+) --money-meters (\S+)", script)
    assert served, "demo.sh starts meter-sim with --money-meters"
    assert int(served.group(1)) == len(list(demo_meters()))
    assert sorted(served.group(2).split(",")) == money
