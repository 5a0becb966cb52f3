"""End to end: a sale in Odoo reaches a simulated meter exactly once.

A real Odoo HTTP server (subprocess) on the database given to pytest (--odoo-database, the
addon installed), a `meter-bridge` process and an in-process meter_sim fleet, all on free
loopback ports and stopped whatever happens. Skipped when Odoo or the database is missing.
"""

from __future__ import annotations

import contextlib
import os
import subprocess

import pytest
from odoo_e2e import (
    bridge,
    locked_meter_vals,
    serving,
    stop_process,
    user_with_key,
    wait_until,
)

from meter_sim.model import MeterConfig

odoo = pytest.importorskip("odoo")

SERIAL = "E2E-VEND-1"


@contextlib.contextmanager
def _process(args, env=None):
    """``args`` running for the block, stopped after (SIGTERM, then SIGKILL). The tests'
    bridges run through ``odoo_e2e.bridge``."""
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        yield proc
    finally:
        stop_process(proc, timeout=20)


@contextlib.contextmanager
def _odoo_server(db):
    """The e2e tests' shared Odoo server (odoo_e2e.serving) on pytest's database; yields its
    URL."""
    from odoo.tools import config

    os.environ.setdefault("SMARTPM_ODOO_CONF", config.rcfile)
    with serving(db) as server:
        yield server.url


def _setup(registry, port):
    from odoo import SUPERUSER_ID, api
    from odoo.addons.smartpm_prepay.services.vending import vend

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        user, key = user_with_key(env, "E2E vending bridge", f"e2e_vend_bridge_{os.getpid()}")
        tariff, tenant, meter = sold_meter(env, "E2E", SERIAL, port)
        purchase = vend(env, meter, 10.0, "backoffice", f"E2E-{os.getpid()}")
        ids = {
            "user": user.id,
            "tariff": tariff.id,
            "tenant": tenant.id,
            "meter": meter.id,
            "purchase": purchase.id,
            "job": purchase.job_id.id,
        }
        return user.login, key, ids


def sold_meter(env, label, serial, port):
    """A tariff, a tenant and an active meter of that tenant on the simulator's ``port``,
    with the keys of the simulated meter ``serial`` (locked: HLS-GMAC)."""
    tariff = env["smartpm.tariff"].create({"name": label, "price_per_kwh": 0.5})
    tenant = env["res.partner"].create({"name": f"{label} tenant", "is_tenant": True})
    meter = env["smartpm.meter"].create(
        {
            "serial_number": serial,
            "host": "127.0.0.1",
            "port": port,
            "state": "active",
            "tenant_id": tenant.id,
            "tariff_id": tariff.id,
            **locked_meter_vals(serial),
        }
    )
    return tariff, tenant, meter


def delete_committed(cr, meter, tariff, users, partners):
    """Undo what an e2e test committed around one meter: its sales, jobs, readings, alarms,
    assignments and chatter, the meter and its tariff; the test's users and partners are
    archived (other records may point at them)."""
    cr.execute("DELETE FROM smartpm_credit_purchase WHERE meter_id = %s", (meter,))
    for table in (
        "smartpm_alarm",
        "smartpm_reading",
        "smartpm_meter_job",
        "smartpm_meter_assignment",
    ):
        cr.execute(f"DELETE FROM {table} WHERE meter_id = %s", (meter,))
    cr.execute("DELETE FROM mail_message WHERE model = 'smartpm.meter' AND res_id = %s", (meter,))
    cr.execute("DELETE FROM smartpm_meter WHERE id = %s", (meter,))
    cr.execute("DELETE FROM smartpm_tariff WHERE id = %s", (tariff,))
    cr.execute("DELETE FROM res_users_apikeys WHERE user_id = ANY(%s)", (list(users),))
    cr.execute("UPDATE res_users SET active = false WHERE id = ANY(%s)", (list(users),))
    cr.execute("UPDATE res_partner SET active = false WHERE id = ANY(%s)", (list(partners),))


def _cleanup(registry, ids):
    with registry.cursor() as cr:
        delete_committed(cr, ids["meter"], ids["tariff"], [ids["user"]], [ids["tenant"]])


