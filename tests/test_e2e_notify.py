"""End to end, issue 18 §4-§5: a cover opened on a simulated meter is, once the bridge has
read the meter's event log, an alarm in Odoo with exactly one live notification, one
e-mail and one SMS queued for the owner; reading the log again adds nothing. A tenant who
chose SMS only gets one SMS, no e-mail, when their purchase is delivered.

Real Odoo (HTTP), a meter-bridge process and meter-sim (real DLMS, HLS-GMAC), the tamper
made through the simulator's control interface."""

import contextlib
import json
import os
import tempfile
import urllib.request

import pytest
from odoo_e2e import locked_meter_vals, run_bridge, run_odoo, wait_until

from meter_sim.testing import run_cli

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not os.environ.get("SMARTPM_E2E_DB"),
        reason="needs the e2e database that `make test` prepares (SMARTPM_E2E_DB)",
    ),
]
SERIAL = "E2ENT-00001"


@pytest.fixture(scope="module")
def odoo():
    with run_odoo(os.environ["SMARTPM_E2E_DB"]) as server:
        server.call("ir.config_parameter", "set_param", "smartpm_prepay.job_backoff_base_s", "0.2")
        server.api_key = server.bridge_key()
        yield server


@contextlib.contextmanager
def one_meter():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "fleet.json")
        with open(path, "w") as f:
            json.dump({"meters": [{"serial": SERIAL, "port": 0, "credit_kwh": 50}]}, f)
        with run_cli(config=path, speed=0) as sim:
            yield sim


def tamper(sim, kind):
    req = urllib.request.Request(
        f"http://127.0.0.1:{sim.control_port}/meters/{SERIAL}/tamper",
        data=json.dumps({"kind": kind}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def run_job(odoo, meter_id, job_type, payload=None):
    job = odoo.call(
        "smartpm.meter.job",
        "create",
        {"meter_id": meter_id, "job_type": job_type, "payload": payload or {}},
    )
    return wait_job(odoo, job)


def wait_job(odoo, job):
    def finished():
        rows = odoo.call("smartpm.meter.job", "read", [job], fields=["state", "error"])
        return rows[0] if rows[0]["state"] in ("done", "failed", "cancelled") else None

    row = wait_until(finished, timeout=60, what=f"job {job}")
    assert row["state"] == "done", row
    return row


def told(odoo, partner_id, alarm_ids=None):
    """(live, e-mails, SMS) told to ``partner_id``: the trail, the mail and SMS queues."""
    live = odoo.call(
        "smartpm.notification.log",
        "search_count",
        [("partner_id", "=", partner_id), ("channel", "=", "live"), ("state", "=", "queued")],
    )
    mail_domain = [
        ("recipient_ids", "in", [partner_id]),
        ("state", "=", "outgoing"),
        ("mail_message_id.message_type", "=", "email_outgoing"),
    ]
    if alarm_ids is not None:
        mail_domain += [("model", "=", "smartpm.alarm"), ("res_id", "in", alarm_ids)]
    mails = odoo.call("mail.mail", "search_count", mail_domain)
    sms = odoo.call(
        "sms.sms", "search_count", [("partner_id", "=", partner_id), ("state", "=", "outgoing")]
    )
    return live, mails, sms


def test_opened_cover_tells_the_owner_once_and_the_tenant_of_a_delivered_purchase(odoo):
    admin = odoo.call("res.users", "read", [odoo.uid], fields=["partner_id", "company_id"])[0]
    owner = admin["partner_id"][0]
    odoo.call(
        "res.partner",
        "write",
        [owner],
        {"email": "owner.e2e@example.com", "mobile": "+15550199"},
    )
    odoo.call(
        "smartpm.alarm.notify.rule",
        "create",
        {
            "company_id": admin["company_id"][0],
            "alarm_type": "cover_open",
            "user_ids": [(6, 0, [odoo.uid])],
            "notify_live": True,
            "notify_email": True,
            "notify_sms": True,
        },
    )
    tenant = odoo.call(
        "res.partner",
        "create",
        {
            "name": "E2E notified tenant",
            "is_tenant": True,
            "email": "tenant.e2e@example.com",
            "mobile": "+15550198",
            "smartpm_notify_email": False,
            "smartpm_notify_sms": True,
        },
    )
    before_owner = told(odoo, owner)
    with one_meter() as sim, run_bridge(odoo, odoo.api_key, "e2e-notify"):
        tariff = odoo.call("smartpm.tariff", "create", {"name": "Notify e2e", "price_per_kwh": 1})
        meter_id = odoo.call(
            "smartpm.meter",
            "create",
            {
                "serial_number": SERIAL,
                "host": "127.0.0.1",
                "port": sim.ports[SERIAL],
                "state": "active",
                "tariff_id": tariff,
                "tenant_id": tenant,
                **locked_meter_vals(SERIAL),
            },
        )
        tamper(sim, "cover_open")
        run_job(odoo, meter_id, "read_events", {"since": None})
        alarms = odoo.call(
            "smartpm.alarm",
            "search_read",
            [("meter_id", "=", meter_id), ("alarm_type", "=", "cover_open")],
            fields=["state", "notification_count"],
        )
        assert len(alarms) == 1, alarms
        assert alarms[0]["state"] == "new"
        assert alarms[0]["notification_count"] == 3
        alarm_ids = [alarms[0]["id"]]
        after = told(odoo, owner)
        assert tuple(a - b for a, b in zip(after, before_owner, strict=True)) == (1, 1, 1)
        assert told(odoo, owner, alarm_ids)[1] == 1

        # the same event read again from the log: stored once, told once
        run_job(odoo, meter_id, "read_events", {"since": None})
        assert (
            odoo.call(
                "smartpm.alarm",
                "search_count",
                [("meter_id", "=", meter_id), ("alarm_type", "=", "cover_open")],
            )
            == 1
        )
        assert told(odoo, owner) == after

        # the tenant buys credit; once on the meter, an SMS (their choice), no e-mail
        wizard = odoo.call(
            "smartpm.sell.credit.wizard",
            "create",
            {"meter_id": meter_id, "amount": 5.0, "external_ref": "E2E-NOTIFY-1"},
        )
        odoo.call("smartpm.sell.credit.wizard", "action_confirm", [wizard])
        purchase = odoo.call(
            "smartpm.credit.purchase",
            "search_read",
            [("meter_id", "=", meter_id)],
            fields=["job_id", "kwh"],
        )[0]
        wait_job(odoo, purchase["job_id"][0])
        wait_until(
            lambda: (
                odoo.call("smartpm.credit.purchase", "read", [purchase["id"]], fields=["state"])[0][
                    "state"
                ]
                == "delivered"
            ),
            timeout=30,
            what="the purchase to be delivered",
        )
        sms = odoo.call(
            "sms.sms", "search_read", [("partner_id", "=", tenant)], fields=["body", "state"]
        )
        assert len(sms) == 1, sms
        assert "5.0 kWh added" in sms[0]["body"] and "New balance" in sms[0]["body"]
        assert told(odoo, tenant)[1] == 0
