"""End to end: a vendor-style meter, by configuration alone (issue 19 §3).

The simulated meter serves credit, relay, token gateway, clock, logs... at other OBIS codes
than the SmartPM contract (tests/vendor_profile.py). In Odoo a meter profile says where they
are; nothing else differs from a SmartPM meter: a sale reaches the meter through the
vendor's token gateway, and a billing read brings its credit and relay back into Odoo.
"""

from __future__ import annotations

import os

import pytest
from odoo_e2e import bridge, user_with_key, wait_until
from vendor_profile import SIM_OBJECT_MAP, vendor_object_map

from meter_sim.model import MeterConfig

odoo = pytest.importorskip("odoo")
pytestmark = pytest.mark.timeout(180)
SERIAL = "E2E-PROF-1"


def _profile_lines():
    from odoo import Command

    lines = []
    for function, entry in vendor_object_map().items():
        for e in entry if isinstance(entry, list) else [entry]:
            lines.append(
                Command.create(
                    {
                        "function": function,
                        "obis": e["obis"],
                        "ic": e["ic"],
                        "attribute": e.get("attribute", 0),
                    }
                )
            )
    return lines


def _state(registry, ids):
    with registry.cursor() as cr:
        cr.execute("SELECT state FROM smartpm_credit_purchase WHERE id = %s", (ids["purchase"],))
        purchase = cr.fetchone()[0]
        cr.execute(
            "SELECT credit_kwh, relay_state FROM smartpm_meter WHERE id = %s", (ids["meter"],)
        )
        credit, relay = cr.fetchone()
        cr.execute(
            "SELECT state, error FROM smartpm_meter_job WHERE meter_id = %s AND job_type = 'read'",
            (ids["meter"],),
        )
        reads = cr.fetchall()
    return purchase, credit, relay, reads


def test_vendor_meter_gets_its_purchase_and_is_read_by_configuration_alone(odoo_db, sim_fleet):
    from test_e2e_vending import _odoo_server, delete_committed, sold_meter

    from odoo import SUPERUSER_ID, api
    from odoo.addons.smartpm_prepay.services.vending import vend

    db, registry = odoo_db
    fleet = sim_fleet(MeterConfig(SERIAL, credit_kwh=3.0, object_map=SIM_OBJECT_MAP))
    model = fleet.meter(SERIAL)
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        profile = env["smartpm.meter.profile"].create(
            {"name": f"Vendor-style E2E {os.getpid()}", "object_ids": _profile_lines()}
        )
        user, key = user_with_key(env, "E2E profile bridge", f"e2e_prof_bridge_{os.getpid()}")
        tariff, tenant, meter = sold_meter(env, "E2E profile", SERIAL, fleet.port_of(SERIAL))
        meter.profile_id = profile
        purchase = vend(env, meter, 10.0, "backoffice", f"E2E-PROF-{os.getpid()}")
        ids = {
            "user": user.id,
            "tariff": tariff.id,
            "tenant": tenant.id,
            "meter": meter.id,
            "purchase": purchase.id,
            "profile": profile.id,
        }
        login = user.login
    try:
        with _odoo_server(db) as url, bridge(db, login, key, url, f"e2e-prof-{os.getpid()}"):
            wait_until(lambda: _state(registry, ids)[0] == "delivered", timeout=60, interval=0.3)
            # 10.00 at 0.50 = 20 kWh on top of the 3 kWh the meter had
            assert model.credit_wh == pytest.approx(23000, abs=5)
            model.remote_disconnect()  # the meter's own state, for the read to bring back
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                env["smartpm.meter"].browse(ids["meter"]).action_read_now()
            wait_until(
                lambda: [s for s, _e in _state(registry, ids)[3]] == ["done"],
                timeout=60,
                interval=0.3,
            )
            purchase_state, credit, relay, reads = _state(registry, ids)
    finally:
        with registry.cursor() as cr:
            delete_committed(cr, ids["meter"], ids["tariff"], [ids["user"]], [ids["tenant"]])
            cr.execute("DELETE FROM smartpm_meter_profile WHERE id = %s", (ids["profile"],))
    assert purchase_state == "delivered"
    assert credit * 1000 == pytest.approx(model.credit_wh, abs=5)
    assert relay == "disconnected"
    assert reads[0][1] in (None, "", False)
