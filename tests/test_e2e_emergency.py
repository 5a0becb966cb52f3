"""End to end, issue 17 §1: emergency credit taken and repaid. A simulated meter at low
credit; its tenant takes emergency credit in the portal (HTTP, as the portal user, twice:
one take); the simulator shows it; a purchase repays it first and Odoo shows how much, on
the purchase and on the tenant's meter page.

Real Odoo (HTTP), a meter-bridge process and meter-sim (real DLMS, HLS-GMAC), frozen clock."""

import os
import re

import pytest
import requests
from odoo_e2e import locked_meter_vals, run_bridge, sim_control, sim_meters, wait_until

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not os.environ.get("SMARTPM_E2E_DB"),
        reason="needs the e2e database that `make test` prepares (SMARTPM_E2E_DB)",
    ),
]
SERIAL = "E2EEM-00001"
METER = {"serial": SERIAL, "credit_kwh": 1.0, "low_credit_kwh": 3.0}
LOGIN, PASSWORD = f"e2e_em_tenant_{os.getpid()}", "e2e-em-pw-12345"


def wait_jobs(odoo, meter_id):
    def finished():
        rows = odoo.call(
            "smartpm.meter.job",
            "search_read",
            [("meter_id", "=", meter_id)],
            fields=["job_type", "state", "error"],
        )
        if rows and all(r["state"] in ("done", "failed", "cancelled") for r in rows):
            return rows
        return None

    rows = wait_until(finished, timeout=60, what="the meter's jobs to finish")
    assert all(r["state"] != "failed" for r in rows), rows
    return rows


def portal_session(odoo):
    session = requests.Session()
    page = session.get(f"{odoo.url}/web/login", timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    answer = session.post(
        f"{odoo.url}/web/login",
        data={"login": LOGIN, "password": PASSWORD, "csrf_token": token},
        timeout=30,
    )
    assert answer.status_code == 200 and "/web/login" not in answer.url, answer.url
    return session


def meter_page(odoo, session, meter_id):
    page = session.get(f"{odoo.url}/my/meters/{meter_id}", timeout=30)
    assert page.status_code == 200
    return page.text


def test_emergency_credit_taken_in_the_portal_and_repaid_by_the_next_purchase(odoo):
    with (
        sim_meters(METER) as sim,
        run_bridge(odoo, odoo.api_key, "e2e-emergency"),
    ):
        tariff = odoo.call(
            "smartpm.tariff",
            "create",
            {
                "name": "Emergency e2e",
                "price_per_kwh": 1,
                "low_credit_kwh": 3.0,
                "emergency_credit_kwh": 5.0,
                "emergency_threshold_kwh": 2.0,
            },
        )
        tenant = odoo.call("res.partner", "create", {"name": "Efe Emergency", "is_tenant": True})
        portal = odoo.call(
            "ir.model.data",
            "search_read",
            [("module", "=", "base"), ("name", "=", "group_portal")],
            fields=["res_id"],
        )[0]["res_id"]
        odoo.call(
            "res.users",
            "create",
            {
                "name": "Efe Emergency",
                "login": LOGIN,
                "password": PASSWORD,
                "partner_id": tenant,
                "groups_id": [(6, 0, [portal])],
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
                "tenant_id": tenant,
                "tariff_id": tariff,
                **locked_meter_vals(SERIAL),
            },
        )
        odoo.call("smartpm.meter", "action_push_settings", [meter_id])
        odoo.call("smartpm.meter", "action_ping", [meter_id])  # Odoo learns the low credit
        wait_jobs(odoo, meter_id)
        state = sim_control(sim, SERIAL)
        assert (state["emergency_credit_kwh"], state["emergency_threshold_kwh"]) == (5.0, 2.0)
        assert state["emergency_status"] == "selectable"

        # the tenant takes it in the portal; a double click makes one take
        session = portal_session(odoo)
        html = meter_page(odoo, session, meter_id)
        assert "o_smartpm_emergency_take" in html
        token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        for _click in range(2):
            answer = session.post(
                f"{odoo.url}/my/meters/{meter_id}/emergency",
                data={"csrf_token": token},
                timeout=30,
            )
            assert answer.status_code == 200
        rows = wait_jobs(odoo, meter_id)
        assert [r["job_type"] for r in rows].count("take_emergency_credit") == 1
        state = sim_control(sim, SERIAL)
        assert state["credit_kwh"] == 6.0 and state["relay"] == "connected"
        assert (state["emergency_status"], state["emergency_in_use_kwh"]) == ("in_use", 5.0)
        meter = odoo.call(
            "smartpm.meter",
            "read",
            [meter_id],
            fields=["credit_kwh", "emergency_status", "emergency_in_use_kwh"],
        )[0]
        assert (meter["credit_kwh"], meter["emergency_status"]) == (6.0, "in_use")
        assert meter["emergency_in_use_kwh"] == 5.0
        assert "o_smartpm_emergency_in_use" in meter_page(odoo, session, meter_id)

        # the next purchase (10 kWh) repays the 5 kWh first
        wizard = odoo.call(
            "smartpm.sell.credit.wizard",
            "create",
            {"meter_id": meter_id, "amount": 10, "external_ref": f"E2E-EM-{os.getpid()}"},
        )
        action = odoo.call("smartpm.sell.credit.wizard", "action_confirm", [wizard])
        wait_jobs(odoo, meter_id)
        state = sim_control(sim, SERIAL)
        assert state["credit_kwh"] == 11.0, "1 + 5 emergency + 10 bought - 5 repaid"
        assert (state["emergency_status"], state["emergency_in_use_kwh"]) == ("enabled", 0.0)
        purchase = odoo.call(
            "smartpm.credit.purchase",
            "read",
            [action["res_id"]],
            fields=["state", "kwh", "emergency_repaid_kwh"],
        )[0]
        assert (purchase["state"], purchase["kwh"]) == ("delivered", 10.0)
        assert purchase["emergency_repaid_kwh"] == 5.0
        # the receipt of every channel (services/receipt.py): the meter's own split
        lines = odoo.call(
            "smartpm.credit.purchase", "read", [action["res_id"]], fields=["receipt_lines"]
        )[0]["receipt_lines"]
        shown = {row["key"]: (row["label"], row["value"]) for row in lines}
        assert shown["emergency_repaid_kwh"] == ("Emergency credit repaid", "5.00 kWh")
        assert shown["net_kwh"] == ("Net energy added", "5.00 kWh")
        assert shown["new_balance_kwh"] == ("New balance", "11.00 kWh")
        meter = odoo.call(
            "smartpm.meter", "read", [meter_id], fields=["credit_kwh", "emergency_status"]
        )[0]
        assert (meter["credit_kwh"], meter["emergency_status"]) == (11.0, "enabled")
        html = meter_page(odoo, session, meter_id)
        assert "repaid emergency credit" in html and "o_smartpm_emergency_in_use" not in html
