"""Emergency credit (issue 17 §1): the tariff's settings pushed once per change, a take by
the cashier or the tenant's portal (one job however often asked, own meter only), the
meter's report as its state, and the purchase that repaid it."""

import re

from odoo.exceptions import UserError
from odoo.tests import new_test_user, tagged

from ..services import engine
from .test_portal import PortalCase
from .test_vending import VendingCase


def _jobs(meter, job_type):
    return meter.job_ids.filtered(lambda j: j.job_type == job_type).sorted("id")


@tagged("post_install", "-at_install")
class TestEmergency(VendingCase):
    def setUp(self):
        super().setUp()
        self.tariff.write({"emergency_credit_kwh": 5.0, "emergency_threshold_kwh": 2.0})
        self.meter.sudo().write({"credit_kwh": 1.0})

    def test_tariff_emergency_is_pushed_once_per_change(self):
        job = _jobs(self.meter, "set_emergency_credit")
        self.assertEqual(len(job), 1)
        self.assertEqual(job.payload, {"amount_kwh": 5.0, "threshold_kwh": 2.0})
        self.tariff.write({"emergency_credit_kwh": 5.0})  # unchanged: nothing more
        self.assertEqual(len(_jobs(self.meter, "set_emergency_credit")), 1)
        self.tariff.write({"emergency_threshold_kwh": 3.0})
        jobs = _jobs(self.meter, "set_emergency_credit")
        self.assertEqual(jobs.mapped("state"), ["cancelled", "pending"])
        self.assertEqual(jobs[-1].payload, {"amount_kwh": 5.0, "threshold_kwh": 3.0})

    def test_meter_moving_to_a_tariff_without_emergency_credit_gets_it_removed(self):
        other = self.env["smartpm.tariff"].create({"name": "Plain", "price_per_kwh": 0.2})
        self.meter.write({"tariff_id": other.id})
        job = _jobs(self.meter, "set_emergency_credit")[-1]
        self.assertEqual(job.payload, {"amount_kwh": 0.0, "threshold_kwh": 1.0})

    def test_cashier_takes_emergency_credit_once_and_the_result_shows_it(self):
        meter = self.meter.with_user(self.cashier)
        self.assertTrue(meter.emergency_can_take)
        meter.action_take_emergency_credit()
        meter.action_take_emergency_credit()  # a double click
        take = _jobs(self.meter, "take_emergency_credit")
        self.assertEqual(len(take), 1)
        self._claim(take)
        result = {
            "emergency_status": "in_use",
            "emergency_in_use_kwh": 5.0,
            "already_in_use": False,
            "credit_kwh": 6.0,
            "relay": "connected",
        }
        self.Job.complete(take.id, "b1", result)
        self.assertEqual(self.meter.emergency_status, "in_use")
        self.assertEqual((self.meter.emergency_in_use_kwh, self.meter.credit_kwh), (5.0, 6.0))
        self.assertFalse(meter.emergency_can_take)
        with self.assertRaisesRegex(UserError, "already in use on meter SELL-1"):
            meter.action_take_emergency_credit()
        self.assertEqual(len(_jobs(self.meter, "take_emergency_credit")), 1)

    def test_take_above_the_level_is_refused_and_queues_nothing(self):
        self.meter.sudo().write({"credit_kwh": 2.5})
        with self.assertRaisesRegex(UserError, "SELL-1 when its credit falls to 2.0 kWh"):
            self.meter.with_user(self.cashier).action_take_emergency_credit()
        self.assertFalse(_jobs(self.meter, "take_emergency_credit"))

    def test_rpc_callers_without_the_right_cannot_take_nor_queue_a_take(self):
        portal = new_test_user(self.env, "t_portal_em", groups="base.group_portal")
        with self.assertRaises(UserError):
            self.meter.with_user(portal).action_take_emergency_credit()
        with self.assertRaises(UserError):
            self.env["smartpm.meter.job"].with_user(self.operator).create(
                {"meter_id": self.meter.id, "job_type": "take_emergency_credit", "payload": {}}
            )
        self.assertFalse(_jobs(self.meter, "take_emergency_credit"))
        self.assertFalse(self.meter.emergency_status)

    def test_button_pressed_on_the_meter_shows_after_the_next_ping(self):
        ping = engine.create(
            self.Job, [{"meter_id": self.meter.id, "job_type": "ping", "priority": 1}]
        )
        self._claim(ping)
        result = {
            "credit_kwh": 6.0,
            "relay": "connected",
            "emergency_status": "in_use",
            "emergency_in_use_kwh": 5.0,
            "emergency_amount_kwh": 5.0,
            "emergency_threshold_kwh": 2.0,
        }
        self.Job.complete(ping.id, "b1", result)
        self.assertEqual(self.meter.emergency_status, "in_use")
        self.assertEqual(self.meter.emergency_in_use_kwh, 5.0)
        with self.assertRaisesRegex(UserError, "already in use"):
            self.meter.with_user(self.cashier).action_take_emergency_credit()
        self.assertFalse(_jobs(self.meter, "take_emergency_credit"))

    def test_purchase_shows_the_emergency_credit_it_repaid(self):
        self.meter.sudo().write({"emergency_status": "in_use", "emergency_in_use_kwh": 5.0})
        purchase = self._vend(10.0)
        self._claim(purchase.job_id)
        result = {
            "transfer_number": purchase.transfer_number,
            "already_applied": False,
            "credit_kwh": 36.0,
            "relay": "connected",
            "emergency_status": "enabled",
            "emergency_in_use_kwh": 0.0,
            "emergency_repaid_kwh": 5.0,
        }
        self.Job.complete(purchase.job_id.id, "b1", result)
        self.assertEqual(purchase.state, "delivered")
        self.assertEqual(purchase.emergency_repaid_kwh, 5.0)
        self.assertEqual(self.meter.emergency_status, "enabled")
        self.assertEqual(self.meter.emergency_in_use_kwh, 0.0)

    def test_emergency_repaid_is_the_engines_field(self):
        purchase = self._vend(10.0)
        with self.assertRaises(UserError):
            purchase.with_user(self.operator).write({"emergency_repaid_kwh": 3.0})
        self.assertEqual(engine.as_engine(purchase).emergency_repaid_kwh, 0.0)