def _purchase_state(registry, ids):
    with registry.cursor() as cr:
        cr.execute(
            """SELECT p.state, j.state, j.result->>'already_applied'
                 FROM smartpm_credit_purchase p JOIN smartpm_meter_job j ON j.id = p.job_id
                WHERE p.id = %s""",
            (ids["purchase"],),
        )
        return cr.fetchone()


def _run_bridge_until(db, login, key, url, done, timeout=40):
    """Run a bridge (``odoo_e2e.bridge``) until ``done()``; whether it came in time."""
    with bridge(db, login, key, url, f"e2e-vend-{os.getpid()}"):
        try:
            return bool(wait_until(done, timeout=timeout, interval=0.3))
        except AssertionError:
            return False


def test_sale_reaches_the_meter_once_even_when_the_report_is_lost(odoo_db, sim_fleet):
    db, registry = odoo_db
    fleet = sim_fleet(MeterConfig(SERIAL, credit_kwh=3.0))
    model = fleet.meter(SERIAL)
    login, key, ids = _setup(registry, fleet.port_of(SERIAL))
    try:
        with _odoo_server(db) as url:
            delivered = _run_bridge_until(
                db, login, key, url, lambda: _purchase_state(registry, ids)[0] == "delivered"
            )
            assert delivered, _purchase_state(registry, ids)
            # 10.00 at 0.50 = 20 kWh on top of the 3 kWh the meter had
            assert model.credit_wh == pytest.approx(23000, abs=5)
            assert _purchase_state(registry, ids)[2] == "false"

            # The bridge ran the job but its report got lost: the job runs again and the
            # meter refuses the transfer number it has applied already.
            with registry.cursor() as cr:
                cr.execute(
                    "UPDATE smartpm_meter_job SET state = 'pending', next_attempt_at = "
                    "(now() at time zone 'utc') WHERE id = %s",
                    (ids["job"],),
                )
            assert _run_bridge_until(
                db, login, key, url, lambda: _purchase_state(registry, ids)[1] == "done"
            )
            assert _purchase_state(registry, ids) == ("delivered", "done", "true")
            assert model.credit_wh == pytest.approx(23000, abs=5)
    finally:
        _cleanup(registry, ids)


def _purchase_rows(registry, purchase_ids):
    with registry.cursor() as cr:
        cr.execute(
            """SELECT p.id, p.state, j.state, j.attempt_count, j.error
                 FROM smartpm_credit_purchase p JOIN smartpm_meter_job j ON j.id = p.job_id
                WHERE p.id = ANY(%s) ORDER BY p.id""",
            (list(purchase_ids),),
        )
        return {r[0]: r[1:] for r in cr.fetchall()}


def _queue_event_reads(registry, meter_ids):
    """Queue a read of both event logs from the start for each meter; return the job ids."""
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        jobs = env["smartpm.meter"].browse(meter_ids)._enqueue_job("read_events", {"since": None})
        return jobs.ids


def _jobs_done(registry, job_ids):
    with registry.cursor() as cr:
        cr.execute(
            "SELECT count(*) FROM smartpm_meter_job WHERE id = ANY(%s) AND state = 'done'",
            (job_ids,),
        )
        return cr.fetchone()[0] == len(job_ids)


def _token_alarms(registry, meter_ids):
    """{name: sorted credit-token alarm types, one per alarm row} of the meters {name: id}."""
    with registry.cursor() as cr:
        cr.execute(
            "SELECT meter_id, alarm_type FROM smartpm_alarm WHERE meter_id = ANY(%s) "
            "AND alarm_type IN ('token_forged', 'token_other_meter')",
            (list(meter_ids.values()),),
        )
        rows = cr.fetchall()
    return {name: sorted(t for m, t in rows if m == mid) for name, mid in meter_ids.items()}


