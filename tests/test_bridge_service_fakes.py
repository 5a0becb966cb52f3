"""A fake Odoo speaking JSON-RPC on /jsonrpc, holding smartpm.meter.job in memory.

Faithful to docs/job-protocol.md: leases, refusals of reports without a live lease (but a
late report or renewal naming the job's last claim, no claim since, is taken), retry
or final failure, release, idempotent ingest, long-poll. Shared by the bridge tests; it has
no tests of its own.
"""

import contextlib
import copy
import hashlib
import json
import socket
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from meter_bridge.config import Settings

MODEL = "smartpm.meter.job"
METHODS = (
    "claim",
    "complete",
    "fail",
    "report",
    "extend_lease",
    "release",
    "ingest",
    "wait_for_jobs",
)


class FakeOdooError(Exception):
    def __init__(self, name, message):
        super().__init__(message)
        self.name = name
        self.message = message


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings_for(url, **overrides):
    """Bridge settings for a test against the fake Odoo at ``url``: small and fast."""
    values = dict(
        odoo_url=url,
        db="testdb",
        login="bridge",
        api_key="secret",
        bridge_id="bridge-1",
        concurrency=2,
        poll_interval=0.2,
        long_poll_timeout=1.0,
        lease_seconds=10,
        job_timeout=5.0,
        rpc_timeout=2.0,
        grace_seconds=5.0,
        backoff_max=0.4,
        log_level="DEBUG",
        log_format="text",
    )
    values.update(overrides)
    return Settings(**values)


