"""Issue 21 §4: recovery from a dead bridge and a stopping Odoo. A job whose bridge died is
taken over as soon as its (short) lease ends, an idle bridge's long-poll wakes for it, the
old bridge can neither renew nor report it after that, and a stopping Odoo ends its
long-polls instead of waiting for them."""

import signal
import threading
import time
from datetime import timedelta
from types import SimpleNamespace
from unittest.mock import patch

from odoo.service import server as odoo_server
from odoo.tests import new_test_user, tagged

from ..services import job_queue
from ..services.vending import vend
from .common import SmartpmCase

GROUPS = "base.group_user,smartpm_prepay.group_bridge_api"


@tagged("post_install", "-at_install")
class TestJobRecovery(SmartpmCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._clear_job_queue()
        cls.user_a = new_test_user(cls.env, "t_recov_a", groups=GROUPS)
        cls.user_b = new_test_user(cls.env, "t_recov_b", groups=GROUPS)
        cls.tariff = cls.env["smartpm.tariff"].create({"name": "Recov", "price_per_kwh": 0.5})
        cls.meter = cls._meter(
            "RECOV-1", state="active", tenant_id=cls._tenant("Rita").id, tariff_id=cls.tariff.id
        )

    def setUp(self):
        super().setUp()
        self.A = self.env["smartpm.meter.job"].with_user(self.user_a)
        self.B = self.env["smartpm.meter.job"].with_user(self.user_b)

    # ------------------------------------------------------------ long-poll
    def test_long_poll_wakes_when_the_lease_of_a_dead_bridge_ends(self):
        job = self.env["smartpm.meter.job"].create({"meter_id": self.meter.id, "job_type": "ping"})
        self.assertEqual([j["id"] for j in self.A.claim("a", 1, 1)], [job.id])
        # nothing is due while A's lease lives; no NOTIFY comes when it ends, yet the wait
        # ends then (it would answer False after 20 s otherwise)
        self.assertTrue(self.B.wait_for_jobs(20))
        self.assertEqual([j["id"] for j in self.B.claim("b", 1, 15)], [job.id])
        self.assertEqual((job.bridge_id, job.attempt_count), ("b", 2))

    def test_long_poll_answers_at_once_for_an_expired_lease(self):
        job = self.env["smartpm.meter.job"].create({"meter_id": self.meter.id, "job_type": "ping"})
        self.A.claim("a", 1, 15)
        self.assertFalse(self.B.wait_for_jobs(0))
        self._expire(job)
        self.assertTrue(self.B.wait_for_jobs(0))

    def test_long_poll_ends_when_the_threaded_server_stops(self):
        fake_server = SimpleNamespace(quit_signals_received=0)
        timer = threading.Timer(0.3, setattr, (fake_server, "quit_signals_received", 1))
        with patch.object(odoo_server, "server", fake_server):
            timer.start()
            started = time.monotonic()
            try:
                self.assertFalse(self.B.wait_for_jobs(30))
            finally:
                timer.cancel()
            # a generous bound: the wait was 30 s, the stop came after 0.3 s
            self.assertLess(time.monotonic() - started, 10)

    def test_server_stopping_sees_a_prefork_worker_told_to_stop(self):
        worker = object.__new__(odoo_server.Worker)  # its SIGINT handler is all that counts
        worker.alive = True
        previous = signal.signal(signal.SIGINT, worker.signal_handler)
        try:
            self.assertFalse(job_queue.server_stopping())
            worker.alive = False  # what Worker.signal_handler does on SIGINT
            self.assertTrue(job_queue.server_stopping())
        finally:
            signal.signal(signal.SIGINT, previous)
        self.assertFalse(job_queue.server_stopping())

    # ------------------------------------------------------------ late reports
    def test_late_credit_report_of_a_dead_lease_does_not_deliver_twice(self):
        purchase = vend(self.env, self.meter, 10.0, "backoffice", "RECOV-LATE")
        job = purchase.job_id
        self.assertEqual([j["id"] for j in self.A.claim("a", 1, 15)], [job.id])
        self._expire(job)  # A stalled past its lease; B takes the delivery over
        self.assertEqual(self.A.extend_lease([job.id], "a", 15), [])
        self.assertEqual([j["id"] for j in self.B.claim("b", 1, 15)], [job.id])
        # A wakes up: it may neither renew B's lease nor report under it
        self.assertEqual(self.A.extend_lease([job.id], "a", 15), [])
        result = {"credit_kwh": 20.0, "transfer_number": purchase.transfer_number}
        answer = self.A.report("a", [{"job_id": job.id, "result": result}])
        self.assertEqual((answer[0]["ok"], answer[0].get("refused")), (False, True))
        self.assertEqual((job.state, purchase.state), ("claimed", "queued"))
        # B delivers (the meter says "already applied" to the second token: the same result)
        self.assertTrue(self.B.report("b", [{"job_id": job.id, "result": result}])[0]["ok"])
        self.assertEqual((job.state, purchase.state), ("done", "delivered"))
        delivered = (purchase.date_delivered, self.meter.credit_kwh)
        messages = len(self.meter.message_ids)
        # and A's report, arriving later still, changes nothing
        answer = self.A.report("a", [{"job_id": job.id, "result": dict(result, credit_kwh=40.0)}])
        self.assertFalse(answer[0]["ok"])
        with self.assertRaises(job_queue.LeaseLost):
            self.A.complete(job.id, "a", dict(result, credit_kwh=40.0))
        self.env.invalidate_all()
        self.assertEqual((purchase.date_delivered, self.meter.credit_kwh), delivered)
        self.assertEqual(len(self.meter.message_ids), messages)
        self.assertEqual(self.meter.credit_kwh, 20.0)
        self.assertEqual(
            self.env["smartpm.credit.purchase"].search_count([("meter_id", "=", self.meter.id)]), 1
        )

    def test_report_of_an_earlier_claim_under_the_same_bridge_id_is_refused(self):
        """Two bridge processes configured with one id: the first stalls past its lease, the
        second claims the delivery again under that id. The first one's late report names
        the attempt it ran and is refused, alone in its batch or among others; nothing moves."""
        purchase = vend(self.env, self.meter, 10.0, "backoffice", "RECOV-TWIN")
        job = purchase.job_id
        ping = self.env["smartpm.meter.job"].create(
            {"meter_id": self._meter("RECOV-2", state="active").id, "job_type": "ping"}
        )
        first = {j["id"]: j["attempt_count"] for j in self.A.claim("a", 5, 15)}
        self.assertEqual(first, {job.id: 1, ping.id: 1})
        self._expire(job)
        second = self.A.claim("a", 5, 15)
        self.assertEqual([(j["id"], j["attempt_count"]) for j in second], [(job.id, 2)])
        result = {"credit_kwh": 20.0, "transfer_number": purchase.transfer_number}
        stale = [
            {"job_id": job.id, "result": result, "attempt": 1},
            {"job_id": ping.id, "result": {"relay": "connected"}, "attempt": 1},
        ]
        answers = self.A.report("a", stale)
        self.assertEqual([a["ok"] for a in answers], [False, True])
        self.assertIn("attempt 1", answers[0]["error"])
        self.assertEqual((job.state, purchase.state, ping.state), ("claimed", "queued", "done"))
        error = job.error
        answer = self.A.report("a", [{"job_id": job.id, "error": "timeout", "attempt": 1}])
        self.assertFalse(answer[0]["ok"])
        self.assertEqual((job.state, job.attempt_count, job.error), ("claimed", 2, error))
        bad = self.A.report("a", [{"job_id": job.id, "result": result, "attempt": "2"}])
        self.assertEqual((bad[0]["ok"], job.state), (False, "claimed"))
        # the claim running now reports, once
        self.assertTrue(self.A.report("a", [dict(stale[0], attempt=2)])[0]["ok"])
        self.assertEqual((job.state, purchase.state), ("done", "delivered"))
        self.assertEqual(self.meter.credit_kwh, 20.0)

    def test_a_renewed_lease_outlives_its_first_term(self):
        """A slow association keeps its job: each renewal moves the lease on from now."""
        job = self.env["smartpm.meter.job"].create({"meter_id": self.meter.id, "job_type": "ping"})
        self.A.claim("a", 1, 2)
        first = job.lease_until
        self.assertEqual(self.A.extend_lease([job.id], "a", 15), [job.id])
        job.invalidate_recordset()
        self.assertGreaterEqual(job.lease_until, first + timedelta(seconds=12))
        self.assertEqual(self.B.claim("b", 1, 15), [])  # still A's
        self.assertTrue(self.A.complete(job.id, "a", {"relay": "connected"}))
        self.assertEqual((job.state, job.attempt_count), ("done", 1))
