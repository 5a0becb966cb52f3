"""The JSON-RPC client against the fake Odoo: the protocol calls and the error mapping."""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from meter_bridge.odoo_client import OdooAuthError, OdooClient, OdooError, OdooUnreachable

try:
    from test_bridge_service_fakes import fake_odoo, free_port
except ImportError:  # tests/ turned into a package
    from tests.test_bridge_service_fakes import fake_odoo, free_port

pytestmark = pytest.mark.timeout(15)


def client_for(url, api_key="secret", timeout=2.0):
    return OdooClient(url, "testdb", "bridge", api_key, timeout=timeout)


def test_authenticate_returns_uid_and_calls_use_it():
    with fake_odoo() as odoo:
        client = client_for(odoo.url)
        assert client.authenticate() == 7
        assert client.claim("b1", 5, 60) == []


def test_wrong_api_key_raises_auth_error():
    with fake_odoo() as odoo:
        with pytest.raises(OdooAuthError, match="refused"):
            client_for(odoo.url, api_key="wrong").claim("b1", 5, 60)


def test_protocol_round_trip():
    with fake_odoo() as odoo:
        a = odoo.add_job("add_credit", {"transfer_number": 7, "kwh": 12.5})
        b = odoo.add_job("ping")
        c = odoo.add_job("ping")
        client = client_for(odoo.url)
        jobs = client.claim("b1", 3, 60)
        assert [j["id"] for j in jobs] == [a, b, c]
        assert jobs[0]["payload"] == {"transfer_number": 7, "kwh": 12.5}
        assert jobs[0]["meter"]["serial_number"] == "SIM00001"
        assert client.extend_lease([a, b, c], "b1", 60) == [a, b, c]
        assert client.extend_lease([a], "b2", 60) == []
        assert client.complete(a, "b1", {"transfer_number": 7, "already_applied": False}) is True
        assert client.fail(b, "b1", "no answer", False)["state"] == "failed"
        assert client.release([c], "b1") == [c]
        assert odoo.state(a) == "done" and odoo.state(b) == "failed" and odoo.state(c) == "pending"
        reading = {"meter": "SIM00001", "obis": "1.0.1.8.0.255", "value": 1, "time": "t"}
        assert client.ingest("b1", [reading], []) == {"readings": 1, "events": 0}
        assert client.ingest("b1", [reading], []) == {"readings": 0, "events": 0}


def test_refusal_carries_odoo_message_and_name():
    with fake_odoo() as odoo:
        job_id = odoo.add_job("ping")
        with pytest.raises(OdooError) as info:
            client_for(odoo.url).complete(job_id, "b1", {})
        assert "not leased to bridge b1" in info.value.message
        assert info.value.name == "odoo.exceptions.UserError"
        assert info.value.is_refusal
        assert odoo.state(job_id) == "pending"


def test_wait_for_jobs_long_polls():
    with fake_odoo() as odoo:
        client = client_for(odoo.url)
        started = time.monotonic()
        assert client.wait_for_jobs(0.5) is False
        assert time.monotonic() - started >= 0.4
        threading.Timer(0.3, odoo.add_job).start()
        assert client.wait_for_jobs(10) is True
        assert time.monotonic() - started < 3


def test_connection_refused_is_unreachable():
    with pytest.raises(OdooUnreachable):
        client_for(f"http://127.0.0.1:{free_port()}").claim("b1", 1, 60)


def test_silent_server_times_out_as_unreachable():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts the connection in the backlog, never answers
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(OdooUnreachable, match="timed out"):
            client_for(f"http://127.0.0.1:{port}", timeout=0.5).authenticate()
        assert time.monotonic() - started < 3


@pytest.mark.parametrize("status,body", [(502, b"Bad Gateway"), (200, b"<html>login</html>")])
def test_proxy_errors_and_non_json_answers_are_unreachable(status, body):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(OdooUnreachable):
            client_for(f"http://127.0.0.1:{server.server_address[1]}").authenticate()
    finally:
        server.shutdown()
        server.server_close()


class _KeepAliveOdoo:
    """An HTTP/1.1 server that keeps connections open (as a reverse proxy in front of Odoo
    does): answers every JSON-RPC call with its id; counts the TCP connections; with
    ``close_idle`` it drops each connection after its first answer without saying so."""

    def __init__(self, close_idle=False):
        owner = self
        self.connections = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                owner.connections += 1

            def do_POST(self):
                import json

                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                data = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": 7}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                if close_idle:
                    self.close_connection = True  # no "Connection: close": a silent drop

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_calls_keep_the_connection_a_server_keeps_open():
    odoo = _KeepAliveOdoo()
    try:
        client = client_for(odoo.url)
        assert [client.call("common", "version") for _ in range(3)] == [7, 7, 7]
        assert odoo.connections == 1
    finally:
        odoo.close()


def test_a_kept_connection_the_server_dropped_is_opened_again():
    odoo = _KeepAliveOdoo(close_idle=True)
    try:
        client = client_for(odoo.url)
        assert client.call("common", "version") == 7
        time.sleep(0.1)  # the server has closed its side
        assert client.call("common", "version") == 7
        assert odoo.connections == 2
    finally:
        odoo.close()


def test_each_thread_has_its_own_connection():
    odoo = _KeepAliveOdoo()
    try:
        client = client_for(odoo.url)
        answers = []
        threads = [
            threading.Thread(target=lambda: answers.append(client.call("common", "version")))
            for _ in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert answers == [7, 7, 7] and odoo.connections == 3
    finally:
        odoo.close()


def test_claim_sends_its_options_only_when_there_are_some():
    with fake_odoo() as odoo:
        read = odoo.add_job("read")
        credit = odoo.add_job("add_credit", {"transfer_number": 7, "kwh": 1.0})
        client = client_for(odoo.url)
        odoo.has_claim_options = False  # an older Odoo: claims without options still work
        assert [j["id"] for j in client.claim("b1", 1, 60, None)] == [read]
        assert client.release([read], "b1") == [read]
        assert [j["id"] for j in client.claim("b1", 1, 60, {})] == [read]
        assert client.release([read], "b1") == [read]
        odoo.has_claim_options = True
        claimed = client.claim("b1", 5, 60, {"job_types": ["add_credit"]})
        assert [j["id"] for j in claimed] == [credit]
        assert odoo.state(read) == "pending"
        claims = odoo.calls_of("claim")
        assert [len(args) for args in claims] == [3, 3, 4]
        assert claims[2][3] == {"job_types": ["add_credit"]}
