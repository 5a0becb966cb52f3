"""End to end: a meter replaced by a new one (issue 16 §4).

A real Odoo HTTP server, a `meter-bridge` process and simulated meters. The tenant's old
meter is read and cleared when it answers (its credit recorded by hand when it does not);
the credit goes to the new meter as a transfer token, the tenant's assignment moves to it,
the old meter is decommissioned, and the tenant's portal page of the new meter goes on with
the old meter's history.
"""

from __future__ import annotations

import os

import psycopg2.errors
import pytest
from odoo_e2e import free_port, locked_meter_vals, serving
from test_e2e_moveout import (
    PORTAL_PASSWORD,
    _env,
    _purchase_states,
    cleanup,
    clear_refused_then_retried,
    portal_page,
    report,
    sell,
    setup_tenant,
    transfer_purchases,
)
from test_e2e_reversal import bridge, wait_for

from meter_sim.model import MeterConfig

pytestmark = pytest.mark.timeout(300)


def _retry_now(registry, meter_id):
    """The silent meter's jobs are due again at once (not after their back-off)."""
    try:
        with registry.cursor() as cr:
            cr.execute(
                "UPDATE smartpm_meter_job SET next_attempt_at = now() at time zone 'utc' "
                "WHERE meter_id = %s AND state = 'pending'",
                (meter_id,),
            )
    except psycopg2.errors.SerializationFailure:
        pass  # the bridge took it meanwhile: next round
    return False


def _move_out_state(registry, move_out_id):
    with registry.cursor() as cr:
        cr.execute("SELECT state, blocked_step FROM smartpm_move_out WHERE id = %s", (move_out_id,))
        return cr.fetchone()


def _prepare(registry, fleet, label, old_serial, new_serial, old_port=None):
    with registry.cursor() as cr:
        env = _env(cr)
        rec = setup_tenant(env, label, [old_serial], fleet)
        old = rec["meter"]
        if old_port:
            old.port = old_port
        new = env["smartpm.meter"].create(
            {
                "serial_number": new_serial,
                "host": "127.0.0.1",
                "port": fleet.port_of(new_serial),
                "tariff_id": rec["tariff"].id,
                **locked_meter_vals(new_serial),
            }
        )
        # the tenant's own portal login: their history goes on on the new meter
        rec["tenant"].email = f"tenant-{os.getpid()}@e2e.test"
        portal = env["res.users"].create(
            {
                "name": rec["tenant"].name,
                "login": f"e2e_rp_tenant_{label.lower().replace(' ', '_')}_{os.getpid()}",
                "password": PORTAL_PASSWORD,
                "partner_id": rec["tenant"].id,
                "groups_id": [(6, 0, [env.ref("base.group_portal").id])],
            }
        )
        ids = {
            "meters": [old.id, new.id],
            "tariffs": [rec["tariff"].id, rec["dear"].id],
            "users": [rec["bridge"].id, rec["portal"].id, rec["manager"].id, portal.id],
            "partners": [rec["tenant"].id, rec["next"].id],
            "portal": portal.login,
            "bridge": (rec["bridge"].login, rec["key"]),
        }
        return ids


def _replace(registry, ids):
    with registry.cursor() as cr:
        env = _env(cr)
        manager = env["res.users"].browse(ids["users"][2])
        wizard = env(user=manager)["smartpm.meter.replacement.wizard"].create(
            {"old_meter_id": ids["meters"][0], "new_meter_id": ids["meters"][1]}
        )
        return wizard.action_confirm()["res_id"]


def _outcome(registry, move_out_id):
    with registry.cursor() as cr:
        env = _env(cr)
        move_out = env["smartpm.move.out"].browse(move_out_id)
        old = move_out.meter_id.with_context(active_test=False)
        new = move_out.transfer_meter_id
        token = move_out.settlement_id.transfer_purchase_id
        history = env["smartpm.meter.assignment"].search(new.action_view_assignments()["domain"])
        return {
            "old_state": old.state,
            "old_active": old.active,
            "old_tenant": old.tenant_id.id,
            "links": (old.replaced_by_id.id, new.replaces_id.id),
            "new_tenant": new.tenant_id.id,
            "new_state": new.state,
            "new_credit": new.credit_kwh,
            "token": (token.channel, token.state, token.kwh),
            "clear": move_out.clear_job_id.state,
            "source": move_out.reading_source,
            "history": sorted((a.meter_id.id, a.tenant_id.id, a.is_open) for a in history),
            "report": report(env, move_out.tenant_id),
            "purchases": env["smartpm.credit.purchase"]
            .search([("meter_id", "=", old.id)])
            .mapped("name"),
        }


