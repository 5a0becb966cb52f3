# SPDX-License-Identifier: GPL-2.0-or-later
"""A fleet of simulated meters in one process: models, DLMS ports, ticker, HTTP control.

fleet = Fleet(meters=[MeterConfig("SIM00001")], speed=0)   # speed 0: frozen clock
fleet.start()
port = fleet.port_of("SIM00001"); model = fleet.meter("SIM00001")
model.advance(3600)   # deterministic simulated time
fleet.stop()
"""

from __future__ import annotations

import datetime as dt
import json
import threading

from .model import MeterConfig, MeterModel, SimClock
from .server import Network, serve_serial

TICK_S = 0.2  # real seconds between ticker runs


def default_configs(n: int, base_port: int = 0, **overrides) -> list[MeterConfig]:
    """N meters SIM00001… in port order (base_port 0: each on a free port)."""
    return [
        MeterConfig(serial=f"SIM{i + 1:05d}", port=(base_port + i) if base_port else 0, **overrides)
        for i in range(n)
    ]


LINK_KEYS = ("latency_ms", "jitter_ms", "loss")


def load_config(path: str, link: dict | None = None) -> tuple[list[MeterConfig], dict]:
    """`--config file.json`: {"meters": [{serial, port, framing, auth, ...}], "seed": ...,
    "speed": ..., "control_port": ..., "latency_ms": ..., "jitter_ms": ..., "loss": ...} or
    just a list of meters. The link keys at the top are every meter's unless it says
    otherwise; `link` (the command line's) replaces the top-level ones."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if isinstance(doc, list):
        doc = {"meters": doc}
    defaults = {k: doc.pop(k) for k in LINK_KEYS if k in doc} | (link or {})
    meters = [MeterConfig.from_dict(defaults | d) for d in doc.get("meters", [])]
    serials = [m.serial for m in meters]
    if len(set(serials)) != len(serials):
        raise ValueError("duplicate meter serials in config")
    return meters, {k: v for k, v in doc.items() if k != "meters"}


class Fleet:
    def __init__(
        self,
        meters: list[MeterConfig] | int = 1,
        base_port: int = 0,
        speed: float = 1.0,
        seed: int = 0,
        start: dt.datetime | None = None,
        host: str = "127.0.0.1",
        control_port: int | None = None,
    ):
        if isinstance(meters, int):
            meters = default_configs(meters, base_port)
        elif base_port:
            for i, cfg in enumerate(meters):
                if not cfg.port:
                    cfg.port = base_port + i
        from .objects import check_object_map

        for cfg in meters:
            cfg.validate()
            try:
                check_object_map(cfg.object_map)
            except ValueError as e:
                raise ValueError(f"{cfg.serial}: {e}") from e
        self.configs = meters
        self.clock = SimClock(speed=speed, start=start)
        self.models = {c.serial: MeterModel(c, seed=seed, start=self.clock.start) for c in meters}
        self.net = Network(host, link_seed=seed)  # same seed, same frames lost
        self.control_port = control_port
        self.control = None
        self._stop = threading.Event()
        self._ticker = None
        self._serial_threads = []
        self.started = False
        from .push import PushAgent

        self.push = PushAgent(self.net, self.models)

    # --- lifecycle ---
    def start(self) -> Fleet:
        try:
            for c in self.configs:
                model = self.models[c.serial]
                if c.serial_device:
                    self._serial_threads.append(serve_serial(model, c.serial_device, self._stop))
                else:
                    self.net.add_meter(model, c.port)
            self.net.start()
            self.push.start()
            if self.clock.speed:
                self._ticker = threading.Thread(
                    target=self._tick, name="meter-sim-tick", daemon=True
                )
                self._ticker.start()
            if self.control_port is not None:
                from .control import ControlServer

                self.control = ControlServer(self, self.net.host, self.control_port)
                self.control.start()
            self.started = True
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.control:
            self.control.stop()
        if self._ticker:
            self._ticker.join(2)
        self.push.stop()
        for t in self._serial_threads:
            t.join(2)
        self.net.stop()
        self.started = False

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _tick(self) -> None:
        while not self._stop.wait(TICK_S):
            now = self.clock.now()
            for model in self.models.values():
                model.advance_to(now)

    # --- access ---
    def port_of(self, serial: str) -> int:
        return self.net.ports[serial]

    def meter(self, serial: str) -> MeterModel:
        return self.models[serial]

    def serials(self) -> list[str]:
        return list(self.models)

    def set_offline(self, serial: str, offline: bool) -> None:
        if self.meter(serial).config.serial_device:
            self.meter(serial).offline = offline
        else:
            self.net.set_offline(serial, offline)

    def listing(self) -> list[dict]:
        out = []
        for serial, model in self.models.items():
            c = model.config
            out.append(
                {
                    "serial": serial,
                    "host": self.net.host,
                    "port": self.net.ports.get(serial),
                    "serial_device": c.serial_device or None,
                    "framing": c.framing,
                    "auth": c.auth,
                    "client_address": 1,  # management; the public client 16 reads ids only
                    "server_logical_address": 1,
                    "server_physical_address": c.server_physical_address,
                    "offline": model.offline,
                }
            )
            if c.auth == "hls":
                from .server import system_title

                out[-1]["system_title"] = system_title(c).hex().upper()
        return out
