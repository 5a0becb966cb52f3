"""The push demo (issue 18, "Done when"), as `make demo` runs it: the owner (``admin``) has
the alarm list open in a browser; a cover is opened on SIM00021, one of the demo's meters
in push mode (demo/push_demo.xml); the meter pushes the event to the push listener, which
hands it to Odoo: the alarm pops up in the owner's page, and one e-mail and one SMS are
queued for the owner (demo/notify_demo.xml). Reading the meter's event log afterwards (the
daily reconciliation) adds nothing.

Unlike the other journeys this one cannot roll back: a live notification travels through
a committed transaction (PostgreSQL NOTIFY to the bus, then the browser's websocket), which
Odoo's test cursor never does, and Odoo refuses websockets in its own tests. So it runs what
scripts/demo.sh runs, as separate processes: a real Odoo server, ``meter-sim``, ``meter-bridge
listen`` and ``meter-bridge run``, on a copy of the demo-data database given to pytest
(dropped at the end), with the owner's browser (headless Chromium, Playwright) logged in
with the demo's password. The copy differs from the demo in ports only (free ones, for the
simulated meters and the listener), and no job of another meter is left pending (the demo's
other meters are not simulated here).

The time from the cover opening to the notification in the browser is printed (not
asserted); bench/RESULTS.md has the figure.
"""

import contextlib
import logging
import resource
import shutil
import sys
import time
from pathlib import Path

import pytest

import odoo
from odoo.sql_db import db_connect
from odoo.tools import SQL

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from odoo_e2e import (  # noqa: E402 - the end-to-end helpers of tests/
    bridge_key,
    free_port,
    odoo_shell,
    run_bridge,
    run_listener,
    run_odoo,
    sim_control,
    sim_meters,
    wait_until,
)

_logger = logging.getLogger(__name__)
pytestmark = pytest.mark.timeout(420)

PUSH_METERS = ("SIM00021", "SIM00022", "SIM00023", "SIM00024")
METER = "SIM00021"
SPEED = 30  # scripts/demo.sh's default simulator speed
CHROMIUM = "/usr/bin/chromium"
# as Odoo's own browser tests start it (odoo.tests.common.ChromeBrowser); without the crash
# reporter switches the Debian build dies at launch (SIGTRAP) as root in a container
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-crash-reporter",
    "--disable-breakpad",
]


@pytest.fixture
def demo_copy():
    """A copy of the demo-data database pytest runs on (with its filestore), dropped after.
    (Not Odoo's duplicate_database: it would load the copy's registry in this process, and
    so run its tests.)"""
    source = odoo.tools.config.get("db_name")
    if not source or not odoo.tools.config.rcfile:
        pytest.skip("no Odoo database given (--odoo-database / --odoo-config)")
    with db_connect(source).cursor() as cr:
        cr.execute(
            "SELECT 1 FROM ir_model_data WHERE module = 'smartpm_prepay' AND name = %s",
            ("demo_meter_21",),
        )
        if not cr.fetchone():
            raise AssertionError(
                "the journey tests need the demo data: run them on the database that "
                "`make test` installs with demo data (see scripts/run-tests.sh)"
            )
    copy = f"{source}_push"
    _drop(copy)
    with contextlib.closing(db_connect("postgres").cursor()) as cr:
        cr._cnx.autocommit = True  # CREATE DATABASE runs outside a transaction
        odoo.sql_db.close_db(source)  # a template must have no other session
        cr.execute(
            SQL("CREATE DATABASE %s TEMPLATE %s", SQL.identifier(copy), SQL.identifier(source))
        )
    filestore = Path(odoo.tools.config.filestore(source))
    if filestore.exists():
        shutil.copytree(filestore, odoo.tools.config.filestore(copy))
    try:
        yield copy
    finally:
        _drop(copy)


def _drop(db):
    odoo.sql_db.close_db(db)
    with contextlib.closing(db_connect("postgres").cursor()) as cr:
        cr._cnx.autocommit = True
        cr.execute(SQL("DROP DATABASE IF EXISTS %s WITH (FORCE)", SQL.identifier(db)))
    shutil.rmtree(odoo.tools.config.filestore(db), ignore_errors=True)


def _point_at(db, sim_ports, listener_port):
    """The demo's push meters on the simulator's ports, pushing to the listener's; the jobs
    of the meters not simulated here cancelled (else the bridge would try them on the demo's
    ports, where another simulator may run)."""
    with db_connect(db).cursor() as cr:
        for serial, port in sim_ports.items():
            cr.execute(
                "UPDATE smartpm_meter SET host = '127.0.0.1', port = %s, push_destination = %s "
                "WHERE serial_number = %s AND push_enabled",
                (port, f"127.0.0.1:{listener_port}", serial),
            )
            assert cr.rowcount == 1, f"{serial} is not in push mode in the demo data"
        cr.execute(
            """
            UPDATE smartpm_meter_job j SET state = 'cancelled'
              FROM smartpm_meter m
             WHERE m.id = j.meter_id AND j.state IN ('pending', 'claimed')
               AND m.serial_number != ALL(%s)
            """,
            (list(sim_ports),),
        )
        # a cursor of its own on the journey's copy of the demo database, read by the
        # Odoo server process this journey starts: it must commit
        cr.commit()  # pylint: disable=invalid-commit


def _told(server, partner_id):
    """(live notifications, e-mails, SMS) queued for ``partner_id`` so far."""
    live = server.call(
        "smartpm.notification.log",
        "search_count",
        [("partner_id", "=", partner_id), ("channel", "=", "live"), ("state", "=", "queued")],
    )
    mails = server.call(
        "mail.mail",
        "search_count",
        [
            ("recipient_ids", "in", [partner_id]),
            ("state", "=", "outgoing"),
            ("model", "=", "smartpm.alarm"),
        ],
    )
    sms = server.call(
        "sms.sms", "search_count", [("partner_id", "=", partner_id), ("state", "=", "outgoing")]
    )
    return live, mails, sms


