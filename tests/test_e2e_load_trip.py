"""End to end, issue 17 §3: a simulated meter over its load limit trips, reconnects by
itself after the delay, trips again, locks out after the hour's reconnections; Odoo shows
each step as an alarm and the lockout on the meter; the operator's Reconnect ends it.

Real Odoo (HTTP), a meter-bridge process and meter-sim (real DLMS, HLS-GMAC); the meter's
clock is frozen and moved by the test through the simulator's control interface."""

import os

import pytest
from odoo_e2e import locked_meter_vals, run_bridge, sim_control, sim_meters, wait_until

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not os.environ.get("SMARTPM_E2E_DB"),
        reason="needs the e2e database that `make test` prepares (SMARTPM_E2E_DB)",
    ),
]
SERIAL = "E2ELT-00001"
METER = {"serial": SERIAL, "credit_kwh": 500}
DELAY_S = 30
ATTEMPTS = 2


def control(sim, action=None, body=None):
    return sim_control(sim, SERIAL, action, body)


def wait_jobs(odoo, meter_id, job_type=None):
    domain = [("meter_id", "=", meter_id)]
    if job_type:
        domain.append(("job_type", "=", job_type))

    def finished():
        rows = odoo.call("smartpm.meter.job", "search_read", domain, fields=["state", "error"])
        if rows and all(r["state"] in ("done", "failed", "cancelled") for r in rows):
            return rows
        return None

    rows = wait_until(finished, timeout=60, what=f"{job_type or 'all'} jobs to finish")
    assert all(r["state"] != "failed" for r in rows), rows
    return rows


def read_events(odoo, meter_id):
    """The operator's (or the event cron's) read of the meter's event logs."""
    odoo.call(
        "smartpm.meter.job",
        "create",
        {"meter_id": meter_id, "job_type": "read_events", "payload": {"since": None}},
    )
    wait_jobs(odoo, meter_id, "read_events")
    return odoo.call(
        "smartpm.meter",
        "read",
        [meter_id],
        fields=["load_trip_state", "relay_state"],
    )[0]


def alarm_types(odoo, meter_id):
    rows = odoo.call(
        "smartpm.alarm",
        "search_read",
        [("meter_id", "=", meter_id), ("alarm_type", "like", "load_")],
        fields=["alarm_type", "state", "meter_time"],
        order="meter_time, id",
    )
    return rows


def test_load_trip_reconnects_by_itself_then_locks_out_until_the_operator(odoo):
    with (
        sim_meters(METER) as sim,
        run_bridge(odoo, odoo.api_key, "e2e-loadtrip"),
    ):
        tariff = odoo.call(
            "smartpm.tariff",
            "create",
            {
                "name": "Load trip e2e",
                "price_per_kwh": 1,
                "load_reconnect_delay_s": DELAY_S,
                "load_reconnect_attempts": ATTEMPTS,
            },
        )
        meter_id = odoo.call(
            "smartpm.meter",
            "create",
            {
                "serial_number": SERIAL,
                "host": "127.0.0.1",
                "port": sim.ports[SERIAL],
                "state": "active",
                "tariff_id": tariff,
                "load_limit_w": 2000,
                **locked_meter_vals(SERIAL),
            },
        )
        odoo.call("smartpm.meter", "action_push_settings", [meter_id])
        wait_jobs(odoo, meter_id)
        on_meter = control(sim)
        assert (on_meter["load_limit_w"], on_meter["control_mode"]) == (2000, 5)
        assert (on_meter["reconnect_delay_s"], on_meter["reconnect_attempts_per_hour"]) == (
            DELAY_S,
            ATTEMPTS,
        )

        # the tenant switches on more than the limit: the meter trips
        assert control(sim, "load", {"watts": 2600})["relay"] == "disconnected"
        assert read_events(odoo, meter_id) == {
            "id": meter_id,
            "load_trip_state": "tripped",
            "relay_state": "disconnected",
        }
        # not before the delay
        assert control(sim, "advance", {"seconds": DELAY_S - 1})["relay"] == "disconnected"
        # reconnects by itself, still over the limit: trips again, twice; then lockout
        state = control(sim, "advance", {"seconds": 1})
        assert state["auto_reconnects_last_hour"] == 1 and state["load_recovery"] == "waiting"
        state = control(sim, "advance", {"seconds": DELAY_S})
        assert state["load_recovery"] == "lockout" and state["relay"] == "disconnected"
        assert control(sim, "advance", {"seconds": 600})["relay"] == "disconnected"

        meter = read_events(odoo, meter_id)
        assert meter["load_trip_state"] == "lockout"
        assert meter["relay_state"] == "disconnected"
        steps = [(a["alarm_type"], a["state"]) for a in alarm_types(odoo, meter_id)]
        assert steps == [
            ("load_trip", "cleared"),  # the meter reconnected by itself
            ("load_reconnected", "new"),
            ("load_trip", "cleared"),
            ("load_reconnected", "new"),
            ("load_trip", "new"),
            ("load_lockout", "new"),
        ]

        # the tenant lowers the load; the operator presses Reconnect
        control(sim, "load", {"watts": 800})
        odoo.call("smartpm.meter", "action_reconnect", [meter_id])
        wait_jobs(odoo, meter_id, "reconnect")
        on_meter = control(sim)
        assert on_meter["relay"] == "connected" and on_meter["load_recovery"] == "normal"
        meter = odoo.call(
            "smartpm.meter", "read", [meter_id], fields=["load_trip_state", "relay_state"]
        )[0]
        assert (meter["load_trip_state"], meter["relay_state"]) == ("normal", "connected")
        states = {(a["alarm_type"], a["state"]) for a in alarm_types(odoo, meter_id)}
        assert states == {
            ("load_trip", "cleared"),
            ("load_reconnected", "new"),
            ("load_lockout", "cleared"),
        }
