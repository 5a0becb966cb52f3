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
    address_id = fields.Many2one("res.partner", string="Address", check_company=True)
    line_ids = fields.One2many("smartpm.line", "site_id", string="Lines")
    meter_count = fields.Integer(compute="_compute_meter_count")

    _sql_constraints = [
        ("code_company_uniq", "unique(code, company_id)", "A site code is unique per company."),
    ]

    @api.depends("line_ids.transformer_ids.meter_ids")
    def _compute_meter_count(self):
        for site in self:
            site.meter_count = len(site.line_ids.transformer_ids.meter_ids)


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


class SmartpmTransformer(models.Model):
    _name = "smartpm.transformer"
    _description = "Transformer"
    _order = "line_id, name"
    _check_company_auto = True

    name = fields.Char(required=True)
    code = fields.Char()
    active = fields.Boolean(default=True)
    line_id = fields.Many2one(
        "smartpm.line", required=True, ondelete="restrict", index=True, check_company=True
    )
    site_id = fields.Many2one(related="line_id.site_id", store=True, index=True)
    company_id = fields.Many2one(related="line_id.company_id", store=True, index=True)
    capacity_kva = fields.Float(string="Capacity (kVA)")
    check_meter_id = fields.Many2one(
        "smartpm.meter",
        string="Check meter",
        check_company=True,
        help="Meter measuring the transformer's total, for energy-balance (loss) analysis.",
    )
    loss_threshold_pct = fields.Float(
        string="Loss alarm threshold (%)",
        default=8.0,
        help="A daily loss above this share of the check meter's energy raises an alarm.",
    )
    meter_ids = fields.One2many("smartpm.meter", "transformer_id", string="Meters")
    meter_count = fields.Integer(compute="_compute_meter_count")

    _sql_constraints = [
        ("code_line_uniq", "unique(code, line_id)", "A transformer code is unique per line."),
        (
            "loss_threshold_range",
            "CHECK(loss_threshold_pct >= 0 AND loss_threshold_pct <= 100)",
            "The loss threshold is a percentage between 0 and 100.",
        ),
    ]

    @api.depends("meter_ids")
    def _compute_meter_count(self):
        for transformer in self:
            transformer.meter_count = len(transformer.meter_ids)

    @api.depends("line_id.name")
    def _compute_display_name(self):
        for transformer in self:
            transformer.display_name = (
                f"{transformer.line_id.name} / {transformer.name}"
                if transformer.line_id
                else transformer.name
            )
