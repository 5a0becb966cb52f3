from odoo import api, fields, models
from odoo.exceptions import UserError

from ..services import statement


class SmartpmTenantStatementWizard(models.TransientModel):
    """A tenant's statement for a period, on screen and printed (services/statement.py).
    Computed with the user's rights: a cashier sees the tenants of their companies."""

    _name = "smartpm.tenant.statement.wizard"
    _description = "Tenant statement"

    tenant_id = fields.Many2one(
        "res.partner",
        required=True,
        domain=[("is_tenant", "=", True)],
        help="The tenant whose purchases, reversals and consumption are listed.",
    )
    meter_id = fields.Many2one(
        "smartpm.meter",
        help="Only this meter (the time the tenant held it); empty: all their meters.",
    )
    date_from = fields.Date(
        string="From",
        required=True,
        default=lambda self: statement.last_full_month(self.env.company)[0],
        help="First local day of the period (the company's time zone).",
    )
    date_to = fields.Date(
        string="To",
        required=True,
        default=lambda self: statement.last_full_month(self.env.company)[1],
        help="Last local day of the period, included.",
    )
    statement_html = fields.Html(
        string="Statement", compute="_compute_statement_html", sanitize=False
    )

    def _get_statement(self):
        self.ensure_one()
        if self.date_to < self.date_from:
            raise UserError(self.env._("The period of the statement ends before it starts."))
        self.tenant_id.check_access("read")
        return statement.tenant_statement(
            self.env, self.tenant_id, self.date_from, self.date_to, self.meter_id or None
        )

    @api.depends("tenant_id", "meter_id", "date_from", "date_to")
    def _compute_statement_html(self):
        for wizard in self:
            if not (wizard.tenant_id and wizard.date_from and wizard.date_to):
                wizard.statement_html = False
                continue
            if wizard.date_to < wizard.date_from:
                wizard.statement_html = self.env._("The period ends before it starts.")
                continue
            wizard.statement_html = self.env["ir.qweb"]._render(
                "smartpm_prepay.statement_body", {"statement": wizard._get_statement()}
            )

    def _get_report_data(self):
        return {
            "date_from": fields.Date.to_string(self.date_from),
            "date_to": fields.Date.to_string(self.date_to),
            "meter_id": self.meter_id.id or False,
        }

    def action_print(self):
        self.ensure_one()
        self._get_statement()  # the same checks as on screen
        return self.env.ref("smartpm_prepay.action_report_tenant_statement").report_action(
            self.tenant_id, data=self._get_report_data()
        )
