from odoo import api, fields, models
from odoo.exceptions import AccessError

from ..services import statement


class ReportTenantStatement(models.AbstractModel):
    """Values of the tenant statement PDF (services/statement.py), one per tenant.

    ``data``: ``date_from``, ``date_to`` (local days, default the last full month) and
    ``meter_id`` (optional). Read with the caller's rights; a portal user gets their own
    statement only (the portal route renders it for the logged-in tenant)."""

    _name = "report.smartpm_prepay.report_tenant_statement"
    _description = "Tenant statement (PDF)"

    @api.model
    def _get_report_values(self, docids, data=None):
        data = data or {}
        tenants = self.env["res.partner"].browse(docids)
        if not self.env.su and self.env.user.share:
            own = self.env.user.partner_id.commercial_partner_id
            if tenants - own:
                raise AccessError(self.env._("You may only print your own statement."))
        tenants.check_access("read")
        meter = self.env["smartpm.meter"].browse(data.get("meter_id") or [])
        statements = []
        for tenant in tenants:
            company = statement.statement_company(self.env, tenant, meter)
            default_from, default_to = statement.last_full_month(company)
            date_from = fields.Date.to_date(data.get("date_from")) or default_from
            date_to = fields.Date.to_date(data.get("date_to")) or default_to
            statements.append(
                statement.tenant_statement(self.env, tenant, date_from, date_to, meter or None)
            )
        return {
            "doc_ids": docids,
            "doc_model": "res.partner",
            "docs": tenants,
            "statements": statements,
        }
