"""Every job type through execute_job against simulated meters (meter_sim, real DLMS on
loopback): wrapper and HDLC framing, LLS, duplicate transfers, unreachable meters."""

from __future__ import annotations

import datetime as dt
import socket
import time

import pytest

pytest.importorskip("gurux_dlms")
model_mod = pytest.importorskip("meter_sim.model")

from sim_fixtures import fleet_fixture, run_job  # noqa: E402

from meter_bridge.codec import parse_iso  # noqa: E402
from meter_bridge.errors import (  # noqa: E402
    InvocationCountersUsedUp,
    JobError,
    MeterRefused,
    MeterUnreachable,
)
from meter_bridge.executors import execute_job  # noqa: E402
from meter_sim.testing import credit_token, hls_job_meter  # noqa: E402

pytestmark = pytest.mark.timeout(60)
MeterConfig = model_mod.MeterConfig
UTC = dt.timezone.utc
KEYS = {
    "encryption_key": "000102030405060708090A0B0C0D0E0F",
    "auth_key": "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF",
}


fleet = fleet_fixture(
    MeterConfig("SIM00001"),
    MeterConfig("SIM00002", framing="hdlc"),
    MeterConfig("SIM00003", auth="lls", password="secret12"),
)


def meter(fleet, serial, **kw):
    """The job's meter: HLS-GMAC with the simulated meter's keys (the meters are locked),
    or the public client for the others unless the test says how to associate."""
    model = fleet.meter(serial)
    m = hls_job_meter(model, fleet.port_of(serial), id=1, timeout_s=3)
    if model.config.auth != "hls":
        m.update(auth="none", client_address=16, invocation_counter=0)
    return {**m, **kw}


def token(serial, transfer_number, kwh):
    """The add_credit payload Odoo sends: the token it minted for this meter."""
    wh = round(kwh * 1000)
    return {"token": credit_token(transfer_number, wh, serial).hex(), "kwh": kwh}


def run(fleet, serial, job_type, payload=None, **meter_kw):
    """``run_job`` with the job meter of ``meter()``; the HLS tests below check the counters
    they pass."""
    return run_job(
        fleet,
        serial,
        job_type,
        payload,
        keep_counter="invocation_counter" in meter_kw,
        **meter(fleet, serial, **meter_kw),
    )


@pytest.fixture(params=["SIM00001", "SIM00002"], ids=["wrapper", "hdlc"])
def serial(request):
    return request.param


def test_ping_reports_time_credit_relay(fleet, serial):
    result = run(fleet, serial, "ping")
    state = fleet.meter(serial).state()
    assert result["relay"] == "connected"
    assert result["credit_kwh"] == pytest.approx(fleet.meter(serial).credit_wh / 1000)
    assert result["meter_time"].endswith("Z")
    assert isinstance(state, dict)


def test_read_registers_scaled_with_units_and_profile(fleet, serial):
    fleet.meter(serial).advance(3 * 3600)
    result = run(
        fleet,
        serial,
        "read",
        {
            "objects": [
                {"obis": "1.0.1.8.0.255", "ic": 3, "attribute": 2},
                {"obis": "1.0.32.7.0.255", "ic": 3, "attribute": 2},
                {"obis": "0.0.42.0.0.255", "ic": 1, "attribute": 2},
                {"obis": "1.0.99.1.0.255", "ic": 7, "attribute": 2},
                {"obis": "9.9.9.9.9.255", "ic": 1, "attribute": 2},
            ]
        },
    )
    by_obis = {r["obis"]: r for r in result["readings"]}
    assert by_obis["1.0.1.8.0.255"]["unit"] == "Wh"
    assert by_obis["1.0.32.7.0.255"]["unit"] == "V"
    assert 100 < by_obis["1.0.32.7.0.255"]["value"] < 300  # scaler -1 applied
    assert by_obis["0.0.42.0.0.255"]["value"] == serial
    rows = result["profiles"]["1.0.99.1.0.255"]
    assert len(rows) >= 10 and rows[0][0].endswith("Z") and len(rows[0]) == 3
    assert "9.9.9.9.9.255" in result["errors"]


