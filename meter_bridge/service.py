"""The bridge's worker loop: claim jobs from Odoo, run them on meters, report results.

One coordinating thread (the caller of :meth:`BridgeService.run`) owns all state and makes
every Odoo call except the long-poll, which runs in a helper thread so that it never delays
reports or lease renewals. Jobs run in worker threads because the executor blocks on
sockets (a PriorityPool: credit jobs ahead of the others waiting for a worker). The bridge
keeps nothing that Odoo does not also hold: a result that cannot be reported (Odoo
unreachable) is kept and reported when Odoo answers again, naming its claim (attempt), which
Odoo takes even after the lease lapsed as long as no one claimed the job since; if another
bridge did, Odoo re-runs the job (every job is idempotent).
"""

import heapq
import importlib
import itertools
import json
import logging
import math
import random
import threading
import time
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass

from .errors import JobError
from .log import event
from .object_map import ObjectMapCache
from .odoo_client import OdooAuthError, OdooClient, OdooError, OdooUnreachable

log = logging.getLogger("meter_bridge.service")

DEFAULT_EXECUTOR = "meter_bridge.executors:execute_job"
BACKOFF_START = 0.5  # seconds; doubled on each failed attempt up to backoff_max
REPORT_ATTEMPTS = 5  # for errors that are not a deliberate refusal by Odoo
REPORT_BATCH = 100  # reports per `report` call
# Seconds between long-polls that found nothing to claim, so a server that answers at once
# can't spin us. A long-poll whose wake-up led to claimed jobs is followed by the next at once:
# waiting out the gap there held the next purchase's credit back by up to a second.
MIN_POLL_GAP = 1.0
REPORT_DELAY = 0.05  # seconds a result may wait for others to share its `report` call
BUSY_POLL = 1.0  # seconds between claims while jobs run and none is due (no long-poll then)
# sys.setswitchinterval of a bridge process (`meter-bridge run`; CPython's default 0.005).
# Hundreds of worker threads wait on slow meters; when answers come in together, each
# thread waiting for the GIL wakes every switch interval to ask for it: at a thousand in
# flight the bridge spent more of its CPU in the kernel switching threads than in Python
# (bench/RESULTS.md, slow links). The threads hold the GIL for about a millisecond per
# answer and release it at their next socket call, so the longer interval only bounds the
# rare long holder (a big profile decoded) more loosely.
GIL_SWITCH_INTERVAL = 0.05
GIL_SWITCH_MIN_CONCURRENCY = 64  # below, the bridge keeps CPython's switch interval
# Asked of every claim (docs/job-protocol.md): each profile's object map once per claim. An
# Odoo that does not take options gets the claim without them (BridgeService._claim_rpc).
CLAIM_OPTIONS = {"object_maps": "per_claim"}


def load_executor(spec=""):
    """Return the job executor: ``module:function``, by default the DLMS executor.

    Imported here, not at module import, so that the service runs (and is tested) without
    the DLMS layer.
    """
    module_name, _, func_name = (spec or DEFAULT_EXECUTOR).partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, func_name)


# Jobs that move credit onto a meter: ahead of every other job waiting for a worker, so that
# a purchase for a slow meter does not wait behind a reading round (Odoo hands them out
# first too: job priority), and the only ones the credit lane's claim asks for (Odoo's
# job_queue.LANE_JOB_TYPES, the same set: a test compares them). Others keep Odoo's
# priority if it sends one, then claim order.
CREDIT_JOB_TYPES = frozenset({"add_credit", "clear_credit", "take_emergency_credit"})


def _options_unknown(exc, options=()):
    """Odoo refused the claim's options as an argument it does not take: an Odoo from before
    them (a TypeError: too many positional arguments) or one without one of the keys (its
    refusal names the key quoted, translated or not; a bad value names it unquoted)."""
    message, name = exc.message or "", exc.name or ""
    if "TypeError" in name and "argument" in message:
        return True
    return "UserError" in name and (
        "unknown option" in message or any(repr(str(key)) in message for key in options)
    )


def job_rank(job):
    """Sort key of a job waiting for a worker: lower runs first. Credit jobs before all
    others, then Odoo's priority (lower first, as Odoo claims them)."""
    priority = job.get("priority")
    if isinstance(priority, bool) or not isinstance(priority, (int, float)):
        priority = 50  # Odoo's default
    return (0 if job.get("job_type") in CREDIT_JOB_TYPES else 1, priority)


