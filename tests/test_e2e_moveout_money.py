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
from odoo_e2e import bridge, locked_meter_vals, run_odoo
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


NEW_SERIAL = "E2E-TOU-NEW-1"


def _jobs_of(registry, meter_id):
    with registry.cursor() as cr:
        cr.execute(
            "SELECT job_type, state, date_done FROM smartpm_meter_job WHERE meter_id = %s"
            " ORDER BY date_done NULLS LAST, id",
            (meter_id,),
        )
        return cr.fetchall()


def test_money_meter_replacement_puts_calendars_then_the_closing_credit_on_the_new_meter(
    odoo_db, sim_fleet
):
    """A money-mode meter replaced: the old meter read and cleared with the money clear
    token, the new meter gets its time-of-use calendar and friendly schedule first, then a
    money token of the old meter's closing credit, to the milli-unit."""
    from odoo import SUPERUSER_ID, api

    db, registry = odoo_db
    fleet = sim_fleet(
        MeterConfig(SERIAL, credit_mode="money", credit_kwh=0.0),
        MeterConfig(NEW_SERIAL, credit_mode="money", credit_kwh=0.0),
        start=START,
    )
    model, new_model = fleet.meter(SERIAL), fleet.meter(NEW_SERIAL)
    model.set_load(0)
    new_model.set_load(0)
    login, key, ids = tou_setup(registry, fleet.port_of(SERIAL), label="mor")
    pid = os.getpid()
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        manager = env["res.users"].create(
            {
                "name": "E2E money replacement owner",
                "login": f"e2e_mor_owner_{pid}",
                "groups_id": [(6, 0, [env.ref("smartpm_prepay.group_manager").id])],
            }
        )
        ids["manager"] = manager.id
        new = env["smartpm.meter"].create(
            {
                "serial_number": NEW_SERIAL,
                "host": "127.0.0.1",
                "port": fleet.port_of(NEW_SERIAL),
                "tariff_id": ids["tariff"],
                "credit_mode": "money",
                **locked_meter_vals(NEW_SERIAL),
            }
        )
        ids["new"] = new.id
        meter = env["smartpm.meter"].browse(ids["meter"])
        sale = sell(env, meter, 4.25, f"E2E-MOR-1-{pid}")
        sold = round(sale.credit_money * 1000)
    try:
        with run_odoo(db) as server, bridge(db, login, key, server.url, f"e2e-mor-{pid}"):
            wait_for(lambda: model.credit_wh == sold, what="the money token on the meter")
            wait_for(lambda: _delivered(registry, ids["meter"]), what="the sale delivered")
            with model.lock:  # some of it consumed: the closing credit has milli-units
                model.credit_wh -= 1_237
            closing = model.credit_wh
            given = round(closing / 10) * 10  # the transfer gives it in the currency's cents
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                wizard = env(user=ids["manager"])["smartpm.meter.replacement.wizard"].create(
                    {"old_meter_id": ids["meter"], "new_meter_id": ids["new"]}
                )
                move_out_id = wizard.action_confirm()["res_id"]
            state = wait_for(
                lambda: (s := _state(registry, move_out_id)) and s[0] in ("done", "blocked") and s,
                timeout=90,
                what="the replacement to finish",
            )
            assert state[0] == "done", state
            wait_for(lambda: new_model.credit_wh == given, what="the credit on the new meter")
            wait_for(
                lambda: _delivered(registry, ids["new"]), what="the transfer delivered in Odoo"
            )
            jobs = _jobs_of(registry, ids["new"])
            calendar = new_model.state()["calendar_active"]
            charges = dict(new_model.charges_active)
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                move_out = env["smartpm.move.out"].browse(move_out_id)
                transfer = move_out.settlement_id.transfer_purchase_id
                result = {
                    "final": round(move_out.final_credit_money * 1000),
                    "clear": move_out.clear_job_id.payload.get("money_units"),
                    "transfer": (transfer.channel, transfer.credit_mode, transfer.state),
                    "old": move_out.meter_id.with_context(active_test=False).state,
                    "new_tenant": move_out.transfer_meter_id.tenant_id.id,
                    "odoo_credit": move_out.transfer_meter_id.credit_money,
                }
    finally:
        with registry.cursor() as cr:
            meters = [ids["meter"], ids.get("new")]
            cr.execute(
                "UPDATE smartpm_meter SET replaces_id = NULL, replaced_by_id = NULL"
                " WHERE id = ANY(%s)",
                (meters,),
            )
            cr.execute(
                "DELETE FROM smartpm_credit_settlement_line WHERE settlement_id IN "
                "(SELECT id FROM smartpm_credit_settlement WHERE meter_id = %s)",
                (ids["meter"],),
            )
            cr.execute("DELETE FROM smartpm_credit_settlement WHERE meter_id = %s", (ids["meter"],))
            cr.execute("DELETE FROM smartpm_move_out WHERE meter_id = %s", (ids["meter"],))
            cr.execute("DELETE FROM smartpm_credit_recognition WHERE meter_id = ANY(%s)", (meters,))
            cr.execute("DELETE FROM smartpm_credit_purchase WHERE meter_id = ANY(%s)", (meters,))
            if ids.get("new"):
                from test_e2e_vending import delete_committed

                delete_committed(cr, ids["new"], None, [ids["manager"]], [])
            cr.execute("UPDATE smartpm_meter SET active = true WHERE id = %s", (ids["meter"],))
        tou_cleanup(registry, ids)

    # the old meter read, cleared of its closing credit to the milli-unit, decommissioned
    assert result["final"] == result["clear"] == closing == sold - 1_237
    assert model.credit_wh == 0
    assert result["old"] == "decommissioned"
    # the new meter: its calendars first, then the credit, the old closing credit in cents
    # (what the settlement moves: no milli-unit beyond what its sale says)
    assert new_model.credit_wh == given and abs(given - closing) <= 5
    assert result["odoo_credit"] == pytest.approx(given / 1000, abs=0.0005)
    assert result["transfer"] == ("transfer", "money", "delivered")
    assert result["new_tenant"] == ids["tenant"]
    assert calendar == f"T{ids['tariff']}-20260101"
    assert charges == {1: 1000, 2: 4000}
    done = [job_type for job_type, state, _at in jobs if state == "done"]
    assert "set_tariff_calendar" in done and "set_friendly_schedule" in done
    assert done.index("add_credit") > done.index("set_tariff_calendar")
    assert done.index("add_credit") > done.index("set_friendly_schedule")