def test_two_reads_within_a_second_are_stamped_apart_and_in_order(fleet, serial):
    """Odoo keeps one reading per meter, OBIS and time: reads of a register one after the
    other (a TOU day read band by band) must not share a time, or the newer value is lost."""
    objects = {"objects": [{"obis": "1.0.1.8.0.255", "ic": 3, "attribute": 2}]}
    first = run(fleet, serial, "read", objects)["readings"][0]
    fleet.meter(serial).advance(3600)
    second = run(fleet, serial, "read", objects)["readings"][0]
    assert second["value"] > first["value"]
    assert parse_iso(second["time"]) > parse_iso(first["time"])


def test_read_profile_by_time_range(fleet, serial):
    model = fleet.meter(serial)
    model.advance(4 * 3600)
    now = model.meter_time()
    start = now - dt.timedelta(hours=2)
    result = run(
        fleet,
        serial,
        "read",
        {
            "objects": [{"obis": "1.0.99.1.0.255", "ic": 7, "attribute": 2}],
            "from": start.isoformat(),
            "to": now.isoformat(),
        },
    )
    rows = result["profiles"]["1.0.99.1.0.255"]
    assert 1 <= len(rows) <= 9
    for row in rows:
        when = dt.datetime.fromisoformat(row[0].replace("Z", "+00:00"))
        assert start - dt.timedelta(minutes=15) <= when <= now + dt.timedelta(minutes=15)


def test_profile_last_entries(fleet):
    from meter_bridge.dlms import MeterConnection

    fleet.meter("SIM00001").advance(3 * 3600)
    with MeterConnection.from_job_meter(meter(fleet, "SIM00001")) as conn:
        rows = conn.get_profile("1.0.99.1.0.255", entries=3)
    assert len(rows) == 3
    assert rows[0][0] < rows[1][0] < rows[2][0]


def test_add_credit_and_duplicate_transfer_counts_as_success(fleet, serial):
    model = fleet.meter(serial)
    before = model.credit_wh
    first = run(fleet, serial, "add_credit", token(serial, 501, 12.5))
    assert first["already_applied"] is False
    assert first["credit_kwh"] == pytest.approx((before + 12500) / 1000, abs=0.01)
    again = run(fleet, serial, "add_credit", token(serial, 501, 12.5))
    assert again["already_applied"] is True
    assert model.credit_wh == before + 12500  # applied once
    assert again["relay"] == "connected"


def test_check_token_of_an_applied_transfer_says_applied(fleet, serial):
    model = fleet.meter(serial)
    run(fleet, serial, "add_credit", token(serial, 601, 2.0))
    credit = model.credit_wh
    result = run(fleet, serial, "check_token", {"transfer_number": 601})
    assert result == {
        "transfer_number": 601,
        "applied": True,
        "cancelled": False,
        "credit_kwh": pytest.approx(credit / 1000, abs=0.01),
        "relay": "connected",
    }
    assert model.credit_wh == credit
    assert model.transfer_status(601) == model_mod.TRANSFER_APPLIED


def test_check_token_cancels_a_transfer_not_applied_and_its_token_is_refused(fleet, serial):
    model = fleet.meter(serial)
    before = model.credit_wh
    result = run(fleet, serial, "check_token", {"transfer_number": 602})
    assert result["applied"] is False and result["cancelled"] is True
    assert model.transfer_status(602) == model_mod.TRANSFER_CANCELLED
    assert model.last_code("standard") == model_mod.EV_TRANSFER_CANCELLED
    # asking again gives the same final answer
    again = run(fleet, serial, "check_token", {"transfer_number": 602})
    assert again["applied"] is False and again["cancelled"] is True
    # the token of that transfer, sent late (a bridge past its lease), is refused for ever
    with pytest.raises(MeterRefused) as err:
        run(fleet, serial, "add_credit", token(serial, 602, 5.0))
    assert err.value.code == 15 and not err.value.retryable
    assert "transfer 602" in str(err.value) and "cancelled" in str(err.value)
    assert model.last_code("fraud") == model_mod.EV_TOKEN_CANCELLED
    assert model.credit_wh == before


