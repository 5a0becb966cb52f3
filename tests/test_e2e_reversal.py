"""End to end: a sale whose delivery a bridge attempted is reversed only on the meter's word.

A real Odoo HTTP server on pytest's database (--odoo-database), `meter-bridge` processes and
an in-process meter_sim fleet (real DLMS, HLS-GMAC). A first bridge takes the credit jobs of
two meters and is killed before it reports: on meter A it had sent the token, on meter B it
had not. Both sales wait for the meter (`pending_check`) instead of being reversed; once the
leases have passed, a healthy bridge runs the check_token jobs: A's meter applied the token,
so A ends delivered (and its reversal is refused); B's did not, and cancels the transfer, so
B is reversed and B's token is refused by the meter for ever.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from odoo_e2e import bridge, user_with_key
from odoo_e2e import wait_until as wait_for

from meter_sim.model import TOKEN_CANCELLED, TRANSFER_APPLIED, TRANSFER_CANCELLED, MeterConfig

pytestmark = pytest.mark.timeout(240)
TESTS_DIR = Path(__file__).resolve().parent
SENT, UNSENT = "E2E-REV-A", "E2E-REV-B"


def doomed_executor(job, *, deadline_s=None):
    """Executor of the bridge that dies (MB_EXECUTOR): sends the credit token of the meter
    MB_TEST_SEND_SERIAL (the real DLMS executor), not the others'; then marks the job in
    MB_TEST_MARK_DIR and hangs, so that it never reports."""
    from meter_bridge.executors import execute_job

    serial = job["meter"]["serial_number"]
    if serial == os.environ["MB_TEST_SEND_SERIAL"]:
        execute_job(job, deadline_s=deadline_s)
    Path(os.environ["MB_TEST_MARK_DIR"], serial).touch()
    time.sleep(3600)
    return {}


def _rows(registry, purchase_ids):
    """{purchase id: (state, delivery job state, check job state, credit note id)}."""
    with registry.cursor() as cr:
        cr.execute(
            """SELECT p.id, p.state, j.state, c.state, p.credit_note_id
                 FROM smartpm_credit_purchase p
                 JOIN smartpm_meter_job j ON j.id = p.job_id
                 LEFT JOIN smartpm_meter_job c ON c.id = p.check_job_id
                WHERE p.id = ANY(%s)""",
            (list(purchase_ids),),
        )
        return {r[0]: r[1:] for r in cr.fetchall()}


def _reverse(registry, purchase_id):
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        env["smartpm.credit.purchase"].browse(purchase_id).action_reverse()


def test_killed_bridge_sale_is_reversed_only_when_the_meter_says_not_applied(
    odoo_db, sim_fleet, tmp_path
):
    from test_e2e_vending import _odoo_server, delete_committed, sold_meter

    from odoo import SUPERUSER_ID, api
    from odoo.addons.smartpm_prepay.services.vending import vend

    db, registry = odoo_db
    fleet = sim_fleet(MeterConfig(SENT, credit_kwh=3.0), MeterConfig(UNSENT, credit_kwh=3.0))
    models = {s: fleet.meter(s) for s in (SENT, UNSENT)}
    ids = {}
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        user, key = user_with_key(env, "E2E reversal bridge", f"e2e_rev_bridge_{os.getpid()}")
        for serial in (SENT, UNSENT):
            tariff, tenant, meter = sold_meter(env, serial, serial, fleet.port_of(serial))
            purchase = vend(env, meter, 10.0, "backoffice", f"{serial}-{os.getpid()}")
            ids[serial] = {
                "meter": meter.id,
                "tariff": tariff.id,
                "tenant": tenant.id,
                "purchase": purchase.id,
                "token": purchase.token,
            }
        login, user_id = user.login, user.id
    sale = {s: ids[s]["purchase"] for s in ids}
    try:
        with _odoo_server(db) as url:
            marks = tmp_path / "marks"
            marks.mkdir()
            # 1. a bridge takes both credit jobs and dies before reporting either
            with bridge(
                db,
                login,
                key,
                url,
                f"e2e-rev-doomed-{os.getpid()}",
                MB_EXECUTOR="test_e2e_reversal:doomed_executor",
                MB_TEST_SEND_SERIAL=SENT,
                MB_TEST_MARK_DIR=str(marks),
                MB_LEASE_SECONDS="3",
            ) as doomed:
                wait_for(
                    lambda: {p.name for p in marks.iterdir()} == {SENT, UNSENT},
                    what="the doomed bridge to reach both meters",
                )
                doomed.send_signal(signal.SIGKILL)
                doomed.wait()
            assert models[SENT].credit_wh == 23000  # the token went out: 3 + 20 kWh
            assert models[UNSENT].credit_wh == 3000
            rows = _rows(registry, sale.values())
            assert {r[:2] for r in rows.values()} == {("queued", "claimed")}, rows

            # 2. reversal asked: neither is reversed, both wait for their meter
            for purchase_id in sale.values():
                _reverse(registry, purchase_id)
            rows = _rows(registry, sale.values())
            assert {r[0] for r in rows.values()} == {"pending_check"}, rows
            # and they stay so, whatever time passes, until a meter has answered
            time.sleep(9)  # past the 3 s leases and the 5 s margin of the checks
            for purchase_id in sale.values():
                _reverse(registry, purchase_id)  # asked again: nothing more happens
            rows = _rows(registry, sale.values())
            assert {r[0] for r in rows.values()} == {"pending_check"}, rows

            # 3. a healthy bridge runs the checks
            def settled():
                rows = _rows(registry, sale.values())
                states = {pid: r[0] for pid, r in rows.items()}
                done = states[sale[SENT]] == "delivered" and states[sale[UNSENT]] == "reversed"
                return rows if done else None

            with bridge(db, login, key, url, f"e2e-rev-heir-{os.getpid()}"):
                rows = wait_for(settled, what="the meters' answers")
            # the sale the meter applied is never reversed: the refusal names the meter
            from odoo.exceptions import UserError

            with pytest.raises(UserError, match=f"on meter {SENT}.*never reversed"):
                _reverse(registry, sale[SENT])
    finally:
        with registry.cursor() as cr:
            for serial in ids:
                delete_committed(
                    cr,
                    ids[serial]["meter"],
                    ids[serial]["tariff"],
                    [user_id] if serial == SENT else [],
                    [ids[serial]["tenant"]],
                )

    sent, unsent = rows[sale[SENT]], rows[sale[UNSENT]]
    # A: the meter had applied it: delivered, the credit there once
    assert sent[2] == "done", sent
    assert models[SENT].transfer_status(1) == TRANSFER_APPLIED
    assert models[SENT].credit_wh == 23000
    assert sum(e.code == 66 for e in models[SENT].events) == 1
    # B: not applied, cancelled on the meter: reversed (the credit note: test_reversal.py;
    # no invoice is committed here), no credit, and its token (sniffed, or sent by a bridge
    # past its lease) is refused for ever
    assert unsent[1] == "cancelled" and unsent[2] == "done", unsent
    assert models[UNSENT].transfer_status(1) == TRANSFER_CANCELLED
    assert models[UNSENT].credit_wh == 3000
    assert models[UNSENT].apply_token(bytes.fromhex(ids[UNSENT]["token"])) == TOKEN_CANCELLED
    assert models[UNSENT].credit_wh == 3000
