import logging

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import LazyTranslate

from ..services import engine, job_queue, settlement
from .credit_settlement import SETTLEMENT_KINDS

_lt = LazyTranslate(__name__)

_logger = logging.getLogger(__name__)

STATES = [
    ("draft", "Draft"),
    ("reading", "Reading the meter"),
    ("settling", "Settling"),
    ("clearing", "Clearing the meter"),
    ("done", "Done"),
    ("blocked", "Blocked"),
]


class SmartpmMoveOut(models.Model):
    """A tenant leaving a meter (or a meter replaced): read, settle, clear, hand over.

    Every step is the engine's (services/settlement.py, the job hooks): the record is
    created by the wizards and moved by its buttons and by the meter's answers, never
    written over RPC."""

    _name = "smartpm.move.out"
    _description = "Move-out and settlement"
    _inherit = ["smartpm.engine.record", "mail.thread", "mail.activity.mixin"]
    # Class attributes: no env exists when the class is defined; the lazy term is
    # translated with the env where engine_record raises it (self.env._(...)).
    _engine_create_error = _lt("A move-out is started from its wizard (meter or tenant).")  # pylint: disable=prefer-env-translation
    _engine_sequence = "smartpm.move.out"
    _engine_unlink_error = _lt("Move-outs are kept: they are the trail of a settlement.")  # pylint: disable=prefer-env-translation
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(
        required=True, readonly=True, copy=False, default=lambda self: self.env._("New")
    )
    purpose = fields.Selection(
        [("move_out", "Move-out"), ("replacement", "Meter replacement")],
        required=True,
        readonly=True,
        default="move_out",
    )
    meter_id = fields.Many2one(
        "smartpm.meter",
        required=True,
        readonly=True,
        index=True,
        ondelete="restrict",
        check_company=True,
    )
    company_id = fields.Many2one(related="meter_id.company_id", store=True, index=True)
    assignment_id = fields.Many2one(
        "smartpm.meter.assignment",
        string="Assignment ended",
        readonly=True,
        ondelete="restrict",
    )
    tenant_id = fields.Many2one(
        "res.partner",
        required=True,
        readonly=True,
        index=True,
        ondelete="restrict",
    )
    next_tenant_id = fields.Many2one(
        "res.partner",
        string="Next tenant",
        readonly=True,
        ondelete="restrict",
        help="Takes the meter at zero credit once the old tenant's credit is cleared.",
    )
    settlement_kind = fields.Selection(SETTLEMENT_KINDS, required=True, readonly=True)
    transfer_meter_id = fields.Many2one(
        "smartpm.meter",
        string="Credit goes to meter",
        readonly=True,
        ondelete="restrict",
        check_company=True,
    )
    refund_journal_id = fields.Many2one(
        "account.journal", string="Refund paid from", readonly=True, check_company=True
    )
    state = fields.Selection(
        STATES, default="draft", required=True, readonly=True, index=True, tracking=True
    )
    blocked_reason = fields.Text(readonly=True)
    blocked_step = fields.Selection(
        [("reading", "Reading"), ("settling", "Settling"), ("clearing", "Clearing")],
        readonly=True,
    )
    disconnect_job_id = fields.Many2one("smartpm.meter.job", readonly=True, index="btree_not_null")
    read_job_id = fields.Many2one(
        "smartpm.meter.job", string="Reading job", readonly=True, index="btree_not_null"
    )
    read_attempt = fields.Integer(readonly=True, default=0)
    clear_job_id = fields.Many2one(
        "smartpm.meter.job", string="Clearing job", readonly=True, index="btree_not_null"
    )
    zero_job_id = fields.Many2one(
        "smartpm.meter.job",
        string="Zeroing job",
        readonly=True,
        index="btree_not_null",
        help="The token that repays the emergency credit in use and lifts a negative credit "
        "on the meter (the leaving tenant's debt pays for it), so that the next tenant starts "
        "at zero.",
    )
    zero_job_state = fields.Selection(related="zero_job_id.state", string="Zeroing job state")
    # the final reading
    credit_mode = fields.Selection(
        [("kwh", "kWh"), ("money", "Money")],
        default="kwh",
        readonly=True,
        help="The meter's credit unit when the move-out started: money on a money-mode meter "
        "(time of use), settled in the currency.",
    )
    final_credit_kwh = fields.Float(
        string="Final credit (kWh)",
        digits=(16, 3),
        readonly=True,
        help="The credit read from the meter: emergency credit taken included, below zero "
        "after a friendly period.",
    )
    final_credit_money = fields.Float(
        string="Final credit (money)",
        digits=(16, 3),
        readonly=True,
        help="Money-mode meters: the credit read from the meter, in the currency (emergency "
        "credit taken included, below zero after a friendly period).",
    )
    final_emergency_kwh = fields.Float(
        string="Emergency credit in use (kWh)",
        digits=(16, 3),
        readonly=True,
        help="Emergency credit the tenant took and had not repaid at the final reading: not "
        "paid for, so not refundable.",
    )
    final_emergency_money = fields.Float(
        string="Emergency credit in use (money)",
        digits=(16, 3),
        readonly=True,
        help="Money-mode meters: emergency credit in use at the final reading, in the "
        "currency: not paid for, so not refundable.",
    )
    final_energy_kwh = fields.Float(
        string="Final energy register (kWh)", digits=(16, 3), readonly=True
    )
    final_reading_time = fields.Datetime(readonly=True)
    reading_source = fields.Selection(
        [("meter", "Read from the meter"), ("manual", "Recorded by hand")], readonly=True
    )
    override_user_id = fields.Many2one("res.users", string="Recorded by", readonly=True)
    override_date = fields.Datetime(string="Recorded on", readonly=True)
    override_reason = fields.Text(readonly=True)
    settlement_id = fields.Many2one("smartpm.credit.settlement", readonly=True)
    settlement_amount = fields.Monetary(related="settlement_id.amount_total")
    currency_id = fields.Many2one(related="company_id.currency_id")
    next_assignment_id = fields.Many2one("smartpm.meter.assignment", readonly=True)
    date_done = fields.Datetime(readonly=True)

    def init(self):
        # one move-out (or replacement) running per meter, whatever the concurrency
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS smartpm_move_out_one_running
            ON smartpm_move_out (meter_id) WHERE state NOT IN ('done')
            """
        )

    @api.model
    def _engine_fields(self):
        return {
            name
            for name, field in self._fields.items()
            if field.store
            and not field.compute
            and not field.related
            and name not in models.MAGIC_COLUMNS
            and not name.startswith(("message_", "activity_"))
        }

    # ---------------------------------------------------------------- helpers
    def _lock(self):
        """Row lock: a double click, a result reported twice and the cron meet here."""
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT id FROM smartpm_move_out WHERE id = ANY(%s) FOR NO KEY UPDATE", (self.ids,)
        )
        self.invalidate_recordset()
        return engine.as_engine(self)

    def _owner(self):
        user = self.create_uid if self.create_uid.has_group(settlement.MANAGER_GROUP) else False
        return user or self.env.ref("base.user_admin", raise_if_not_found=False) or self.env.user

    def _block(self, step, reason):
        self.ensure_one()
        self.write({"state": "blocked", "blocked_step": step, "blocked_reason": reason})
        self.message_post(body=self.env._("Blocked: %s", reason))
        self.activity_schedule(
            "mail.mail_activity_data_todo",
            user_id=self._owner().id,
            summary=self.env._("Move-out %s is blocked", self.name),
            note=reason,
        )

    # ---------------------------------------------------------------- steps
    def _start(self):
        """draft → reading: open the relay and read credit and energy register."""
        move_out = self._lock()
        if move_out.state != "draft":
            return
        move_out._check_meter_settleable(move_out.meter_id, move_out.transfer_meter_id)
        move_out.credit_mode = move_out.meter_id.sudo().credit_mode or "kwh"
        move_out._queue_reading()
        move_out.state = "reading"

    @api.model
    def _check_meter_settleable(self, meter, target=None):
        """Credit moves (a transfer, a replacement) between meters of one credit unit: kWh
        to kWh, money to money (a token on the target, once the old meter's clear is
        confirmed: services/settlement.issue_transfer). Mixed modes are refused with nothing
        done: a kWh meter cannot hold money and no conversion at the tariff is clean (time
        of use bands price the kWh)."""
        meter = meter.sudo()
        target = (target or self.env["smartpm.meter"]).sudo()
        if target and (meter.credit_mode or "kwh") != (target.credit_mode or "kwh"):
            raise UserError(
                self.env._(
                    "The credit of meter %(meter)s (%(unit)s) cannot move to meter "
                    "%(target)s (%(target_unit)s): credit moves only between meters of the "
                    "same credit unit. Nothing was done; refund or forfeit the credit at a "
                    "move-out instead, or set both meters to one mode.",
                    meter=meter.serial_number,
                    unit=self._credit_unit_label(meter),
                    target=target.serial_number,
                    target_unit=self._credit_unit_label(target),
                )
            )

    @api.model
    def _credit_unit_label(self, meter):
        if meter.credit_mode == "money":
            return self.env._("credit in money")
        return self.env._("credit in kWh")

    def _queue_reading(self):
        """Open the relay first; the read follows once the meter said it is open (the
        tenant consumes nothing between the reading and the clear)."""
        meter = self.meter_id.sudo()
        meter._check_can_command()
        attempt = self.read_attempt + 1  # a fresh job per retry
        job = engine.create(
            self.env["smartpm.meter.job"],
            [
                {
                    "meter_id": meter.id,
                    "job_type": "disconnect",
                    "payload": {},
                    "priority": settlement.DISCONNECT_PRIORITY,
                    "idempotency_key": f"move-out-{self.id}-disconnect-{attempt}",
                }
            ],
        )
        self.write({"disconnect_job_id": job.id, "read_job_id": False, "read_attempt": attempt})
        job_queue.notify(self.env)

    def _queue_read(self):
        job = engine.create(
            self.env["smartpm.meter.job"],
            [
                {
                    "meter_id": self.meter_id.id,
                    "job_type": "read",
                    "payload": {"objects": settlement.read_objects(self.meter_id.sudo())},
                    "priority": settlement.READ_PRIORITY,
                    "idempotency_key": f"move-out-{self.id}-read-{self.read_attempt}",
                }
            ],
        )
        self.read_job_id = job
        job_queue.notify(self.env)

    def _on_job_done(self, job, result):
        """A job of this move-out finished (called from the job's _on_done)."""
        move_out = self._lock()
        if job == move_out.disconnect_job_id and move_out.state == "reading":
            if not move_out.read_job_id:
                move_out._queue_read()
        elif job == move_out.read_job_id and move_out.state in ("reading", "blocked"):
            if move_out.state == "blocked" and move_out.blocked_step != "reading":
                return
            credit, energy = settlement.final_values(result)
            if credit is None:
                move_out._block("reading", self.env._("The meter's answer held no credit."))
                return
            emergency = settlement.final_emergency(result)
            refusal = settlement.emergency_refusal(move_out, emergency)
            if refusal:
                _logger.warning("%s: %s", move_out.name, refusal)
                move_out._block("reading", refusal)
                return
            readings = self.env["smartpm.reading"].sudo().search([("job_id", "=", job.id)])
            readings.write({"source": "final"})
            move_out._record_final(credit, energy, "meter", emergency=max(emergency, 0.0))
        elif job == move_out.zero_job_id and move_out.state in ("clearing", "blocked"):
            move_out.message_post(
                body=self.env._(
                    "Meter %(meter)s took the token that brings its emergency and negative "
                    "credit to zero (%(credit)s); credit now %(now)s.",
                    meter=move_out.meter_id.serial_number,
                    credit=settlement.credit_text(move_out, settlement.zero_amount(move_out)),
                    now=settlement.credit_text(
                        move_out, result.get("credit_money", result.get("credit_kwh")) or 0.0
                    ),
                )
            )
            move_out._finish_if_cleared()

    def _on_job_failed(self, job):
        move_out = self._lock()
        if job == move_out.zero_job_id:
            move_out._on_credit_clear_failed(job)
            return
        if move_out.state != "reading" or job not in (
            move_out.read_job_id | move_out.disconnect_job_id
        ):
            return
        # the other reading job waits no more: a retry queues both again
        move_out._cancel_pending(move_out.read_job_id | move_out.disconnect_job_id)
        move_out._block(
            "reading",
            self.env._(
                "Meter %(meter)s did not answer (%(job)s: %(error)s). Retry once it answers, "
                "or record the reading by hand.",
                meter=move_out.meter_id.serial_number,
                job=job.display_name,
                error=job.error or "",
            ),
        )

    def _on_job_cancelled(self, job):
        """A job of this move-out was cancelled by hand (the job list): the step it belongs
        to cannot finish without it. Blocked, the owner told (activity), the retry ready
        (it sends the same job again: the same token, applied at most once)."""
        move_out = self._lock()
        steps = {
            "reading": move_out.read_job_id | move_out.disconnect_job_id,
            "clearing": move_out.clear_job_id | move_out.zero_job_id,
        }
        step = move_out.state
        if job not in steps.get(step, self.env["smartpm.meter.job"]):
            return
        if step == "reading":
            move_out._cancel_pending(steps["reading"])
        if job == move_out.zero_job_id:
            what = self.env._(
                "The zeroing job %(job)s (the token that brings the emergency and negative "
                "credit of meter %(meter)s to zero, %(credit)s) was cancelled by %(user)s: the "
                "meter is not at zero and the move-out cannot finish.",
                job=job.display_name,
                meter=move_out.meter_id.serial_number,
                credit=settlement.credit_text(move_out, settlement.zero_amount(move_out)),
                user=self.env.user.name,
            )
        else:
            what = self.env._(
                "Job %(job)s of meter %(meter)s was cancelled by %(user)s: the move-out "
                "cannot go on without it.",
                job=job.display_name,
                meter=move_out.meter_id.serial_number,
                user=self.env.user.name,
            )
        move_out._block(
            step,
            self.env._(
                "%(what)s Retry to send it again (the same token, applied at most once).",
                what=what,
            )
            if step == "clearing"
            else self.env._("%(what)s Retry to read the meter again.", what=what),
        )

    def _cancel_pending(self, jobs):
        pending = jobs.filtered(lambda j: j.state == "pending")
        if pending:
            job_queue.cancel(self.env, pending.ids)

    def _record_final(self, credit, energy, source, reason=None, emergency=0.0):
        """``credit`` (as the meter says it: may be below zero) and ``emergency`` (credit in
        use): kWh, or the currency on a money-mode meter (``credit_mode``)."""
        money = self.credit_mode == "money"
        vals = {
            "final_credit_kwh": 0.0 if money else credit,
            "final_credit_money": credit if money else 0.0,
            "final_emergency_kwh": 0.0 if money else emergency,
            "final_emergency_money": emergency if money else 0.0,
            "final_energy_kwh": energy or 0.0,
            "final_reading_time": fields.Datetime.now(),
            "reading_source": source,
            "state": "settling",
            "blocked_reason": False,
            "blocked_step": False,
        }
        if source == "manual":
            vals.update(
                override_user_id=self.env.uid,
                override_date=fields.Datetime.now(),
                override_reason=reason,
            )
        self.write(vals)
        self.activity_ids.action_feedback(feedback=self.env._("Final reading recorded."))
        self.message_post(
            body=self.env._(
                "Final reading (%(how)s): credit %(credit)s (emergency credit in use "
                "%(emergency)s), energy register %(energy)s kWh.",
                how=dict(self._fields["reading_source"].selection)[source],
                credit=settlement.credit_text(self, credit),
                emergency=settlement.credit_text(self, emergency),
                energy=self.final_energy_kwh,
            )
        )
        self._settle()

    def _settle(self):
        """settling → clearing: the settlement, then the clear on the meter."""
        try:
            with self.env.cr.savepoint():
                done = settlement.settle(self)
        except UserError as exc:
            self._block("settling", str(exc.args[0]) if exc.args else str(exc))
            return
        credit = done.money if done.credit_mode == "money" else done.kwh
        self.message_post(
            body=Markup(
                self.env._("Credit settled: %(link)s (%(kind)s, credit %(credit)s, %(amount)s).")
            )
            % {
                "link": done._get_html_link(),
                "kind": dict(done._fields["kind"].selection)[done.kind],
                "credit": settlement.credit_text(done, credit),
                "amount": done.amount_total,
            }
        )
        if done.debt_id:
            self.message_post(
                body=Markup(
                    self.env._(
                        "Emergency credit in use %(emergency)s, negative credit %(negative)s: "
                        "%(shortfall)s consumed without payment, the tenant's debt %(link)s "
                        "(%(amount)s)."
                    )
                )
                % {
                    "emergency": settlement.credit_text(done, done.emergency_credit),
                    "negative": settlement.credit_text(done, done.negative_credit),
                    "shortfall": settlement.credit_text(done, done.shortfall),
                    "link": done.debt_id._get_html_link(),
                    "amount": done.debt_amount,
                }
            )
        self._clear()

    def _clear(self):
        """Remove the final credit from the meter (exactly once, services/credit_clear): Wh,
        or milli-units of the currency with the money clear-credit token; and bring its
        emergency credit in use and negative credit to zero (``settlement.queue_zero``, a
        credit token the tenant's debt paid). The meter is at zero when both are done, in
        whichever order it takes them."""
        final = self.final_credit_money if self.credit_mode == "money" else self.final_credit_kwh
        wh = int(round(final * 1000))
        self.state = "clearing"
        if self.purpose == "replacement" and self.reading_source == "manual":
            self._finish_if_cleared()  # nothing to clear on a meter that does not answer
            return
        settlement.queue_zero(self)
        if wh > 0:
            self.clear_job_id = settlement.queue_clear(self.meter_id, wh, self)
        self._finish_if_cleared()

    def _finish_if_cleared(self):
        """Done once every job of the clearing step is done on the meter; a transfer (kWh or
        money) is issued then, never before (the old meter no longer holds the credit)."""
        jobs = self.clear_job_id | self.zero_job_id
        if self.state in ("clearing", "blocked") and all(j.state == "done" for j in jobs):
            self._finish()  # a replacing meter in service first: it takes its calendars
            settlement.issue_transfer(self.settlement_id, self.transfer_meter_id)

    def _on_credit_cleared(self, job, result):
        """credit_clear's hook: the meter took the clear."""
        move_out = self._lock()
        if move_out.state not in ("clearing", "blocked") or job != move_out.clear_job_id:
            return
        money = move_out.credit_mode == "money"
        move_out.message_post(
            body=self.env._(
                "Meter %(meter)s cleared of %(cleared)s; credit now %(credit)s.",
                meter=move_out.meter_id.serial_number,
                cleared=settlement.credit_text(
                    move_out, result.get("cleared_money" if money else "cleared_kwh") or 0.0
                ),
                credit=settlement.credit_text(
                    move_out, result.get("credit_money" if money else "credit_kwh") or 0.0
                ),
            )
        )
        move_out._finish_if_cleared()  # the job is done already (job_queue._complete_locked)

    def _on_credit_clear_failed(self, job):
        move_out = self._lock()
        if move_out.state != "clearing" or job not in (
            move_out.clear_job_id | move_out.zero_job_id
        ):
            return
        move_out._block(
            "clearing",
            self.env._(
                "Meter %(meter)s did not take the clear of its credit (%(error)s). Retry once "
                "it answers: the same tokens are sent again, each applied at most once.",
                meter=move_out.meter_id.serial_number,
                error=job.error or "",
            ),
        )

    def _finish(self):
        """clearing → done: the tenant's assignment closes, the next one opens at zero."""
        meter = engine.as_engine(self.meter_id).with_context(active_test=False)
        self.assignment_id.flush_recordset()
        vals = {"state": "done", "date_done": fields.Datetime.now()}
        if self.purpose == "replacement":
            new = engine.as_engine(self.transfer_meter_id)
            meter.write({"tenant_id": False, "replaced_by_id": new.id})
            meter.action_decommission()
            # a decommissioned meter runs no job: what still waits for it is cancelled
            self._cancel_pending(
                self.env["smartpm.meter.job"].search(
                    [("meter_id", "=", meter.id), ("state", "=", "pending")]
                )
            )
            new.write(
                {
                    "tenant_id": self.tenant_id.id,
                    "replaces_id": meter.id,
                    "state": "active" if new.state == "draft" else new.state,
                }
            )
            vals["next_assignment_id"] = new.assignment_ids.filtered("is_open")[:1].id
        else:
            meter.write({"tenant_id": self.next_tenant_id.id or False})
            if self.next_tenant_id:
                vals["next_assignment_id"] = meter.assignment_ids.filtered("is_open")[:1].id
                # in service again, relay still open at zero credit: the next tenant's first
                # credit closes it (the meter itself, or the reconnect that delivery asks for)
                if meter.state == "disconnected":
                    meter.state = "active"
        self.write(vals)
        self.activity_ids.action_feedback(feedback=self.env._("Done."))
        self.message_post(
            body=self.env._("Done: the assignment of %s is closed.", self.tenant_id.name)
        )

    # ---------------------------------------------------------------- buttons
    def action_retry(self):
        """Blocked: ask the meter again (the step that failed)."""
        settlement.check_manager(self.env)
        for move_out in self:
            move_out = move_out._lock()
            if move_out.state != "blocked":
                raise UserError(self.env._("%s is not blocked.", move_out.name))
            step = move_out.blocked_step
            move_out.write({"state": step, "blocked_reason": False})
            move_out.activity_ids.action_feedback(feedback=self.env._("Retried."))
            if step == "reading":
                move_out._queue_reading()
            elif step == "settling":
                move_out._settle()
            elif step == "clearing":
                (move_out.clear_job_id | move_out.zero_job_id).filtered(
                    lambda j: j.state in ("failed", "cancelled")
                ).action_retry()
        return True

    def action_forfeit_instead(self):
        """Blocked at the settlement (e.g. credit no sale covers cannot be transferred): the
        owner's policy keeps it."""
        settlement.check_manager(self.env)
        for move_out in self:
            move_out = move_out._lock()
            if move_out.state != "blocked" or move_out.blocked_step != "settling":
                raise UserError(
                    self.env._("%s does not wait for a settlement choice.", move_out.name)
                )
            move_out.message_post(
                body=self.env._("Settlement changed to forfeit by %s.", self.env.user.name)
            )
            vals = {"settlement_kind": "forfeit", "state": "settling", "blocked_reason": False}
            if move_out.purpose == "move_out":  # a replacement still hands over to its meter
                vals["transfer_meter_id"] = False
            move_out.write(vals)
            move_out.activity_ids.action_feedback(feedback=self.env._("Forfeited instead."))
            move_out._settle()
        return True

    def action_record_reading(self):
        """Blocked at the reading: the Manager records the reading by hand."""
        settlement.check_manager(self.env)
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Record the final reading"),
            "res_model": "smartpm.move.out.reading.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {
                "default_move_out_id": self.id,
                "default_credit_kwh": self.meter_id.credit_kwh,
                "default_credit_money": self.meter_id.credit_money,
            },
        }

    def _record_manual(self, credit, energy, reason):
        """The audited override (wizard): who, when, values and reason, in the chatter."""
        settlement.check_manager(self.env)
        move_out = self._lock()
        if move_out.state != "blocked" or move_out.blocked_step != "reading":
            raise UserError(
                self.env._("%s does not wait for a reading: nothing was recorded.", move_out.name)
            )
        if credit < 0 or not (reason or "").strip():
            raise UserError(
                self.env._("A reading by hand needs a credit of 0 or more and a reason.")
            )
        move_out._cancel_pending(move_out.read_job_id | move_out.disconnect_job_id)
        move_out.message_post(
            body=self.env._(
                "Reading recorded by hand by %(user)s: credit %(credit)s, energy register "
                "%(energy)s kWh. Reason: %(reason)s",
                user=self.env.user.name,
                credit=settlement.credit_text(move_out, credit),
                energy=energy,
                reason=reason,
            )
        )
        now = fields.Datetime.now()
        if move_out.credit_mode == "money":  # the currency, as a money meter's bridge says
            rows = [{"obis": settlement.OBIS_CREDIT, "value": credit, "unit": "currency"}]
        else:
            rows = [{"obis": settlement.OBIS_CREDIT, "value": credit * 1000, "unit": "Wh"}]
        if energy:
            rows.append({"obis": settlement.ENERGY_IMPORT, "value": energy * 1000, "unit": "Wh"})
        self.env["smartpm.reading"].sudo().create(
            [
                dict(r, meter_id=move_out.meter_id.id, reading_time=now, source="final_manual")
                for r in rows
            ]
        )
        move_out._record_final(credit, energy, "manual", reason)

    def action_view_settlement(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "smartpm.credit.settlement",
            "view_mode": "form",
            "res_id": self.settlement_id.id,
        }
