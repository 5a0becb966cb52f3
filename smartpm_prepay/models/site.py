from odoo import api, fields, models


class SmartpmSite(models.Model):
    _name = "smartpm.site"
    _description = "Property (site)"
    _order = "name"
    _check_company_auto = True

    name = fields.Char(required=True)
    code = fields.Char()
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True
    )
    address_id = fields.Many2one("res.partner", check_company=True)
    line_ids = fields.One2many("smartpm.line", "site_id", string="Lines")
    meter_count = fields.Integer(compute="_compute_meter_count")
    manager_id = fields.Many2one(
        "res.users",
        string="Property manager",
        help="Gets a to-do for every alarm of this property.",
    )

    _sql_constraints = [
        ("code_company_uniq", "unique(code, company_id)", "A site code is unique per company."),
    ]

    @api.depends("line_ids.transformer_ids.meter_ids")
    def _compute_meter_count(self):
        for site in self:
            site.meter_count = len(site.line_ids.transformer_ids.meter_ids)
