"""End to end on the demo (issue 17, "Done when"): Grace, the demo's tenant on a
time-of-use tariff with a standing charge and arrears, buys credit in her portal; a
`meter-bridge` process delivers it to her simulated money-mode meter SIM00025 over real
DLMS (HLS-GMAC); her receipt shows the debt recovered, the credit, the kWh by band and the
standing charge, equal to the back office's purchase and to the meter's own credit; Odoo
takes the day's standing charge off the meter's credit, in money; then
the simulator's clock runs through the demo's public holiday: the meter does not trip on
the holiday at zero credit, and trips the next working day.

Runs on a copy of a demo-data database (``--odoo-database`` of one installed with demo
data, e.g. ``createdb -T sp_NAME_demo sp_NAME_demo_e2e``), skipped on one without. The
copy is changed for good: the other demo meters are pointed at a closed port and their
queued jobs cancelled, so that the bridge talks to this test's simulator only.
"""

from __future__ import annotations

import datetime as dt
import os
import re

import pytest
import pytz
import requests
from lxml import html
from odoo_e2e import free_port, user_with_key
from test_e2e_vending import _odoo_server, _run_bridge_until

from meter_sim.model import EV_CREDIT_TRIP, EV_FRIENDLY_TRIP_DEFERRED, MeterConfig

odoo = pytest.importorskip("odoo")

SERIAL = "SIM00025"
AMOUNT = 8.0  # the debt takes 25 % (2.00): 6.00 of credit
LOAD_W = 2000


def _setup(registry):
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        meter = env.ref("smartpm_prepay.demo_meter_25", raise_if_not_found=False)
        if not meter:
            pytest.skip("needs a database with the demo data (SIM00025, demo/tou_demo.xml)")
        company = meter.company_id
        calendar = company.smartpm_friendly_calendar_id
        leave = env["resource.calendar.leaves"].search(
            [("calendar_id", "=", calendar.id), ("resource_id", "=", False)], limit=1
        )
        tz = pytz.timezone(company.partner_id.tz or "UTC")
        holiday = pytz.utc.localize(leave.date_from).astimezone(tz).date()
        # the bridge talks to this test's simulator only
        cr.execute(
            "UPDATE smartpm_meter SET host = '127.0.0.1', port = %s WHERE id != %s",
            (free_port(), meter.id),
        )
        cr.execute(
            "UPDATE smartpm_meter_job SET state = 'cancelled' "
            "WHERE meter_id != %s AND state IN ('pending', 'claimed')",
            (meter.id,),
        )
        user, key = user_with_key(env, "E2E TOU demo bridge", f"e2e_toudemo_{os.getpid()}")
        debt = env.ref("smartpm_prepay.demo_debt_grace")
        return (
            user.login,
            key,
            {
                "meter": meter.id,
                "debt": debt.id,
                "tz": tz,
                "holiday": holiday,
                "tariff": meter.tariff_id.id,
            },
        )


def _job_states(registry, meter_id, job_type):
    with registry.cursor() as cr:
        cr.execute(
            "SELECT state FROM smartpm_meter_job WHERE meter_id = %s AND job_type = %s",
            (meter_id, job_type),
        )
        return [r[0] for r in cr.fetchall()]


def _settled(registry, meter_id, job_type):
    states = _job_states(registry, meter_id, job_type)
    return bool(states) and all(s in ("done", "cancelled") for s in states)


