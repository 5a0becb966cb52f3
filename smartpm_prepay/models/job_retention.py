"""Finished meter jobs are purged after a retention period.

Scheduled reads and pings add several jobs per meter and day: at 100,000 meters the table
would grow by millions of rows a month. Jobs that are the trail of money (credit delivery,
reconnection) or of a reading task are kept.
"""

from odoo import api, models

from ..services import job_queue
from .res_config_settings import DEFAULT_RETENTION_DAYS, RETENTION_PARAM


class SmartpmMeterJob(models.Model):
    _inherit = "smartpm.meter.job"

    @api.model
    def _cron_purge_finished(self, limit=job_queue.PURGE_CHUNK):
        value = self.env["ir.config_parameter"].sudo().get_param(RETENTION_PARAM)
        try:
            days = int(value)
        except (TypeError, ValueError):  # unset or not a number
            days = DEFAULT_RETENTION_DAYS
        if days <= 0:
            return 0  # 0: keep every job
        purged = job_queue.purge_finished(self.sudo().env, days, limit)
        if purged >= limit:  # more to do: run again soon rather than in a day
            self.env.ref("smartpm_prepay.cron_purge_finished_jobs")._trigger()
        return purged