def wait_until(predicate, timeout=5.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def _iso(ts):
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


class FakeOdoo:
    def __init__(self, db="testdb", login="bridge", api_key="secret", uid=7):
        self.db, self.login, self.api_key, self.uid = db, login, api_key, uid
        self.cond = threading.Condition()
        self.jobs = {}
        self.calls = []  # (method, args) of every job-model call, in order
        self.readings, self.events = {}, {}
        self.retry_delay = 3600.0  # seconds before a retryable failure is due again
        self.has_wait_for_jobs = True
        self.has_claim_options = True  # False: an Odoo from before claim()'s options
        self.port = None
        self._server = None
        self._thread = None
        self._next_id = 1

    # -- test helpers ----------------------------------------------------------------------

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def add_job(
        self,
        job_type="ping",
        payload=None,
        serial="SIM00001",
        max_attempts=5,
        priority=50,
        meter_id=None,
        object_map=None,
    ):
        """meter_id: the meter's id in the claim (by default one meter per job)."""
        with self.cond:
            job_id = self._next_id
            self._next_id += 1
            self.jobs[job_id] = {
                "id": job_id,
                "job_type": job_type,
                "payload": payload or {},
                "state": "pending",
                "attempt_count": 0,
                "max_attempts": max_attempts,
                "priority": priority,
                "idempotency_key": f"test-{job_id}",
                "next_attempt_at": 0.0,
                "bridge_id": None,
                "lease_until": 0.0,
                "result": None,
                "error": None,
                "meter": {
                    "id": job_id if meter_id is None else meter_id,
                    "serial_number": serial,
                    "connection_type": "tcp",
                    "host": "127.0.0.1",
                    "port": 4100,
                    "framing": "wrapper",
                    "timeout_s": 10,
                },
            }
            if object_map is not None:  # the meter's profile's map, as Odoo sends it
                self.jobs[job_id]["meter"]["object_map"] = object_map
            self.cond.notify_all()
            return job_id

    def job(self, job_id):
        with self.cond:
            return copy.deepcopy(self.jobs[job_id])

    def state(self, job_id):
        return self.job(job_id)["state"]

    def calls_of(self, method):
        with self.cond:
            return [args for name, args in self.calls if name == method]

    def start(self, port=None):
        """Listen on ``port`` (the previous one when restarting, else a free one)."""
        self.port = port or self.port or free_port()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                if self.path != "/jsonrpc":
                    self.send_error(404)
                    return
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                params = request["params"]
                try:
                    body = {
                        "result": fake.dispatch(params["service"], params["method"], params["args"])
                    }
                except FakeOdooError as exc:
                    body = {
                        "error": {
                            "code": 200,
                            "message": "Odoo Server Error",
                            "data": {
                                "name": exc.name,
                                "message": exc.message,
                                "debug": "Traceback ...",
                                "arguments": [],
                            },
                        }
                    }
                body.update(jsonrpc="2.0", id=request.get("id"))
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self):
        """Stop listening (connections are refused) while keeping the jobs."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None

    # -- RPC -----------------------------------------------------------------------------

    def dispatch(self, service, method, args):
        if service == "common" and method == "authenticate":
            db, login, key, _env = args
            ok = (db, login, key) == (self.db, self.login, self.api_key)
            return self.uid if ok else False
        if service != "object" or method != "execute_kw":
            raise FakeOdooError("builtins.NotImplementedError", f"{service}.{method}")
        db, uid, key, model, name, call_args, kwargs = args
        if (db, uid, key) != (self.db, self.uid, self.api_key):
            raise FakeOdooError("odoo.exceptions.AccessDenied", "Access Denied")
        if (
            model != MODEL
            or name not in METHODS
            or (name == "wait_for_jobs" and not self.has_wait_for_jobs)
        ):
            raise FakeOdooError(
                "builtins.AttributeError",
                f"The method '{name}' does not exist on the model '{model}'",
            )
        with self.cond:
            self.calls.append((name, copy.deepcopy(call_args)))
        return getattr(self, f"rpc_{name}")(*call_args, **kwargs)

    def _due(self, job, now):
        return (job["state"] == "pending" and job["next_attempt_at"] <= now) or (
            job["state"] == "claimed" and job["lease_until"] <= now
        )

    def _holds(self, job, bridge_id, now, attempt=None):
        """A live lease; or, naming its attempt, the job's last claim whose lease lapsed with
        no claim since (Odoo's rule for a bridge that could not reach it meanwhile)."""
        if job["state"] != "claimed" or job["bridge_id"] != bridge_id:
            return False
        if attempt is not None and attempt != job["attempt_count"]:
            return False
        return job["lease_until"] > now or attempt is not None

    def _held_job(self, job_id, bridge_id, attempt=None):
        job = self.jobs.get(job_id)
        if job is None or not self._holds(job, bridge_id, time.time(), attempt):
            raise FakeOdooError(
                "odoo.exceptions.UserError",
                f"Job {job_id} is not leased to bridge {bridge_id}; result refused.",
            )
        return job

    def rpc_claim(self, bridge_id, limit, lease_seconds, *options):
        """Odoo's claim: one job per meter (its first due one by priority), none of a meter
        under a live lease; with options (an Odoo that takes them, has_claim_options), only
        meters whose first due job is of job_types, none of busy_meter_ids; object_maps
        per_claim: each distinct map once."""
        if options and not self.has_claim_options:
            raise FakeOdooError(
                "builtins.TypeError",
                "SmartpmMeterJob.claim() takes from 2 to 4 positional arguments but 5 were given",
            )
        options = options[0] if options else {}
        if set(options) - {"job_types", "busy_meter_ids", "object_maps"}:
            raise FakeOdooError("odoo.exceptions.UserError", "claim: unknown option")
        job_types = options.get("job_types")
        skip = set(options.get("busy_meter_ids") or ())
        with self.cond:
            now = time.time()
            live = {
                j["meter"]["id"]
                for j in self.jobs.values()
                if j["state"] == "claimed" and j["lease_until"] > now
            }
            heads = {}
            for job in sorted(self.jobs.values(), key=lambda j: (j["priority"], j["id"])):
                if self._due(job, now):
                    heads.setdefault(job["meter"]["id"], job)
            due = [
                j
                for j in self.jobs.values()
                if heads.get(j["meter"]["id"]) is j
                and j["meter"]["id"] not in live | skip
                and (not job_types or j["job_type"] in job_types)
            ][:limit]
            out = []
            for job in due:
                job.update(state="claimed", bridge_id=bridge_id, lease_until=now + lease_seconds)
                job["attempt_count"] += 1
                out.append(
                    {
                        k: copy.deepcopy(job[k])
                        for k in (
                            "id",
                            "job_type",
                            "payload",
                            "attempt_count",
                            "max_attempts",
                            "idempotency_key",
                            "priority",
                            "meter",
                        )
                    }
                )
            if (options or {}).get("object_maps") == "per_claim":
                sent = set()  # each distinct map in the first job of its key only
                for job in out:
                    raw = job["meter"].get("object_map")
                    if raw is None:
                        continue
                    text = json.dumps(raw, sort_keys=True)
                    key = job["meter"]["object_map_key"] = hashlib.sha256(text.encode()).hexdigest()
                    if key in sent:
                        del job["meter"]["object_map"]
                    sent.add(key)
            return out

    def rpc_complete(self, job_id, bridge_id, result, attempt=None):
        with self.cond:
            job = self._held_job(job_id, bridge_id, attempt)
            job.update(state="done", result=result, lease_until=0.0)
            return True

    def rpc_fail(self, job_id, bridge_id, error, retryable, invocation_counter=None, attempt=None):
        with self.cond:
            job = self._held_job(job_id, bridge_id, attempt)
            if invocation_counter is not None:
                job["meter"]["invocation_counter"] = invocation_counter
            job.update(error=error, lease_until=0.0, bridge_id=None)
            if retryable and job["attempt_count"] < job["max_attempts"]:
                job.update(state="pending", next_attempt_at=time.time() + self.retry_delay)
                self.cond.notify_all()
                return {"state": "pending", "next_attempt_at": _iso(job["next_attempt_at"])}
            job["state"] = "failed"
            return {"state": "failed", "next_attempt_at": False}

    def rpc_report(self, bridge_id, reports):
        """Batched complete/fail, each refused on its own like Odoo's savepoints do; recorded
        as the complete/fail calls they stand for, so tests read them the same way."""
        answers = []
        for report in reports:
            job_id = report["job_id"]
            try:
                attempt = report.get("attempt")
                with self.cond:
                    job = self.jobs.get(job_id)
                    if attempt is not None and job and attempt != job["attempt_count"]:
                        raise FakeOdooError(
                            "odoo.exceptions.UserError",
                            f"job {job_id}: the report is of attempt {attempt}",
                        )
                if "result" in report:
                    args = [job_id, bridge_id, report["result"]]
                    with self.cond:
                        self.calls.append(("complete", copy.deepcopy(args)))
                    self.rpc_complete(*args, attempt=attempt)
                    answers.append({"job_id": job_id, "ok": True, "state": "done"})
                else:
                    args = [job_id, bridge_id, report["error"], report["retryable"]]
                    if "invocation_counter" in report:
                        args.append(report["invocation_counter"])
                    with self.cond:
                        self.calls.append(("fail", copy.deepcopy(args)))
                    answer = self.rpc_fail(*args, attempt=attempt)
                    answers.append({"job_id": job_id, "ok": True, **answer})
            except FakeOdooError as exc:
                answers.append({"job_id": job_id, "ok": False, "refused": True, "error": str(exc)})
        return answers

    def rpc_extend_lease(self, job_ids, bridge_id, lease_seconds, attempts=None):
        with self.cond:
            now = time.time()
            kept = []
            attempts = attempts if attempts and len(attempts) == len(job_ids) else None
            for i, job_id in enumerate(job_ids):
                job = self.jobs.get(job_id)
                attempt = attempts[i] if attempts else None
                if job and self._holds(job, bridge_id, now, attempt):
                    job["lease_until"] = now + lease_seconds
                    kept.append(job_id)
            return kept

    def rpc_release(self, job_ids, bridge_id):
        with self.cond:
            now = time.time()
            released = []
            for job_id in job_ids:
                job = self.jobs.get(job_id)
                if job and self._holds(job, bridge_id, now):
                    # Untouched: the attempt it was claimed for does not count.
                    job.update(state="pending", bridge_id=None, lease_until=0.0)
                    job["attempt_count"] -= 1
                    released.append(job_id)
            self.cond.notify_all()
            return released

    def rpc_ingest(self, bridge_id, readings, events):
        with self.cond:
            new_r = new_e = 0
            for r in readings:
                key = json.dumps(r, sort_keys=True)
                new_r += key not in self.readings
                self.readings[key] = r
            for e in events:
                key = json.dumps(e, sort_keys=True)
                new_e += key not in self.events
                self.events[key] = e
            return {"readings": new_r, "events": new_e}

    def rpc_wait_for_jobs(self, timeout):
        deadline = time.time() + min(float(timeout), 30.0)
        with self.cond:
            while True:
                now = time.time()
                if any(self._due(j, now) for j in self.jobs.values()):
                    return True
                if now >= deadline:
                    return False
                # Short waits also catch leases that expire without a notify.
                self.cond.wait(min(0.05, deadline - now))


@contextlib.contextmanager
def fake_odoo(**kwargs):
    fake = FakeOdoo(**kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()


def expire_lease(fake, job_id, other_bridge="other-bridge"):
    """Let the lease lapse and another bridge claim the job, as after a long outage."""
    with fake.cond:
        job = fake.jobs[job_id]
        job.update(bridge_id=other_bridge, lease_until=time.time() + 3600)
        job["attempt_count"] += 1


def gated_executor():
    """An executor whose jobs with payload ``gate`` hold their worker until ``gate`` is set
    (``reading`` says one started); ``order`` lists the job ids in the order they ended."""
    gate, reading, order = threading.Event(), threading.Event(), []

    def executor(job, *, deadline_s=None):
        if job["payload"].get("gate"):
            reading.set()
            gate.wait(20)  # a read on a meter that takes its time
        order.append(job["id"])
        return {"meter_time": "2025-01-01T00:00:00+00:00"}

    return executor, gate, reading, order


@contextlib.contextmanager
def running(settings, executor):
    """A BridgeService on its own thread for the block, stopped (and joined) after it."""
    from meter_bridge.service import BridgeService

    service = BridgeService(settings, executor=executor)
    thread = threading.Thread(target=service.run, name="test-bridge", daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.request_stop()
        thread.join(10)
        assert not thread.is_alive(), "service did not stop"
