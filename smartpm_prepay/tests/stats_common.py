from odoo.tests import new_test_user

from .common import SmartpmCase

BRIDGE = "t-stats-bridge"


class StatsCase(SmartpmCase):
    """A bridge user and helpers to run jobs through the real job engine."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bridge_user = new_test_user(
            cls.env, "t_bridge_stats", groups="base.group_user,smartpm_prepay.group_bridge_api"
        )
        cls.operator = new_test_user(cls.env, "t_op_stats", groups="smartpm_prepay.group_operator")
        cls._clear_job_queue()
        cls.env.company.partner_id.tz = "UTC"

    def _bridge(self):
        return self.env["smartpm.meter.job"].with_user(self.bridge_user)

    def _claim_all(self):
        return {j["id"] for j in self._bridge().claim(BRIDGE, 500, 60)}

    def _complete(self, job, result):
        if job.state != "claimed":
            self.assertIn(job.id, self._claim_all())
        self._bridge().complete(job.id, BRIDGE, result)
        self.env.invalidate_all()

    def _fail(self, job, error="meter unreachable"):
        if job.state != "claimed":
            self.assertIn(job.id, self._claim_all())
        self._bridge().fail(job.id, BRIDGE, error, False)
        self.env.invalidate_all()