def test_disconnect_then_reconnect(fleet, serial):
    off = run(fleet, serial, "disconnect")
    assert off == {"relay": "disconnected", "control_state": 0}
    assert fleet.meter(serial).relay_state == "disconnected"
    on = run(fleet, serial, "reconnect")
    assert on["relay"] == "connected" and on["control_state"] == 1


def test_set_load_limit_and_thresholds(fleet, serial):
    assert run(fleet, serial, "set_load_limit", {"load_limit_w": 4200}) == {"load_limit_w": 4200}
    result = run(fleet, serial, "set_thresholds", {"low_credit_kwh": 3.5, "trip_kwh": -0.5})
    assert result == {"low_credit_kwh": 3.5, "trip_kwh": -0.5}
    result = run(fleet, serial, "set_thresholds", {"low_credit_kwh": 6, "trip_kwh": 1})
    assert result == {"low_credit_kwh": 6.0, "trip_kwh": 1.0}


def test_sync_clock_sets_meter_to_utc_now(fleet, serial):
    fleet.meter(serial).set_clock(dt.datetime(2024, 6, 1, tzinfo=UTC))
    result = run(fleet, serial, "sync_clock")
    assert result["meter_time_before"].startswith("2024-06-01")
    after = dt.datetime.fromisoformat(result["meter_time"].replace("Z", "+00:00"))
    assert abs((after - dt.datetime.now(UTC)).total_seconds()) < 5


def test_sync_clock_reports_the_drift_it_corrected(fleet, serial):
    """Issue 18 §6: the meter's clock less UTC before the sync, positive when ahead."""
    model = fleet.meter(serial)
    model.set_clock(dt.datetime.now(UTC) + dt.timedelta(seconds=90))
    ahead = run(fleet, serial, "sync_clock")["clock_drift_s"]
    assert 85 <= ahead <= 91
    model.set_clock(dt.datetime.now(UTC) - dt.timedelta(hours=1))
    behind = run(fleet, serial, "sync_clock")["clock_drift_s"]
    assert -3605 <= behind <= -3599
    # once synchronised, the clock is right: the next sync finds no drift to speak of
    assert abs(run(fleet, serial, "sync_clock")["clock_drift_s"]) < 5


def test_read_events_both_logs_and_since(fleet, serial):
    model = fleet.meter(serial)
    model.tamper("cover_open")
    result = run(fleet, serial, "read_events", {"since": None})
    logs = {(e["log"], e["code"]) for e in result["events"]}
    assert ("fraud", 40) in logs
    assert any(log == "standard" for log, _ in logs)
    last = max(e["time"] for e in result["events"])
    later = run(fleet, serial, "read_events", {"since": last})
    assert all(e["time"] >= last for e in later["events"])
    assert len(later["events"]) < len(result["events"])


def test_meter_as_odoo_creates_it_is_commandable_without_its_system_title(fleet, serial):
    """A meter entered in Odoo with the vendor's keys only: management client, HLS-GMAC, no
    system title (the bridge takes the one the meter sends in the AARE). SET and ACTION,
    which the meter allows only there, go through; the ciphered answers decrypt."""
    model = fleet.meter(serial)
    odoo_meter = {"system_title": None, "invocation_counter": model.client_invocation_counter}
    assert meter(fleet, serial, **odoo_meter)["client_address"] == 1
    done = run(fleet, serial, "set_load_limit", {"load_limit_w": 3100}, **odoo_meter)
    assert done["load_limit_w"] == 3100
    assert done["invocation_counter"] > odoo_meter["invocation_counter"]  # ciphered
    assert model.load_limit_w == 3100
    odoo_meter["invocation_counter"] = model.client_invocation_counter
    before = model.credit_wh
    done = run(fleet, serial, "add_credit", token(serial, 777, 1.5), **odoo_meter)
    assert done["already_applied"] is False
    assert model.credit_wh == before + 1500


