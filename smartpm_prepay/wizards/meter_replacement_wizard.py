from odoo import fields, models
from odoo.exceptions import UserError

from ..services import engine, settlement


class SmartpmMeterReplacementWizard(models.TransientModel):
    """A broken meter replaced: its credit and tenant go to the new meter, it is
    decommissioned (models/move_out.py, purpose ``replacement``)."""

    _name = "smartpm.meter.replacement.wizard"
    _description = "Replace a meter"
    _check_company_auto = True

    old_meter_id = fields.Many2one(
        "smartpm.meter", string="Old meter", required=True, check_company=True
    )
    company_id = fields.Many2one(related="old_meter_id.company_id")
    tenant_id = fields.Many2one(related="old_meter_id.tenant_id", string="Tenant")
    new_meter_id = fields.Many2one(
        "smartpm.meter",
        string="New meter",
        required=True,
        check_company=True,
        domain="[('company_id', '=', company_id), ('tenant_id', '=', False), "
        "('state', '!=', 'decommissioned'), ('id', '!=', old_meter_id)]",
        help="Same company, no tenant, not decommissioned: it takes the tenant and the credit.",
    )

    def _check_request(self):
        old, new = self.old_meter_id.sudo(), self.new_meter_id.sudo()
        if not old.tenant_id:
            raise UserError(
                self.env._("Meter %s has no tenant: nothing to move.", old.serial_number)
            )
        if old.state == "decommissioned" or not old.active:
            raise UserError(self.env._("Meter %s is decommissioned already.", old.serial_number))
        if new == old or new.company_id != old.company_id:
            raise UserError(self.env._("The new meter is another meter of the same company."))
        if new.state == "decommissioned" or not new.active:
            raise UserError(self.env._("Meter %s is decommissioned.", new.serial_number))
        if new.assignment_ids.filtered("is_open") or new.tenant_id:
            raise UserError(self.env._("Meter %s has a tenant already.", new.serial_number))
        if not new._get_token_key():
            raise UserError(
                self.env._("Meter %s has no token key: enter it first.", new.serial_number)
            )
        for meter in old | new:
            running = settlement.running_move_out(meter)
            if running:
                raise UserError(
                    self.env._(
                        "Meter %(meter)s has a move-out running: %(ref)s.",
                        meter=meter.serial_number,
                        ref=running.name,
                    )
                )
        pending = settlement.undelivered_purchases(old)
        if pending:
            raise UserError(
                self.env._(
                    "Meter %(meter)s has credit on its way (%(refs)s): deliver or reverse it "
                    "first.",
                    meter=old.serial_number,
                    refs=", ".join(pending.mapped("name")),
                )
            )

    def action_confirm(self):
        settlement.check_manager(self.env)
        self.ensure_one()
        self._check_request()
        old = self.old_meter_id.sudo()
        self.env["smartpm.move.out"]._check_meter_settleable(old, self.new_meter_id)
        move_out = engine.create(
            self.env["smartpm.move.out"].with_user(self.env.uid),
            [
                {
                    "purpose": "replacement",
                    "meter_id": old.id,
                    "tenant_id": old.tenant_id.id,
                    "assignment_id": old.assignment_ids.filtered("is_open")[:1].id,
                    "settlement_kind": "transfer",
                    "transfer_meter_id": self.new_meter_id.id,
                }
            ],
        )
        move_out._start()
        return {
            "type": "ir.actions.act_window",
            "res_model": "smartpm.move.out",
            "view_mode": "form",
            "res_id": move_out.id,
        }
