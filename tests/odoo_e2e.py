"""A real Odoo HTTP server, meter-bridge processes and simulated meters, for end-to-end tests.

The database comes from ``make test`` (``$SMARTPM_E2E_DB``, a copy of the freshly installed
test database); everything started here is stopped in ``finally`` blocks.

One Odoo server per database serves all the end-to-end tests (``shared_odoo``, the ``odoo``
fixture of conftest): starting Odoo takes seconds that a test does not need to spend, since
each test makes its own records. Before each test the server is told (through Odoo's own
cache signalling) to drop its ORM caches, so that it sees what the test committed directly
in the database as a freshly started server would. conftest stops the shared servers after
the last test of tests/. A test that needs its own server (other add-ons, other options)
still uses ``run_odoo``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import xmlrpc.client
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def odoo_bin() -> Path:
    odoo = pytest.importorskip("odoo", reason="Odoo is not importable")
    return Path(odoo.__file__).resolve().parents[1] / "odoo-bin"


def locked_meter_vals(sim_serial: str) -> dict:
    """Fields of an Odoo meter for the simulated meter `sim_serial`: HLS-GMAC management
    client with the keys the simulator derives for that serial (demo and test derivation,
    meter_sim/security.py) and its token key."""
    from meter_sim.model import MeterConfig
    from meter_sim.server import system_title

    cfg = MeterConfig(sim_serial)
    return {
        "client_address": 1,
        "auth": "hls_gmac",
        "auth_key": cfg.authentication_key,
        "encryption_key": cfg.encryption_key,
        "token_key": cfg.token_key,
        "system_title": system_title(cfg).hex().upper(),
    }


def credit_payload(sim_serial: str, transfer_number: int, kwh: float) -> dict:
    """An add_credit payload as Odoo mints it, for a hand-made job (the test plays Odoo)."""
    from meter_sim.testing import credit_token

    token = credit_token(transfer_number, round(kwh * 1000), sim_serial)
    return {"token": token.hex().upper(), "transfer_number": transfer_number, "kwh": kwh}


def user_with_key(env, name, login, groups=("base.group_user", "smartpm_prepay.group_bridge_api")):
    """A user of ``groups`` (xml ids; default: a bridge) and an API key valid for a day: the
    machine users the end-to-end tests run the bridge, the bank or the cashier as."""
    from odoo import fields

    user = env["res.users"].create(
        {"name": name, "login": login, "groups_id": [(6, 0, [env.ref(g).id for g in groups])]}
    )
    expiry = fields.Datetime.add(fields.Datetime.now(), days=1)
    return user, env["res.users.apikeys"].with_user(user)._generate(None, "e2e", expiry)


def public_holiday(calendar, day, name):
    """A public holiday of ``calendar``'s company: its whole local ``day`` (a date), a
    global leave of the calendar, created in the calendar's environment (its context)."""
    from odoo.addons.smartpm_prepay.services.local_time import day_start_utc

    company = calendar.company_id
    return calendar.env["resource.calendar.leaves"].create(
        {
            "name": name,
            "calendar_id": calendar.id,
            "company_id": company.id,
            "date_from": day_start_utc(company, day),
            "date_to": day_start_utc(company, day + dt.timedelta(days=1)),
            "time_type": "leave",
        }
    )


@contextlib.contextmanager
def sim_meters(*meters: dict, speed=0):
    """`meter-sim` as a subprocess (with its control interface) running these meters of a
    fleet file (``{"serial": ..., "credit_kwh": ...}``, each on a free port); yields its
    ``CliFleet`` (``ports``, ``control_port``)."""
    from meter_sim.testing import run_cli

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "fleet.json")
        with open(path, "w") as f:
            json.dump({"meters": [{"port": 0, **m} for m in meters]}, f)
        with run_cli(config=path, speed=speed) as sim:
            yield sim


