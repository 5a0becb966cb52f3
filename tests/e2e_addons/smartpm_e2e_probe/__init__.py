"""Test probe for end-to-end tests, loaded by the Odoo server under test with
``--load=base,web,smartpm_e2e_probe`` (never installed): it gives ``res.partner`` the origin
hooks of services/credit_clear.py, counting each call in a system parameter
(``smartpm_e2e_probe.<hook>.<job id>``), so a test in another process sees how often the
origin was told."""

from odoo.addons.base.models.res_partner import Partner


def _count(record, hook, job):
    params = record.env["ir.config_parameter"].sudo()
    key = f"smartpm_e2e_probe.{hook}.{job.id}"
    params.set_param(key, str(int(params.get_param(key) or 0) + 1))


def _on_credit_cleared(self, job, result):
    _count(self, "cleared", job)


def _on_credit_clear_failed(self, job):
    _count(self, "failed", job)


Partner._on_credit_cleared = _on_credit_cleared
Partner._on_credit_clear_failed = _on_credit_clear_failed