def test_lls_with_right_and_wrong_password(fleet):
    ok = run(fleet, "SIM00003", "ping", auth="lls", password="secret12", client_address=1)
    assert ok["relay"] in ("connected", "disconnected")
    with pytest.raises(MeterRefused) as err:
        run(fleet, "SIM00003", "ping", auth="lls", password="wrong", client_address=1)
    assert not err.value.retryable


def _no_counters_yet(fleet):
    fleet.counters = {}  # serial -> last invocation counter the bridge reported (what Odoo keeps)


hls_fleet = fleet_fixture(
    MeterConfig(
        "SIM00004",
        auth="hls",
        encryption_key=KEYS["encryption_key"],
        authentication_key=KEYS["auth_key"],
    ),
    MeterConfig(
        "SIM00005",
        auth="hls",
        framing="hdlc",
        encryption_key=KEYS["encryption_key"],
        authentication_key=KEYS["auth_key"],
        system_title="4D54523030303035",
    ),
    prepare=_no_counters_yet,
)


@pytest.fixture(params=["SIM00004", "SIM00005"], ids=["wrapper", "hdlc"])
def hls_serial(request):
    return request.param


def run_hls(fleet, serial, job_type, payload=None, **meter_kw):
    """A job over HLS-GMAC, starting from the counter the previous job reported."""
    kw = {
        "auth": "hls_gmac",
        "client_address": 1,
        "framing": "wrapper",
        "invocation_counter": fleet.counters.get(serial, 41),
        **KEYS,
    }
    if serial == "SIM00005":
        kw.update(framing="hdlc", system_title="4D54523030303035")
    kw.update(meter_kw)
    result = run(fleet, serial, job_type, payload, **kw)
    assert result["invocation_counter"] > kw["invocation_counter"]
    fleet.counters[serial] = result["invocation_counter"]
    return result


def test_hls_gmac_every_job_type(hls_fleet, hls_serial):
    model = hls_fleet.meter(hls_serial)
    model.advance(2 * 3600)
    model.tamper("cover_open")
    ping = run_hls(hls_fleet, hls_serial, "ping")
    assert ping["credit_kwh"] == pytest.approx(model.credit_wh / 1000)
    read = run_hls(
        hls_fleet,
        hls_serial,
        "read",
        {
            "objects": [
                {"obis": "0.0.42.0.0.255", "ic": 1, "attribute": 2},
                {"obis": "1.0.32.7.0.255", "ic": 3, "attribute": 2},
                {"obis": "1.0.99.1.0.255", "ic": 7, "attribute": 2},
            ]
        },
    )
    assert {r["obis"]: r["value"] for r in read["readings"]}["0.0.42.0.0.255"] == hls_serial
    assert len(read["profiles"]["1.0.99.1.0.255"]) >= 8
    before = model.credit_wh
    credit = run_hls(hls_fleet, hls_serial, "add_credit", token(hls_serial, 77, 2))
    assert credit["already_applied"] is False and model.credit_wh == before + 2000
    again = run_hls(hls_fleet, hls_serial, "add_credit", token(hls_serial, 77, 2))
    assert again["already_applied"] is True and model.credit_wh == before + 2000
    assert run_hls(hls_fleet, hls_serial, "disconnect")["relay"] == "disconnected"
    assert model.relay_state == "disconnected"
    assert run_hls(hls_fleet, hls_serial, "reconnect")["relay"] == "connected"
    limit = run_hls(hls_fleet, hls_serial, "set_load_limit", {"load_limit_w": 3300})
    assert limit["load_limit_w"] == 3300 and model.load_limit_w == 3300
    thresholds = run_hls(
        hls_fleet, hls_serial, "set_thresholds", {"low_credit_kwh": 4, "trip_kwh": 0.5}
    )
    assert thresholds == {
        "low_credit_kwh": 4.0,
        "trip_kwh": 0.5,
        "invocation_counter": hls_fleet.counters[hls_serial],
    }
    model.set_clock(dt.datetime(2024, 6, 1, tzinfo=UTC))
    clock = run_hls(hls_fleet, hls_serial, "sync_clock")
    assert clock["meter_time_before"].startswith("2024-06-01")
    events = run_hls(hls_fleet, hls_serial, "read_events", {"since": None})
    assert ("fraud", 40) in {(e["log"], e["code"]) for e in events["events"]}


