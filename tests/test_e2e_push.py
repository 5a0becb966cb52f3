"""End to end, issue 18 §1-§3: a simulated meter in push mode, configured by Odoo's set_push
job (through a meter-bridge process), pushes a cover opening to a `meter-bridge listen`
process, which hands it to Odoo: an alarm, without any event-log read; the same event read
later from the log adds nothing; a meter whose pushes stop is comm-lost after its heartbeat
and margin, cleared by its next push; a listener killed and restarted loses no event the
meter retried.

Real Odoo (HTTP), meter-bridge processes (run and listen) and meter-sim in this process
(real DLMS, HLS-GMAC, ciphered pushes)."""

import os

import pytest
from odoo_e2e import (
    free_port,
    locked_meter_vals,
    run_bridge,
    run_listener,
    run_odoo,
    wait_until,
)

from meter_sim.model import MeterConfig

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not os.environ.get("SMARTPM_E2E_DB"),
        reason="needs the e2e database that `make test` prepares (SMARTPM_E2E_DB)",
    ),
]
SERIAL = "E2EPU-00001"
HEARTBEAT_S = 2
MARGIN_S = 2


@pytest.fixture(scope="module")
def odoo():
    with run_odoo(os.environ["SMARTPM_E2E_DB"]) as server:
        server.call("ir.config_parameter", "set_param", "smartpm_prepay.job_backoff_base_s", "0.2")
        server.call(
            "ir.config_parameter", "set_param", "smartpm_prepay.push_margin_s", str(MARGIN_S)
        )
        server.api_key = server.bridge_key()
        yield server


def alarms(odoo, meter_id, alarm_type):
    return odoo.call(
        "smartpm.alarm",
        "search_read",
        [("meter_id", "=", meter_id), ("alarm_type", "=", alarm_type)],
        fields=["state", "meter_time"],
    )


def run_cron(odoo, xmlid_name):
    [data] = odoo.call(
        "ir.model.data",
        "search_read",
        [("module", "=", "smartpm_prepay"), ("name", "=", xmlid_name)],
        fields=["res_id"],
    )
    odoo.call("ir.cron", "method_direct_trigger", [data["res_id"]])


def jobs(odoo, meter_id, job_type):
    return odoo.call(
        "smartpm.meter.job",
        "search_read",
        [("meter_id", "=", meter_id), ("job_type", "=", job_type)],
        fields=["state", "error", "result"],
    )


def test_push_alarms_heartbeats_and_a_listener_restart(odoo, sim_fleet):
    port = free_port()
    fleet = sim_fleet(MeterConfig(SERIAL), speed=1)
    model = fleet.meter(SERIAL)
    with run_bridge(odoo, odoo.api_key, "e2e-push"), run_listener(odoo, port) as listener:
        meter_id = odoo.call(
            "smartpm.meter",
            "create",
            {
                "serial_number": SERIAL,
                "host": "127.0.0.1",
                "port": fleet.port_of(SERIAL),
                "state": "active",
                **locked_meter_vals(SERIAL),
                "push_enabled": True,
                "push_destination": f"127.0.0.1:{port}",
                "push_heartbeat_s": HEARTBEAT_S,
                "push_repetition_delay_s": 1,
                "push_retries": 60,
            },
        )
        # Odoo's set_push job, run by the bridge, configures the meter's push setups
        done = wait_until(
            lambda: [j for j in jobs(odoo, meter_id, "set_push") if j["state"] == "done"],
            60,
            what="set_push done",
        )
        assert done[0]["result"]["destination"] == f"127.0.0.1:{port}"
        assert model.push.destination == f"127.0.0.1:{port}"
        assert model.push.heartbeat_s == HEARTBEAT_S and model.push.retries == 60

        # a cover opened: an alarm in Odoo by push, no event log read
        model.tamper("cover_open")
        [alarm] = wait_until(lambda: alarms(odoo, meter_id, "cover_open"), 30, what="the alarm")
        assert alarm["state"] == "new"
        assert jobs(odoo, meter_id, "read_events") == []
        meter = odoo.call("smartpm.meter", "read", [meter_id], ["online_state", "push_last_at"])
        assert meter[0]["online_state"] == "online" and meter[0]["push_last_at"]

        # the daily reconciliation reads the same event from the log: nothing new
        odoo.call(
            "smartpm.meter.job",
            "create",
            {"meter_id": meter_id, "job_type": "read_events", "payload": {"since": None}},
        )
        wait_until(
            lambda: [j for j in jobs(odoo, meter_id, "read_events") if j["state"] == "done"],
            60,
            what="read_events done",
        )
        assert len(alarms(odoo, meter_id, "cover_open")) == 1

        # the meter goes silent: comm-lost after its heartbeat and margin
        fleet.set_offline(SERIAL, True)

        def lost():
            run_cron(odoo, "cron_push_heartbeats")
            return alarms(odoo, meter_id, "comm_lost")

        [comm] = wait_until(lost, 30, 0.5, "comm_lost")
        assert comm["state"] == "new"
        assert (
            odoo.call("smartpm.meter", "read", [meter_id], ["online_state"])[0]["online_state"]
            == "offline"
        )
        # back: its next heartbeat clears the alarm
        fleet.set_offline(SERIAL, False)
        wait_until(
            lambda: alarms(odoo, meter_id, "comm_lost")[0]["state"] == "cleared",
            30,
            what="comm_lost cleared",
        )

        # the listener dies; the meter's push is refused, retried, and arrives once the
        # listener is back
        listener.kill()
        listener.wait()
        model.tamper("over_current")
        wait_until(
            lambda: (
                fleet.push.links[SERIAL].outbox and fleet.push.links[SERIAL].outbox[0].attempts >= 1
            ),
            30,
            0.05,
            "a refused attempt",
        )
        assert alarms(odoo, meter_id, "over_current") == []
        with run_listener(odoo, port):
            [over] = wait_until(
                lambda: alarms(odoo, meter_id, "over_current"), 30, what="the retried push"
            )
            assert over["state"] == "new"
        assert len(alarms(odoo, meter_id, "cover_open")) == 1
