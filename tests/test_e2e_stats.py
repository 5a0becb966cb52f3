"""End to end (issue 8): reading tasks, load profiles, tamper alarms and comm-lost, through a
real Odoo HTTP server, a real meter-bridge process and simulated meters (real DLMS).

Each test makes its own Odoo meters (unique serial prefix) and archives them at the end, so
the scheduled collections triggered by a later test only queue jobs for that test's meters.
"""

import datetime as dt
import os
import xmlrpc.client

import pytest
from odoo_e2e import locked_meter_vals, run_bridge, sim_control, wait_until

from meter_sim.fleet import Fleet
from meter_sim.testing import run_cli

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not os.environ.get("SMARTPM_E2E_DB"),
        reason="needs the e2e database that `make test` prepares (SMARTPM_E2E_DB)",
    ),
]

ENERGY_IMPORT = "1.0.1.8.0.255"
ENERGY_EXPORT = "1.0.2.8.0.255"
CREDIT = "0.0.19.10.0.255"
RELAY = "0.0.96.3.10.255"
CLOCK = "0.0.1.0.0.255"
LOAD_PROFILE = "1.0.99.1.0.255"


@pytest.fixture
def sim():
    with run_cli(3, speed=0) as fleet:
        yield fleet


@pytest.fixture
def own_meters(odoo):
    """Meters made by the test, archived afterwards (out of every scheduled collection)."""
    made = []
    yield made
    if made:
        odoo.call("smartpm.meter", "write", made, {"active": False})


def make_meters(odoo, sim, prefix, own):
    ids = {}
    for serial, port in sim.ports.items():
        ids[serial] = odoo.call(
            "smartpm.meter",
            "create",
            {
                "serial_number": f"{prefix}-{serial}",
                "host": "127.0.0.1",
                "port": port,
                "state": "active",
                **locked_meter_vals(serial),
            },
        )
        own.append(ids[serial])
    return ids


def trigger_cron(odoo, xml_name):
    """Run a shipped scheduled action now, as the cron worker would (its own user)."""
    cron_id = odoo.call(
        "ir.model.data",
        "search_read",
        [("module", "=", "smartpm_prepay"), ("name", "=", xml_name), ("model", "=", "ir.cron")],
        fields=["res_id"],
    )[0]["res_id"]
    assert odoo.call("ir.cron", "method_direct_trigger", [cron_id])


def scheme_id(odoo, code):
    return odoo.call("smartpm.reading.scheme", "search", [("code", "=", code)])[0]


JOB_FIELDS = ["state", "job_type", "result", "error", "meter_id", "task_id"]


def jobs_of(odoo, meter_ids, *domain, extra=()):
    # not the payload by default: Odoo's XML-RPC cannot send its nulls (e.g. since: null)
    return odoo.call(
        "smartpm.meter.job",
        "search_read",
        [("meter_id", "in", list(meter_ids)), *domain],
        fields=JOB_FIELDS + list(extra),
    )


def all_finished(odoo, meter_ids, *domain, extra=()):
    rows = jobs_of(odoo, meter_ids, *domain, extra=extra)
    return rows if rows and all(r["state"] in ("done", "failed") for r in rows) else None


def readings_of(odoo, meter_ids, *domain):
    return odoo.call(
        "smartpm.reading",
        "search_read",
        [("meter_id", "in", list(meter_ids)), *domain],
        fields=["meter_id", "obis", "value", "unit", "source", "reading_time"],
    )


