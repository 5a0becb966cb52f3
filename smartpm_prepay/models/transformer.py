from odoo import api, fields, models


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

    def action_view_energy_balance(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "smartpm_prepay.action_energy_balance"
        )
        action["domain"] = [("transformer_id", "=", self.id)]
        return action
