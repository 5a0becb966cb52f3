"""End to end: a tenant moves out and the next one moves in (issue 16 §3).

A real Odoo HTTP server, a `meter-bridge` process and simulated meters (real DLMS,
HLS-GMAC). The tenant bought credit at two prices (delivered by the bridge); a Manager moves
them out with each settlement choice: the bridge opens the relay, reads the meter, Odoo
settles (refund, transfer to the tenant's other meter, forfeit), the bridge clears the
credit on the meter, and the next tenant takes the meter at zero. The prepayment liability
equals the tenants' remaining credit before and after, and the next tenant's portal shows
nothing of the old one.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import urllib.request

import pytest
from odoo_e2e import serving, user_with_key
from test_e2e_reversal import bridge, wait_for

from meter_sim.model import MeterConfig

pytestmark = pytest.mark.timeout(300)
PORTAL_PASSWORD = "e2e-moveout-portal-1"


def _env(cr):
    from odoo import SUPERUSER_ID, api

    return api.Environment(cr, SUPERUSER_ID, {})


def setup_tenant(env, label, serials, fleet):
    """Tariffs of two prices, a tenant with the simulated meters ``serials``, the next
    tenant (portal user), a Manager and a bridge user with its key."""
    from odoo_e2e import locked_meter_vals
    from test_e2e_vending import sold_meter

    tariff, tenant, meter = sold_meter(env, label, serials[0], fleet.port_of(serials[0]))
    dear = env["smartpm.tariff"].create({"name": f"{label} dear", "price_per_kwh": 0.8})
    others = env["smartpm.meter"]
    for serial in serials[1:]:
        others |= env["smartpm.meter"].create(
            {
                "serial_number": serial,
                "host": "127.0.0.1",
                "port": fleet.port_of(serial),
                "state": "active",
                "tenant_id": tenant.id,
                "tariff_id": tariff.id,
                **locked_meter_vals(serial),
            }
        )
    pid = os.getpid()
    slug = label.lower().replace(" ", "_")
    next_tenant = env["res.partner"].create(
        {"name": f"{label} next tenant", "is_tenant": True, "email": f"next-{pid}@e2e.test"}
    )
    portal = env["res.users"].create(
        {
            "name": next_tenant.name,
            "login": f"e2e_mo_next_{slug}_{pid}",
            "password": PORTAL_PASSWORD,
            "partner_id": next_tenant.id,
            "groups_id": [(6, 0, [env.ref("base.group_portal").id])],
        }
    )
    manager = env["res.users"].create(
        {
            "name": f"{label} owner",
            "login": f"e2e_mo_owner_{slug}_{pid}",
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
    user, key = user_with_key(env, f"{label} bridge", f"e2e_mo_bridge_{slug}_{pid}")
    return {
        "tariff": tariff,
        "dear": dear,
        "tenant": tenant,
        "meter": meter,
        "others": others,
        "next": next_tenant,
        "portal": portal,
        "manager": manager,
        "bridge": user,
        "key": key,
    }


def sell(env, meter, amount, ref, tariff=None):
    """A back-office sale, invoiced and paid in cash (the one vending path)."""
    from odoo.addons.smartpm_prepay.services.vending import vend

    if tariff:
        meter.tariff_id = tariff
    purchase = vend(env, meter, amount, "backoffice", ref)
    cash = env["account.journal"].search(
        [("type", "=", "cash"), ("company_id", "=", meter.company_id.id)], limit=1
    )
    purchase._create_invoice_and_payment(cash)
    return purchase


def report(env, tenant):
    env.flush_all()
    row = env["smartpm.credit.balance.report"].search([("tenant_id", "=", tenant.id)])
    return row.remaining_kwh, row.remaining_value, row.liability_balance


def portal_page(url, db, login, path):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    body = json.dumps(
        {"jsonrpc": "2.0", "params": {"db": db, "login": login, "password": PORTAL_PASSWORD}}
    ).encode()
    request = urllib.request.Request(
        f"{url}/web/session/authenticate", body, {"Content-Type": "application/json"}
    )
    assert json.loads(opener.open(request, timeout=30).read()).get("result"), "portal login"
    response = opener.open(f"{url}{path}", timeout=30)
    return response.status, response.read().decode()


def cleanup(registry, ids):
    """Undo what the test committed: move-outs, settlements, sales, then each meter."""
    from test_e2e_vending import delete_committed

    with registry.cursor() as cr:
        meters = list(ids["meters"])
        cr.execute(
            "DELETE FROM smartpm_credit_settlement_line WHERE settlement_id IN "
            "(SELECT id FROM smartpm_credit_settlement WHERE meter_id = ANY(%s))",
            (meters,),
        )
        cr.execute("DELETE FROM smartpm_credit_settlement WHERE meter_id = ANY(%s)", (meters,))
        # the debts a move-out left (emergency or negative credit consumed without payment)
        cr.execute(
            "DELETE FROM smartpm_tenant_debt WHERE tenant_id = ANY(%s)", (list(ids["partners"]),)
        )
        cr.execute(
            "DELETE FROM smartpm_move_out WHERE meter_id = ANY(%s) OR transfer_meter_id = ANY(%s)",
            (meters, meters),
        )
        cr.execute(
            "UPDATE smartpm_meter SET replaces_id = NULL, replaced_by_id = NULL WHERE id = ANY(%s)",
            (meters,),
        )
        cr.execute("DELETE FROM smartpm_credit_recognition WHERE meter_id = ANY(%s)", (meters,))
        cr.execute("DELETE FROM smartpm_credit_purchase WHERE meter_id = ANY(%s)", (meters,))
        for n, meter in enumerate(meters):
            delete_committed(
                cr,
                meter,
                ids["tariffs"][n % len(ids["tariffs"])],
                ids["users"] if n == 0 else [],
                ids["partners"] if n == 0 else [],
            )


def _purchase_states(registry, tenant_id):
    with registry.cursor() as cr:
        cr.execute(
            "SELECT DISTINCT state FROM smartpm_credit_purchase WHERE tenant_id = %s", (tenant_id,)
        )
        return {row[0] for row in cr.fetchall()}


def _state(registry, move_out_id):
    with registry.cursor() as cr:
        cr.execute(
            "SELECT state, blocked_reason FROM smartpm_move_out WHERE id = %s", (move_out_id,)
        )
        return cr.fetchone()


@contextlib.contextmanager
def refusing_tokens(model):
    """The simulated meter refuses every token while the block runs (its token key is not
    the one Odoo signs with: a bad MAC, which the bridge does not retry), then takes them
    again."""
    key = model.config.token_key
    with model.lock:
        model.config.token_key = ("11" if key != "11" * 16 else "22") * 16
    try:
        yield
    finally:
        with model.lock:
            model.config.token_key = key


def transfer_purchases(registry, meter_id):
    with registry.cursor() as cr:
        cr.execute(
            "SELECT count(*) FROM smartpm_credit_purchase WHERE meter_id = %s"
            " AND channel = 'transfer'",
            (meter_id,),
        )
        return cr.fetchone()[0]


def clear_refused_then_retried(registry, model, start, manager_id, state):
    """``start()`` (committed, returns the move-out's id) while the old meter (``model``)
    refuses tokens: its clear is refused and the move-out blocks at the clearing, where
    ``state()`` says where the credit is; then the meter takes tokens again and the owner
    retries. Returns ``(move-out id, state() while blocked)``."""
    with refusing_tokens(model):
        move_out_id = start()
        wait_for(
            lambda: _state(registry, move_out_id)[0] == "blocked",
            timeout=90,
            what="the move-out blocked at the refused clear",
        )
        with registry.cursor() as cr:
            cr.execute("SELECT blocked_step FROM smartpm_move_out WHERE id = %s", (move_out_id,))
            assert cr.fetchone()[0] == "clearing"
        blocked = state()
    with registry.cursor() as cr:
        env = _env(cr)
        env["smartpm.move.out"].browse(move_out_id).with_user(manager_id).action_retry()
    return move_out_id, blocked


@pytest.mark.parametrize("kind", ["refund", "transfer", "forfeit"])
def test_move_out_settles_clears_the_meter_and_the_next_tenant_starts_at_zero(
    odoo_db, sim_fleet, kind
):
    db, registry = odoo_db
    label = f"E2E MO {kind}"
    serial, other_serial = f"E2E-MO-{kind[:3].upper()}-1", f"E2E-MO-{kind[:3].upper()}-2"
    fleet = sim_fleet(
        MeterConfig(serial, credit_kwh=0.0, low_credit_kwh=0.0),
        MeterConfig(other_serial, credit_kwh=0.0, low_credit_kwh=0.0),
    )
    model, other_model = fleet.meter(serial), fleet.meter(other_serial)
    model.set_load(0)  # no consumption: the credit moves by sales, the clear and transfer
    other_model.set_load(0)
    with registry.cursor() as cr:
        env = _env(cr)
        rec = setup_tenant(env, label, [serial, other_serial], fleet)
        first = sell(env, rec["meter"], 10.0, f"{label}-1")  # 20 kWh at 0.50
        second = sell(env, rec["meter"], 16.0, f"{label}-2", rec["dear"])  # 20 kWh at 0.80
        rec["meter"].tariff_id = rec["tariff"]
        ids = {
            "meters": [rec["meter"].id, rec["others"].id],
            "tariffs": [rec["tariff"].id, rec["dear"].id],
            "users": [rec["bridge"].id, rec["portal"].id, rec["manager"].id],
            "partners": [rec["tenant"].id, rec["next"].id],
            "purchases": [first.name, second.name],
        }
        login, key = rec["bridge"].login, rec["key"]
    try:
        with serving(db) as server, bridge(db, login, key, server.url, f"e2e-mo-{kind}"):
            wait_for(lambda: model.credit_wh == 40000, what="both sales on the meter")
            wait_for(
                lambda: _purchase_states(registry, ids["partners"][0]) == {"delivered"},
                what="the sales delivered in Odoo",
            )
            with registry.cursor() as cr:
                env = _env(cr)
                tenant = env["res.partner"].browse(ids["partners"][0])
                before = report(env, tenant)

            # 1. the owner moves the tenant out
            def start():
                with registry.cursor() as cr:
                    env = _env(cr)
                    manager = env["res.users"].browse(ids["users"][2])
                    meter = env["smartpm.meter"].browse(ids["meters"][0])
                    vals = {"meter_id": meter.id, "settlement_kind": kind}
                    if kind == "transfer":
                        vals["transfer_meter_id"] = ids["meters"][1]
                    if kind == "refund":
                        vals["refund_journal_id"] = (
                            env["account.journal"].search([("type", "=", "cash")], limit=1).id
                        )
                    vals["next_tenant_id"] = ids["partners"][1]
                    wizard = env(user=manager)["smartpm.move.out.wizard"].create(vals)
                    return wizard.action_confirm()["res_id"]

            if kind == "transfer":
                # the old meter refuses the clear first: it keeps its credit, the other
                # meter gets none, until the owner retries and the clear is taken
                move_out_id, blocked = clear_refused_then_retried(
                    registry,
                    model,
                    start,
                    ids["users"][2],
                    lambda: (
                        model.credit_wh,
                        other_model.credit_wh,
                        transfer_purchases(registry, ids["meters"][1]),
                    ),
                )
            else:
                move_out_id = start()
            state = wait_for(
                lambda: (s := _state(registry, move_out_id)) and s[0] in ("done", "blocked") and s,
                timeout=90,
                what="the move-out to finish",
            )
            assert state[0] == "done", state
            if kind == "transfer":
                wait_for(lambda: other_model.credit_wh == 40000, what="the transfer token")
                wait_for(
                    lambda: _purchase_states(registry, ids["partners"][0]) == {"delivered"},
                    what="the transfer token delivered in Odoo",
                )
            with registry.cursor() as cr:
                env = _env(cr)
                move_out = env["smartpm.move.out"].browse(move_out_id)
                meter, tenant = move_out.meter_id, move_out.tenant_id
                settlement = move_out.settlement_id
                after = report(env, tenant)
                result = {
                    "final": move_out.final_credit_kwh,
                    "source": move_out.reading_source,
                    "kind": settlement.kind,
                    "amount": settlement.amount,
                    "credit_note": settlement.credit_note_id
                    and (
                        settlement.credit_note_id.state,
                        settlement.credit_note_id.payment_state,
                        settlement.credit_note_id.amount_total,
                    ),
                    "payment": settlement.payment_id.payment_type,
                    "forfeit": settlement.move_id.state,
                    "transfer": settlement.transfer_purchase_id.state,
                    "odoo_credit": meter.credit_kwh,
                    "tenant": meter.tenant_id.id,
                    "old_open": move_out.assignment_id.is_open,
                    "next_open": move_out.next_assignment_id.is_open,
                    "clear": move_out.clear_job_id.state,
                }
                portal_login = env["res.users"].browse(ids["users"][1]).login
            transfers = transfer_purchases(registry, ids["meters"][1])
            status, html = portal_page(
                server.url, db, portal_login, f"/my/meters/{ids['meters'][0]}"
            )
    finally:
        cleanup(registry, ids)

    # the meter: read, cleared to zero, relay open until the next tenant's credit
    assert result["final"] == pytest.approx(40.0)
    assert result["source"] == "meter"
    assert result["clear"] == "done"
    assert model.credit_wh == 0
    assert result["odoo_credit"] == pytest.approx(0.0)
    assert model.relay_state == "disconnected"
    # the next tenant holds it, at zero
    assert result["tenant"] == ids["partners"][1]
    assert result["old_open"] is False and result["next_open"] is True
    # the settlement, valued at both prices: 20 kWh at 0.80 and 20 kWh at 0.50
    assert result["kind"] == kind
    assert result["amount"] == pytest.approx(26.0)
    if kind == "refund":
        assert result["credit_note"][0] == "posted"
        assert result["credit_note"][1] in ("paid", "in_payment")
        assert result["credit_note"][2] == pytest.approx(26.0)
        assert result["payment"] == "outbound"
    if kind == "forfeit":
        assert result["forfeit"] == "posted"
    if kind == "transfer":
        assert blocked == (40000, 0, 0)  # the refused clear: nothing transferred
        assert result["transfer"] == "delivered"
        assert transfers == 1
        assert other_model.credit_wh == 40000
    # the books: liability = remaining credit, before and after
    assert before == pytest.approx((40.0, 26.0, 26.0))
    remaining = 40.0 if kind == "transfer" else 0.0
    value = 26.0 if kind == "transfer" else 0.0
    assert after == pytest.approx((remaining, value, value))
    # the next tenant's portal: their meter, nothing of the old tenant
    assert status == 200
    assert serial in html
    assert label + " tenant" not in html
    for name in ids["purchases"]:
        assert name not in html


@pytest.mark.parametrize("case", ["emergency", "negative"])
def test_move_out_with_emergency_or_negative_credit_owes_it_and_zeroes_the_meter(
    odoo_db, sim_fleet, case
):
    """Emergency credit taken on the meter's button, or a negative credit (a friendly
    period's): the refund is the paid credit left only, what the tenant consumed without
    paying becomes their debt, and the meter ends at zero credit with nothing owed (the
    zeroing token, then the clear), for the next tenant."""
    db, registry = odoo_db
    label = f"E2E MO {case}"
    serial = f"E2E-MO-{case[:3].upper()}-9"
    fleet = sim_fleet(
        MeterConfig(
            serial,
            credit_kwh=0.0,
            low_credit_kwh=0.0,
            emergency_credit_kwh=5.0,
            emergency_threshold_kwh=25.0,
        )
    )
    model = fleet.meter(serial)
    model.set_load(0)
    with registry.cursor() as cr:
        env = _env(cr)
        rec = setup_tenant(env, label, [serial], fleet)
        # Odoo gives the meter the emergency credit it has (what a read may report is
        # bounded by it: services/settlement.emergency_refusal)
        rec["tariff"].write({"emergency_credit_kwh": 5.0, "emergency_threshold_kwh": 25.0})
        first = sell(env, rec["meter"], 10.0, f"{label}-1")  # 20 kWh at 0.50
        ids = {
            "meters": [rec["meter"].id],
            "tariffs": [rec["tariff"].id, rec["dear"].id],
            "users": [rec["bridge"].id, rec["portal"].id, rec["manager"].id],
            "partners": [rec["tenant"].id, rec["next"].id],
            "purchases": [first.name],
        }
        login, key = rec["bridge"].login, rec["key"]
    try:
        with serving(db) as server, bridge(db, login, key, server.url, f"e2e-mo-{case}"):
            wait_for(lambda: model.credit_wh == 20000, what="the sale on the meter")
            wait_for(
                lambda: _purchase_states(registry, ids["partners"][0]) == {"delivered"},
                what="the sale delivered in Odoo",
            )
            with model.lock:  # the tenant's consumption (no load: set as the meter counts)
                if case == "emergency":
                    assert model.press_button()  # 20 kWh <= 25: 5 kWh taken, 25 on the meter
                    model.credit_wh -= 22000  # 22 kWh consumed: 3 left, 5 owed
                else:
                    model.credit_wh = -3000  # 23 kWh consumed in a friendly period
            with registry.cursor() as cr:
                env = _env(cr)
                manager = env["res.users"].browse(ids["users"][2])
                cash = env["account.journal"].search([("type", "=", "cash")], limit=1)
                wizard = env(user=manager)["smartpm.move.out.wizard"].create(
                    {
                        "meter_id": ids["meters"][0],
                        "settlement_kind": "refund",
                        "refund_journal_id": cash.id,
                        "next_tenant_id": ids["partners"][1],
                    }
                )
                move_out_id = wizard.action_confirm()["res_id"]
            state = wait_for(
                lambda: (s := _state(registry, move_out_id)) and s[0] in ("done", "blocked") and s,
                timeout=90,
                what="the move-out to finish",
            )
            assert state[0] == "done", state
            with registry.cursor() as cr:
                env = _env(cr)
                move_out = env["smartpm.move.out"].browse(move_out_id)
                done = move_out.settlement_id
                tenant = move_out.tenant_id
                receivable = tenant.with_company(move_out.company_id).property_account_receivable_id
                result = {
                    "final": (move_out.final_credit_kwh, move_out.final_emergency_kwh),
                    "settled": (done.kwh, done.amount, done.shortfall),
                    "credit_note": done.credit_note_id.amount_total,
                    "debt": (done.debt_id.state, done.debt_id.amount),
                    "receivable": sum(
                        env["account.move.line"]
                        .search(
                            [
                                ("account_id", "=", receivable.id),
                                ("partner_id", "=", tenant.id),
                                ("parent_state", "=", "posted"),
                            ]
                        )
                        .mapped("balance")
                    ),
                    "jobs": (move_out.zero_job_id.state, move_out.clear_job_id.state),
                    "odoo": (move_out.meter_id.credit_kwh, move_out.meter_id.emergency_in_use_kwh),
                    "report": report(env, tenant),
                    "tenant": move_out.meter_id.tenant_id.id,
                }
    finally:
        cleanup(registry, ids)

    # the meter: zero credit, nothing owed: the next tenant's first token is all theirs
    assert model.credit_wh == 0
    assert model.emergency_owed_wh == 0
    assert result["odoo"] == pytest.approx((0.0, 0.0))
    assert result["tenant"] == ids["partners"][1]
    if case == "emergency":
        # 3 kWh on the meter, 5 of them emergency: nothing paid left, 2 kWh owed (1.00)
        assert result["final"] == pytest.approx((3.0, 5.0))
        assert result["jobs"] == ("done", "done")
        assert result["settled"] == pytest.approx((0.0, 0.0, 2.0))
        assert result["debt"] == ("active", pytest.approx(1.0))
        assert result["receivable"] == pytest.approx(1.0)
    else:
        # 3 kWh below zero: owed (1.50), lifted to zero by a token, nothing to clear
        assert result["final"] == pytest.approx((-3.0, 0.0))
        assert result["jobs"] == ("done", False)
        assert result["settled"] == pytest.approx((0.0, 0.0, 3.0))
        assert result["debt"] == ("active", pytest.approx(1.5))
        assert result["receivable"] == pytest.approx(1.5)
    assert not result["credit_note"]
    # the prepayment liability: nothing left owed to the tenant
    assert result["report"] == pytest.approx((0.0, 0.0, 0.0))
