from datetime import timedelta

from odoo import fields
from odoo.tests import tagged

from ..models.res_config_settings import RETENTION_PARAM
from .test_vending import VendingCase


@tagged("post_install", "-at_install")
class TestJobRetention(VendingCase):
    def setUp(self):
        super().setUp()
        self.Jobs = self.env["smartpm.meter.job"]
        self.env["ir.config_parameter"].sudo().set_param(RETENTION_PARAM, "90")
        # jobs of other tests and of the database must not count here
        self.env.cr.execute(
            "UPDATE smartpm_meter_job SET date_done = now() WHERE date_done < now()"
        )

    def _finished(self, days_ago, state="done", job_type="read", **vals):
        job = self.Jobs.create({"meter_id": self.meter.id, "job_type": job_type, **vals})
        self._age(job, days_ago, state)
        return job

    def _age(self, job, days_ago, state="done"):
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE smartpm_meter_job SET state = %s, date_done = %s WHERE id = %s",
            (state, fields.Datetime.now() - timedelta(days=days_ago), job.id),
        )
        self.Jobs.invalidate_model()

    def test_old_finished_jobs_go_and_their_readings_stay(self):
        old = self._finished(100)
        failed = self._finished(120, state="failed", job_type="ping")
        recent = self._finished(10)
        pending = self.Jobs.create({"meter_id": self.meter.id, "job_type": "ping"})
        reading = self.env["smartpm.reading"].create(
            {
                "meter_id": self.meter.id,
                "obis": "1.0.1.8.0.255",
                "reading_time": fields.Datetime.now(),
                "value": 5.0,
                "job_id": old.id,
            }
        )
        self.assertEqual(self.Jobs._cron_purge_finished(), 2)
        self.assertFalse((old | failed).exists())
        self.assertEqual((recent | pending).exists(), recent | pending)
        self.assertTrue(reading.exists())
        reading.invalidate_recordset()
        self.assertFalse(reading.job_id)

    def test_credit_deliveries_keep_their_jobs(self):
        purchase = self._vend(10.0, ref="RET-1")
        self._age(purchase.job_id, 400)
        self.assertEqual(self.Jobs._cron_purge_finished(), 0)
        self.assertTrue(purchase.job_id.exists())

    def test_zero_keeps_every_job_and_a_bad_value_means_the_default(self):
        old = self._finished(100)
        self.env["ir.config_parameter"].sudo().set_param(RETENTION_PARAM, "0")
        self.assertEqual(self.Jobs._cron_purge_finished(), 0)
        self.env["ir.config_parameter"].sudo().set_param(RETENTION_PARAM, "ninety")
        self.assertEqual(self.Jobs._cron_purge_finished(), 1)  # 90 days
        self.assertFalse(old.exists())

    def test_a_full_chunk_runs_the_cron_again_soon(self):
        self._finished(100)
        self._finished(100)
        cron = self.env.ref("smartpm_prepay.cron_purge_finished_jobs")
        triggers = self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)])
        self.assertEqual(self.Jobs._cron_purge_finished(limit=1), 1)
        self.assertGreater(
            self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)]), len(triggers)
        )
        self.assertEqual(self.Jobs._cron_purge_finished(limit=1), 1)

    def test_the_setting_is_on_the_settings_page(self):
        settings = self.env["res.config.settings"].create({"smartpm_job_retention_days": 30})
        settings.execute()
        self.assertEqual(self.env["ir.config_parameter"].sudo().get_param(RETENTION_PARAM), "30")
