"""Shared pieces of the benchmarks: a bench database, Odoo, bridges, figures. Not a test."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # odoo_e2e: the e2e tests' Odoo/bridge runners

from odoo_e2e import (  # noqa: E402,F401
    locked_meter_vals,
    odoo_bin,
    run_bridge,
    run_listener,
    run_odoo,
    wait_until,
)

CONF = ROOT / "var" / "odoo.conf"
os.environ.setdefault("SMARTPM_ODOO_CONF", str(CONF))


PG = ["-h", "127.0.0.1", "-U", "postgres"]


def odoo(*args: str) -> None:
    """Run odoo-bin with the project's configuration, without serving (install, update)."""
    cmd = [sys.executable, str(odoo_bin()), "-c", str(CONF), *args]
    subprocess.run([*cmd, "--stop-after-init", "--log-level=warn"], check=True)


def ensure_db(db: str, demo: bool = False, fresh: bool = False) -> str:
    """A database with smartpm_prepay installed (with demo data and the demo payment
    provider when ``demo``); reused and updated when it exists, unless ``fresh``."""
    probe = subprocess.run(
        [
            "psql",
            *PG,
            "-d",
            db,
            "-qtAX",
            "-c",
            "SELECT 1 FROM ir_module_module WHERE name='smartpm_prepay' AND state='installed'",
        ],
        capture_output=True,
        text=True,
    )
    if probe.stdout.strip() == "1" and not fresh:
        odoo("-d", db, "-u", "smartpm_prepay")  # the addon may have changed since
        return db
    subprocess.run(["dropdb", *PG, "--if-exists", db], check=True)
    print(f"[bench] installing smartpm_prepay into {db} ...", file=sys.stderr)
    if demo:
        odoo("-d", db, "-i", "smartpm_prepay,payment_demo")
    else:
        odoo("-d", db, "-i", "smartpm_prepay", "--without-demo=all")
    return db


def push_meter_vals(serial: str, system_title: str, destination: str, heartbeat_s: int) -> dict:
    """An Odoo meter in push mode for the simulated meter ``serial`` (its keys), active."""
    return {
        "serial_number": serial,
        "host": "127.0.0.1",
        "port": 1,
        "state": "active",
        **locked_meter_vals(serial),
        "system_title": system_title,
        "push_enabled": True,
        "push_destination": destination,
        "push_heartbeat_s": heartbeat_s,
    }


def listener(url: str, db: str, login: str, key: str, port: int):
    """A `meter-bridge listen` process on 127.0.0.1:port forwarding to Odoo (or a sink) at
    ``url``: the e2e tests' runner (its log in var/e2e-listener-PORT.log)."""
    return run_listener(SimpleNamespace(url=url, db=db), port, f"bench-{login}", key, login)


def established(port: int) -> int:
    """TCP connections established to the listener's port (from /proc/net/tcp)."""
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            local, _remote, state = line.split()[1:4]
            if state == "01" and int(local.split(":")[1], 16) == port:
                n += 1
    return n


def figures(name: str, values: list[float], unit: str = "s") -> str:
    """median, p95, max of a sample, and the machine's core count."""
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    line = (
        f"{name}: n={len(values)} median={statistics.median(values):.3f}{unit} "
        f"p95={p95:.3f}{unit} max={values[-1]:.3f}{unit} cores={os.cpu_count()}"
    )
    print(line, flush=True)
    return line


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children so far (from /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
    except FileNotFoundError:
        pass
    return total


def tree_cpu_seconds(pid: int) -> float:
    """cpu_seconds of a process and of all its live descendants (Odoo's prefork workers,
    whose time reaches the master's own counters only once they have exited)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += cpu_seconds(p)
        todo += children.get(p, [])
    return total


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.perf_counter() - self.start


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat's first line."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


class MachineBusy:
    """``with MachineBusy() as busy``: the **whole machine's** busy share (every process of
    every user, all cores, from /proc/stat's first line) over the block, in ``busy.share``
    (0..1), and the 1-minute load average at its start in ``busy.load``. On a shared machine,
    other people's work counts: it is not the bench's own processes' share (that one is
    their CPU seconds over the wall time, printed as "bench processes busy" where measured).
    ``MachineBusy("name")`` prints ``busy.line()`` under that name when the block ends."""

    def __init__(self, name: str | None = None):
        self.name = name

    def __enter__(self):
        self.load = os.getloadavg()[0]
        self._start = cpu_times()
        return self

    def __exit__(self, *exc):
        busy, total = cpu_times()
        elapsed = total - self._start[1]
        self.share = (busy - self._start[0]) / elapsed if elapsed else 0.0
        if self.name and exc[0] is None:
            print(f"{self.name}: {self.line()}", flush=True)

    def line(self) -> str:
        return (
            f"whole machine busy {self.share:.0%} of {os.cpu_count()} cores during the run "
            f"(all processes of all users, /proc/stat); load average {self.load:.2f} at its start"
        )


def against(
    value: float, target: float | None = None, unit: str = "s", more_is_better: bool = False
) -> str:
    """``value`` beside its target: ``0.081s (target <= 0.100s: met)``; without a target
    (``None``): ``0.081s (no target)``."""
    if target is None:
        return f"{value:.3f}{unit} (no target)"
    met = value >= target if more_is_better else value <= target
    sign = ">=" if more_is_better else "<="
    return f"{value:.3f}{unit} (target {sign} {target:.3f}{unit}: {'met' if met else 'NOT met'})"


def headline(
    name: str,
    value: float,
    target: float | None = None,
    unit: str = "s",
    more_is_better: bool = False,
) -> str:
    """Print one headline figure of a bench beside its target (issue 21), ``against``'s way:
    ``name: 0.081s (target <= 0.100s: met)`` or ``name: 12.000 rows/s (no target)``."""
    line = f"{name}: {against(value, target, unit, more_is_better)}"
    print(line, flush=True)
    return line
