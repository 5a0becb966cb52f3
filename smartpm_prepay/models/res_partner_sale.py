from odoo import _, fields, models


class ResPartner(models.Model):
    """Tenant side of selling: default tariff, load limit, purchases."""

    _inherit = "res.partner"

    smartpm_tariff_id = fields.Many2one(
        "smartpm.tariff",
        string="Default tariff",
        help="Tariff of the tenant's meters that have none of their own.",
    )
    load_limit_w = fields.Integer(
        string="Load limit (W)",
        help="Maximum power of the tenant's meters (0 = no limit); changing it sets it on "
        "every meter of the tenant.",
    )
    purchase_ids = fields.One2many("smartpm.credit.purchase", "tenant_id", string="Purchases")
    purchase_count = fields.Integer(compute="_compute_purchase_count")

    _sql_constraints = [
        ("load_limit_w_positive", "CHECK(load_limit_w >= 0)", "The load limit cannot be negative."),
    ]

    def _compute_purchase_count(self):
        counts = dict(
            self.env["smartpm.credit.purchase"]
            .sudo()
            ._read_group([("tenant_id", "in", self.ids)], ["tenant_id"], ["__count"])
        )
        for partner in self:
            partner.purchase_count = counts.get(partner, 0)

    def write(self, vals):
        thresholds_before = {}
        if "smartpm_tariff_id" in vals:
            thresholds_before = {
                m: m._get_thresholds()
                for m in self.sudo().meter_ids.filtered(lambda m: not m.tariff_id)
            }
        res = super().write(vals)
        if "load_limit_w" in vals:
            self.meter_ids.write({"load_limit_w": vals["load_limit_w"]})
        if thresholds_before:
            self.env["smartpm.meter"].sudo().concat(
                *[m for m, old in thresholds_before.items() if m._get_thresholds() != old]
            )._push_thresholds()
        return res

    def action_view_purchases(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("Purchases"),
            "res_model": "smartpm.credit.purchase",
            "view_mode": "list,form",
            "domain": [("tenant_id", "=", self.id)],
        }
