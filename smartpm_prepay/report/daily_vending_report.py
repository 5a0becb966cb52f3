from odoo import api, models

from ..services import daily_vending


class ReportDailyVending(models.AbstractModel):
    """Values of the daily vending report PDF, one page per wizard
    (smartpm.daily.vending.wizard). The wizard is read with the printer's rights, so its
    record rules decide whose figures a user may print (a cashier: their own only); the
    figures are then summed in sudo (services/daily_vending.py)."""

    _name = "report.smartpm_prepay.report_daily_vending"
    _description = "Daily vending report (PDF)"

    @api.model
    def _get_report_values(self, docids, data=None):
        wizards = self.env["smartpm.daily.vending.wizard"].browse(docids)
        wizards.check_access("read")
        reports = [wizard._get_report() for wizard in wizards]
        return {
            "doc_ids": docids,
            "doc_model": "smartpm.daily.vending.wizard",
            "docs": wizards,
            "reports": reports,
            "figures": daily_vending.FIGURES,
        }
