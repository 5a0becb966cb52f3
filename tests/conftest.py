"""Shared fixtures of the meter_sim, meter_bridge and end-to-end tests."""

import pytest
from sim_fixtures import sim_cli, sim_fleet  # noqa: F401  (fixtures for every test here)


@pytest.fixture
def odoo_db():
    """(database name, registry) of the Odoo database given to pytest, for the end-to-end
    tests whose Odoo server commits; skipped without one."""
    odoo = pytest.importorskip("odoo")
    config = odoo.tools.config
    db = config.get("db_name")
    if not db or not config.rcfile:
        pytest.skip("no Odoo database given (--odoo-database / --odoo-config)")
    from odoo.modules.registry import Registry

    try:
        registry = Registry(db)
    except Exception as exc:  # noqa: BLE001 - any failure means: no usable database here
        pytest.skip(f"database {db} not usable: {exc}")
    if "smartpm.credit.purchase" not in registry:
        pytest.skip(f"smartpm_prepay with selling is not installed in {db}")
    return db, registry
