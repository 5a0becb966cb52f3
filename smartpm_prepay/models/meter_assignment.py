from odoo import api, fields, models


class SmartpmMeterAssignment(models.Model):
    _name = "smartpm.meter.assignment"
    _description = "Meter assignment to a tenant"
    _order = "date_start desc, id desc"
    _check_company_auto = True

    meter_id = fields.Many2one(
        "smartpm.meter", required=True, ondelete="cascade", index=True, check_company=True
    )
    tenant_id = fields.Many2one(
        "res.partner", required=True, ondelete="restrict", index=True, check_company=True
    )
    company_id = fields.Many2one(related="meter_id.company_id", store=True, index=True)
    date_start = fields.Datetime(required=True, default=fields.Datetime.now)
    date_end = fields.Datetime()
    is_open = fields.Boolean(compute="_compute_is_open", store=True)

    _sql_constraints = [
        (
            "dates_order",
            "CHECK(date_end IS NULL OR date_end >= date_start)",
            "An assignment cannot end before it starts.",
        ),
    ]

    def init(self):
        # One open assignment per meter must hold under concurrency: a partial unique index.
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS smartpm_meter_assignment_one_open
            ON smartpm_meter_assignment (meter_id) WHERE date_end IS NULL
            """
        )

    @api.depends("date_end")
    def _compute_is_open(self):
        for assignment in self:
            assignment.is_open = not assignment.date_end

    @api.depends("meter_id", "tenant_id")
    def _compute_display_name(self):
        for assignment in self:
            assignment.display_name = (
                f"{assignment.meter_id.serial_number} → {assignment.tenant_id.display_name}"
            )