def test_only_odoo_minted_tokens_raise_a_meters_credit(odoo_db, sim_fleet):
    """Odoo + bridge + simulated meters over real DLMS: an Odoo-minted token is applied once;
    a token signed with a wrong key, another meter's token and a replayed token are refused,
    whether they come through Odoo and the bridge or from someone holding the meter's
    association keys (a bridge, a stolen key) or a sniffed token."""
    from odoo import SUPERUSER_ID, api
    from odoo.addons.smartpm_prepay.services.vending import vend

    from meter_bridge.errors import MeterRefused
    from meter_bridge.executors import execute_job
    from meter_sim.testing import credit_token, hls_job_meter

    db, registry = odoo_db
    good, wrong_key, other, elsewhere = "E2E-TOK-1", "E2E-TOK-2", "E2E-TOK-3", "E2E-TOK-4"
    sims = (good, wrong_key, elsewhere)
    fleet = sim_fleet(*(MeterConfig(s, credit_kwh=3.0) for s in sims))
    models = {s: fleet.meter(s) for s in sims}
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        user, key = user_with_key(env, "E2E token bridge", f"e2e_tok_bridge_{os.getpid()}")
        tariff, tenant, m_good = sold_meter(env, "E2E tok", good, fleet.port_of(good))
        # the owner typed a wrong token key for this one: Odoo signs with a key the meter
        # does not hold
        _t, t2, m_wrong = sold_meter(env, "E2E tok2", wrong_key, fleet.port_of(wrong_key))
        m_wrong.token_key = "00" * 16
        # the record of E2E-TOK-3 wired to meter TOK-4's line (with TOK-4's association
        # keys): TOK-4 gets a token of another meter
        _t3, t3, m_other = sold_meter(env, "E2E tok3", other, fleet.port_of(elsewhere))
        m_other.write({k: v for k, v in locked_meter_vals(elsewhere).items() if k != "token_key"})
        purchases = [
            vend(env, m, 10.0, "backoffice", f"E2E-TOK-{i}-{os.getpid()}")
            for i, m in enumerate((m_good, m_wrong, m_other))
        ]
        p_good, p_wrong, p_other = (p.id for p in purchases)
        m_good_id, m_wrong_id, m_other_id = m_good.id, m_wrong.id, m_other.id
        token_good = purchases[0].token
        ids = [m.id for m in (m_good, m_wrong, m_other)], [tariff.id, _t.id, _t3.id]
        partners = [tenant.id, t2.id, t3.id]
        login, user_id = user.login, user.id
    try:
        with _odoo_server(db) as url:

            def finished():
                rows = _purchase_rows(registry, [p_good, p_wrong, p_other])
                return all(r[1] in ("done", "failed") for r in rows.values()) and rows

            assert _run_bridge_until(db, login, key, url, finished, timeout=60)
            rows = _purchase_rows(registry, [p_good, p_wrong, p_other])
        # the minted token: applied once, 10.00 at 0.50 = 20 kWh
        assert rows[p_good][:3] == ("delivered", "done", 1)
        assert models[good].credit_wh == 23000
        # the others: refused by the meter, failed at the first attempt with a clear error
        assert rows[p_wrong][:3] == ("failed", "failed", 1), rows[p_wrong]
        assert "MAC does not verify" in rows[p_wrong][3]
        assert rows[p_other][:3] == ("failed", "failed", 1), rows[p_other]
        assert "another meter" in rows[p_other][3]
        assert models[wrong_key].credit_wh == models[elsewhere].credit_wh == 3000
        assert [e.code for e in models[wrong_key].log_events("fraud")] == [93]
        assert [e.code for e in models[elsewhere].log_events("fraud")] == [94]
        assert models[good].log_events("fraud") == []

        # Someone with TOK-1's association keys (a bridge, a stolen key) and a sniffed token
        def attack(token: bytes):
            job = {
                "id": 0,
                "job_type": "add_credit",
                "payload": {"token": token.hex()},
                "meter": hls_job_meter(models[good], fleet.port_of(good)),
            }
            return execute_job(job, deadline_s=20)

        replay = attack(bytes.fromhex(token_good))
        assert replay["already_applied"] is True
        for forged in (
            credit_token(900, 50000, good, token_key=bytes(16)),  # minted without the key
            credit_token(900, 50000, wrong_key),  # another meter's genuine token
            bytes.fromhex(token_good)[:4]
            + (50000).to_bytes(4, "big")
            + bytes.fromhex(token_good)[8:],
        ):
            with pytest.raises(MeterRefused) as err:
                attack(forged)
            assert not err.value.retryable
        assert models[good].credit_wh == 23000  # still only the paid 20 kWh
        assert [e.code for e in models[good].log_events("fraud")] == [93, 94, 93]
        assert sum(e.code == 66 for e in models[good].events) == 1

        # The owner hears of it: the meters' fraud logs, read by the bridge, raise alarms;
        # read twice, still one alarm per event (the simulated clock stands still here, so
        # TOK-1's two MAC refusals share one meter time: one alarm).
        meter_ids = {"good": m_good_id, "wrong": m_wrong_id, "other": m_other_id}
        expected = {
            "good": ["token_forged", "token_other_meter"],
            "wrong": ["token_forged"],
            "other": ["token_other_meter"],
        }
        with registry.cursor() as cr:
            # the attacker's associations used counters Odoo never saw: the meter would
            # refuse Odoo's next one; the owner resets Odoo's counter to the meter's
            cr.execute(
                "UPDATE smartpm_meter SET invocation_counter = %s WHERE id = %s",
                (models[good].client_invocation_counter, m_good_id),
            )
        with _odoo_server(db) as url:
            for _run in range(2):
                read_jobs = _queue_event_reads(registry, list(meter_ids.values()))
                assert _run_bridge_until(
                    db, login, key, url, lambda j=read_jobs: _jobs_done(registry, j), timeout=60
                )
                alarms = _token_alarms(registry, meter_ids)
                assert alarms == expected, alarms
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            forged = env["smartpm.alarm"].search(
                [("meter_id", "=", m_wrong_id), ("alarm_type", "=", "token_forged")]
            )
            assert forged.display_name == f"Forged credit token - {wrong_key}"
            assert forged.event_code == 93
    finally:
        with registry.cursor() as cr:
            for meter_id, tariff_id in zip(*ids, strict=True):
                delete_committed(cr, meter_id, tariff_id, [user_id], partners)


