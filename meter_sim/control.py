# SPDX-License-Identifier: GPL-2.0-or-later
"""Local HTTP/JSON control interface of a fleet (tests and the demo act on meters here).

GET  /meters                      list (serial, port, framing, auth, ...)
GET  /meters/<serial>             true state (credit_kwh, relay, energy_kwh, events, ...)
POST /meters/<serial>/tamper      {"kind": "cover_open"|"cover_close"|"over_current"|
                                   "reverse_connection"}
POST /meters/<serial>/load        {"watts": 1500}  (null: back to the load model)
POST /meters/<serial>/offline     {"offline": true|false}
POST /meters/<serial>/advance     {"seconds": 3600}  (simulated time, this meter only)
POST /meters/<serial>/button      {}  the meter's button: takes emergency credit when
                                   selectable (answer: the state, "button_accepted": bool)
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .model import TAMPER_KINDS


class _BadRequest(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    server_version = "meter-sim"
    fleet = None  # set per server class

    def log_message(self, format, *args):  # noqa: A002 - quiet: tests and the demo
        pass

    def _send(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _parts(self):
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if not parts or parts[0] != "meters":
            return None
        return parts[1:]

    def do_GET(self):  # noqa: N802
        parts = self._parts()
        if parts == []:
            return self._send(200, self.fleet.listing())
        if parts is not None and len(parts) == 1:
            if parts[0] not in self.fleet.models:
                return self._send(404, {"error": f"unknown meter {parts[0]}"})
            return self._send(200, self.fleet.meter(parts[0]).state())
        return self._send(404, {"error": "not found"})

    def do_POST(self):  # noqa: N802
        parts = self._parts()
        if parts is None or len(parts) != 2:
            return self._send(404, {"error": "not found"})
        serial, action = parts
        if serial not in self.fleet.models:
            return self._send(404, {"error": f"unknown meter {serial}"})
        try:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError as e:
                raise _BadRequest(f"bad JSON: {e}") from e
            if not isinstance(body, dict):
                raise _BadRequest("body must be a JSON object")
            model = self.fleet.meter(serial)
            if action == "tamper":
                kind = body.get("kind")
                if kind not in TAMPER_KINDS:
                    raise _BadRequest(f"kind must be one of {sorted(TAMPER_KINDS)}")
                model.tamper(kind)
            elif action == "load":
                watts = body.get("watts")
                if watts is not None and (
                    isinstance(watts, bool) or not isinstance(watts, (int, float)) or watts < 0
                ):
                    raise _BadRequest("watts must be a number >= 0 or null")
                model.set_load(watts)
            elif action == "offline":
                off = body.get("offline")
                if not isinstance(off, bool):
                    raise _BadRequest("offline must be true or false")
                self.fleet.set_offline(serial, off)
            elif action == "power":
                on = body.get("on")
                if not isinstance(on, bool):
                    raise _BadRequest("on must be true or false")
                model.power(on)  # event 1 power down / 2 power up (pushed in push mode)
            elif action == "heartbeat":
                self.fleet.push.heartbeat(serial)  # a heartbeat push now (push mode)
            elif action == "button":
                accepted = model.press_button()
                return self._send(200, dict(model.state(), button_accepted=accepted))
            elif action == "advance":
                secs = body.get("seconds")
                if isinstance(secs, bool) or not isinstance(secs, (int, float)) or secs < 0:
                    raise _BadRequest("seconds must be a number >= 0")
                model.advance(secs)
            else:
                return self._send(404, {"error": f"unknown action {action}"})
        except _BadRequest as e:
            return self._send(400, {"error": str(e)})
        return self._send(200, model.state())


class ControlServer:
    def __init__(self, fleet, host: str, port: int):
        handler = type("Handler", (_Handler,), {"fleet": fleet})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = None

    def start(self):
        self._thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="meter-sim-control",
            daemon=True,
        )
        self._thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(2)