class PriorityPool:
    """ThreadPoolExecutor's submit/shutdown with a priority queue: the waiting call of the
    lowest rank runs first (FIFO within a rank). Futures are plain concurrent.futures ones:
    cancel() works until a worker takes the call. Threads start on demand up to `workers`
    (the bridge's in-flight limit) plus `reserved`: threads only `urgent` calls (credit
    jobs) may use, so that a purchase starts at once even while every one of the `workers`
    reads a slow meter. A thread waiting on its meter's socket costs memory, not CPU."""

    def __init__(self, workers, thread_name_prefix="mb-job", reserved=0):
        self._workers = workers
        self._reserved = reserved
        self._prefix = thread_name_prefix
        self._heap = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._threads = []
        self._idle = 0
        self._running = 0  # calls that are not urgent, running: at most `workers`
        self._waiting = [0, 0]  # urgent, others: calls in the heap
        self._shutdown = False

    def submit(self, fn, *args, rank=0, urgent=False):
        future = Future()
        with self._cond:
            if self._shutdown:
                raise RuntimeError("cannot submit after shutdown")
            # urgent calls sort before all others, whatever their rank
            heapq.heappush(self._heap, ((not urgent, rank), next(self._seq), future, fn, args))
            self._waiting[not urgent] += 1
            # A notified thread counts itself out of _idle only when it wakes: each idle
            # thread takes one of the waiting calls, a new thread (up to the limit) the rest.
            # Notifying alone would wake the same idle thread for a whole batch.
            runnable = self._runnable()
            if self._idle and (urgent or self._running < self._workers):
                self._cond.notify()
            if runnable > self._idle and len(self._threads) < self._workers + self._reserved:
                t = threading.Thread(
                    target=self._work, name=f"{self._prefix}_{len(self._threads)}", daemon=True
                )
                self._threads.append(t)
                t.start()
        return future

    def _runnable(self):
        """Waiting calls a thread may take now: every urgent one, the others up to `workers`
        running."""
        return self._waiting[0] + min(self._waiting[1], max(0, self._workers - self._running))

    def _work(self):
        while True:
            with self._cond:
                while not (
                    self._heap and (not self._heap[0][0][0] or self._running < self._workers)
                ):
                    if self._shutdown and not self._heap:
                        return
                    self._idle += 1
                    self._cond.wait()
                    self._idle -= 1
                (other, _), _, future, fn, args = heapq.heappop(self._heap)
                self._waiting[other] -= 1
                self._running += other
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn(*args)
                    except BaseException as exc:  # noqa: B036 - handed to the future, as the stdlib does
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
            finally:
                if other:
                    with self._cond:
                        self._running -= 1
                        if self._heap and self._idle:
                            self._cond.notify()  # a call waiting for a worker may run now

    def shutdown(self, wait=True, cancel_futures=False):
        with self._cond:
            self._shutdown = True
            if cancel_futures:
                for _, _, future, _, _ in self._heap:
                    future.cancel()
                self._heap = []
                self._waiting = [0, 0]
            self._cond.notify_all()
            threads = list(self._threads)
        if wait:
            for t in threads:
                t.join()


def _meter_id_of(job):
    meter_id = (job.get("meter") or {}).get("id")
    return meter_id if isinstance(meter_id, int) and not isinstance(meter_id, bool) else None


def _attempt_of(job):
    """The claim's attempt_count, as Odoo handed it out; None if it sent none."""
    attempt = job.get("attempt_count")
    return attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None


@dataclass(eq=False)
class HeldJob:
    """A job this bridge holds a lease on, from claim until its result is reported."""

    job: dict
    future: object = None
    report: tuple = None  # ("complete", result) | ("fail", error, retryable[, counter])
    report_attempts: int = 0
    next_report_at: float = 0.0
    lease_lost: bool = False
    ready_at: float = 0.0  # when the result came back from the worker
    started_at: float = None  # set by the worker thread
    duration_s: float = None  # the executor's run, set by the worker thread
    overdue: bool = False

    @property
    def id(self):
        return self.job["id"]

    @property
    def meter(self):
        meter = self.job.get("meter") or {}
        return meter.get("serial_number")

    def fields(self):
        return {"job_id": self.id, "meter": self.meter, "job_type": self.job.get("job_type")}


