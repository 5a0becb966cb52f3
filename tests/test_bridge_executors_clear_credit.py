"""clear_credit through execute_job against simulated meters (real DLMS on loopback), and its
payload checks (docs/job-protocol.md, docs/meter-contract.md "Clear-credit token")."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("gurux_dlms")
model_mod = pytest.importorskip("meter_sim.model")

from sim_fixtures import fleet_fixture, run_job  # noqa: E402

from meter_bridge import executors as ex  # noqa: E402
from meter_bridge.errors import JobError, MeterRefused  # noqa: E402
from meter_sim.testing import clear_token, credit_token, hls_job_meter  # noqa: E402

pytestmark = pytest.mark.timeout(60)
MeterConfig = model_mod.MeterConfig


def _no_load(fleet):
    for serial in ("SIM00001", "SIM00002"):
        fleet.meter(serial).set_load(0)


fleet = fleet_fixture(
    MeterConfig("SIM00001", credit_kwh=50, low_credit_kwh=1),
    MeterConfig("SIM00002", framing="hdlc", credit_kwh=50, low_credit_kwh=1),
    prepare=_no_load,
)


@pytest.fixture(params=["SIM00001", "SIM00002"], ids=["wrapper", "hdlc"])
def serial(request):
    return request.param


def payload(serial, transfer_number, wh, **kw):
    """The clear_credit payload Odoo sends: the token it minted for this meter."""
    token = clear_token(transfer_number, wh, serial, **kw)
    return {"token": token.hex().upper(), "transfer_number": transfer_number, "wh": wh}


def test_clear_credit_takes_the_energy_off_the_meter(fleet, serial):
    model = fleet.meter(serial)
    before = model.credit_wh
    result = run_job(fleet, serial, "clear_credit", payload(serial, 901, 4250))
    assert model.credit_wh == before - 4250
    assert result == {
        "transfer_number": 901,
        "already_applied": False,
        "cleared_kwh": 4.25,
        "credit_kwh": pytest.approx((before - 4250) / 1000, abs=0.001),
        "relay": "connected",
    }
    assert model.last_code("standard") == model_mod.EV_CREDIT_CLEARED


def test_clear_credit_sent_again_is_already_applied_with_the_cleared_energy_from_the_log(
    fleet, serial
):
    model = fleet.meter(serial)
    before = model.credit_wh
    run_job(fleet, serial, "clear_credit", payload(serial, 902, 1500))  # its answer was lost
    again = run_job(fleet, serial, "clear_credit", payload(serial, 902, 1500))
    assert again["already_applied"] is True and again["cleared_kwh"] == 1.5
    assert model.credit_wh == before - 1500  # removed once


def test_clear_credit_on_a_number_applied_as_credit_fails_for_good(fleet, serial):
    model = fleet.meter(serial)
    run_job(fleet, serial, "add_credit", {"token": credit_token(903, 2000, serial).hex()})
    credit = model.credit_wh
    with pytest.raises(JobError, match="moved 2000 Wh") as err:
        run_job(fleet, serial, "clear_credit", payload(serial, 903, 2000))
    assert not err.value.retryable
    assert model.credit_wh == credit


def test_clear_credit_of_a_cancelled_transfer_is_refused_with_15(fleet, serial):
    model = fleet.meter(serial)
    before = model.credit_wh
    run_job(fleet, serial, "check_token", {"transfer_number": 904})  # cancels it
    with pytest.raises(MeterRefused) as err:
        run_job(fleet, serial, "clear_credit", payload(serial, 904, 1000))
    assert err.value.code == 15 and not err.value.retryable
    assert "clear-credit token of transfer 904" in str(err.value)
    assert model.credit_wh == before


def test_clear_credit_forged_or_for_another_meter_is_refused(fleet, serial):
    model = fleet.meter(serial)
    before = model.credit_wh
    other = "SIM00002" if serial == "SIM00001" else "SIM00001"
    for p, code in (
        (payload(serial, 905, 1000, token_key=bytes(16)), 13),
        (payload(other, 905, 1000), 11),
    ):
        with pytest.raises(MeterRefused) as err:
            run_job(fleet, serial, "clear_credit", p)
        assert err.value.code == code and not err.value.retryable
    assert model.credit_wh == before
    assert model.transfer_status(905) == model_mod.TRANSFER_NOT_APPLIED


def test_clear_credit_of_a_gone_lease_sends_nothing(fleet):
    model = fleet.meter("SIM00001")
    before = model.credit_wh
    with pytest.raises(JobError, match="lease gone"):
        run_job(
            fleet,
            "SIM00001",
            "clear_credit",
            payload("SIM00001", 906, 1000),
            job_kw={"lease_deadline": time.monotonic() - 1, "lease_seconds": 60},
        )
    assert model.credit_wh == before
    assert model.transfer_status(906) == model_mod.TRANSFER_NOT_APPLIED


def test_clear_credit_below_zero_reports_the_tripped_relay(fleet):
    model = fleet.meter("SIM00002")
    wh = model.credit_wh + 300
    result = run_job(fleet, "SIM00002", "clear_credit", payload("SIM00002", 907, wh))
    assert result["credit_kwh"] == -0.3 and result["relay"] == "disconnected"
    assert model.disconnect_reason == "credit"


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"token": "zz"},
        {"token": credit_token(1, 1000).hex(), "transfer_number": 1, "wh": 1000},
        {"token": clear_token(1, 1000).hex(), "transfer_number": 2, "wh": 1000},
        {"token": clear_token(1, 1000).hex(), "transfer_number": 1, "wh": 999},
        {"token": clear_token(1, 1000).hex(), "transfer_number": 1, "wh": True},
        {"token": clear_token(1, 0).hex(), "transfer_number": 1, "wh": 0},
    ],
)
def test_clear_credit_payload_is_checked_before_the_meter(bad):
    with pytest.raises(JobError) as err:
        ex.validate_clear_credit(bad)
    assert not err.value.retryable


def test_clear_credit_is_a_bridge_job_type():
    assert "clear_credit" in ex.JOB_TYPES
    checked = ex.validate_clear_credit(
        {"token": clear_token(7, 1234).hex(), "transfer_number": 7, "wh": 1234}
    )
    assert checked == {
        "token": clear_token(7, 1234),
        "transfer_number": 7,
        "wh": 1234,
        "unit": "Wh",
    }


def test_check_token_of_an_applied_clear_says_applied(fleet, serial):
    model = fleet.meter(serial)
    run_job(fleet, serial, "clear_credit", payload(serial, 908, 100))
    credit = model.credit_wh
    result = run_job(fleet, serial, "check_token", {"transfer_number": 908})
    assert result["applied"] is True and result["cancelled"] is False
    assert model.credit_wh == credit


def test_token_log_energy_of_a_transfer_not_applied_is_zero(fleet):
    from meter_bridge.dlms import MeterConnection

    model = fleet.meter("SIM00001")
    run_job(fleet, "SIM00001", "add_credit", {"token": credit_token(909, 700).hex()})
    job_meter = hls_job_meter(model, fleet.port_of("SIM00001"), id=1, timeout_s=3)
    with MeterConnection.from_job_meter(job_meter) as conn:
        assert ex._token_log_energy(conn, 910) == 0
        assert ex._token_log_energy(conn, 909) == 700
