"""End to end (issue 17, money mode): a tenant moves out of a money-mode meter. The bridge
opens the relay and reads the credit in the currency (the meter counts milli-units), Odoo
settles it in money (a credit note paying back the meter's closing credit, per sale), and
the bridge clears the meter with a money clear-credit token: nothing is left on it, and the
tenant's prepayment liability ends at zero.

A real Odoo HTTP server, a `meter-bridge` process and an in-process simulator in money mode
(real DLMS, HLS-GMAC), no consumption: the credit moves by the tokens and the clear only.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from odoo_e2e import bridge, run_odoo
from odoo_e2e import wait_until as wait_for
from test_e2e_moveout import _state, sell
from test_e2e_tou import SERIAL
from test_e2e_tou import _cleanup as tou_cleanup
from test_e2e_tou import _setup as tou_setup

from meter_sim.model import MeterConfig

odoo = pytest.importorskip("odoo")
pytestmark = pytest.mark.timeout(300)
START = dt.datetime(2026, 3, 4, 9, 0, tzinfo=dt.timezone.utc)


def _delivered(registry, meter_id):
    with registry.cursor() as cr:
        cr.execute(
            "SELECT DISTINCT state FROM smartpm_credit_purchase WHERE meter_id = %s", (meter_id,)
        )
        return {r[0] for r in cr.fetchall()} == {"delivered"}


def _cleanup(registry, ids):
    with registry.cursor() as cr:
        cr.execute(
            "DELETE FROM smartpm_credit_settlement_line WHERE settlement_id IN "
            "(SELECT id FROM smartpm_credit_settlement WHERE meter_id = %s)",
            (ids["meter"],),
        )
        cr.execute("DELETE FROM smartpm_credit_settlement WHERE meter_id = %s", (ids["meter"],))
        cr.execute("DELETE FROM smartpm_move_out WHERE meter_id = %s", (ids["meter"],))
        cr.execute("DELETE FROM smartpm_credit_recognition WHERE meter_id = %s", (ids["meter"],))
        cr.execute("DELETE FROM smartpm_credit_purchase WHERE meter_id = %s", (ids["meter"],))
        cr.execute("DELETE FROM res_users WHERE id = %s", (ids["manager"],))
    tou_cleanup(registry, ids)


def test_money_meter_move_out_refunds_its_closing_credit_and_clears_it_in_money(odoo_db, sim_fleet):
    from odoo import SUPERUSER_ID, api

    db, registry = odoo_db
    fleet = sim_fleet(MeterConfig(SERIAL, credit_mode="money", credit_kwh=0.0), start=START)
    model = fleet.meter(SERIAL)
    model.set_load(0)
    login, key, ids = tou_setup(registry, fleet.port_of(SERIAL), label="mom")
    pid = os.getpid()
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        manager = env["res.users"].create(
            {
                "name": "E2E money move-out owner",
                "login": f"e2e_mom_owner_{pid}",
                "groups_id": [
                    (
                        6,
                        0,
                        [
                            env.ref("smartpm_prepay.group_manager").id,
                            env.ref("account.group_account_manager").id,
                        ],
                    )
                ],
            }
        )
        ids["manager"] = manager.id
        meter = env["smartpm.meter"].browse(ids["meter"])
        first = sell(env, meter, 4.25, f"E2E-MOM-1-{pid}")
        second = sell(env, meter, 3.1, f"E2E-MOM-2-{pid}")
        sold = round((first.credit_money + second.credit_money) * 1000)
    try:
        with run_odoo(db) as server, bridge(db, login, key, server.url, f"e2e-mom-{pid}"):
            wait_for(lambda: model.credit_wh == sold, what="both money tokens on the meter")
            wait_for(lambda: _delivered(registry, ids["meter"]), what="the sales delivered")
            closing = model.credit_wh  # milli-units of the currency
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                journal = env["account.journal"].search([("type", "=", "cash")], limit=1)
                wizard = env(user=ids["manager"])["smartpm.move.out.wizard"].create(
                    {
                        "meter_id": ids["meter"],
                        "settlement_kind": "refund",
                        "refund_journal_id": journal.id,
                    }
                )
                move_out_id = wizard.action_confirm()["res_id"]
            state = wait_for(
                lambda: (s := _state(registry, move_out_id)) and s[0] in ("done", "blocked") and s,
                timeout=90,
                what="the move-out to finish",
            )
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                move_out = env["smartpm.move.out"].browse(move_out_id)
                settlement = move_out.settlement_id
                liability = sum(
                    env["account.move.line"]
                    .search(
                        [
                            ("account_id", "=", env.company.smartpm_prepayment_account_id.id),
                            ("partner_id", "=", ids["tenant"]),
                            ("parent_state", "=", "posted"),
                        ]
                    )
                    .mapped("balance")
                )
                result = {
                    "mode": move_out.credit_mode,
                    "final": round(move_out.final_credit_money * 1000),
                    "settled": round(settlement.money * 1000),
                    "refund": round(settlement.credit_note_id.amount_total * 1000),
                    "note": settlement.credit_note_id.state,
                    "paid": settlement.credit_note_id.payment_state,
                    "clear": (move_out.clear_job_id.state, move_out.clear_job_id.payload),
                    "odoo_credit": move_out.meter_id.credit_money,
                    "liability": liability,
                }
    finally:
        _cleanup(registry, ids)

    assert state[0] == "done", state
    assert result["mode"] == "money"
    # Odoo read, settled and refunded the meter's closing credit, to the milli-unit
    assert closing == sold == 7350
    assert result["final"] == result["settled"] == result["refund"] == closing
    assert result["note"] == "posted" and result["paid"] in ("paid", "in_payment")
    # the meter was cleared of it with a money clear-credit token: nothing left
    clear_state, payload = result["clear"]
    assert clear_state == "done"
    assert payload["money_units"] == closing and "wh" not in payload
    assert bytes.fromhex(payload["token"])[0] == 0x04
    assert model.credit_wh == 0
    assert result["odoo_credit"] == pytest.approx(0.0, abs=0.0005)
    assert result["liability"] == pytest.approx(0.0, abs=0.005)
