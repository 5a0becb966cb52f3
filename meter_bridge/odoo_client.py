"""Client side of the job protocol (docs/job-protocol.md) over Odoo's ``/jsonrpc``.

Standard library only. Two exception families matter to the caller:

- :class:`OdooUnreachable`: no usable answer (connection refused, timeout, proxy error,
  garbage). Nothing is known about the call's effect; retry later.
- :class:`OdooError`: Odoo answered with an error object (a refusal, an access error, a
  server bug). It carries Odoo's own message and exception name.
"""

import http.client
import itertools
import json
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request

JOB_MODEL = "smartpm.meter.job"


class OdooUnreachable(Exception):
    """Odoo could not be reached or gave no JSON-RPC answer."""


class OdooError(Exception):
    """Odoo answered a call with a JSON-RPC error."""

    def __init__(self, message, name="", code=None, debug=""):
        super().__init__(message)
        self.message = message
        self.name = name  # e.g. "odoo.exceptions.UserError"
        self.code = code
        self.debug = debug

    @property
    def is_refusal(self):
        """True when Odoo deliberately refused (UserError, AccessError, ...).

        Such a call fails the same way when repeated; anything else (a serialization
        failure, a bug answered as a Python exception) may pass on a retry.
        """
        return self.name.startswith("odoo.exceptions.")


class OdooAuthError(OdooError):
    """Login or API key refused."""


