"""When a bank sale's deferred invoice and payment are posted, so that the posting does not
compete with the delivery of the sale it belongs to (issue 21 §1).

The bank's ``purchase`` answers before the sale's books are posted: the sale commits with
``posting_journal_id`` set and a trigger of the cron "post bank sales"
(``models/credit_purchase.py``: ``_defer_invoice_and_payment``, ``_post_deferred``). The
books are safe from then on whoever posts them (the cron posts anything left; posting twice
posts once). What this module decides is *where and when* they are posted:

- **Odoo with workers** (``--workers=N`` and cron workers: production): by the cron, due at
  the answer's commit. Odoo's cron worker is a process of its own, woken at once by the
  trigger's NOTIFY, so the posting takes no CPU (no GIL) from the HTTP workers that answer
  the bridge's claim of the sale's job and the bank's next call; it posts within a second
  or so of the answer.
- **Odoo threaded** (``--workers=0``: development, tests, the benchmarks): cron threads and
  HTTP threads share one process and its GIL, and a posting (~270 ms of CPU) right at the
  commit held the bridge's claim of that very sale. So the process's ``Poster`` thread posts
  a sale once its delivery has been reported here (or it has waited ``UNDELIVERED_S``
  without one: an offline meter) *and* no bank sale was answered and no delivery reported
  in this process for ``QUIET_S``; one sale at a time, looking again between sales, so a new
  sale interrupts a backlog. A stream of sales that never leaves the process quiet is posted
  at ``MAX_WAIT_S`` all the same. The cron's trigger is then set ``MAX_WAIT_S +
  TRIGGER_MARGIN_S`` after the answer: it posts what a stop or a crash left.
"""

import dataclasses
import datetime as dt
import logging
import math
import threading
import time

from odoo import fields
from odoo.tools import config

_logger = logging.getLogger(__name__)

QUIET_S = 1.0  # no sale answered, no delivery reported in the process for this long
UNDELIVERED_S = 5.0  # a sale whose delivery is not reported here is posted after this
MAX_WAIT_S = 60.0  # posted by then even if the process is never quiet
TRIGGER_MARGIN_S = 30.0  # the cron's safety net after the thread's latest time


def cron_posts():
    """Whether this Odoo's cron workers (processes of their own) post the deferred sales:
    Odoo with HTTP workers and cron workers. Otherwise the process's ``Poster`` does."""
    return bool(config.get("workers")) and bool(config.get("max_cron_threads"))


def cron_trigger_at():
    """When the cron "post bank sales" is due for a sale answered now: ``None`` (now, and
    the cron workers are woken at the commit) where they post, else after the poster's
    latest time."""
    if cron_posts():
        return None
    return fields.Datetime.now() + dt.timedelta(seconds=MAX_WAIT_S + TRIGGER_MARGIN_S)


@dataclasses.dataclass
class Waiting:
    since: float  # monotonic time of the answer's commit
    delivered: bool = False


def due(pending, now, last_activity):
    """The keys of ``pending`` ({key: Waiting}) to post at ``now``, oldest first: those
    whose delivery was reported (or that waited ``UNDELIVERED_S``) once the process has been
    quiet for ``QUIET_S`` since ``last_activity``, and any that waited ``MAX_WAIT_S``."""
    quiet = now - last_activity >= QUIET_S
    keys = [
        key
        for key, waiting in pending.items()
        if now - waiting.since >= MAX_WAIT_S
        or (quiet and (waiting.delivered or now - waiting.since >= UNDELIVERED_S))
    ]
    return sorted(keys, key=lambda key: pending[key].since)


def next_check(pending, now, last_activity):
    """Seconds until a sale of ``pending`` may become due (nothing due at ``now``)."""
    quiet_at = last_activity + QUIET_S
    soonest = math.inf
    for waiting in pending.values():
        ready_at = waiting.since if waiting.delivered else waiting.since + UNDELIVERED_S
        soonest = min(soonest, waiting.since + MAX_WAIT_S, max(ready_at, quiet_at))
    return max(soonest - now, 0.01)


class Poster:
    """One per Odoo process: the sales answered here wait in memory (a copy: the database's
    ``posting_journal_id`` is the record) and ``post(dbname, sale_id)`` runs in the poster's
    thread when they are due (``due``). The thread ends when nothing waits."""

    def __init__(self, post, clock=time.monotonic):
        self._post = post
        self._clock = clock
        self._cond = threading.Condition()
        self._pending = {}  # (dbname, sale id) -> Waiting
        self._last_activity = -math.inf
        self._thread = None

    def answered(self, dbname, sale_ids):
        """The bank's answer selling ``sale_ids`` committed (a post-commit hook)."""
        with self._cond:
            now = self._clock()
            for sale_id in sale_ids:
                self._pending.setdefault((dbname, sale_id), Waiting(now))
            self._last_activity = now
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="smartpm-post-sales", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def delivered(self, dbname, sale_ids):
        """The delivery reports of ``sale_ids`` committed (any sale: it is activity)."""
        with self._cond:
            self._last_activity = self._clock()
            for sale_id in sale_ids:
                waiting = self._pending.get((dbname, sale_id))
                if waiting:
                    waiting.delivered = True
            self._cond.notify_all()

    def waiting(self):
        with self._cond:
            return dict(self._pending)

    def _run(self):
        while True:
            with self._cond:
                while True:
                    now = self._clock()
                    keys = due(self._pending, now, self._last_activity)
                    if keys:
                        key = keys[0]
                        del self._pending[key]
                        break
                    if not self._pending:
                        self._thread = None
                        return
                    self._cond.wait(next_check(self._pending, now, self._last_activity))
            try:
                self._post(*key)
            except Exception:
                _logger.exception("posting sale %s of %s failed: left for the cron", key[1], key[0])