def test_hls_gmac_invocation_counter_strictly_increases(hls_fleet, hls_serial):
    first = run_hls(hls_fleet, hls_serial, "ping", invocation_counter=1000)
    assert first["invocation_counter"] > 1000
    second = run_hls(hls_fleet, hls_serial, "ping")
    assert second["invocation_counter"] > first["invocation_counter"]
    assert hls_fleet.meter(hls_serial).client_invocation_counter == second["invocation_counter"]


def test_hls_gmac_lower_counter_than_the_meter_saw_is_refused(hls_fleet, hls_serial):
    last = run_hls(hls_fleet, hls_serial, "ping")["invocation_counter"]
    model = hls_fleet.meter(hls_serial)
    credit = model.credit_wh
    for stale in (last - 1, last - 20):  # a replay and an older counter
        with pytest.raises(MeterRefused) as err:
            run(
                hls_fleet,
                hls_serial,
                "add_credit",
                token(hls_serial, 9000 + stale, 1),
                auth="hls_gmac",
                client_address=1,
                invocation_counter=stale,
                framing="hdlc" if hls_serial == "SIM00005" else "wrapper",
                **KEYS,
            )
        assert "association" in str(err.value)
    assert model.credit_wh == credit and model.client_invocation_counter == last
    assert run_hls(hls_fleet, hls_serial, "ping")["invocation_counter"] > last  # still usable


def test_hls_gmac_failed_job_carries_the_counter_it_used(hls_fleet, hls_serial):
    model = hls_fleet.meter(hls_serial)
    start = hls_fleet.counters.get(hls_serial, 41)
    run_hls(hls_fleet, hls_serial, "disconnect")
    model.credit_wh = model.trip_wh - 1000  # reconnect refused: temporary-failure
    try:
        with pytest.raises(MeterRefused) as err:
            run_hls(hls_fleet, hls_serial, "reconnect")
    finally:
        model.credit_wh = model.trip_wh + 50_000
    assert err.value.invocation_counter > start
    assert err.value.invocation_counter == model.client_invocation_counter
    hls_fleet.counters[hls_serial] = err.value.invocation_counter
    assert run_hls(hls_fleet, hls_serial, "reconnect")["relay"] == "connected"


def test_hls_gmac_wrong_key_is_refused_and_counter_not_taken(hls_fleet):
    model = hls_fleet.meter("SIM00004")
    seen = model.client_invocation_counter
    with pytest.raises((JobError, MeterRefused)) as err:
        run(
            hls_fleet,
            "SIM00004",
            "ping",
            auth="hls_gmac",
            client_address=1,
            invocation_counter=5_000_000,
            encryption_key="00" * 16,
            auth_key=KEYS["auth_key"],
        )
    assert not err.value.retryable
    assert model.client_invocation_counter == seen


def test_closed_port_is_unreachable_within_timeout(fleet):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(MeterUnreachable):
        execute_job(
            {
                "job_type": "ping",
                "payload": {},
                "meter": {"host": "127.0.0.1", "port": port, "timeout_s": 2},
            }
        )
    assert time.monotonic() - start < 2


def test_offline_meter_is_unreachable_within_timeout(fleet):
    fleet.set_offline("SIM00001", True)
    try:
        start = time.monotonic()
        with pytest.raises(MeterUnreachable):
            run(fleet, "SIM00001", "ping", timeout_s=1)
        assert time.monotonic() - start < 3
    finally:
        fleet.set_offline("SIM00001", False)