class OdooClient:
    """Calls ``smartpm.meter.job`` methods as the bridge user; thread-safe."""

    def __init__(self, url, db, login, api_key, timeout=30.0):
        self.url = url.rstrip("/") + "/jsonrpc"
        self.db = db
        self.login = login
        self.api_key = api_key
        self.timeout = timeout
        self._uid = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        parts = urllib.parse.urlsplit(self.url)
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._path = parts.path or "/jsonrpc"
        # urllib for what http.client does not do alone (an HTTP proxy from the
        # environment, another scheme); else one connection per thread (below)
        self._direct = self._scheme in ("http", "https") and not _proxied(self.url)
        self._local = threading.local()

    # -- transport ---------------------------------------------------------------------

    def call(self, service, method, *args, timeout=None):
        """One JSON-RPC ``call`` of ``service.method(*args)``; returns its result."""
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "method": "call",
                "params": {"service": service, "method": method, "args": list(args)},
                "id": next(self._ids),
            }
        ).encode()
        timeout = self.timeout if timeout is None else timeout
        try:
            raw = self._post(body, timeout) if self._direct else self._post_urllib(body, timeout)
        except urllib.error.HTTPError as exc:
            # Odoo answers JSON-RPC errors with 200; another status is a proxy or a wrong URL.
            raise OdooUnreachable(f"{self.url}: HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            if isinstance(reason, socket.timeout) or isinstance(exc, TimeoutError):
                reason = f"timed out after {timeout:g} s"
            raise OdooUnreachable(f"{self.url}: {reason}") from exc
        try:
            answer = json.loads(raw)
        except ValueError as exc:
            raise OdooUnreachable(f"{self.url}: answer is not JSON: {raw[:80]!r}") from exc
        if not isinstance(answer, dict):
            raise OdooUnreachable(f"{self.url}: unexpected answer {raw[:80]!r}")
        if answer.get("error"):
            raise _error_from(answer["error"])
        return answer.get("result")

    def _post_urllib(self, body, timeout):
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()

    def _connection(self, timeout):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = (
                http.client.HTTPSConnection
                if self._scheme == "https"
                else http.client.HTTPConnection
            )
            conn = self._local.conn = cls(self._host, self._port, timeout=timeout)
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def _post(self, body, timeout):
        """POST on this thread's connection, without urllib's opener (a fifth of an RPC's
        CPU on the bridge). Odoo's own server answers HTTP/1.0 and closes: http.client then
        connects again for the next call; a proxy that keeps the connection alive saves
        that. A kept connection the server closed while idle fails before any answer:
        sent again once on a new one (the server never read it)."""
        headers = {"Content-Type": "application/json"}
        for attempt in (0, 1):
            conn = self._connection(timeout)
            reused = conn.sock is not None
            try:
                conn.request("POST", self._path, body, headers)
                response = conn.getresponse()
                raw = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if reused and attempt == 0:
                    continue
                raise
            except BaseException:
                conn.close()  # the connection's state is unknown: never reuse it
                raise
            if response.status != 200:
                conn.close()
                raise urllib.error.HTTPError(
                    self.url, response.status, response.reason, response.headers, None
                )
            return raw
        raise AssertionError("unreachable")  # pragma: no cover

    # -- authentication ----------------------------------------------------------------

    def authenticate(self):
        """Return the uid of ``login`` authenticated by its API key (cached)."""
        uid = self.call("common", "authenticate", self.db, self.login, self.api_key, {})
        if not uid:
            raise OdooAuthError(
                f"login {self.login!r} with this API key refused by database {self.db!r}",
                name="AccessDenied",
            )
        with self._lock:
            self._uid = uid
        return uid

    @property
    def uid(self):
        return self._uid

    def execute_kw(self, model, method, args, kwargs=None, timeout=None):
        uid = self._uid or self.authenticate()
        try:
            return self.call(
                "object",
                "execute_kw",
                self.db,
                uid,
                self.api_key,
                model,
                method,
                list(args),
                kwargs or {},
                timeout=timeout,
            )
        except OdooError as exc:
            if "AccessDenied" in exc.name:
                # Key revoked or database restored: authenticate again on the next call.
                with self._lock:
                    self._uid = None
            raise

    def _job(self, method, *args, timeout=None):
        return self.execute_kw(JOB_MODEL, method, args, timeout=timeout)

    # -- the job protocol --------------------------------------------------------------

    def claim(self, bridge_id, limit, lease_seconds, options=None):
        """Lease up to ``limit`` due jobs to ``bridge_id``; returns job dicts.

        options: claim options (docs/job-protocol.md: ``job_types``, ``busy_meter_ids``,
        ``object_maps``), sent only when not empty, so that an Odoo without the argument
        still takes the claims that need none. An older Odoo refuses them: the service asks
        again without them, once (BridgeService._claim_rpc). The answer's shape tells the
        caller what was honoured (object_map_key or not)."""
        extra = [dict(options)] if options else []
        return self._job("claim", bridge_id, int(limit), int(lease_seconds), *extra) or []

    def complete(self, job_id, bridge_id, result):
        return self._job("complete", job_id, bridge_id, result)

    def fail(self, job_id, bridge_id, error, retryable, invocation_counter=None):
        """Returns ``{"state": "pending" | "failed", "next_attempt_at": ...}``.

        invocation_counter: the last HLS-GMAC counter the failed job used, if it got that
        far (sent only then, so an Odoo without the argument still takes the report)."""
        extra = [int(invocation_counter)] if invocation_counter is not None else []
        return self._job("fail", job_id, bridge_id, str(error), bool(retryable), *extra)

    def report(self, bridge_id, reports):
        """Several reports at once: [{"job_id", "result"} | {"job_id", "error", "retryable"}]
        -> [{"job_id", "ok", "refused"?, "error"?, "state"?, ...}] in the same order."""
        return self._job("report", bridge_id, list(reports))

    def extend_lease(self, job_ids, bridge_id, lease_seconds, attempts=None):
        """Returns the ids still held by ``bridge_id``.

        attempts: each job's ``attempt_count`` in its claim, in the order of ``job_ids``: a
        job claimed again since is not renewed, and a lease that lapsed with no claim since
        (Odoo was unreachable for longer than the lease left) is re-taken."""
        extra = [list(attempts)] if attempts is not None else []
        return self._job("extend_lease", list(job_ids), bridge_id, int(lease_seconds), *extra) or []

    def release(self, job_ids, bridge_id):
        """Returns the ids put back to pending."""
        return self._job("release", list(job_ids), bridge_id) or []

    def ingest(self, bridge_id, readings, events):
        """Returns ``{"readings": n_new, "events": n_new}``."""
        return self._job("ingest", bridge_id, list(readings), list(events))

    def push_ingest(self, bridge_id, messages):
        """Ciphered pushes received by the listener: [{"system_title", "apdu" (hex),
        "received_at"}] -> one answer per message, in order: {"ok": true, "serial",
        "events", "readings"} or {"ok": false, "error"} (docs/job-protocol.md, "Push")."""
        return self._job("push_ingest", bridge_id, list(messages)) or []

    def wait_for_jobs(self, timeout):
        """Long-poll: True as soon as a job may be due, False after ``timeout`` (<= 30 s)."""
        timeout = max(0.0, min(float(timeout), 30.0))
        if timeout.is_integer():
            timeout = int(timeout)
        # The HTTP timeout must outlast the server-side wait.
        return bool(self._job("wait_for_jobs", timeout, timeout=timeout + self.timeout))


def _proxied(url):
    """True when urllib would send ``url`` through a proxy of the environment."""
    parts = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies()
    return bool(proxies.get(parts.scheme)) and not urllib.request.proxy_bypass(parts.hostname or "")


def _error_from(error):
    """Turn Odoo's JSON-RPC error object into an OdooError with Odoo's message."""
    if not isinstance(error, dict):
        return OdooError(str(error))
    data = error.get("data") if isinstance(error.get("data"), dict) else {}
    message = data.get("message") or error.get("message") or "Odoo error"
    name = data.get("name") or ""
    cls = OdooAuthError if "AccessDenied" in name else OdooError
    return cls(message, name=name, code=error.get("code"), debug=data.get("debug") or "")
