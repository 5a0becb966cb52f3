"""Shared fixtures of the meter_sim, meter_bridge and end-to-end tests."""

from pathlib import Path

import odoo_e2e
import pytest
from sim_fixtures import sim_cli, sim_fleet  # noqa: F401  (fixtures for every test here)

TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture
def odoo():
    """The shared Odoo server on the e2e database (``odoo_e2e.e2e_server``): ``call``,
    ``url``, ``api_key`` of a Bridge API user, ``company_id``. Skipped without that
    database."""
    return odoo_e2e.e2e_server()


def pytest_runtest_teardown(item, nextitem):
    """The shared e2e Odoo servers stop once the tests of this folder are done (before the
    addon's own tests, which run on the same database)."""
    if nextitem is None or Path(nextitem.path).parent != TESTS_DIR:
        odoo_e2e.stop_shared_odoo()


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


def pytest_sessionfinish(session, exitstatus):
    odoo_e2e.stop_shared_odoo()


@pytest.fixture(autouse=True)
def _fresh_scaler_cache():
    """Each test reads its meters' scalers itself (simulated meters of several tests may
    share a serial and a port; the bridge's cache is per process)."""
    try:
        from meter_bridge import dlms
    except ImportError:  # pragma: no cover - a test environment without the bridge
        yield
        return
    dlms.SCALERS.clear()
    yield
