"""Meter profiles (issue 19 §3): the bridge drives a vendor-style meter, whose objects sit
at other OBIS codes, by the job's object map alone; without a map it runs on the SmartPM
contract's codes, and a bad map is refused before the meter is asked anything."""

from __future__ import annotations

import pytest

pytest.importorskip("gurux_dlms")
model_mod = pytest.importorskip("meter_sim.model")

from sim_fixtures import fleet_fixture, run_job  # noqa: E402
from vendor_profile import MOVED_FUNCTIONS, SIM_OBJECT_MAP, vendor_object_map  # noqa: E402

from meter_bridge.errors import JobError, MeterRefused  # noqa: E402
from meter_bridge.object_map import DEFAULT_MAP, ObjectMap  # noqa: E402
from meter_sim.testing import credit_token  # noqa: E402

pytestmark = pytest.mark.timeout(60)
MeterConfig = model_mod.MeterConfig
VENDOR = "VND00001"

fleet = fleet_fixture(
    MeterConfig(VENDOR, credit_kwh=10.0, object_map=SIM_OBJECT_MAP),
    MeterConfig("SIM00001", credit_kwh=10.0),
)


def run(fleet, job_type, payload=None, serial=VENDOR, **meter_kw):
    meter_kw.setdefault("object_map", vendor_object_map())
    return run_job(fleet, serial, job_type, payload, **meter_kw)


def token(serial, number, kwh):
    return {"token": credit_token(number, round(kwh * 1000), serial).hex(), "kwh": kwh}


def test_vendor_meter_serves_its_objects_at_other_codes(fleet):
    """The fixture is what it claims: the SmartPM codes are not on the vendor's meter."""
    with pytest.raises(MeterRefused):
        run(fleet, "ping", object_map=None)  # the contract's credit is not there
    result = run(fleet, "ping")
    assert result["credit_kwh"] == pytest.approx(10.0)


def test_read_credit_at_the_profiles_code(fleet):
    model = fleet.meter(VENDOR)
    objects = [
        {"obis": "0.0.19.10.0.255", "ic": 112, "attribute": 2},  # as Odoo names credit
        {"obis": "0.0.96.3.10.255", "ic": 70, "attribute": 2},
        {"obis": "1.0.1.8.0.255", "ic": 3, "attribute": 2},
        {"obis": "0.0.1.0.0.255", "ic": 8, "attribute": 2},  # the vendor's clock
    ]
    result = run(fleet, "read", {"objects": objects})
    assert result["errors"] == {}
    values = {r["obis"]: r["value"] for r in result["readings"]}
    assert values["0.0.19.10.0.255"] == pytest.approx(model.credit_wh / 1000)
    assert values["0.0.96.3.10.255"] is True
    assert values["0.0.1.0.0.255"][:4] == str(model.meter_time().year)  # a time, not hex
    assert "0.128.96.50.0.255" not in values  # reported under the name Odoo asked for


def test_add_credit_token_through_the_vendors_token_gateway(fleet):
    model = fleet.meter(VENDOR)
    before = model.credit_wh
    result = run(fleet, "add_credit", token(VENDOR, 501, 2.5))
    assert result["already_applied"] is False
    assert model.credit_wh == before + 2500
    assert result["credit_kwh"] == pytest.approx(model.credit_wh / 1000)
    again = run(fleet, "add_credit", token(VENDOR, 501, 2.5))
    assert again["already_applied"] is True and model.credit_wh == before + 2500


def test_disconnect_and_reconnect_the_vendors_relay(fleet):
    model = fleet.meter(VENDOR)
    assert run(fleet, "disconnect")["relay"] == "disconnected"
    assert model.relay_state == "disconnected"
    assert run(fleet, "reconnect")["relay"] == "connected"
    assert model.relay_state == "connected"


def test_read_events_from_the_vendors_logs(fleet):
    fleet.meter(VENDOR).tamper("cover_open")
    events = run(fleet, "read_events", {"since": None})["events"]
    assert ("fraud", 40) in {(e["log"], e["code"]) for e in events}


def test_set_load_limit_on_the_vendors_limiter(fleet):
    assert run(fleet, "set_load_limit", {"load_limit_w": 3100}) == {"load_limit_w": 3100}
    assert fleet.meter(VENDOR).load_limit_w == 3100


def test_sync_clock_and_standing_charge_follow_the_map(fleet):
    assert run(fleet, "sync_clock")["meter_time"]
    result = run(fleet, "set_charge", {"charge_kwh": 0.5, "period_s": 86400})
    assert result["standing_charge_kwh"] == pytest.approx(0.5)


def test_a_function_the_profile_lacks_is_refused_without_asking_the_meter(fleet):
    partial = {k: v for k, v in vendor_object_map().items() if k != "limiter"}
    before = fleet.meter(VENDOR).load_limit_w
    with pytest.raises(JobError, match="profile has no limiter") as exc:
        run(fleet, "set_load_limit", {"load_limit_w": 999}, object_map=partial)
    assert exc.value.retryable is False
    assert fleet.meter(VENDOR).load_limit_w == before
    # a ping skips the extras the profile does not list (emergency credit, standing charge)
    lean = {k: v for k, v in partial.items() if k not in ("emergency_credit", "standing_charge")}
    result = run(fleet, "ping", object_map=lean)
    assert "emergency_status" not in result and "standing_charge_kwh" not in result


def test_job_without_a_map_runs_on_the_smartpm_codes(fleet):
    """An older Odoo's job (no object_map) on the SmartPM meter works as before."""
    result = run(fleet, "ping", serial="SIM00001", object_map=None)
    assert result["credit_kwh"] == pytest.approx(fleet.meter("SIM00001").credit_wh / 1000)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"credit": {"obis": "0.0.19.10.0", "ic": 112}}, None),  # F omitted: 255, accepted
        ({"credit": {"obis": "0.0.19.300.0.255", "ic": 112}}, "not an OBIS code"),
        ({"relay": {"obis": "0.0.96.3.10.255", "ic": 1}}, "interface class 70"),
        ({"limiter": {"obis": "0.128.96.50.0.255", "ic": 71}}, "both at 0.128.96.50.0.255"),
        ({"relais": {"obis": "0.0.96.3.10.255", "ic": 70}}, "unknown function relais"),
    ],
)
def test_bad_object_maps_are_refused_with_the_reason(change, message):
    raw = {**vendor_object_map(), **change}
    if message is None:
        assert ObjectMap.parse(raw)["credit"] == ("0.0.19.10.0.255", 112)
        return
    with pytest.raises(JobError, match=message) as exc:
        ObjectMap.parse(raw)
    assert exc.value.retryable is False


def test_default_map_is_the_contract():
    from meter_bridge import obis

    assert DEFAULT_MAP["credit"] == obis.CREDIT
    assert DEFAULT_MAP["relay"] == obis.DISCONNECT_CONTROL
    assert [(e.obis, e.ic) for e in DEFAULT_MAP.push_setups] == list(obis.PUSH_SETUPS)
    vendor = ObjectMap.parse(vendor_object_map())
    assert {f for f in MOVED_FUNCTIONS if vendor[f] != DEFAULT_MAP[f]} == set(MOVED_FUNCTIONS)
