from odoo import api, fields, models
from odoo.exceptions import UserError

from ..services import tenant_periods


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

    # Readings, alarms and consumption keep the tenant of their time (services/tenant_periods):
    # set them again over the times an assignment's change touches.
    @api.model_create_multi
    def create(self, vals_list):
        assignments = super().create(vals_list)
        assignments._refresh_tenant_periods(assignments.mapped("date_start"))
        return assignments

    def write(self, vals):
        if not {"meter_id", "tenant_id", "date_start", "date_end"} & set(vals):
            return super().write(vals)
        if {"meter_id", "tenant_id", "date_start"} & set(vals):
            times = self.mapped("date_start")
        else:  # only the end moves: from the earlier of the old and the new end
            times = [a.date_end for a in self if a.date_end]
        meters = self.meter_id
        res = super().write(vals)
        times += [
            fields.Datetime.to_datetime(vals[k]) for k in ("date_start", "date_end") if vals.get(k)
        ]
        self._refresh_tenant_periods(times, meters | self.meter_id)
        return res

    def unlink(self):
        meters, times = self.meter_id, self.mapped("date_start")
        res = super().unlink()
        self._refresh_tenant_periods(times, meters)
        return res

    def _refresh_tenant_periods(self, times, meters=None):
        meters = self.meter_id if meters is None else meters
        times = [t for t in times if t]
        if meters and times:
            tenant_periods.refresh_meters(self.env, meters.ids, min(times))

    def action_move_out(self):
        """Button on an open assignment (tenant form, tenant history): the move-out wizard."""
        self.ensure_one()
        if not self.is_open:
            raise UserError(
                self.env._(
                    "The assignment %s has ended already: nothing to move out.", self.display_name
                )
            )
        return self.meter_id.action_move_out()

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