def sim_control(sim, serial, action=None, body=None):
    """The simulator's control interface for meter ``serial``: its state (GET), or the answer
    to ``action`` (POST of ``body`` as JSON)."""
    url = f"http://127.0.0.1:{sim.control_port}/meters/{serial}"
    if action is None:
        with urllib.request.urlopen(url) as r:
            return json.load(r)
    req = urllib.request.Request(
        f"{url}/{action}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req) as r:
        assert r.status == 200
        return json.loads(r.read() or b"null")


def wait_until(predicate, timeout=60.0, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stop_process(proc: subprocess.Popen, timeout=10):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop_timed(proc: subprocess.Popen, slow_stop_s=None) -> float:
    """SIGTERM ``proc`` and wait until it exits: the seconds it took. ``slow_stop_s``: if it
    is still running after that long, the stacks of all its threads (py-spy dump, when
    installed) go to var/slow-stop-PID-N.txt, to see what holds the stop up."""
    started = time.perf_counter()
    exited = threading.Event()
    if slow_stop_s is not None:
        threading.Thread(
            target=_dump_if_slow, args=(proc.pid, slow_stop_s, exited), daemon=True
        ).start()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(120)
    finally:
        exited.set()
    return time.perf_counter() - started


def _dump_if_slow(pid, after_s, exited, dumps=3, every_s=2.0):
    spy = BIN / "py-spy"
    if not spy.exists() or exited.wait(after_s):
        return
    for n in range(dumps):
        path = ROOT / "var" / f"slow-stop-{pid}-{n}.txt"
        with open(path, "w") as out:
            subprocess.run(
                [str(spy), "dump", "--pid", str(pid)], stdout=out, stderr=subprocess.STDOUT
            )
        print(f"[odoo_e2e] Odoo {pid} still stopping: stacks in {path}", file=sys.stderr)
        if exited.wait(every_s):
            return


class OdooServer:
    def __init__(self, db, port, proc, log_path=None):
        self.db, self.port, self.proc, self.log_path = db, port, proc, log_path
        self.url = f"http://127.0.0.1:{port}"
        self.uid = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/common").authenticate(
            db, "admin", "admin", {}
        )
        assert self.uid, "admin / admin must log in to the e2e database"

    def call(self, model, method, *args, **kwargs):
        proxy = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/object", allow_none=True)
        return proxy.execute_kw(self.db, self.uid, "admin", model, method, list(args), kwargs)

    def bridge_key(self, login="bridge"):
        """A Bridge API user with a fresh API key (made with `odoo-bin shell`)."""
        return bridge_key(odoo_shell(self.db, "bridge_user.py", login=login))

    def restart(self, while_down=None, slow_stop_s=None) -> float:
        """SIGTERM this Odoo, wait for it to exit, start it again with the same command line
        (port, database) and wait until it answers: the seconds its stop took.
        ``while_down``: called once the process has exited, before the new one starts (an
        outage of the length a test wants). ``slow_stop_s``: see stop_timed()."""
        stop_s = stop_timed(self.proc, slow_stop_s)
        if while_down is not None:
            while_down()
        with open(self.log_path, "a") as log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(
                self.proc.args, stdout=log, stderr=subprocess.STDOUT, env=odoo_env()
            )
        wait_up(self.proc, self.port, self.log_path)
        return stop_s


def odoo_shell(db, *scripts, login="bridge"):
    """The output of ``scripts`` (of scripts/, one after the other) run by `odoo-bin shell` on
    ``db``, as scripts/demo.sh runs them ($SMARTPM_BRIDGE_LOGIN = ``login``)."""
    out = subprocess.run(
        [
            sys.executable,
            str(odoo_bin()),
            "shell",
            "-c",
            os.environ["SMARTPM_ODOO_CONF"],
            "-d",
            db,
            "--log-level=warn",
            "--no-http",
        ],
        input="".join((ROOT / "scripts" / name).read_text() for name in scripts),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SMARTPM_BRIDGE_LOGIN": login},
    )
    if out.returncode:
        raise AssertionError(f"odoo-bin shell failed: {out.stderr[-2000:]}")
    return out.stdout


def bridge_key(shell_output):
    """The API key scripts/bridge_user.py printed."""
    keys = [line[8:] for line in shell_output.splitlines() if line.startswith("API_KEY=")]
    assert keys, f"could not create the bridge user: {shell_output[-2000:]}"
    return keys[-1]


def odoo_env():
    """The environment of an Odoo server process: this one's, with a bytecode cache. This
    machine sets PYTHONDONTWRITEBYTECODE, so every Odoo start compiled all of Odoo's Python
    (the core and each addon loaded) from source: about half of a start on a busy machine
    (bench/RESULTS.md, "Odoo restart"). A deployment has its .pyc files; so do these
    servers, in var/pycache (PYTHONPYCACHEPREFIX: nothing is written into the sources)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(ROOT / "var" / "pycache")
    return env


@contextlib.contextmanager
def run_odoo(db, extra_args=()):
    """Odoo serving ``db`` on a free port; threaded (``--workers=0``) unless ``extra_args``
    say otherwise (a later option wins, e.g. ``["--workers=2"]`` for prefork)."""
    port = free_port()
    set_base_url(db, f"http://127.0.0.1:{port}")
    log = open(ROOT / "var" / f"e2e-odoo-{port}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            str(odoo_bin()),
            "-c",
            os.environ["SMARTPM_ODOO_CONF"],
            # -d without --db-filter: Odoo serves that one database without listing the
            # server's databases on every request (a connection to `postgres` each time)
            "-d",
            db,
            "--http-interface=127.0.0.1",
            f"--http-port={port}",
            "--workers=0",
            "--max-cron-threads=0",
            "--log-level=warn",
            *extra_args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=odoo_env(),
    )
    server = None
    try:
        wait_up(proc, port, log.name)
        server = OdooServer(db, port, proc, log.name)
        yield server
    finally:
        stop_process(server.proc if server else proc)  # restart() may have replaced it
        log.close()


def wait_up(proc, port, log_name):
    """Wait until the Odoo ``proc`` answers /web/health on ``port`` (an error if it exits)."""

    def up():
        if proc.poll() is not None:
            raise RuntimeError(f"Odoo exited, see {log_name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/web/health", timeout=2):
                return True
        except OSError:
            return False

    wait_until(up, timeout=120, what="Odoo to answer")


def set_base_url(db, url):
    """``web.base.url`` of ``db`` is the server about to serve it, as a deployment sets it:
    the links Odoo makes and the bank WSDL's addresses point at it."""
    from odoo.sql_db import db_connect

    with db_connect(db).cursor() as cr:
        cr.execute("UPDATE ir_config_parameter SET value = %s WHERE key = 'web.base.url'", [url])


_SHARED: dict[str, OdooServer] = {}
_SHARED_STACK = contextlib.ExitStack()


def drop_orm_caches(db):
    """Make every Odoo process serving ``db`` clear its ORM caches at its next request, as
    Odoo does after a change made elsewhere (the ``base_cache_signaling_*`` sequences that
    ``Registry.check_signaling`` reads)."""
    from odoo.sql_db import db_connect

    with db_connect(db).cursor() as cr:
        cr.execute(
            "SELECT sequence_name FROM information_schema.sequences "
            "WHERE sequence_name LIKE 'base_cache_signaling_%'"
        )
        for (name,) in cr.fetchall():
            cr.execute("SELECT nextval(%s)", (name,))


def shared_odoo(db) -> OdooServer:
    """The one Odoo server (``run_odoo(db)``) of the e2e tests on ``db``: started at the
    first call (again if it died), kept running until ``stop_shared_odoo``; its ORM caches
    are dropped at each call (``drop_orm_caches``)."""
    server = _SHARED.get(db)
    if server is None or server.proc.poll() is not None:
        server = _SHARED[db] = _SHARED_STACK.enter_context(run_odoo(db))
    # a server of its own that a test ran on ``db`` since has pointed web.base.url at it
    set_base_url(db, server.url)
    drop_orm_caches(db)
    return server


@contextlib.contextmanager
def serving(db):
    """``with serving(db) as server``: the shared server on ``db`` (``shared_odoo``) for the
    block; it keeps running after it."""
    yield shared_odoo(db)


def stop_shared_odoo():
    _SHARED.clear()
    _SHARED_STACK.close()


def e2e_server() -> OdooServer:
    """The shared server on ``$SMARTPM_E2E_DB`` with what the tests on that database
    expect: job retries after 0.2 s (not minutes), a Bridge API key (``api_key``) and the
    admin's company (``company_id``). Skips without that database."""
    db = os.environ.get("SMARTPM_E2E_DB")
    if not db:
        pytest.skip("needs the e2e database that `make test` prepares (SMARTPM_E2E_DB)")
    server = shared_odoo(db)
    if not hasattr(server, "api_key"):
        server.call("ir.config_parameter", "set_param", "smartpm_prepay.job_backoff_base_s", "0.2")
        server.api_key = server.bridge_key()
        user = server.call("res.users", "read", [server.uid], fields=["company_id"])[0]
        server.company_id = user["company_id"][0]
    return server


@contextlib.contextmanager
def run_bridge(server: OdooServer, api_key, bridge_id, *extra, login="bridge"):
    log = open(ROOT / "var" / f"e2e-bridge-{bridge_id}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            str(BIN / "meter-bridge"),
            "run",
            "--odoo-url",
            server.url,
            "--db",
            server.db,
            "--login",
            login,
            "--api-key",
            api_key,
            "--bridge-id",
            bridge_id,
            "--poll-interval",
            "0.5",
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        stop_process(proc, timeout=20)
        log.close()


@contextlib.contextmanager
def bridge(db, login, key, url, bridge_id, **extra):
    """A `meter-bridge` process configured by its environment (``MB_*``; ``extra`` adds to
    it, e.g. ``MB_EXECUTOR`` of a test module here, importable), polling every 0.5 s; its log
    in var/e2e-bridge-BRIDGE_ID.log. Stopped (SIGTERM, then SIGKILL) on exit."""
    tests_dir = Path(__file__).resolve().parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("MB_")}
    env.update(
        MB_ODOO_URL=url,
        MB_ODOO_DB=db,
        MB_ODOO_LOGIN=login,
        MB_ODOO_API_KEY=key,
        MB_BRIDGE_ID=bridge_id,
        MB_POLL_INTERVAL="0.5",
        PYTHONPATH=os.pathsep.join(filter(None, [str(tests_dir), env.get("PYTHONPATH")])),
        **extra,
    )
    log = open(ROOT / "var" / f"e2e-bridge-{bridge_id}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "meter_bridge.cli", "run"], env=env, stdout=log, stderr=log
    )
    try:
        yield proc
    finally:
        stop_process(proc, timeout=20)
        log.close()


@contextlib.contextmanager
def run_listener(server, port, bridge_id="e2e-listen", api_key=None, login="bridge"):
    """`meter-bridge listen` on 127.0.0.1:``port`` for ``server`` (as the Bridge API user
    ``login`` of ``api_key``, default ``server.api_key``), once it listens; its log in
    var/e2e-listener-PORT.log; SIGTERM (then SIGKILL) on exit."""
    log = open(ROOT / "var" / f"e2e-listener-{port}.log", "a")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            str(BIN / "meter-bridge"),
            "listen",
            "--listen",
            f"127.0.0.1:{port}",
            "--odoo-url",
            server.url,
            "--db",
            server.db,
            "--login",
            login,
            "--api-key",
            api_key or server.api_key,
            "--bridge-id",
            bridge_id,
            "--log-format",
            "text",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def listening():
        if proc.poll() is not None:
            raise RuntimeError(f"the listener exited, see {log.name}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return True
        return False

    try:
        wait_until(listening, 30, 0.1, "the listener to listen")
        yield proc
    finally:
        stop_process(proc)
        log.close()
