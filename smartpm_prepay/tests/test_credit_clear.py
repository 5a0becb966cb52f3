"""Issue 16 §3: clearing a meter's credit on the meter (services/credit_clear.py): one
transfer number of the meter's sequence per clear, a token only Odoo signs, an engine-only
job, the meter's credit and the origin told once."""

from unittest.mock import patch

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from ..services import credit_clear, credit_token, engine
from ..services.vending import vend
from .common import SmartpmCase

FORGED_CONTEXT = {"smartpm_engine": True, "smartpm_vending": True}
JOB_FIELDS = ("job_type", "payload", "meter_id", "state", "origin_model", "origin_res_id")


@tagged("post_install", "-at_install")
class TestCreditClear(SmartpmCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._clear_job_queue()
        cls.tariff = cls.env["smartpm.tariff"].create({"name": "Clear", "price_per_kwh": 0.5})
        cls.tenant = cls._tenant("Clara")
        cls.meter = cls._meter(
            "CLR-1", state="active", tenant_id=cls.tenant.id, tariff_id=cls.tariff.id
        )
        cls.origin = cls.tenant  # any record: the settlement in the move-out flow
        cls.users = {
            "manager": new_test_user(
                cls.env, "t_clr_manager", groups="smartpm_prepay.group_manager"
            ),
            "operator": new_test_user(
                cls.env, "t_clr_operator", groups="smartpm_prepay.group_operator"
            ),
            "bridge": new_test_user(
                cls.env, "t_clr_bridge", groups="base.group_user,smartpm_prepay.group_bridge_api"
            ),
        }

    def _complete(self, job, result):
        Job = self.env["smartpm.meter.job"].with_user(self.users["bridge"])
        claimed = [j["id"] for j in Job.claim("b-clr", 10, 60)]
        self.assertIn(job.id, claimed)
        Job.complete(job.id, "b-clr", result)

    def test_queue_clear_takes_the_meters_next_transfer_number_and_signs_a_clear_token(self):
        sale = vend(self.env, self.meter, 5.0, "backoffice", "CLR-SALE-1")
        job = credit_clear.queue_clear(self.meter, 7250, self.origin)
        number = sale.transfer_number + 1
        self.assertEqual(self.meter.last_transfer_number, number)
        self.assertEqual(job.job_type, "clear_credit")
        self.assertEqual(job.state, "pending")
        self.assertEqual(job.priority, 10)
        self.assertEqual(job.payload["transfer_number"], number)
        self.assertEqual(job.payload["wh"], 7250)
        self.assertEqual((job.origin_model, job.origin_res_id), ("res.partner", self.tenant.id))
        token = bytes.fromhex(job.payload["token"])
        key = self.meter._get_token_key()
        self.assertTrue(credit_token.verify_clear(key, "CLR-1", token))
        self.assertEqual(credit_token.parse_clear(token)[:2], (number, 7250))
        # never readable as a credit token
        self.assertFalse(credit_token.verify(key, "CLR-1", token))
        self.assertFalse(credit_token.verify(key, "CLR-1", token[1:]))
        # the next sale continues the same sequence
        self.assertEqual(
            vend(self.env, self.meter, 5.0, "backoffice", "CLR-SALE-2").transfer_number, number + 1
        )

    def test_queue_clear_again_for_the_same_origin_returns_its_job(self):
        job = credit_clear.queue_clear(self.meter, 1000, self.origin)
        last = self.meter.last_transfer_number
        self.assertEqual(credit_clear.queue_clear(self.meter, 1000, self.origin), job)
        with self.assertRaisesRegex(UserError, "CLR-1.*cannot clear 2000 Wh"):
            credit_clear.queue_clear(self.meter, 2000, self.origin)
        self.assertEqual(self.meter.last_transfer_number, last)
        other = credit_clear.queue_clear(self.meter, 1000, self.users["manager"].partner_id)
        self.assertNotEqual(other, job)
        self.assertEqual(other.payload["transfer_number"], last + 1)

    def test_queue_clear_refuses_a_bad_energy_and_a_meter_without_token_key(self):
        last = self.meter.last_transfer_number
        for wh in (0, -5, 1.5, True, 2**32):
            with self.assertRaisesRegex(UserError, "CLR-1"):
                credit_clear.queue_clear(self.meter, wh, self.origin)
        self.meter.token_key = False
        with self.assertRaisesRegex(UserError, "CLR-1 has no token key"):
            credit_clear.queue_clear(self.meter, 1000, self.origin)
        self.assertEqual(self.meter.last_transfer_number, last)
        self.assertFalse(self.env["smartpm.meter.job"].search([("job_type", "=", "clear_credit")]))

    def test_clear_credit_job_is_never_created_written_or_deleted_over_rpc(self):
        job = credit_clear.queue_clear(self.meter, 1000, self.origin)
        before = {name: job.sudo()[name] for name in JOB_FIELDS}
        last = self.meter.last_transfer_number
        Job = self.env["smartpm.meter.job"]
        count = Job.search_count([("job_type", "=", "clear_credit")])
        payload = dict(job.payload, wh=99999)
        for login, user in self.users.items():
            as_user = Job.with_user(user).with_context(**FORGED_CONTEXT)
            with self.assertRaises(AccessError, msg=login):
                as_user.create(
                    {"meter_id": self.meter.id, "job_type": "clear_credit", "payload": payload}
                )
            with self.assertRaises(AccessError, msg=login):
                as_user.create(
                    {
                        "meter_id": self.meter.id,
                        "job_type": "ping",
                        "origin_model": "res.partner",
                        "origin_res_id": self.tenant.id,
                    }
                )
            for vals in (
                {"payload": payload},
                {"state": "done"},
                {"job_type": "ping"},
                {"origin_res_id": user.partner_id.id},
            ):
                with self.assertRaises(AccessError, msg=f"{login} {vals}"):
                    job.with_user(user).with_context(**FORGED_CONTEXT).write(vals)
            with self.assertRaises(UserError, msg=login):  # AccessError is one too
                job.with_user(user).unlink()
        # not even the superuser deletes it
        with self.assertRaisesRegex(UserError, "never deleted"):
            job.sudo().unlink()
        job.invalidate_recordset()
        self.assertEqual({name: job.sudo()[name] for name in JOB_FIELDS}, before)
        self.assertEqual(Job.search_count([("job_type", "=", "clear_credit")]), count)
        self.assertEqual(self.meter.last_transfer_number, last)

    def test_done_clear_sets_the_meters_credit_and_relay_and_tells_the_origin_once(self):
        job = credit_clear.queue_clear(self.meter, 4000, self.origin)
        Partner = type(self.env["res.partner"])
        with (
            patch.object(Partner, "_on_credit_cleared", create=True) as cleared,
            patch.object(Partner, "_on_credit_clear_failed", create=True) as failed,
        ):
            result = {
                "transfer_number": job.payload["transfer_number"],
                "already_applied": False,
                "cleared_kwh": 4.0,
                "credit_kwh": -0.25,
                "relay": "disconnected",
            }
            self._complete(job, result)
            with self.assertRaises(UserError):  # a second report of the same job
                self.env["smartpm.meter.job"].with_user(self.users["bridge"]).complete(
                    job.id, "b-clr", result
                )
        self.assertEqual(job.state, "done")
        self.assertEqual(self.meter.credit_kwh, -0.25)
        self.assertEqual(self.meter.relay_state, "disconnected")
        self.assertEqual(cleared.call_count, 1)
        (called_job, called_result), _kw = cleared.call_args
        self.assertEqual(called_job, job)
        self.assertEqual(called_result["cleared_kwh"], 4.0)
        failed.assert_not_called()

    def test_clear_refused_by_the_meter_tells_the_origin_it_failed(self):
        job = credit_clear.queue_clear(self.meter, 4000, self.origin)
        Partner = type(self.env["res.partner"])
        Job = self.env["smartpm.meter.job"].with_user(self.users["bridge"])
        with (
            patch.object(Partner, "_on_credit_cleared", create=True) as cleared,
            patch.object(Partner, "_on_credit_clear_failed", create=True) as failed,
        ):
            self.assertIn(job.id, [j["id"] for j in Job.claim("b-clr", 10, 60)])
            Job.fail(job.id, "b-clr", "meter refused the clear-credit token (result 13)", False)
        self.assertEqual(job.state, "failed")
        self.assertEqual(failed.call_count, 1)
        self.assertEqual(failed.call_args.args[0], job)
        cleared.assert_not_called()
        # the same origin gets this job back to retry, never a second transfer number
        last = self.meter.last_transfer_number
        self.assertEqual(credit_clear.queue_clear(self.meter, 4000, self.origin), job)
        self.assertEqual(self.meter.last_transfer_number, last)

    def test_clear_credit_jobs_are_kept_by_the_retention_purge(self):
        from ..services import job_queue

        job = credit_clear.queue_clear(self.meter, 4000, self.origin)
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE smartpm_meter_job SET state = 'done', date_done = now() - interval '400 days'"
            " WHERE id = %s",
            (job.id,),
        )
        job_queue.purge_finished(engine.as_engine(self.env["smartpm.meter.job"]).env, 30)
        self.assertTrue(job.exists())

    def test_retried_clear_is_signed_again_after_the_key_is_corrected_on_the_same_transfer(self):
        good_key = self.meter.token_key
        self.meter.token_key = "00" * 16  # the owner entered a wrong key
        job = credit_clear.queue_clear(self.meter, 2500, self.origin)
        old = job.payload["token"]
        Job = self.env["smartpm.meter.job"].with_user(self.users["bridge"])
        self.assertIn(job.id, [j["id"] for j in Job.claim("b-clr", 10, 60)])
        Job.fail(job.id, "b-clr", "meter refused the clear-credit token (result 13)", False)
        last = self.meter.last_transfer_number
        self.meter.token_key = good_key
        job.with_user(self.users["manager"]).action_retry()
        self.assertEqual(job.state, "pending")
        token = bytes.fromhex(job.payload["token"])
        self.assertNotEqual(job.payload["token"], old)
        self.assertTrue(credit_token.verify_clear(self.meter._get_token_key(), "CLR-1", token))
        self.assertEqual(credit_token.parse_clear(token)[:2], (last, 2500))
        self.assertEqual(self.meter.last_transfer_number, last)
