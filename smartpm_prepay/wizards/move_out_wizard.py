from odoo import api, fields, models
from odoo.exceptions import UserError

from ..models.credit_settlement import SETTLEMENT_KINDS
from ..services import engine, settlement


class SmartpmMoveOutWizard(models.TransientModel):
    """Start a move-out: how the tenant's remaining credit is settled, who comes next."""

    _name = "smartpm.move.out.wizard"
    _description = "Move a tenant out"
    _check_company_auto = True

    meter_id = fields.Many2one("smartpm.meter", required=True, check_company=True)
    company_id = fields.Many2one(related="meter_id.company_id")
    tenant_id = fields.Many2one(related="meter_id.tenant_id", string="Tenant")
    credit_kwh = fields.Float(related="meter_id.credit_kwh", string="Last known credit (kWh)")
    settlement_kind = fields.Selection(
        SETTLEMENT_KINDS,
        required=True,
        default="refund",
        help="Refund: a credit note and a payment to the tenant. Transfer: a token of the "
        "same kWh on another meter of the tenant, no money. Forfeit: the owner keeps the "
        "credit (forfeited credit income).",
    )
    transfer_meter_id = fields.Many2one(
        "smartpm.meter",
        string="Transfer to meter",
        check_company=True,
        domain="[('tenant_id', '=', tenant_id), ('id', '!=', meter_id)]",
    )
    refund_journal_id = fields.Many2one(
        "account.journal",
        string="Refund paid from",
        check_company=True,
        domain="[('type', 'in', ('cash', 'bank')), ('company_id', '=', company_id)]",
        help="The cash or bank journal the refund is paid out of.",
    )
    next_tenant_id = fields.Many2one(
        "res.partner",
        string="Next tenant",
        domain="[('is_tenant', '=', True), ('id', '!=', tenant_id)]",
        help="Optional: takes the meter at zero credit once the credit is cleared.",
    )

    @api.onchange("settlement_kind", "meter_id")
    def _onchange_settlement_kind(self):
        if self.settlement_kind == "refund" and not self.refund_journal_id and self.company_id:
            self.refund_journal_id = self.env["account.journal"].search(
                [("type", "=", "cash"), ("company_id", "=", self.company_id.id)], limit=1
            )

    def _check_request(self):
        meter = self.meter_id.sudo()
        if not meter.tenant_id:
            raise UserError(self.env._("Meter %s has no tenant to move out.", meter.serial_number))
        if meter.state not in ("active", "disconnected") or not meter.active:
            raise UserError(self.env._("Meter %s is not in service.", meter.serial_number))
        running = settlement.running_move_out(meter)
        if running:
            raise UserError(
                self.env._(
                    "Meter %(meter)s has a move-out running: %(ref)s.",
                    meter=meter.serial_number,
                    ref=running.name,
                )
            )
        pending = settlement.undelivered_purchases(meter)
        if pending:
            raise UserError(
                self.env._(
                    "Meter %(meter)s has credit on its way (%(refs)s): deliver or reverse it "
                    "before the tenant moves out.",
                    meter=meter.serial_number,
                    refs=", ".join(pending.mapped("name")),
                )
            )
        if self.settlement_kind == "transfer":
            target = self.transfer_meter_id.sudo()
            if not target or target.tenant_id != meter.tenant_id or target == meter:
                raise UserError(
                    self.env._(
                        "Credit of meter %s is transferred to another meter of the same tenant.",
                        meter.serial_number,
                    )
                )
            if target.state not in ("active", "disconnected") or not target.active:
                raise UserError(self.env._("Meter %s is not in service.", target.serial_number))
            if settlement.running_move_out(target):
                raise UserError(
                    self.env._("Meter %s has a move-out running.", target.serial_number)
                )
        if self.settlement_kind == "refund" and not self.refund_journal_id:
            raise UserError(self.env._("Choose the cash or bank journal the refund is paid from."))
        if self.next_tenant_id == meter.tenant_id:
            raise UserError(self.env._("The next tenant is another tenant."))

    def action_confirm(self):
        settlement.check_manager(self.env)
        self.ensure_one()
        self._check_request()
        meter = self.meter_id.sudo()
        self.env["smartpm.move.out"]._check_meter_settleable(
            meter, self.transfer_meter_id if self.settlement_kind == "transfer" else None
        )
        vals = {
            "meter_id": meter.id,
            "tenant_id": meter.tenant_id.id,
            "assignment_id": meter.assignment_ids.filtered("is_open")[:1].id,
            "settlement_kind": self.settlement_kind,
            "transfer_meter_id": self.transfer_meter_id.id
            if self.settlement_kind == "transfer"
            else False,
            "refund_journal_id": self.refund_journal_id.id
            if self.settlement_kind == "refund"
            else False,
            "next_tenant_id": self.next_tenant_id.id,
        }
        move_out = engine.create(self.env["smartpm.move.out"].with_user(self.env.uid), [vals])
        move_out._start()
        return {
            "type": "ir.actions.act_window",
            "res_model": "smartpm.move.out",
            "view_mode": "form",
            "res_id": move_out.id,
        }


class SmartpmMoveOutReadingWizard(models.TransientModel):
    """The audited override: a Manager records the final reading of a meter that does not
    answer (who, when, values and reason go to the move-out's chatter)."""

    _name = "smartpm.move.out.reading.wizard"
    _description = "Record a final reading by hand"

    move_out_id = fields.Many2one("smartpm.move.out", required=True)
    credit_kwh = fields.Float(
        string="Credit (kWh)", digits=(16, 3), help="The credit shown on the meter's display."
    )
    credit_mode = fields.Selection(related="move_out_id.credit_mode")
    credit_money = fields.Float(
        string="Credit (money)",
        digits=(16, 3),
        help="A money-mode meter: the credit shown on the meter's display, in the currency.",
    )
    energy_kwh = fields.Float(string="Energy register (kWh)", digits=(16, 3))
    reason = fields.Text(required=True, help="Why the reading is recorded by hand.")

    def action_confirm(self):
        settlement.check_manager(self.env)
        self.ensure_one()
        credit = self.credit_money if self.credit_mode == "money" else self.credit_kwh
        self.move_out_id._record_manual(credit, self.energy_kwh, self.reason)
        return {"type": "ir.actions.act_window_close"}
