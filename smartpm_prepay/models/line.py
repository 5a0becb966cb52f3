from odoo import api, fields, models


class SmartpmLine(models.Model):
    _name = "smartpm.line"
    _description = "Distribution line"
    _order = "site_id, name"
    _check_company_auto = True

    name = fields.Char(required=True)
    code = fields.Char()
    active = fields.Boolean(default=True)
    site_id = fields.Many2one(
        "smartpm.site", required=True, ondelete="restrict", index=True, check_company=True
    )
    company_id = fields.Many2one(related="site_id.company_id", store=True, index=True)
    transformer_ids = fields.One2many("smartpm.transformer", "line_id", string="Transformers")
    meter_count = fields.Integer(compute="_compute_meter_count")

    _sql_constraints = [
        ("code_site_uniq", "unique(code, site_id)", "A line code is unique per site."),
    ]

    @api.depends("transformer_ids.meter_ids")
    def _compute_meter_count(self):
        for line in self:
            line.meter_count = len(line.transformer_ids.meter_ids)