@tagged("post_install", "-at_install")
class TestEmergencyPortal(PortalCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tariff.write({"emergency_credit_kwh": 5.0, "emergency_threshold_kwh": 2.0})
        (cls.meter_a | cls.meter_b).write({"credit_kwh": 1.0})

    def _csrf(self):
        page = self.url_open(f"/my/meters/{self.meter_a.id}")
        self.assertEqual(page.status_code, 200)
        return page, re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)

    def test_tenant_takes_emergency_credit_once_on_their_own_meter(self):
        self._login()
        page, token = self._csrf()
        self.assertIn("o_smartpm_emergency_take", page.text)
        for _attempt in range(2):  # a double click
            response = self.url_open(
                f"/my/meters/{self.meter_a.id}/emergency", data={"csrf_token": token}
            )
            self.assertEqual(response.status_code, 200)
        self.assertEqual(len(_jobs(self.meter_a, "take_emergency_credit")), 1)
        self.assertIn("Emergency credit requested", response.text)
        page = self.url_open(f"/my/meters/{self.meter_a.id}")
        self.assertNotIn("o_smartpm_emergency_take", page.text, "a take is on its way")

    def test_other_tenants_meter_answers_404_and_takes_nothing(self):
        self._login()
        _page, token = self._csrf()
        response = self.url_open(
            f"/my/meters/{self.meter_b.id}/emergency", data={"csrf_token": token}
        )
        self.assertEqual(response.status_code, 404)
        self.assertFalse(_jobs(self.meter_b, "take_emergency_credit"))

    def test_post_without_csrf_token_is_refused(self):
        self._login()
        response = self.url_open(f"/my/meters/{self.meter_a.id}/emergency", data={"x": "1"})
        self.assertEqual(response.status_code, 400)
        self.assertFalse(_jobs(self.meter_a, "take_emergency_credit"))