def test_cli_read_prints_values(fleet, capsys):
    from meter_bridge.cli_read import main_read

    code = main_read(
        [
            f"127.0.0.1:{fleet.port_of('SIM00002')}",
            "--hdlc",
            "--client",
            "1",
            "--auth",
            "hls_gmac",
            "--auth-key",
            fleet.meter("SIM00002").config.authentication_key,
            "--encryption-key",
            fleet.meter("SIM00002").config.encryption_key,
            "--invocation-counter",
            str((fleet.meter("SIM00002").client_invocation_counter or 0) + 1),
            "1.0.32.7.0.255",
            "0.0.42.0.0.255",
            "1.0.99.1.0.255",
            "9.9.9.9.9.255",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1  # one object refused
    assert " V" in out and "SIM00002" in out and "9.9.9.9.9.255" in out and "ERROR" in out


def test_hls_gmac_meter_never_reuses_its_own_counter(hls_fleet, hls_serial, monkeypatch):
    # gurux restarted the meter's counter every association and reused it after the AARE
    # and f(CtoS): the same GCM nonce twice. Every ciphered APDU from the meter, across
    # associations, must carry a higher counter than the one before.
    from dlms_cosem.connection import DlmsConnection

    seen = []
    upstream = DlmsConnection.update_meter_invocation_counter

    def record(self, ic):
        seen.append(ic)
        return upstream(self, ic)

    monkeypatch.setattr(DlmsConnection, "update_meter_invocation_counter", record)
    run_hls(hls_fleet, hls_serial, "ping")
    run_hls(hls_fleet, hls_serial, "set_load_limit", {"load_limit_w": 2500})
    assert len(seen) >= 8
    assert all(a < b for a, b in zip(seen, seen[1:], strict=False)), seen


def test_hls_gmac_replay_inside_an_association_drops_the_line(hls_fleet, hls_serial):
    from meter_bridge.dlms import MeterConnection

    kw = {
        "auth": "hls_gmac",
        "client_address": 1,
        **KEYS,
        "invocation_counter": hls_fleet.counters.get(hls_serial, 41),
    }
    if hls_serial == "SIM00005":
        kw["framing"] = "hdlc"
    conn = MeterConnection.from_job_meter(meter(hls_fleet, hls_serial, **kw), deadline_s=10)
    with conn:
        assert conn.get("0.0.42.0.0.255", 1, 2) == hls_serial.encode()
        # the next request goes out with a counter the meter has already accepted
        conn.client.dlms_connection.client_invocation_counter -= 1
        with pytest.raises(MeterUnreachable):
            conn.get("0.0.42.0.0.255", 1, 2)
    hls_fleet.counters[hls_serial] = conn.invocation_counter + 1


def _hls_job(fleet, serial, job_type, limit, payload=None):
    """A job over HLS-GMAC as the claim hands it out: the meter's counter and, at the job's
    top level, the highest counter the job may use (a decimal string)."""
    meter_kw = {
        "auth": "hls_gmac",
        "client_address": 1,
        "invocation_counter": fleet.counters.get(serial, 41),
        "framing": "hdlc" if serial == "SIM00005" else "wrapper",
        **KEYS,
    }
    if serial == "SIM00005":
        meter_kw["system_title"] = "4D54523030303035"
    return {
        "id": 1,
        "job_type": job_type,
        "payload": payload or {},
        "meter": meter(fleet, serial, **meter_kw),
        "invocation_counter_limit": str(limit),
    }


def test_hls_gmac_job_within_its_counter_limit_runs(hls_fleet, hls_serial):
    start = run_hls(hls_fleet, hls_serial, "ping")["invocation_counter"]
    result = execute_job(_hls_job(hls_fleet, hls_serial, "ping", start + 1000), deadline_s=20)
    assert start < result["invocation_counter"] <= start + 1000
    hls_fleet.counters[hls_serial] = result["invocation_counter"]


def test_hls_gmac_apdu_above_the_jobs_counter_limit_is_never_sent(hls_fleet, hls_serial):
    """The association takes two counters (AARQ, HLS reply); a ping needs more. With a limit
    two above the meter's counter the bridge stops before the first GET, retryable, and
    says which counter it used last; the meter never sees a counter above the limit."""
    model = hls_fleet.meter(hls_serial)
    start = run_hls(hls_fleet, hls_serial, "ping")["invocation_counter"]
    limit = start + 2
    with pytest.raises(InvocationCountersUsedUp) as err:
        execute_job(_hls_job(hls_fleet, hls_serial, "ping", limit), deadline_s=20)
    assert err.value.retryable
    assert "invocation counters reserved for this job used up" in str(err.value)
    assert err.value.invocation_counter == limit
    assert model.client_invocation_counter <= limit
    hls_fleet.counters[hls_serial] = err.value.invocation_counter
    # the retry, with a new block above the reported counter, goes through
    again = execute_job(_hls_job(hls_fleet, hls_serial, "ping", limit + 1000), deadline_s=20)
    assert again["invocation_counter"] > limit
    hls_fleet.counters[hls_serial] = again["invocation_counter"]


def test_hls_gmac_token_is_not_sent_above_the_jobs_counter_limit(hls_fleet, hls_serial):
    model = hls_fleet.meter(hls_serial)
    start = run_hls(hls_fleet, hls_serial, "ping")["invocation_counter"]
    before = model.credit_wh
    with pytest.raises(InvocationCountersUsedUp) as err:
        execute_job(
            _hls_job(hls_fleet, hls_serial, "add_credit", start + 2, token(hls_serial, 4242, 1)),
            deadline_s=20,
        )
    assert model.credit_wh == before, "the token never reached the meter"
    hls_fleet.counters[hls_serial] = err.value.invocation_counter


def _scaler_gets(monkeypatch):
    """The attribute-3 (scaler_unit) GETs the bridge sends to the meters, counted."""
    from meter_bridge import dlms

    sent = []
    upstream = dlms.MeterConnection.get

    def counting_get(self, obis, ic, attr, access=None):
        if attr == 3 and ic in (3, 4, 5):
            sent.append((self.meter.get("serial_number"), obis))
        return upstream(self, obis, ic, attr, access)

    monkeypatch.setattr(dlms.MeterConnection, "get", counting_get)
    return sent


def test_scalers_are_read_once_per_meter_then_reused(fleet, monkeypatch):
    from meter_bridge import dlms

    dlms.SCALERS.clear()
    sent = _scaler_gets(monkeypatch)
    payload = {"objects": [{"obis": "1.0.1.8.0.255", "ic": 3}, {"obis": "1.0.32.7.0.255"}]}
    first = run(fleet, "SIM00001", "read", payload)
    assert len(sent) == 2  # energy and voltage: their scalers read
    second = run(fleet, "SIM00001", "read", payload)
    assert len(sent) == 2  # the next read of the same meter: none
    by_obis = {r["obis"]: (r["value"], r["unit"]) for r in second["readings"]}
    assert by_obis == {r["obis"]: (r["value"], r["unit"]) for r in first["readings"]}
    assert by_obis["1.0.32.7.0.255"] == (230.0, "V")  # 2300, scaler -1
    run(fleet, "SIM00002", "read", payload)
    assert len(sent) == 4  # another meter reads its own


def test_scalers_of_the_serial_at_another_address_are_not_used(fleet, monkeypatch):
    from meter_bridge import dlms

    dlms.SCALERS.clear()
    sent = _scaler_gets(monkeypatch)
    elsewhere = dlms.MeterConnection(meter(fleet, "SIM00001", port=1))._meter_identity()
    dlms.SCALERS.put((elsewhere, ("1.0.32.7.0.255", 3)), (2, 35))  # that line's meter: 10^2 V
    result = run(fleet, "SIM00001", "read", {"objects": [{"obis": "1.0.32.7.0.255"}]})
    assert sent == [("SIM00001", "1.0.32.7.0.255")]  # read from this meter
    assert result["readings"][0]["value"] == 230.0


def test_scaler_cache_is_bounded():
    from meter_bridge.dlms import ScalerCache

    cache = ScalerCache(max_entries=2)
    cache.put("a", (0, 30))
    cache.put("b", (-1, 35))
    assert cache.get("a") == (0, 30)  # a is now the most recent
    cache.put("c", (-2, 33))
    assert len(cache) == 2 and cache.get("b") is None and cache.get("a") == (0, 30)