def _portal_login(url, login, password):
    session = requests.Session()
    page = session.get(f"{url}/web/login", timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    done = session.post(
        f"{url}/web/login",
        data={"login": login, "password": password, "csrf_token": token, "redirect": "/my"},
        timeout=30,
    )
    assert done.status_code == 200 and "/web/login" not in done.url, "grace logs in"
    return session


def _jsonrpc(session, url, route, params):
    answer = session.post(
        f"{url}{route}", json={"jsonrpc": "2.0", "method": "call", "params": params}, timeout=60
    ).json()
    assert "error" not in answer, answer
    return answer.get("result")  # a route returning None answers without it


def _buy_in_the_portal(registry, session, url, meter_id, amount):
    """What grace's browser does: the transaction, the demo card form's payment, the
    status page's poll (which post-processes the payment into the purchase)."""
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        provider = env.ref("payment.payment_provider_demo").id
        method = env.ref("payment_demo.payment_method_demo").id
    processing = _jsonrpc(
        session,
        url,
        f"/my/meters/{meter_id}/transaction",
        {
            "provider_id": provider,
            "payment_method_id": method,
            "token_id": None,
            "amount": amount,
            "flow": "direct",
            "tokenization_requested": False,
            "landing_route": "/elsewhere",
            "is_validation": False,
        },
    )
    reference = processing["reference"]
    _jsonrpc(
        session,
        url,
        "/payment/demo/simulate_payment",
        {"reference": reference, "payment_details": "4242", "simulated_state": "done"},
    )
    _jsonrpc(session, url, "/payment/status/poll", {})
    with registry.cursor() as cr:
        cr.execute(
            "SELECT p.id, p.job_id FROM payment_transaction t "
            "JOIN smartpm_credit_purchase p ON p.id = t.smartpm_purchase_id "
            "WHERE t.reference = %s",
            (reference,),
        )
        return cr.fetchone()


def _receipt(session, url, purchase_id):
    """{key: value} of the receipt grace reads on her purchase's page."""
    page = session.get(f"{url}/my/purchases/{purchase_id}", timeout=30)
    assert page.status_code == 200
    doc = html.fromstring(page.text)
    return {
        dd.get("data-key"): " ".join(dd.text_content().split())
        for dd in doc.xpath("//dl[contains(@class, 'o_smartpm_receipt')]/dd")
    }


def test_grace_buys_in_the_portal_and_her_meter_keeps_the_power_on_the_holiday_only(
    odoo_db, sim_fleet
):
    db, registry = odoo_db
    login, key, ids = _setup(registry)
    tz, holiday = ids["tz"], ids["holiday"]
    # the simulator's clock: the evening before the public holiday (local)
    eve = tz.localize(dt.datetime.combine(holiday - dt.timedelta(days=1), dt.time(20, 0)))
    fleet = sim_fleet(
        MeterConfig(SERIAL, credit_mode="money", credit_kwh=0.5),
        start=eve.astimezone(pytz.utc),
    )
    model = fleet.meter(SERIAL)
    model.set_load(0)
    with registry.cursor() as cr:
        cr.execute(
            "UPDATE smartpm_meter SET port = %s WHERE id = %s",
            (fleet.port_of(SERIAL), ids["meter"]),
        )
    with _odoo_server(db) as url:

        def run_until(done):
            assert _run_bridge_until(db, login, key, url, done, timeout=90)

        # the demo's settings reach the meter: the bands' calendar, the friendly schedule
        run_until(
            lambda: (
                _settled(registry, ids["meter"], "set_tariff_calendar")
                and _settled(registry, ids["meter"], "set_friendly_schedule")
            )
        )
        state = model.state()
        assert holiday.isoformat() in state["friendly_days"]
        assert state["calendar_active"].startswith(f"T{ids['tariff']}-")
        assert model.charges_active == {1: 1200, 2: 3800}

        # grace buys credit in her portal; the bridge delivers it
        session = _portal_login(url, "grace", "grace")
        purchase_id, job_id = _buy_in_the_portal(registry, session, url, ids["meter"], AMOUNT)
        before_wh = model.credit_wh
        run_until(lambda: _settled(registry, ids["meter"], "add_credit"))
        added = (model.credit_wh - before_wh) / 1000  # milli-units of the currency

        from odoo import SUPERUSER_ID, api
        from odoo.addons.smartpm_prepay.services.sale_info import format_money

        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            purchase = env["smartpm.credit.purchase"].browse(purchase_id)
            debt = env["smartpm.tenant.debt"].browse(ids["debt"])
            assert purchase.state == "delivered" and purchase.channel == "portal"
            assert purchase.debt_recovered == pytest.approx(2.0)
            # the meter took what the back office sold, unit for unit
            assert added == pytest.approx(purchase.credit_money)
            assert purchase.credit_money == pytest.approx(AMOUNT - 2.0)

            def money(amount):
                return " ".join(format_money(env, amount, purchase.currency_id).split())

            tariff = purchase.tariff_id
            expected = {
                "amount": money(AMOUNT),
                "debt_recovered": money(purchase.debt_recovered),
                "debt_balance": money(debt.balance),
                "credit_money": money(added),
                "band_1": f"{purchase.credit_money / 0.12:.2f} kWh",
                "band_2": f"{purchase.credit_money / 0.38:.2f} kWh",
                "standing_charge": f"{money(tariff.standing_charge_amount)} per day",
                # the meter's credit after the token, as it reported it
                "new_balance_money": money(model.credit_wh / 1000),
                "transfer_number": str(purchase.transfer_number),
            }
        rows = _receipt(session, url, purchase_id)
        assert {k: rows.get(k) for k in expected} == expected

        # the standing charge of the holiday: Odoo takes it off the meter's credit in money
        from odoo.addons.smartpm_prepay.services import standing_charge

        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            company = env["smartpm.meter"].browse(ids["meter"]).company_id
            standing_charge.ensure_account(company)
            standing_charge.collect_due(env, company, today=holiday)
            standing_charge.collect_due(env, company, today=holiday)  # once a day
        before_wh = model.credit_wh
        run_until(lambda: _settled(registry, ids["meter"], "clear_credit"))
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            charges = env["smartpm.standing.charge"].search([("meter_id", "=", ids["meter"])])
            assert len(charges) == 1
            assert charges.money == pytest.approx(0.5)
        assert before_wh - model.credit_wh == 500  # 0.500 of the currency, the meter's unit

    # the holiday: from its local midnight the tenant draws 2 kW (0.24 an hour off-peak,
    # 0.76 at peak); the credit (6.00) runs out at about 19:30 and the power stays on
    model.advance_to((eve + dt.timedelta(hours=4)).astimezone(pytz.utc))
    assert model.credit_wh > 0 and model.relay_connected
    model.set_load(LOAD_W)
    model.advance(17 * 3600)  # 17:00 local on the holiday, the peak band starts
    assert model.credit_wh > 0 and model.relay_connected
    model.advance(3 * 3600 + 45 * 60)  # 20:45
    assert model.credit_wh <= 0, "zero credit on the holiday"
    assert model.relay_connected
    model.advance(3 * 3600 + 14 * 60)  # 23:59
    assert model.relay_connected and model.credit_wh < 0
    codes = [e.code for e in model.events]
    assert EV_FRIENDLY_TRIP_DEFERRED in codes and EV_CREDIT_TRIP not in codes

    # the next working day: the meter trips in its first minutes
    model.advance(5 * 60)
    assert not model.relay_connected and model.disconnect_reason == "credit"
    assert EV_CREDIT_TRIP in [e.code for e in model.events]
