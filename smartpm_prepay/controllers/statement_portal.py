"""Tenant portal: /my/statement, the logged-in tenant's statement for a period, and its PDF.

The tenant is always the logged-in user's (commercial) partner, never a parameter: another
tenant's statement has no URL. The statement reads only the tenant's own rows (their
assignment periods, services/tenant_periods.py), so the tenant before or after them on a
meter is never in it."""

from urllib.parse import urlencode

from odoo import fields, http
from odoo.addons.portal.controllers.portal import CustomerPortal
from odoo.http import request

from ..services import statement


class SmartpmStatementPortal(CustomerPortal):
    def _get_statement_tenant(self):
        """The logged-in tenant, or 404 for a portal user who is no tenant."""
        tenant = request.env.user.partner_id.commercial_partner_id
        if not tenant.sudo().is_tenant:
            raise request.not_found()
        return tenant

    def _get_statement_meter(self, tenant, meter_id):
        """A meter the tenant held at some time, or 404 (any other id looks missing)."""
        if not meter_id:
            return request.env["smartpm.meter"]
        try:
            meter_id = int(meter_id)
        except ValueError:
            raise request.not_found() from None
        held = (
            request.env["smartpm.meter.assignment"]
            .sudo()
            .search([("tenant_id", "child_of", tenant.ids), ("meter_id", "=", meter_id)], limit=1)
        )
        if not held:
            raise request.not_found()
        return held.meter_id

    def _get_statement_period(self, company, date_from, date_to):
        default_from, default_to = statement.last_full_month(company)
        try:
            date_from = fields.Date.to_date(date_from) or default_from
            date_to = fields.Date.to_date(date_to) or default_to
        except ValueError:
            date_from, date_to = default_from, default_to
        return min(date_from, date_to), max(date_from, date_to)

    def _get_statement(self, date_from=None, date_to=None, meter_id=None):
        tenant = self._get_statement_tenant()
        meter = self._get_statement_meter(tenant, meter_id)
        env = request.env(su=True)
        company = statement.statement_company(env, tenant.with_env(env), meter.with_env(env))
        date_from, date_to = self._get_statement_period(company, date_from, date_to)
        return statement.tenant_statement(
            env, tenant.with_env(env), date_from, date_to, meter.with_env(env) or None
        )

    def _prepare_home_portal_values(self, counters):
        values = super()._prepare_home_portal_values(counters)
        if "statement_count" in counters:
            tenant = request.env.user.partner_id.commercial_partner_id
            values["statement_count"] = 1 if tenant.sudo().is_tenant else 0
        return values

    @http.route(["/my/statement"], type="http", auth="user", website=True)
    def portal_my_statement(self, date_from=None, date_to=None, meter_id=None, **kwargs):
        stmt = self._get_statement(date_from, date_to, meter_id)
        tenant = stmt["tenant"]
        meters = (
            request.env["smartpm.meter.assignment"]
            .sudo()
            .search([("tenant_id", "child_of", tenant.ids)])
            .meter_id
        )
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "page_name": "statement",
                "statement": stmt,
                "held_meters": meters.sorted("serial_number"),
                "meter_id": int(meter_id) if meter_id else False,
                "pdf_url": "/my/statement/pdf?"
                + urlencode(
                    {
                        "date_from": fields.Date.to_string(stmt["date_from"]),
                        "date_to": fields.Date.to_string(stmt["date_to"]),
                        **({"meter_id": meter_id} if meter_id else {}),
                    }
                ),
            }
        )
        return request.render("smartpm_prepay.portal_my_statement", values)

    @http.route(["/my/statement/pdf"], type="http", auth="user", website=True)
    def portal_my_statement_pdf(self, date_from=None, date_to=None, meter_id=None, **kwargs):
        tenant = self._get_statement_tenant()
        meter = self._get_statement_meter(tenant, meter_id)
        company = statement.statement_company(request.env(su=True), tenant.sudo(), meter.sudo())
        date_from, date_to = self._get_statement_period(company, date_from, date_to)
        data = {
            "date_from": fields.Date.to_string(date_from),
            "date_to": fields.Date.to_string(date_to),
            "meter_id": meter.id or False,
        }
        # rendered for the logged-in tenant only (the report refuses another one anyway)
        pdf, _type = (
            request.env["ir.actions.report"]
            .sudo()
            ._render_qweb_pdf("smartpm_prepay.report_tenant_statement", tenant.ids, data=data)
        )
        filename = f"statement-{data['date_from']}-{data['date_to']}.pdf"
        return request.make_response(
            pdf,
            headers=[
                ("Content-Type", "application/pdf"),
                ("Content-Length", len(pdf)),
                ("Content-Disposition", f'attachment; filename="{filename}"'),
            ],
        )