class BridgeService:
    def __init__(
        self, settings, client=None, executor=None, *, clock=time.monotonic, rng=random.random
    ):
        self.settings = settings
        self.bridge_id = settings.bridge_id
        self.client = client or OdooClient(
            settings.odoo_url,
            settings.db,
            settings.login,
            settings.api_key,
            timeout=settings.rpc_timeout,
        )
        self._executor = executor or load_executor(settings.executor)
        self._clock = clock
        self._rng = rng
        # the credit lane: workers only credit jobs may use (PriorityPool reserved), and as
        # many more jobs claimed; its claim asks Odoo for meters whose next job is a credit
        # job only (job_types). An Odoo without the claim's options hands out whatever is
        # due instead: reads it hands out wait for a worker, as prefetched ones.
        self._capacity = settings.concurrency + settings.prefetch
        self._claim_options_ok = True  # False once Odoo refused the claim's options
        self._next_lane_claim = 0.0  # a claim for the credit lane alone: at most every BUSY_POLL
        # Each RPC costs Odoo far more than a job's own writes: claim in batches once half
        # the prefetched jobs have started (at once when a worker would idle), and let
        # results wait briefly for others while jobs are still running.
        self._claim_min = max(1, min(settings.batch_size, (settings.prefetch + 1) // 2))
        self._report_min = max(1, settings.concurrency // 2)
        # A finished job wakes the loop only when the loop has something to do with it:
        # without prefetch every free worker wants a claim at once; with it, the loop waits
        # for a batch of results anyway. A wake per job is a GIL hand-off: at hundreds of
        # jobs a second py-spy found a sixth of the bridge's GIL time in them.
        self._wake_batch = 1 if not settings.prefetch else min(self._claim_min, self._report_min)
        self._unseen = 0  # jobs finished since the loop last looked
        self._armed_until = 0.0  # the loop wakes by itself by then (0: it is not waiting)
        self._extend_every = max(1.0, settings.lease_seconds / 3.0)
        self._held = {}  # job id -> HeldJob
        self._to_release = []  # HeldJobs cancelled before they started
        self._wake = threading.Event()
        self._stop_requested = False
        self._stop_now = False
        self._stopping = False
        self._stop_deadline = math.inf
        self._down_until = 0.0
        self._backoff = 0.0
        self._next_claim = 0.0
        self._next_extend = math.inf
        self._long_poll_ok = settings.long_poll_timeout > 0
        self._poller = None
        self._poll_fired = False
        self._poll_error = None
        self._last_poll_start = -math.inf
        self._claimed_since_poll = False  # jobs came since the last long-poll began
        self._pool = None
        self._object_maps = ObjectMapCache()
        self.stats = Counter()
        self.exit_code = 0
        self.abandoned = 0  # jobs still running when the grace period ended

    # -- control -------------------------------------------------------------------------

    def request_stop(self, now=False):
        """Stop claiming and wind down; a second request (or ``now``) skips the grace."""
        if self._stop_requested:
            now = True
        self._stop_requested = True
        if now:
            self._stop_now = True
        self._wake.set()

    def signal_handler(self, signum, frame):
        # Event.set() takes a lock the interrupted main thread may hold: set it from a thread.
        threading.Thread(target=self.request_stop, name="mb-stop", daemon=True).start()

    def run(self):
        """Work until stopped; return the exit code (0 clean, 1 something left behind)."""
        event(
            log,
            logging.INFO,
            "bridge_started",
            bridge_id=self.bridge_id,
            odoo_url=self.settings.odoo_url,
            db=self.settings.db,
            concurrency=self.settings.concurrency,
            lease_seconds=self.settings.lease_seconds,
        )
        self._pool = PriorityPool(
            self.settings.concurrency,
            thread_name_prefix="mb-job",
            reserved=self.settings.credit_lane,
        )
        try:
            while not self._loop_once():
                pass
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)
        event(
            log,
            logging.INFO,
            "bridge_stopped",
            bridge_id=self.bridge_id,
            exit_code=self.exit_code,
            **dict(self.stats),
        )
        return self.exit_code

    # -- the loop ------------------------------------------------------------------------

    def _loop_once(self):
        """One pass; True when the service has stopped."""
        now = self._clock()
        if self._poll_fired:
            self._poll_fired = False
            self._next_claim = min(self._next_claim, now)
            if self._poll_error is not None:
                event(
                    log,
                    logging.WARNING,
                    "long_poll_unavailable",
                    error=str(self._poll_error),
                    poll_interval=self.settings.poll_interval,
                )
                self._poll_error = None
        self._collect_finished(now)
        if self._stop_requested and not self._stopping:
            self._begin_stop(now)
        busy = False
        if now >= self._down_until:
            try:
                self._flush_reports(now)
                self._release()
                self._extend_leases(now)
                busy = self._claim(now)
            except OdooAuthError as exc:
                self._mark_down(now, exc, auth=True)
            except OdooUnreachable as exc:
                self._mark_down(now, exc)
        if self._stopping and self._stop_finished(self._clock()):
            return True
        if not busy:
            self._wait(now)
        return False

    def _wait(self, now):
        deadlines = [now + 60.0]
        if now < self._down_until:
            deadlines.append(self._down_until)
        else:
            deadlines += [
                max(h.next_report_at, h.ready_at + REPORT_DELAY)
                for h in self._held.values()
                if h.report
            ]
            if self._held:
                deadlines.append(self._next_extend)
            if not self._stopping and not self._claim_wanted() and self._lane_free():
                deadlines.append(max(self._next_claim, self._next_lane_claim))
            elif not self._stopping and self._claim_wanted():
                if self._next_claim < math.inf:
                    deadlines.append(self._next_claim)
                elif self._poller is not None and self._poller.is_alive():
                    deadlines.append(
                        self._last_poll_start
                        + self.settings.long_poll_timeout
                        + self.settings.rpc_timeout
                    )
                elif self._claimed_since_poll or now >= self._last_poll_start + MIN_POLL_GAP:
                    self._start_long_poll(now)
                else:
                    deadlines.append(self._last_poll_start + MIN_POLL_GAP)
        if self._stopping:
            deadlines.append(self._stop_deadline)
        timeout = min(deadlines) - now
        if timeout > 0:
            self._armed_until = now + timeout
            self._wake.wait(timeout)
            self._armed_until = 0.0
        self._wake.clear()

    def _rpc(self, method, *args):
        """Call the client; any answer, even an error, proves Odoo is reachable."""
        self.stats["rpc_calls"] += 1  # each costs Odoo an API-key check: logged at stop
        try:
            result = method(*args)
        except OdooUnreachable:
            raise
        except OdooError:
            self._reachable()
            raise
        self._reachable()
        return result

    def _reachable(self):
        if self._backoff:
            event(log, logging.INFO, "odoo_reachable", bridge_id=self.bridge_id)
            self._backoff = 0.0

    def _mark_down(self, now, exc, auth=False):
        self._backoff = min(self.settings.backoff_max, max(BACKOFF_START, self._backoff * 2))
        if auth:  # a wrong key is not fixed in a second
            self._backoff = self.settings.backoff_max
        # Jitter: bridges restarted together must not hammer Odoo in step.
        delay = min(self.settings.backoff_max, self._backoff * (0.5 + self._rng()))
        if self._held and not auth:
            # Leases are short and run on in Odoo while it is away: a bridge backing off
            # past them would lose the jobs it is running to another bridge (an Odoo
            # restart of a few seconds is enough). Try again in time to renew them.
            delay = min(delay, self._extend_every / 2.0)
        self._down_until = now + delay
        self.stats["odoo_errors"] += 1
        event(
            log,
            logging.ERROR if auth else logging.WARNING,
            "odoo_auth_failed" if auth else "odoo_unreachable",
            error=str(exc),
            retry_in_s=round(delay, 2),
            held=len(self._held),
        )

    # -- claiming and running ------------------------------------------------------------

    def _claim(self, now):
        """Claim up to the free slots; True when more jobs may be waiting right now."""
        if self._stopping or now < self._next_claim:
            return False
        options = dict(CLAIM_OPTIONS)
        if self._claim_wanted():
            limit = min(self._capacity - len(self._held), self.settings.batch_size)
        elif self._lane_free() and now >= self._next_lane_claim:
            # Every worker busy: a claim for the credit lane, so that a purchase does not
            # wait for a read to end: meters whose next job is a credit job only (an Odoo
            # without options hands out whatever is due: reads wait for a worker).
            limit = self._lane_free()
            self._next_lane_claim = now + BUSY_POLL
            options["job_types"] = sorted(CREDIT_JOB_TYPES)
        else:
            return False
        busy = self._busy_meter_ids()
        if busy:
            # one association per meter: not a meter this bridge still runs a job on whose
            # lease lapsed (a stuck job left to lapse, an Odoo unreachable for a while)
            options["busy_meter_ids"] = busy
        sent = time.monotonic()  # the lease runs from Odoo's answer: a little after this
        jobs = self._claim_rpc(limit, options)
        self._object_maps.resolve(jobs)  # each profile's map parsed once in this claim
        in_work = self._meters_in_work() if jobs else set()
        for job in jobs:
            self._start(job, sent, in_work)
        self._release()  # jobs of a meter busy here: given back at once
        if jobs:
            self._claimed_since_poll = True
            self.stats["claimed"] += len(jobs)
            event(
                log, logging.DEBUG, "jobs_claimed", count=len(jobs), job_ids=[j["id"] for j in jobs]
            )
            self._next_extend = min(self._next_extend, now + self._extend_every)
        if len(jobs) >= limit:
            self._next_claim = now
            return True
        # Nothing more is due: wait for the long-poll to say so, or poll. A long-poll holds
        # an Odoo worker for its whole wait (prefork): only an idle bridge may take one. A
        # busy bridge asks again after its next results, or within BUSY_POLL.
        if self._held:
            self._next_claim = now + min(BUSY_POLL, self.settings.poll_interval)
        elif self._long_poll_ok:
            self._next_claim = math.inf
        else:
            self._next_claim = now + self.settings.poll_interval
        return False

    def _claim_rpc(self, limit, options):
        """The claim call; an Odoo that does not take the options (older) is asked again
        without them, once, and never sent them again."""
        if not self._claim_options_ok:
            options = {}
        try:
            return self._rpc(
                self.client.claim, self.bridge_id, limit, self.settings.lease_seconds, options
            )
        except OdooAuthError:
            raise
        except OdooError as exc:
            if not options or not _options_unknown(exc, options):
                raise
            self._claim_options_ok = False
            event(
                log,
                logging.WARNING,
                "claim_options_unsupported",
                error=exc.message,
                options=sorted(options),
            )
        return self._rpc(self.client.claim, self.bridge_id, limit, self.settings.lease_seconds)

    def _busy_meter_ids(self):
        """Meters this bridge still runs (or is about to run) a job on whose lease may have
        lapsed in Odoo: a stuck job no longer renewed, a lost lease, a lease run out while
        Odoo was unreachable. Odoo hands out no job of a meter under a live lease anyway."""
        mono = time.monotonic()
        meters = set()
        for held in self._held.values():
            if held.report is not None or held.future is None or held.future.cancelled():
                continue
            if held.overdue or held.lease_lost or held.job.get("lease_deadline", 0) <= mono:
                meter_id = _meter_id_of(held.job)
                if meter_id is not None:
                    meters.add(meter_id)
        return sorted(meters)

    def _meters_in_work(self):
        return {
            _meter_id_of(h.job)
            for h in self._held.values()
            if h.report is None and h.future is not None and not h.future.cancelled()
        }

    def _claim_wanted(self):
        free = self._capacity - len(self._held)
        # wait for a batch of free slots unless a worker would otherwise idle
        return free >= self._claim_min or (free > 0 and self._in_work() < self.settings.concurrency)

    def _lane_free(self):
        """Jobs a claim for the credit lane may take: its free workers, within as many
        slots above the capacity (0 without a lane)."""
        lane = self.settings.credit_lane
        if not lane:
            return 0
        if not self._claim_options_ok and any(h.overdue for h in self._held.values()):
            # a job stuck past its deadline is left to lapse for a healthy bridge: an Odoo
            # that does not take busy_meter_ids would hand it back to the lane's claim
            return 0
        room = self._capacity + lane - len(self._held)
        return max(0, min(room, lane - self._credit_in_work()))

    def _credit_in_work(self):
        """Credit jobs running or waiting for a worker."""
        return sum(
            1
            for h in self._held.values()
            if h.report is None and h.job.get("job_type") in CREDIT_JOB_TYPES
        )

    def _in_work(self):
        """Jobs running or waiting for a worker."""
        return sum(1 for h in self._held.values() if h.report is None)

    def _lease_granted(self, job):
        granted = job.get("lease_seconds")
        if isinstance(granted, bool) or not isinstance(granted, (int, float)) or granted <= 0:
            granted = self.settings.lease_seconds  # an Odoo that does not say: what we asked for
        return min(granted, self.settings.lease_seconds)

    def _start(self, job, sent=None, in_work=()):
        """Run a claimed job. in_work: the meters of the jobs running or waiting here (the
        job's meter is added once it is submitted)."""
        if job["id"] in self._held:  # our own lease handed back after it expired
            # the run still going reports for the claim now held (Odoo refuses a report
            # of an attempt that is over)
            self._held[job["id"]].job["attempt_count"] = job.get("attempt_count")
            return
        meter_id = _meter_id_of(job)
        if meter_id is not None and meter_id in in_work:
            # A meter this bridge still runs a job on (an Odoo that does not take
            # busy_meter_ids handed out its next job after the first one's lease lapsed):
            # a second association on it would fail or collide. Given back unstarted.
            event(log, logging.WARNING, "job_meter_busy_released", job_id=job["id"])
            self.stats["meter_busy_released"] += 1
            self._to_release.append(HeldJob(job))
            return
        # Where the executor checks its lease right before an irreversible step (a credit
        # token's ACTION): on time.monotonic(), whatever clock the loop uses.
        job["lease_deadline"] = (time.monotonic() if sent is None else sent) + (
            self._lease_granted(job)
        )
        held = HeldJob(job)
        self._held[held.id] = held
        held.future = self._pool.submit(
            self._execute,
            held,
            rank=job_rank(job),
            urgent=job.get("job_type") in CREDIT_JOB_TYPES,
        )
        held.future.add_done_callback(self._job_finished)
        if meter_id is not None and isinstance(in_work, set):
            in_work.add(meter_id)

    def _job_finished(self, _future):
        """Done-callback, in the worker thread. Counting races with the loop's reset are
        harmless: a missed wake only ever waits for the loop's own wake-up, which is then at
        most REPORT_DELAY away."""
        self._unseen += 1
        armed = self._armed_until - self._clock()
        if self._unseen >= self._wake_batch or not 0 < armed <= REPORT_DELAY:
            self._wake.set()

    def _execute(self, held):
        """Run in a worker thread: the executor's outcome as a report tuple, never raises."""
        started = held.started_at = self._clock()
        # Per-job lines at DEBUG only, built only when DEBUG is on; operations get one INFO
        # line per report batch (jobs_done, _flush_reports) and a WARNING per failed job:
        # a LogRecord, its JSON and a write per job were a fifteenth of the bridge's CPU.
        if log.isEnabledFor(logging.DEBUG):
            event(
                log,
                logging.DEBUG,
                "job_started",
                attempt=held.job.get("attempt_count"),
                **held.fields(),
            )
        try:
            result = self._executor(held.job, deadline_s=self.settings.job_timeout)
            if not isinstance(result, dict):
                raise TypeError(f"executor returned {type(result).__name__}, not a dict")
            # JSON-encoded once, in its report; one that cannot be is failed there
            # (_unreportable), not encoded a second time here to find out
            outcome = ("complete", result)
        except JobError as exc:
            outcome = ("fail", str(exc) or type(exc).__name__, bool(exc.retryable))
            counter = getattr(exc, "invocation_counter", None)
            if isinstance(counter, int) and not isinstance(counter, bool):
                # counters this job spent: Odoo must start the next association above them,
                # or the meter refuses it as a replay
                outcome += (counter,)
        except Exception as exc:
            event(log, logging.ERROR, "job_crashed", exc_info=True, **held.fields())
            outcome = ("fail", f"bridge error: {type(exc).__name__}: {exc}", True)
        held.duration_s = self._clock() - started
        if outcome[0] == "complete":
            if log.isEnabledFor(logging.DEBUG):
                event(
                    log,
                    logging.DEBUG,
                    "job_done",
                    duration_s=round(held.duration_s, 3),
                    **held.fields(),
                )
        else:
            event(
                log,
                logging.WARNING,
                "job_failed",
                error=outcome[1],
                retryable=outcome[2],
                duration_s=round(held.duration_s, 3),
                **held.fields(),
            )
        return outcome

    def _collect_finished(self, now):
        self._unseen = 0
        for held in list(self._held.values()):
            future = held.future
            if held.report or future is None or not future.done() or future.cancelled():
                continue
            try:
                held.report = future.result()
            except BaseException as exc:  # noqa: B036 - _execute only lets these through
                held.report = ("fail", f"bridge error: {type(exc).__name__}: {exc}", True)
            held.next_report_at = held.ready_at = now

    # -- reporting to Odoo ---------------------------------------------------------------

    def _flush_reports(self, now):
        due = [h for h in self._held.values() if h.report and h.next_report_at <= now]
        if (
            due
            and len(due) < self._report_min
            and not self._stopping
            and now < min(h.ready_at for h in due) + REPORT_DELAY
            and self._in_work()
        ):
            return  # more results are coming: send them together
        # One RPC per batch: Odoo's per-request cost (auth, routing) dwarfs a job's own work.
        for i in range(0, len(due), REPORT_BATCH):
            batch = due[i : i + REPORT_BATCH]
            reports = []
            for held in batch:
                kind, *args = held.report
                if kind == "complete":
                    report = {"job_id": held.id, "result": args[0]}
                else:
                    report = {"job_id": held.id, "error": str(args[0]), "retryable": bool(args[1])}
                    if len(args) > 2:
                        report["invocation_counter"] = args[2]
                attempt = _attempt_of(held.job)
                if attempt is not None:
                    # which claim this is the outcome of: Odoo takes it even after the lease
                    # lapsed (Odoo unreachable meanwhile) as long as no one claimed the job
                    report["attempt"] = attempt
                reports.append(report)
            if log.isEnabledFor(logging.DEBUG):
                event(log, logging.DEBUG, "report_sent", job_ids=[h.id for h in batch])
            try:
                answers = self._rpc(self.client.report, self.bridge_id, reports)
            except OdooAuthError:
                raise
            except OdooError as exc:
                for held in batch:
                    self._report_failed(held, now, exc.message, exc.name, exc.is_refusal)
                continue
            except (TypeError, ValueError):
                # the batch could not be encoded: a result JSON cannot carry (an executor's
                # bug) fails its job; the others go with the next flush
                if not self._unreportable(batch, now):
                    raise
                continue
            self._next_claim = min(self._next_claim, now)  # slots are freed: ask for more
            by_id = {a.get("job_id"): a for a in answers or [] if isinstance(a, dict)}
            done = []  # the completed jobs Odoo took: one INFO line for the batch
            for held in batch:
                answer = by_id.get(held.id)
                if answer is None:
                    self._report_failed(held, now, "no answer for this job", "", False)
                elif not answer.get("ok"):
                    self._report_failed(
                        held, now, answer.get("error", ""), "refused", bool(answer.get("refused"))
                    )
                else:
                    self._report_done(held, answer, done)
            if done and log.isEnabledFor(logging.INFO):
                # one line per batch: each job as [job id, meter, job type, ms on the meter]
                event(log, logging.INFO, "jobs_done", count=len(done), jobs=done)

    def _unreportable(self, batch, now):
        """Fail the jobs of ``batch`` whose result JSON cannot encode (retried: the result
        is lost, not the job); True when there was one (the batch is then sent again)."""
        found = False
        for held in batch:
            if held.report[0] != "complete":
                continue
            try:
                json.dumps(held.report[1])
            except (TypeError, ValueError) as exc:
                found = True
                message = f"bridge error: result not reportable: {type(exc).__name__}: {exc}"
                event(log, logging.ERROR, "job_crashed", error=message, **held.fields())
                held.report = ("fail", message, True)
                held.next_report_at = now
        return found

    def _report_done(self, held, answer, done):
        kind = held.report[0]
        self.stats["completed" if kind == "complete" else "failed"] += 1
        if kind == "fail":
            # what Odoo does next: retry or give up
            extra = {"state": answer.get("state"), "next_attempt_at": answer.get("next_attempt_at")}
            event(log, logging.INFO, "job_reported", report=kind, **extra, **held.fields())
        else:
            duration = held.duration_s
            ms = None if duration is None else round(duration * 1000)
            done.append([held.id, held.meter, held.job.get("job_type"), ms])
            if log.isEnabledFor(logging.DEBUG):
                event(log, logging.DEBUG, "job_reported", report=kind, **held.fields())
        del self._held[held.id]

    def _report_failed(self, held, now, message, name, refusal):
        kind = held.report[0]
        held.report_attempts += 1
        if refusal or held.report_attempts >= REPORT_ATTEMPTS:
            # Typically a lost lease: Odoo will hand the job out again.
            self.stats["reports_refused"] += 1
            event(
                log,
                logging.WARNING,
                "report_refused",
                report=kind,
                error=message,
                odoo_error=name,
                lease_lost=held.lease_lost,
                **held.fields(),
            )
            del self._held[held.id]
        else:
            held.next_report_at = now + min(2.0**held.report_attempts, 30.0)
            event(
                log,
                logging.WARNING,
                "report_error",
                report=kind,
                error=message,
                odoo_error=name,
                attempt=held.report_attempts,
                **held.fields(),
            )

    def _release(self):
        if not self._to_release:
            return
        ids = [h.id for h in self._to_release]
        try:
            released = self._rpc(self.client.release, ids, self.bridge_id)
        except OdooAuthError:
            raise
        except OdooError as exc:
            # Their leases will simply expire.
            event(log, logging.WARNING, "release_refused", job_ids=ids, error=exc.message)
            released = []
        self.stats["released"] += len(released)
        event(log, logging.INFO, "jobs_released", job_ids=ids, released=list(released))
        for held in self._to_release:
            self._held.pop(held.id, None)
        self._to_release = []

    def _extend_leases(self, now):
        if now < self._next_extend:
            return
        if not self._held:
            self._next_extend = math.inf
            return
        self._mark_overdue(now)
        ids = [job_id for job_id, held in self._held.items() if not held.overdue]
        if not ids:
            self._next_extend = now + self._extend_every
            return
        # Which claim each renewal is for: Odoo refuses it for a job claimed again since, and
        # re-takes a lease that lapsed while it was unreachable if no one claimed the job.
        attempts = [_attempt_of(self._held[job_id].job) for job_id in ids]
        sent = time.monotonic()
        try:
            kept = self._rpc(
                self.client.extend_lease,
                ids,
                self.bridge_id,
                self.settings.lease_seconds,
                attempts,
            )
        except OdooAuthError:
            raise
        except OdooError as exc:
            event(log, logging.WARNING, "extend_lease_error", error=exc.message, job_ids=ids)
            self._next_extend = now + min(5.0, self._extend_every)
            return
        self._next_extend = now + self._extend_every
        self.stats["lease_extensions"] += 1
        kept = set(kept)
        for job_id in ids:
            held = self._held.get(job_id)
            if held is not None and job_id in kept and not held.lease_lost:
                held.job["lease_deadline"] = sent + self._lease_granted(held.job)
            if job_id in kept or held is None or held.lease_lost:
                continue
            held.lease_lost = True
            held.job["lease_deadline"] = -math.inf  # a running job sends nothing more
            if held.future is not None and held.future.cancel():
                # Not started yet: someone else may run it now, so do not.
                event(log, logging.WARNING, "lease_lost_dropped", **held.fields())
                del self._held[job_id]
            else:
                event(log, logging.WARNING, "lease_lost", **held.fields())

    def _mark_overdue(self, now):
        """Stop renewing leases of jobs stuck far past their deadline.

        Their thread cannot be killed, but the lease can lapse so that Odoo hands the job
        to a healthy bridge instead of it staying leased for ever.
        """
        limit = self.settings.job_timeout + self.settings.lease_seconds
        for held in self._held.values():
            started = held.started_at
            if held.overdue or held.report or started is None or now - started <= limit:
                continue
            held.overdue = True
            self.stats["overdue"] += 1
            event(
                log,
                logging.ERROR,
                "job_overdue",
                running_s=round(now - started, 1),
                **held.fields(),
            )

    def _start_long_poll(self, now):
        self._last_poll_start = now
        self._claimed_since_poll = False
        timeout = self.settings.long_poll_timeout

        def poll():
            try:
                due = self.client.wait_for_jobs(timeout)
                # the vend benchmark's timeline: when the NOTIFY reached the bridge
                event(log, logging.DEBUG, "long_poll_answered", jobs_due=bool(due))
            except (OdooAuthError, OdooUnreachable):
                pass  # the claim that follows meets it too and backs off
            except Exception as exc:  # method missing or broken: poll instead
                self._poll_error = exc
                self._long_poll_ok = False
            finally:
                self._poll_fired = True
                self._wake.set()

        self._poller = threading.Thread(target=poll, name="mb-long-poll", daemon=True)
        self._poller.start()

    # -- stopping ------------------------------------------------------------------------

    def _begin_stop(self, now):
        self._stopping = True
        self._stop_deadline = now + (0.0 if self._stop_now else self.settings.grace_seconds)
        for held in self._held.values():
            if held.report is None and held.future is not None and held.future.cancel():
                self._to_release.append(held)
        running = sum(1 for h in self._held.values() if h.report is None) - len(self._to_release)
        event(
            log,
            logging.INFO,
            "stop_requested",
            running=running,
            to_release=len(self._to_release),
            grace_s=self.settings.grace_seconds,
        )

    def _stop_finished(self, now):
        if self._stop_now:
            self._stop_deadline = min(self._stop_deadline, now)
        if not self._held:
            return True
        if now < self._stop_deadline:
            return False
        for held in self._held.values():
            if held.report:
                # Logged in full so that an operator still has it.
                event(
                    log,
                    logging.ERROR,
                    "result_unreported",
                    report=held.report[0],
                    detail=held.report[1:],
                    **held.fields(),
                )
            elif held in self._to_release:
                event(log, logging.WARNING, "release_unsent", **held.fields())
            else:
                self.abandoned += 1
                event(log, logging.ERROR, "job_abandoned", **held.fields())
        self.exit_code = 1
        return True
