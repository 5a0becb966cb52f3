from odoo import models

from ..services import prepayment


class AccountChartTemplate(models.AbstractModel):
    _inherit = "account.chart.template"

    def _load(self, template_code, company, install_demo, force_create=True):
        """A company's chart of accounts gets its prepayment accounts at once."""
        res = super()._load(template_code, company, install_demo, force_create)
        prepayment.ensure_accounts(self.env["res.company"].browse(company.id))
        return res
