# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers for tests of any package: start a fleet in-process or as a CLI subprocess.

In-process (fast, model reachable):
    with Fleet(meters=[MeterConfig("SIM00001")], speed=0) as fleet:
        port = fleet.port_of("SIM00001")

Subprocess (what the bridge's end-to-end tests want):
    with run_cli(meters=3) as sim:          # free ports, waits until listening
        sim.ports["SIM00001"], sim.control_url
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from dlms_cosem import cosem, enumerations
from dlms_cosem.client import DlmsClient
from dlms_cosem.io import BlockingTcpIO, HdlcTransport, SerialIO, TcpTransport
from dlms_cosem.security import LowLevelSecurityAuthentication, NoSecurityAuthentication

from . import security


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dlms_client(
    port: int | None = None,
    *,
    host: str = "127.0.0.1",
    framing: str = "wrapper",
    auth: str = "none",
    password: str | None = None,
    serial_device: str | None = None,
    server_physical_address: int = 17,
    timeout: int = 5,
    **kwargs,
) -> DlmsClient:
    """A dlms-cosem client for one simulated meter (client 16 without auth, else 1)."""
    client_address = 16 if auth == "none" else 1
    if auth == "none":
        authentication = NoSecurityAuthentication()
    elif auth == "lls":
        authentication = LowLevelSecurityAuthentication(secret=(password or "").encode())
    else:
        from dlms_cosem.security import HighLevelSecurityGmacAuthentication

        authentication = HighLevelSecurityGmacAuthentication(challenge_length=32)
    if serial_device:
        io = SerialIO(port_name=serial_device, timeout=timeout)
    else:
        io = BlockingTcpIO(host=host, port=port, timeout=timeout)
    if framing == "hdlc" or serial_device:
        transport = HdlcTransport(
            client_logical_address=client_address,
            server_logical_address=1,
            server_physical_address=server_physical_address,
            io=io,
            timeout=timeout,
        )
    else:
        transport = TcpTransport(
            client_logical_address=client_address, server_logical_address=1, io=io, timeout=timeout
        )
    return DlmsClient(transport=transport, authentication=authentication, timeout=timeout, **kwargs)


def attr(ic: int, ln: str, index: int) -> cosem.CosemAttribute:
    return cosem.CosemAttribute(
        interface=enumerations.CosemInterface(ic),
        instance=cosem.Obis.from_string(ln),
        attribute=index,
    )


def method(ic: int, ln: str, index: int) -> cosem.CosemMethod:
    return cosem.CosemMethod(enumerations.CosemInterface(ic), cosem.Obis.from_string(ln), index)


def credit_token(
    transfer_number: int,
    energy_wh: int,
    serial: str = "SIM00001",
    token_key: bytes | str | None = None,
    seed: str = security.DEMO_KEY_SEED,
) -> bytes:
    """The 20-byte signed token of the contract for meter `serial`, with its token key
    (default: the key the simulator derives from `seed`)."""
    if token_key is None:
        token_key = security.derive_key(seed, "token_key", serial)
    if isinstance(token_key, str):
        token_key = bytes.fromhex(token_key)
    return security.mint_token(token_key, serial, transfer_number, energy_wh)


def clear_token(
    transfer_number: int,
    energy_wh: int,
    serial: str = "SIM00001",
    token_key: bytes | str | None = None,
    seed: str = security.DEMO_KEY_SEED,
) -> bytes:
    """The 21-byte signed clear-credit token of the contract for meter `serial` (key as for
    credit_token)."""
    if token_key is None:
        token_key = security.derive_key(seed, "token_key", serial)
    if isinstance(token_key, str):
        token_key = bytes.fromhex(token_key)
    return security.mint_clear_token(token_key, serial, transfer_number, energy_wh)


def hls_job_meter(model, port: int | None = None, **overrides) -> dict:
    """The `meter` dict of a bridge job (docs/job-protocol.md) for an in-process simulated
    HLS meter: its keys, and an invocation counter above the last one the meter accepted."""
    cfg = model.config
    from .server import system_title

    meter = {
        "serial_number": model.serial,
        "connection_type": "tcp",
        "host": "127.0.0.1",
        "port": port,
        "framing": cfg.framing,
        "client_address": 1,
        "server_logical_address": 1,
        "server_physical_address": cfg.server_physical_address,
        "auth": "hls_gmac",
        "auth_key": cfg.authentication_key,
        "encryption_key": cfg.encryption_key,
        "system_title": system_title(cfg).hex(),
        "invocation_counter": (model.client_invocation_counter or 0) + 1,
        "timeout_s": 5,
    }
    meter.update(overrides)
    return meter


@contextlib.contextmanager
def management_client(fleet, serial: str, **overrides):
    """An associated dlms-cosem client of the management association (client 1, HLS-GMAC
    with the meter's keys) to a meter of an in-process fleet; yields the DlmsClient.
    It goes through the bridge's MeterConnection (and its dlms-cosem work-arounds)."""
    from meter_bridge.dlms import MeterConnection

    model = fleet.meter(serial)
    port = None if model.config.serial_device else fleet.port_of(serial)
    conn = MeterConnection.from_job_meter(hls_job_meter(model, port, **overrides), deadline_s=15)
    with conn:
        yield conn.client


@dataclass
class CliFleet:
    proc: subprocess.Popen
    ports: dict = field(default_factory=dict)
    meters: list = field(default_factory=list)
    control_port: int | None = None

    @property
    def control_url(self) -> str | None:
        return f"http://127.0.0.1:{self.control_port}" if self.control_port else None


@contextlib.contextmanager
def run_cli(
    meters: int = 1,
    *args: str,
    control: bool = True,
    config: str | None = None,
    speed: float = 1.0,
    timeout: float = 30.0,
    env: dict | None = None,
):
    """Run `meter-sim` as a subprocess on free ports; yields a CliFleet once it listens;
    SIGTERM (then SIGKILL) on exit whatever happens."""
    cmd = [sys.executable, "-m", "meter_sim.cli", "--json", "--speed", str(speed)]
    if config:
        cmd += ["--config", config]
    else:
        cmd += ["--meters", str(meters), "--base-port", "0"]
    if control:
        cmd += ["--control-port", "0"]
    cmd += list(args)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        deadline = time.monotonic() + timeout
        info = None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"meter-sim exited: {proc.stderr.read()}")
            if line.startswith("{"):
                info = json.loads(line)
                break
        if info is None:
            raise TimeoutError("meter-sim did not start")
        fleet = CliFleet(
            proc=proc,
            meters=info["meters"],
            control_port=info["control_port"],
            ports={m["serial"]: m["port"] for m in info["meters"]},
        )
        yield fleet
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f:
                f.close()


@contextlib.contextmanager
def pty_pair():
    """Two linked pseudo-terminals, like `socat pty,raw pty,raw`: yields (meter_device,
    client_device); bytes written to one come out of the other."""
    import pty
    import selectors
    import threading
    import tty

    m1, s1 = pty.openpty()
    m2, s2 = pty.openpty()
    for fd in (m1, s1, m2, s2):
        tty.setraw(fd)
    stop = threading.Event()

    def relay():
        sel = selectors.DefaultSelector()
        sel.register(m1, selectors.EVENT_READ, m2)
        sel.register(m2, selectors.EVENT_READ, m1)
        while not stop.is_set():
            for key, _ in sel.select(0.1):
                try:
                    data = os.read(key.fd, 4096)
                except OSError:
                    continue
                if data:
                    os.write(key.data, data)
        sel.close()

    t = threading.Thread(target=relay, name="pty-relay", daemon=True)
    t.start()
    try:
        yield os.ttyname(s1), os.ttyname(s2)
    finally:
        stop.set()
        t.join(2)
        for fd in (m1, s1, m2, s2):
            os.close(fd)