def _cover_alarms(server, meter_id):
    return server.call(
        "smartpm.alarm",
        "search_read",
        [("meter_id", "=", meter_id), ("alarm_type", "=", "cover_open")],
        fields=["state", "notification_count", "meter_time"],
    )


def _jobs_done(server, meter_ids, job_type):
    return server.call(
        "smartpm.meter.job",
        "search_read",
        [("meter_id", "in", meter_ids), ("job_type", "=", job_type), ("state", "=", "done")],
        fields=["meter_id", "result"],
    )


@contextlib.contextmanager
def _browser_memory():
    """Odoo's server in this process caps its address space (limit_memory_hard,
    RLIMIT_AS); Chromium, which reserves far more than it uses, dies under that cap (as
    Odoo's own ChromeBrowser knows: it lifts the cap for the browser). Lifted for the
    block: the browser's driver, started in it, passes it on to the browser."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _owners_browser(playwright, server):
    """The owner's back office (login admin / admin, the demo's) on the alarm list."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page()
    page.goto(f"{server.url}/web/login")
    page.fill("input[name=login]", "admin")
    page.fill("input[name=password]", "admin")
    page.click("button[type=submit]")
    page.wait_for_url("**/odoo**")
    page.goto(f"{server.url}/odoo/action-smartpm_prepay.action_alarm")
    page.wait_for_selector(".o_list_view")
    return browser, page


def test_an_opened_cover_pops_up_in_the_owners_browser_with_an_email_and_sms(demo_copy):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (test extras)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    listener_port = free_port()
    with sim_meters(*({"serial": s} for s in PUSH_METERS), speed=SPEED) as sim:
        _point_at(demo_copy, sim.ports, listener_port)
        # as scripts/demo.sh: a Bridge API key, and the push setups sent to the simulator
        out = odoo_shell(demo_copy, "bridge_user.py", "demo_push_setup.py")
        key = bridge_key(out)
        assert f"PUSH_METERS={','.join(PUSH_METERS)}" in out
        with (
            run_odoo(demo_copy) as server,
            run_listener(server, listener_port, "journey-push-listener", api_key=key),
            run_bridge(server, key, "journey-push-bridge"),
            _browser_memory(),
            sync_api.sync_playwright() as playwright,
        ):
            meters = {
                m["serial_number"]: m["id"]
                for m in server.call(
                    "smartpm.meter",
                    "search_read",
                    [("serial_number", "in", list(PUSH_METERS))],
                    fields=["serial_number"],
                )
            }
            # the bridge runs the set_push jobs: each simulated meter pushes to the listener
            done = wait_until(
                lambda: (
                    len(rows := _jobs_done(server, list(meters.values()), "set_push"))
                    == len(PUSH_METERS)
                    and rows
                ),
                90,
                0.5,
                "the set_push jobs of the push meters",
            )
            assert {r["result"]["destination"] for r in done} == {f"127.0.0.1:{listener_port}"}
            assert sim_control(sim, METER)["push_destination"] == f"127.0.0.1:{listener_port}"

            owner = server.call("res.users", "read", [server.uid], fields=["partner_id"])[0]
            owner_partner = owner["partner_id"][0]
            browser, page = _owners_browser(playwright, server)
            try:
                notices = page.locator(".o_notification", has_text=METER)
                assert notices.count() == 0
                before_alarms = _cover_alarms(server, meters[METER])
                before_told = _told(server, owner_partner)
                reads_before = len(_jobs_done(server, [meters[METER]], "read_events"))
                time.sleep(3)  # the web client's bus subscription settles (not needed to pass)

                opened = time.monotonic()
                sim_control(sim, METER, "tamper", {"kind": "cover_open"})
                notices.first.wait_for(timeout=30000)
                elapsed = time.monotonic() - opened
                # the figure of bench/RESULTS.md, for whoever runs the journey with -s
                print(f"[push demo] cover opened -> owner's browser notified in {elapsed:.2f} s")  # pylint: disable=print-used
                _logger.info("push demo: cover opened -> notified in %.2f s", elapsed)

                assert "Cover opened" in notices.first.inner_text()
                alarms = _cover_alarms(server, meters[METER])
                assert len(alarms) == len(before_alarms) + 1
                [alarm] = [a for a in alarms if a not in before_alarms]
                assert alarm["state"] == "new"
                assert alarm["notification_count"] == 3  # live, e-mail, SMS
                after_told = _told(server, owner_partner)
                assert tuple(a - b for a, b in zip(after_told, before_told, strict=True)) == (
                    1,
                    1,
                    1,
                )
                # no event-log read brought it: the push did
                assert len(_jobs_done(server, [meters[METER]], "read_events")) == reads_before

                # the daily reconciliation reads the same event from the meter's log: nothing
                job = server.call(
                    "smartpm.meter.job",
                    "create",
                    {
                        "meter_id": meters[METER],
                        "job_type": "read_events",
                        "payload": {"since": None},
                    },
                )
                wait_until(
                    lambda: (
                        server.call("smartpm.meter.job", "read", [job], ["state"])[0]["state"]
                        == "done"
                    ),
                    60,
                    0.5,
                    "the event-log read",
                )
                assert len(_cover_alarms(server, meters[METER])) == len(alarms)
                assert _told(server, owner_partner) == after_told
                assert notices.count() == 1
            finally:
                browser.close()