def test_meter_entered_with_the_vendors_keys_only_takes_paid_credit(odoo_db, sim_fleet):
    """The owner creates a meter with its link and the vendor's three keys, nothing else
    (no client address, authentication or system title): a sale's credit reaches the locked
    meter over HLS-GMAC."""
    from odoo import SUPERUSER_ID, api
    from odoo.addons.smartpm_prepay.services.vending import vend

    db, registry = odoo_db
    serial = "E2E-NEW-1"
    fleet = sim_fleet(MeterConfig(serial, credit_kwh=3.0))
    model = fleet.meter(serial)
    vendor = locked_meter_vals(serial)  # the keys the (simulated) vendor shipped
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        user, key = user_with_key(env, "E2E new meter bridge", f"e2e_new_bridge_{os.getpid()}")
        tariff = env["smartpm.tariff"].create({"name": "E2E new", "price_per_kwh": 0.5})
        tenant = env["res.partner"].create({"name": "E2E new tenant", "is_tenant": True})
        meter = env["smartpm.meter"].create(
            {
                "serial_number": serial,
                "host": "127.0.0.1",
                "port": fleet.port_of(serial),
                "state": "active",
                "tenant_id": tenant.id,
                "tariff_id": tariff.id,
                **{k: vendor[k] for k in ("auth_key", "encryption_key", "token_key")},
            }
        )
        assert (meter.auth, meter.client_address, meter.system_title) == ("hls_gmac", 1, False)
        purchase = vend(env, meter, 10.0, "backoffice", f"E2E-NEW-{os.getpid()}")
        ids = {"purchase": purchase.id, "meter": meter.id, "tariff": tariff.id}
        ids |= {"user": user.id, "tenant": tenant.id, "login": user.login}
    try:
        with _odoo_server(db) as url:
            assert _run_bridge_until(
                db,
                ids["login"],
                key,
                url,
                lambda: _purchase_state(registry, ids)[0] == "delivered",
                timeout=60,
            ), _purchase_state(registry, ids)
        assert model.credit_wh == 23000  # 10.00 at 0.50 = 20 kWh on top of 3
        assert model.log_events("fraud") == []
        with registry.cursor() as cr:
            cr.execute(
                "SELECT invocation_counter FROM smartpm_meter WHERE id = %s", (ids["meter"],)
            )
            assert cr.fetchone()[0] >= model.client_invocation_counter  # Odoo starts above
    finally:
        _cleanup(registry, ids)