def test_answering_meter_is_cleared_and_its_credit_and_tenant_go_to_the_new_meter(
    odoo_db, sim_fleet
):
    db, registry = odoo_db
    old_serial, new_serial = "E2E-RP-OLD-1", "E2E-RP-NEW-1"
    fleet = sim_fleet(
        MeterConfig(old_serial, credit_kwh=0.0, low_credit_kwh=0.0),
        MeterConfig(new_serial, credit_kwh=0.0, low_credit_kwh=0.0),
    )
    old_model, new_model = fleet.meter(old_serial), fleet.meter(new_serial)
    old_model.set_load(0)
    new_model.set_load(0)
    ids = _prepare(registry, fleet, "E2E RP answer", old_serial, new_serial)
    with registry.cursor() as cr:
        env = _env(cr)
        sell(env, env["smartpm.meter"].browse(ids["meters"][0]), 10.0, "E2E-RP-A-1")
    login, key = ids["bridge"]
    try:
        with serving(db) as server, bridge(db, login, key, server.url, "e2e-rp-answer"):
            wait_for(lambda: old_model.credit_wh == 20000, what="the sale on the old meter")
            wait_for(
                lambda: _purchase_states(registry, ids["partners"][0]) == {"delivered"},
                what="the sale delivered in Odoo",
            )
            # the old meter refuses the clear first: it keeps its credit and its tenant,
            # the new meter gets nothing, until the owner retries and the clear is taken
            move_out_id, blocked = clear_refused_then_retried(
                registry,
                old_model,
                lambda: _replace(registry, ids),
                ids["users"][2],
                lambda: (
                    old_model.credit_wh,
                    new_model.credit_wh,
                    transfer_purchases(registry, ids["meters"][1]),
                ),
            )
            state = wait_for(
                lambda: (
                    (s := _move_out_state(registry, move_out_id))
                    and s[0] in ("done", "blocked")
                    and s
                ),
                timeout=90,
                what="the replacement to finish",
            )
            assert state[0] == "done", state
            wait_for(lambda: new_model.credit_wh == 20000, what="the credit on the new meter")
            outcome = wait_for(
                lambda: (o := _outcome(registry, move_out_id))["token"][1] == "delivered" and o,
                what="the transfer token delivered in Odoo",
            )
            status, html = portal_page(
                server.url, db, ids["portal"], f"/my/meters/{ids['meters'][1]}"
            )
            transfers = transfer_purchases(registry, ids["meters"][1])
    finally:
        cleanup(registry, ids)

    old_id, new_id = ids["meters"]
    tenant = ids["partners"][0]
    # the refused clear moved nothing; the retried one moved the credit once
    assert blocked == (20000, 0, 0)
    assert transfers == 1
    # the meters: the old one read and cleared, the new one holds the same credit
    assert old_model.credit_wh == 0
    assert new_model.credit_wh == 20000
    assert outcome["source"] == "meter"
    assert outcome["clear"] == "done"
    assert outcome["token"] == ("transfer", "delivered", pytest.approx(20.0))
    assert outcome["new_credit"] == pytest.approx(20.0)
    # Odoo: old decommissioned, new active with the tenant, linked, history of both
    assert (outcome["old_state"], outcome["old_active"], outcome["old_tenant"]) == (
        "decommissioned",
        False,
        False,
    )
    assert outcome["links"] == (new_id, old_id)
    assert (outcome["new_tenant"], outcome["new_state"]) == (tenant, "active")
    assert outcome["history"] == [(old_id, tenant, False), (new_id, tenant, True)]
    # the books: the liability moved with the credit, still equal to it
    assert outcome["report"] == pytest.approx((20.0, 10.0, 10.0))
    # the tenant's portal page of the new meter goes on with the old meter's purchases
    assert status == 200
    assert new_serial in html
    for name in outcome["purchases"]:
        assert name in html


def test_silent_meter_moves_its_last_known_credit_recorded_by_hand(odoo_db, sim_fleet):
    db, registry = odoo_db
    old_serial, new_serial = "E2E-RP-OLD-2", "E2E-RP-NEW-2"
    fleet = sim_fleet(MeterConfig(new_serial, credit_kwh=0.0, low_credit_kwh=0.0))
    new_model = fleet.meter(new_serial)
    new_model.set_load(0)

    class _Silent:  # the old meter's port: nothing listens there
        port = free_port()

        def port_of(self, serial):
            return fleet.port_of(serial) if serial == new_serial else self.port

    ids = _prepare(registry, _Silent(), "E2E RP silent", old_serial, new_serial)
    with registry.cursor() as cr:
        env = _env(cr)
        old = env["smartpm.meter"].browse(ids["meters"][0])
        purchase = sell(env, old, 10.0, "E2E-RP-S-1")
        # delivered before the meter broke: its job done, the last known credit 20 kWh
        from odoo.addons.smartpm_prepay.services import engine

        purchase._on_delivered({})
        engine.as_engine(purchase.job_id).state = "done"
        engine.as_engine(old).credit_kwh = 18.5
    login, key = ids["bridge"]
    try:
        with serving(db) as server, bridge(db, login, key, server.url, "e2e-rp-silent"):
            move_out_id = _replace(registry, ids)
            wait_for(
                lambda: (
                    _retry_now(registry, ids["meters"][0])
                    or _move_out_state(registry, move_out_id) == ("blocked", "reading")
                ),
                timeout=120,
                what="the replacement blocked at the reading",
            )
            with registry.cursor() as cr:
                env = _env(cr)
                move_out = env["smartpm.move.out"].browse(move_out_id)
                manager = env["res.users"].browse(ids["users"][2])
                action = move_out.with_user(manager).action_record_reading()
                env(user=manager)[action["res_model"]].with_context(action["context"]).create(
                    {"reason": "Meter burnt: last known credit"}
                ).action_confirm()
            wait_for(
                lambda: _move_out_state(registry, move_out_id)[0] == "done",
                what="the replacement to finish",
            )
            wait_for(lambda: new_model.credit_wh == 18500, what="the credit on the new meter")
            outcome = wait_for(
                lambda: (o := _outcome(registry, move_out_id))["token"][1] == "delivered" and o,
                what="the transfer token delivered in Odoo",
            )
    finally:
        cleanup(registry, ids)

    assert new_model.credit_wh == 18500
    assert outcome["source"] == "manual"
    assert outcome["clear"] is False  # nothing cleared: the old meter is not there
    assert outcome["token"] == ("transfer", "delivered", pytest.approx(18.5))
    assert outcome["old_state"] == "decommissioned"
    assert outcome["new_tenant"] == ids["partners"][0]
    # 18.5 of 20 kWh at 0.50 went with the credit; the 1.5 kWh consumed are recognised
    assert outcome["report"] == pytest.approx((18.5, 9.25, 9.25))