def odoo_time(iso_text):
    """A simulator ISO time as Odoo writes a Datetime over RPC (naive UTC, seconds)."""
    t = dt.datetime.fromisoformat(iso_text).astimezone(dt.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S")


def start_task(odoo, name, scheme_code, meter_ids, **vals):
    task = odoo.call(
        "smartpm.reading.task",
        "create",
        {
            "name": name,
            "scheme_id": scheme_id(odoo, scheme_code),
            "meter_ids": [(6, 0, list(meter_ids))],
            **vals,
        },
    )
    odoo.call("smartpm.reading.task", "action_start", [task])
    return task


def wait_task_done(odoo, task, timeout=60):
    def done():
        row = odoo.call(
            "smartpm.reading.task",
            "read",
            [task],
            fields=["state", "job_count", "job_done_count", "job_failed_count"],
        )[0]
        return row if row["state"] == "done" else None

    return wait_until(done, timeout=timeout, what=f"reading task {task} to finish")


def task_results(odoo, task):
    return odoo.call(
        "smartpm.reading.task.result",
        "search_read",
        [("task_id", "=", task)],
        fields=[
            "meter_id",
            "obis",
            "value",
            "value_text",
            "is_numeric",
            "unit",
            "state",
            "saved",
            "reading_time",
            "profile_obis",
            "error",
        ],
    )


# ------------------------------------------------------------------------------ 1. billing task
def test_billing_task_shows_true_meter_values_and_saves_them_once(odoo, sim, own_meters):
    meters = make_meters(odoo, sim, "E8T1", own_meters)
    # different consumption on each meter, so a value shown on the wrong meter is caught
    for hours, serial in enumerate(sorted(meters), start=1):
        sim_control(sim, serial, "advance", {"seconds": 3600 * hours})
    truth = {s: sim_control(sim, s) for s in meters}
    assert len({t["energy_kwh"] for t in truth.values()}) == 3

    with run_bridge(odoo, odoo.api_key, "e2e8-billing"):
        task = start_task(odoo, "E2E billing", "billing", meters.values())
        progress = wait_task_done(odoo, task)
    assert progress["job_count"] == 3
    assert progress["job_done_count"] == 3

    results = task_results(odoo, task)
    assert {r["state"] for r in results} == {"ok"}, [r for r in results if r["state"] != "ok"]
    for serial, meter_id in meters.items():
        mine = {r["obis"]: r for r in results if r["meter_id"][0] == meter_id}
        assert set(mine) == {CLOCK, ENERGY_IMPORT, ENERGY_EXPORT, CREDIT, RELAY}
        assert mine[ENERGY_IMPORT]["value"] == pytest.approx(
            truth[serial]["energy_kwh"] * 1000, abs=1
        )
        assert mine[ENERGY_IMPORT]["unit"] == "Wh"
        assert mine[ENERGY_EXPORT]["value"] == pytest.approx(truth[serial]["export_kwh"] * 1000)
        assert mine[CREDIT]["value"] == pytest.approx(truth[serial]["credit_kwh"], abs=0.001)
        assert mine[RELAY]["value"] == (1.0 if truth[serial]["relay"] == "connected" else 0.0)
        # the clock is shown as a time, not stored (not a number)
        assert not mine[CLOCK]["is_numeric"]
        assert odoo_time(mine[CLOCK]["value_text"].replace("Z", "+00:00")) == odoo_time(
            truth[serial]["time"]
        )
        assert not any(r["saved"] for r in mine.values())

    # shown, not stored: the statistics never see unsaved values
    assert readings_of(odoo, meters.values()) == []

    odoo.call("smartpm.reading.task", "action_save_data", [task])
    stored = readings_of(odoo, meters.values())
    numeric = [r for r in results if r["is_numeric"]]
    assert len(stored) == len(numeric) == 12
    assert {r["source"] for r in stored} == {"task"}
    for serial, meter_id in meters.items():
        energy = [r for r in stored if r["meter_id"][0] == meter_id and r["obis"] == ENERGY_IMPORT]
        assert len(energy) == 1
        assert energy[0]["value"] == pytest.approx(truth[serial]["energy_kwh"] * 1000, abs=1)

    # saving again: the task has nothing left to save, the results store nothing new
    with pytest.raises(xmlrpc.client.Fault, match="no unsaved value"):
        odoo.call("smartpm.reading.task", "action_save_data", [task])
    odoo.call("smartpm.reading.task.result", "action_save", [r["id"] for r in results])
    assert len(readings_of(odoo, meters.values())) == 12
    assert all(r["saved"] for r in task_results(odoo, task) if r["is_numeric"])


# ------------------------------------------------------------------------------ 2. load profile
class InProcessSim:
    """A started in-process Fleet with the attributes the helpers use (ports, control_port)."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.ports = {serial: fleet.port_of(serial) for serial in fleet.models}
        self.control_port = fleet.control.port


@pytest.fixture
def past_sim():
    """Two meters whose frozen clock starts 6 h ago (on a quarter hour): advancing them a
    few hours leaves every capture in the past, inside the ranges Odoo asks for."""
    now = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    start = now.replace(minute=now.minute - now.minute % 15) - dt.timedelta(hours=6)
    with Fleet(meters=2, base_port=0, speed=0, start=start, control_port=0) as fleet:
        yield InProcessSim(fleet)


def test_load_profile_rows_are_shown_by_a_task_and_stored_by_the_collection(
    odoo, past_sim, own_meters
):
    sim = past_sim
    meters = make_meters(odoo, sim, "E8T2", own_meters)
    for serial in meters:
        sim_control(sim, serial, "advance", {"seconds": 4 * 3600})
    truth = {s: sim_control(sim, s) for s in meters}
    captures = 16  # one per quarter hour of the 4 h

    with run_bridge(odoo, odoo.api_key, "e2e8-profile"):
        task = start_task(odoo, "E2E load profile", "load_profile", meters.values())
        wait_task_done(odoo, task)
        results = task_results(odoo, task)
        assert {r["state"] for r in results} == {"ok"}, results[:3]
        for serial, meter_id in meters.items():
            mine = [r for r in results if r["meter_id"][0] == meter_id]
            assert {r["profile_obis"] for r in mine} == {LOAD_PROFILE}
            imports = sorted(
                (r["reading_time"], r["value"]) for r in mine if r["obis"] == ENERGY_IMPORT
            )
            assert len(imports) == captures
            assert len([r for r in mine if r["obis"] == ENERGY_EXPORT]) == captures
            # the register only grows, and the last capture (at the meter's "now") is it
            assert [v for _t, v in imports] == sorted(v for _t, v in imports)
            assert imports[-1][0] == odoo_time(truth[serial]["time"])
            assert imports[-1][1] == pytest.approx(truth[serial]["energy_kwh"] * 1000)
        # shown on the task only
        assert readings_of(odoo, meters.values()) == []

        # the scheduled load-profile collection stores them as readings (source profile)
        trigger_cron(odoo, "cron_profile_reads")
        scheduled = wait_until(
            lambda: all_finished(odoo, meters.values(), ("task_id", "=", False), extra=["payload"]),
            what="the scheduled profile reads",
        )
    assert len(scheduled) == 2
    assert {j["state"] for j in scheduled} == {"done"}, scheduled
    assert {j["payload"]["schedule"] for j in scheduled} == {"profile"}
    stored = readings_of(odoo, meters.values())
    assert {r["source"] for r in stored} == {"profile"}
    for serial, meter_id in meters.items():
        mine = [r for r in stored if r["meter_id"][0] == meter_id]
        shown = {
            (r["obis"], r["reading_time"]): r["value"]
            for r in results
            if r["meter_id"][0] == meter_id
        }
        assert {(r["obis"], r["reading_time"]): r["value"] for r in mine} == shown
        last = max((r for r in mine if r["obis"] == ENERGY_IMPORT), key=lambda r: r["reading_time"])
        assert last["value"] == pytest.approx(truth[serial]["energy_kwh"] * 1000)
        assert last["unit"] == "Wh"


# ------------------------------------------------------------------------------ 3. tamper
def test_tamper_events_become_alarms_once_with_the_meter_time(odoo, sim, own_meters):
    meters = make_meters(odoo, sim, "E8T3", own_meters)
    thief, honest = "SIM00001", "SIM00002"
    sim_control(sim, thief, "tamper", {"kind": "cover_open"})
    sim_control(sim, thief, "advance", {"seconds": 90})  # a distinct time for each event
    sim_control(sim, thief, "tamper", {"kind": "reverse_connection"})
    events = {e["code"]: e["time"] for e in sim_control(sim, thief)["events"]}
    expected = {"cover_open": odoo_time(events[40]), "reverse_connection": odoo_time(events[92])}

    def alarms():
        return odoo.call(
            "smartpm.alarm",
            "search_read",
            [("meter_id", "in", list(meters.values())), ("alarm_type", "!=", "comm_lost")],
            fields=["meter_id", "alarm_type", "meter_time", "event_code", "state"],
        )

    with run_bridge(odoo, odoo.api_key, "e2e8-events"):
        trigger_cron(odoo, "cron_event_reads")
        first = wait_until(
            lambda: all_finished(odoo, meters.values(), ("job_type", "=", "read_events")),
            what="the scheduled event-log reads",
        )
        assert len(first) == 3 and {j["state"] for j in first} == {"done"}, first
        raised = alarms()
        assert {(a["meter_id"][0], a["alarm_type"], a["meter_time"]) for a in raised} == {
            (meters[thief], kind, when) for kind, when in expected.items()
        }
        assert {a["state"] for a in raised} == {"new"}
        assert {a["event_code"] for a in raised} == {40, 92}
        assert not [a for a in raised if a["meter_id"][0] == meters[honest]]

        # the same slot again: the cron queues nothing more
        trigger_cron(odoo, "cron_event_reads")
        assert len(jobs_of(odoo, meters.values(), ("job_type", "=", "read_events"))) == 3

        # a read from where the last one started (what the next slot asks): same events
        claimed = odoo.call(
            "smartpm.meter.job",
            "read",
            [j["id"] for j in first if j["meter_id"][0] == meters[thief]],
            fields=["date_claimed"],
        )[0]["date_claimed"]
        since = dt.datetime.fromisoformat(claimed) - dt.timedelta(minutes=10)
        again = odoo.call(
            "smartpm.meter.job",
            "create",
            {
                "meter_id": meters[thief],
                "job_type": "read_events",
                "max_attempts": 3,
                "payload": {"since": since.isoformat() + "Z", "schedule": "events"},
            },
        )
        row = wait_until(
            lambda: all_finished(odoo, [meters[thief]], ("id", "=", again)),
            what="the second event-log read",
        )[0]
    assert row["state"] == "done", row
    assert {e["code"] for e in row["result"]["events"]} >= {40, 92}
    assert sorted((a["alarm_type"], a["meter_time"]) for a in alarms()) == sorted(expected.items())


# ------------------------------------------------------------------------------ 4. comm lost
def test_missed_pings_raise_comm_lost_and_the_next_answer_clears_it(odoo, sim, own_meters):
    meters = make_meters(odoo, sim, "E8T4", own_meters)
    lost = "SIM00001"
    company = odoo.company_id
    sim_control(sim, lost, "offline", {"offline": True})

    def meter(serial):
        return odoo.call(
            "smartpm.meter",
            "read",
            [meters[serial]],
            fields=["online_state", "missed_ping_count", "last_seen"],
        )[0]

    def comm_alarms():
        return odoo.call(
            "smartpm.alarm",
            "search_read",
            [("meter_id", "=", meters[lost]), ("alarm_type", "=", "comm_lost")],
            fields=["state", "date_closed"],
        )

    def ping_round(interval_min):
        # One ping per meter per interval slot: a different interval is a new slot, so the
        # next scheduled round happens now instead of in an hour (meters never seen qualify).
        odoo.call("res.company", "write", [company], {"smartpm_ping_interval_min": interval_min})
        before = {j["id"] for j in jobs_of(odoo, meters.values(), ("job_type", "=", "ping"))}
        trigger_cron(odoo, "cron_pings")
        new = [
            j["id"]
            for j in jobs_of(odoo, meters.values(), ("job_type", "=", "ping"))
            if j["id"] not in before
        ]
        assert new, "the ping cron queued nothing"
        return wait_until(
            lambda: all_finished(odoo, meters.values(), ("id", "in", new)),
            what="the scheduled pings",
        )

    odoo.call("res.company", "write", [company], {"smartpm_comm_lost_pings": 2})
    try:
        with run_bridge(odoo, odoo.api_key, "e2e8-pings"):
            first = ping_round(60)
            assert len(first) == 3  # none of them seen yet
            by_meter = {j["meter_id"][0]: j for j in first}
            assert by_meter[meters[lost]]["state"] == "failed"
            assert all(by_meter[meters[s]]["state"] == "done" for s in meters if s != lost), first
            assert meter(lost)["missed_ping_count"] == 1
            # it never answered: offline at its first missed ping, but the comm-lost alarm
            # waits for the company's limit of missed pings
            assert meter(lost)["online_state"] == "offline"
            assert comm_alarms() == []

            second = ping_round(59)
            # the others answered a minute ago: only the silent meter is pinged again
            assert [j["meter_id"][0] for j in second] == [meters[lost]]
            assert second[0]["state"] == "failed"
            state = meter(lost)
            assert state["missed_ping_count"] == 2
            assert state["online_state"] == "offline"
            alarms = comm_alarms()
            assert [a["state"] for a in alarms] == ["new"]

            sim_control(sim, lost, "offline", {"offline": False})
            third = ping_round(58)
            assert [(j["meter_id"][0], j["state"]) for j in third] == [(meters[lost], "done")]
        state = meter(lost)
        assert state["online_state"] == "online"
        assert state["missed_ping_count"] == 0
        assert state["last_seen"]
        cleared = comm_alarms()
        assert len(cleared) == 1
        assert cleared[0]["state"] == "cleared"
        assert cleared[0]["date_closed"]
    finally:
        odoo.call(
            "res.company",
            "write",
            [company],
            {"smartpm_comm_lost_pings": 3, "smartpm_ping_interval_min": 60},
        )
