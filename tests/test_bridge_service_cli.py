"""``meter-bridge`` as a process: SIGTERM handling, --help, configuration errors, read."""

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from meter_bridge import cli

try:
    from test_bridge_service_fakes import fake_odoo, wait_until
except ImportError:  # tests/ turned into a package
    from tests.test_bridge_service_fakes import fake_odoo, wait_until

pytestmark = pytest.mark.timeout(30)

TESTS_DIR = Path(__file__).resolve().parent


def sleepy_executor(job, *, deadline_s=None):
    """Executor for the bridge subprocess (MB_EXECUTOR): marks its start, then sleeps."""
    Path(os.environ["MB_TEST_MARK_DIR"], str(job["id"])).touch()
    time.sleep(job["payload"].get("sleep", 0))
    return {"slept": job["payload"].get("sleep", 0)}


def switch_interval_executor(job, *, deadline_s=None):
    """Executor for the bridge subprocess: the GIL switch interval its process runs with."""
    return {"switch_interval": sys.getswitchinterval()}


def bridge_env(odoo, mark_dir, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MB_")}
    env.update(
        MB_ODOO_URL=odoo.url,
        MB_ODOO_DB="testdb",
        MB_ODOO_LOGIN="bridge",
        MB_ODOO_API_KEY="secret",
        MB_BRIDGE_ID="bridge-cli",
        MB_LOG_FORMAT="json",
        MB_EXECUTOR="test_bridge_service_cli:sleepy_executor",
        MB_TEST_MARK_DIR=str(mark_dir),
        MB_LONG_POLL_TIMEOUT="1",
        MB_RPC_TIMEOUT="3",
        PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")])),
    )
    env.update(extra)
    return env


def run_bridge(args, env):
    return subprocess.Popen(
        [sys.executable, "-m", "meter_bridge.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigterm_finishes_running_job_releases_the_rest_and_exits_0(tmp_path):
    with fake_odoo() as odoo:
        ids = [odoo.add_job("read", {"sleep": 1.5}) for _ in range(3)]
        proc = run_bridge(
            ["run", "--concurrency", "1", "--prefetch", "2"], bridge_env(odoo, tmp_path)
        )
        try:
            assert wait_until(lambda: any(tmp_path.iterdir()), timeout=10), "no job started"
            assert wait_until(lambda: all(odoo.state(i) == "claimed" for i in ids))
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        started = {int(p.name) for p in tmp_path.iterdir()}
        assert len(started) == 1
        (first,) = started
        assert odoo.job(first)["result"] == {"slept": 1.5}
        assert odoo.state(first) == "done"
        for job_id in set(ids) - started:
            assert odoo.state(job_id) == "pending"
            assert odoo.job(job_id)["bridge_id"] is None
        events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
        assert "stop_requested" in events and "jobs_released" in events
        assert events[-1] == "bridge_stopped"


@pytest.mark.parametrize(
    ("concurrency", "expected"),
    [("8", None), ("600", 0.05)],
)
def test_a_bridge_of_many_workers_runs_with_a_longer_gil_switch_interval(
    tmp_path, concurrency, expected
):
    with fake_odoo() as odoo:
        job_id = odoo.add_job("ping")
        env = bridge_env(
            odoo, tmp_path, MB_EXECUTOR="test_bridge_service_cli:switch_interval_executor"
        )
        proc = run_bridge(["run", "--concurrency", concurrency], env)
        try:
            assert wait_until(lambda: odoo.state(job_id) == "done", timeout=15)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=15)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        interval = odoo.job(job_id)["result"]["switch_interval"]
    # a few workers keep CPython's default (the test process's own)
    assert interval == pytest.approx(expected or sys.getswitchinterval())


def test_help_lists_the_environment_variables(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in (
        "MB_ODOO_URL",
        "MB_ODOO_DB",
        "MB_ODOO_LOGIN",
        "MB_ODOO_API_KEY",
        "MB_CONCURRENCY",
        "MB_LEASE_SECONDS",
        "MB_CONFIG",
        "--poll-interval",
    ):
        assert name in out


def test_missing_settings_exit_2_with_a_clear_message(monkeypatch, capsys):
    for key in list(os.environ):
        if key.startswith("MB_"):
            monkeypatch.delenv(key)
    assert cli.main(["run", "--odoo-url", "http://x", "--concurrency", "0"]) == 2
    err = capsys.readouterr().err
    assert "db: missing; set MB_ODOO_DB" in err
    assert "MB_ODOO_API_KEY" in err
    assert "concurrency: 0 is outside 1..2048 (command line)" in err


def test_read_delegates_its_arguments_to_cli_read(monkeypatch):
    seen = []
    fake = types.ModuleType("meter_bridge.cli_read")
    fake.main_read = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "meter_bridge.cli_read", fake)
    assert cli.main(["read", "--host", "127.0.0.1", "--obis", "1.0.1.8.0.255"]) == 0
    assert seen == [["--host", "127.0.0.1", "--obis", "1.0.1.8.0.255"]]


def test_read_without_the_reading_tool_says_so(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "meter_bridge.cli_read", None)  # import fails
    assert cli.main(["read"]) == 2
    assert "meter reading tool is not available" in capsys.readouterr().err


def test_check_reports_a_refused_key(monkeypatch, capsys):
    with fake_odoo() as odoo:
        code = cli.main(
            [
                "check",
                "--odoo-url",
                odoo.url,
                "--db",
                "testdb",
                "--login",
                "bridge",
                "--api-key",
                "wrong",
            ]
        )
    assert code == 1
    assert "refused" in capsys.readouterr().err


def test_check_confirms_login_and_queue_access(capsys):
    with fake_odoo() as odoo:
        args = ["check", "--odoo-url", odoo.url, "--db", "testdb", "--login", "bridge"]
        assert cli.main([*args, "--api-key", "secret"]) == 0
    out = capsys.readouterr().out
    assert "login ok" in out and "job queue access ok" in out
