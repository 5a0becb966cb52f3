import json
import re
from datetime import datetime, timedelta, timezone

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import float_repr, format_datetime, formatLang

from ..services import job_queue

TASK_JOB_PRIORITY = 20  # someone is watching the screen: before scheduled reads
OBIS_CLOCK = "0.0.1.0.0.255"
OBIS_RELAY = job_queue.OBIS_RELAY
OBIS_CREDIT = job_queue.OBIS_CREDIT
ISO_DATETIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$"
)


def _decimals(number, most=3):
    """The decimals a number needs to be shown as read (at most ``most``)."""
    text = float_repr(float(number), most).rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def iso_datetime(value):
    """A date-time the bridge sent as ISO 8601 text, as a naive UTC datetime, or None."""
    if not isinstance(value, str) or not ISO_DATETIME_RE.match(value.strip()):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


def dlms_datetime_text(hex_value):
    """A COSEM date-time (12 bytes, as hex) as readable text; the hex if it is not one."""
    try:
        raw = bytes.fromhex(hex_value)
    except ValueError:
        return hex_value
    if len(raw) != 12:
        return hex_value
    year = int.from_bytes(raw[0:2], "big")
    month, day, hour, minute, second = raw[2], raw[3], raw[5], raw[6], raw[7]
    if year == 0xFFFF or not (1 <= month <= 12 and 1 <= day <= 31) or hour > 23:
        return hex_value
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    note = "" if deviation in (0, -0x8000) else f" (deviation {deviation} min)"
    return f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}{note}"


class SmartpmReadingTask(models.Model):
    """A titled remote reading of selected meters (the brochure's three pages).

    Its jobs carry ``task_id``: the job engine does not store their readings; the values
    stay on the task as results until someone presses *Save data*.
    """

    _name = "smartpm.reading.task"
    _description = "Reading task"
    _inherit = ["mail.thread"]
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(string="Title", required=True, tracking=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True
    )
    user_id = fields.Many2one("res.users", string="Requested by", default=lambda s: s.env.user)
    state = fields.Selection(
        [("draft", "Draft"), ("running", "Running"), ("done", "Done"), ("cancelled", "Cancelled")],
        default="draft",
        required=True,
        tracking=True,
        index=True,
    )
    # Page 1: electricity meters
    tenant_ids = fields.Many2many(
        "res.partner",
        "smartpm_reading_task_tenant_rel",
        "task_id",
        "partner_id",
        string="Tenants",
        domain=[("is_tenant", "=", True)],
    )
    transformer_ids = fields.Many2many(
        "smartpm.transformer",
        "smartpm_reading_task_transformer_rel",
        "task_id",
        "transformer_id",
        string="Transformers",
    )
    line_ids = fields.Many2many(
        "smartpm.line", "smartpm_reading_task_line_rel", "task_id", "line_id", string="Lines"
    )
    meter_ids = fields.Many2many(
        "smartpm.meter",
        "smartpm_reading_task_meter_rel",
        "task_id",
        "meter_id",
        string="Meters",
        compute="_compute_meter_ids",
        store=True,
        readonly=False,
        check_company=True,
    )
    meter_count = fields.Integer(compute="_compute_meter_count")
    # Page 2: OBIS
    scheme_id = fields.Many2one("smartpm.reading.scheme", string="Reading scheme")
    object_ids = fields.Many2many(
        "smartpm.obis.object",
        "smartpm_reading_task_object_rel",
        "task_id",
        "object_id",
        string="OBIS objects",
        compute="_compute_object_ids",
        store=True,
        readonly=False,
    )
    has_profile = fields.Boolean(compute="_compute_has_profile")
    date_from = fields.Datetime(
        string="Profile from", compute="_compute_dates", store=True, readonly=False
    )
    date_to = fields.Datetime(
        string="Profile to", compute="_compute_dates", store=True, readonly=False
    )
    # Page 3: monitoring results. Each start is a run; the counts and the values shown are
    # those of the latest run (earlier runs stay in the task results).
    run = fields.Integer(string="Run", readonly=True, copy=False, default=0)
    job_ids = fields.One2many("smartpm.meter.job", "task_id", string="Jobs")
    result_ids = fields.One2many("smartpm.reading.task.result", "task_id", string="Results")
    current_result_ids = fields.One2many(
        "smartpm.reading.task.result",
        compute="_compute_current_result_ids",
        string="Results of the latest run",
    )
    job_count = fields.Integer(string="Queried", compute="_compute_progress")
    job_done_count = fields.Integer(string="Answered", compute="_compute_progress")
    job_failed_count = fields.Integer(string="Failed", compute="_compute_progress")
    progress = fields.Float(compute="_compute_progress")
    unsaved_count = fields.Integer(string="Unsaved values", compute="_compute_progress")

    @api.depends("tenant_ids", "transformer_ids", "line_ids")
    def _compute_meter_ids(self):
        for task in self:
            domain = task._get_meter_domain()
            if domain:
                task.meter_ids = self.env["smartpm.meter"].search(domain)

    def _get_meter_domain(self):
        """Meters of any selected tenant, transformer or line that can take commands."""
        self.ensure_one()
        parts = []
        if self.tenant_ids:
            parts.append([("tenant_id", "in", self.tenant_ids.ids)])
        if self.transformer_ids:
            parts.append([("transformer_id", "in", self.transformer_ids.ids)])
        if self.line_ids:
            parts.append([("line_id", "in", self.line_ids.ids)])
        if not parts:
            return []
        domain = ["|"] * (len(parts) - 1)
        for part in parts:
            domain += part
        return [("state", "!=", "decommissioned"), ("company_id", "=", self.company_id.id)] + domain

    @api.depends("meter_ids")
    def _compute_meter_count(self):
        for task in self:
            task.meter_count = len(task.meter_ids)

    @api.depends("scheme_id")
    def _compute_object_ids(self):
        for task in self:
            if task.scheme_id:
                task.object_ids = task.scheme_id.object_ids

    @api.depends("object_ids")
    def _compute_has_profile(self):
        for task in self:
            task.has_profile = any(task.object_ids.mapped("is_profile"))

    @api.depends("scheme_id")
    def _compute_dates(self):
        now = fields.Datetime.now().replace(microsecond=0)
        for task in self:
            if not task.date_to or not task.date_from:
                task.date_to = now
                task.date_from = now - timedelta(days=task.scheme_id.profile_days or 1)

    @api.depends("run", "result_ids.run")
    def _compute_current_result_ids(self):
        for task in self:
            task.current_result_ids = task.result_ids.filtered(lambda r: r.run == r.task_id.run)

    def _current_jobs(self):
        self.ensure_one()
        return self.job_ids.filtered(lambda j: j.task_run == self.run)

    @api.depends("run", "job_ids.state", "job_ids.task_run", "result_ids.saved")
    def _compute_progress(self):
        for task in self:
            jobs = task._current_jobs()
            done = len(jobs.filtered(lambda j: j.state == "done"))
            failed = len(jobs.filtered(lambda j: j.state in ("failed", "cancelled")))
            task.job_count = len(jobs)
            task.job_done_count = done
            task.job_failed_count = failed
            task.progress = 100.0 * (done + failed) / len(jobs) if jobs else 0.0
            task.unsaved_count = len(task._unsaved_results())

    def _unsaved_results(self):
        """Values of the latest run that can still be stored as readings."""
        return self.result_ids.filtered(
            lambda r: r.run == r.task_id.run and r.state == "ok" and not r.saved and r.is_numeric
        )

    # ---------------------------------------------------------------- buttons
    def _prepare_job_payload(self):
        self.ensure_one()
        payload = {
            "objects": [obj._prepare_job_object() for obj in self.object_ids],
            "task_id": self.id,
        }
        if self.has_profile:
            if self.date_from and self.date_to and self.date_from >= self.date_to:
                raise UserError(_("The profile range must end after it starts."))
            payload["from"] = self.date_from.isoformat() + "Z" if self.date_from else None
            payload["to"] = self.date_to.isoformat() + "Z" if self.date_to else None
        return payload

    def action_start(self):
        for task in self:
            if task.state != "draft":
                raise UserError(_("Task %s was started already.", task.name))
            if not task.meter_ids:
                raise UserError(_("Task %s: select at least one meter.", task.name))
            if not task.object_ids:
                raise UserError(_("Task %s: select a scheme or OBIS codes.", task.name))
            task._start_run()
        return True

    def _start_run(self):
        self.ensure_one()
        self.meter_ids._check_can_command()
        payload = self._prepare_job_payload()
        run = self.run + 1
        # one create() for all the task's jobs: one INSERT batch, one NOTIFY
        self.meter_ids._enqueue_job(
            "read", payload, priority=TASK_JOB_PRIORITY, task_id=self.id, task_run=run
        )
        self.write({"run": run, "state": "running"})
        if run > 1:
            self.message_post(
                body=_(
                    "Run %(run)s started: %(count)s meter(s).", run=run, count=len(self.meter_ids)
                )
            )

    def action_read_again(self):
        """A new run with the same meters and objects; its counts start from zero."""
        for task in self:
            if task.state not in ("done", "cancelled"):
                raise UserError(_("Task %s is still running.", task.name))
            if not task.meter_ids:
                raise UserError(_("Task %s: select at least one meter.", task.name))
            if task.has_profile and task.date_from and task.date_to:
                # the same span, up to now
                now = fields.Datetime.now().replace(microsecond=0)
                task.write({"date_from": now - (task.date_to - task.date_from), "date_to": now})
            task._start_run()
        return True

    def action_cancel(self):
        for task in self:
            pending = task._current_jobs().filtered(lambda j: j.state in ("pending", "failed"))
            if pending:
                job_queue.cancel(self.env, pending.ids)
            task.state = "cancelled"

    def action_reset_draft(self):
        if self.filtered(lambda t: t.state == "running"):
            raise UserError(_("Cancel a running task before restarting it."))
        self.write({"state": "draft"})

    def action_save_data(self):
        """Store the task's shown values as readings (source ``task``)."""
        results = self._unsaved_results()
        if not results:
            raise UserError(_("There is no unsaved value to store."))
        return results.action_save()

    def action_view_jobs(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("Jobs"),
            "res_model": "smartpm.meter.job",
            "view_mode": "list,form",
            "domain": [("task_id", "=", self.id), ("task_run", "=", self.run)],
        }

    def _check_finished(self):
        for task in self.filtered(lambda t: t.state == "running"):
            if all(j.state in ("done", "failed", "cancelled") for j in task._current_jobs()):
                task.state = "done"

    # ---------------------------------------------------------------- results from jobs
    def _add_job_results(self, job, result):
        """Turn one read job's result into result lines (values, profile rows, errors)."""
        self.ensure_one()
        objects = self.env["smartpm.obis.object"].with_context(active_test=False).search([])
        labels = {o.obis: o.name for o in objects}
        profiles = {o.obis: o for o in objects if o.is_profile}
        base = {
            "task_id": self.id,
            "meter_id": job.meter_id.id,
            "job_id": job.id,
            "run": job.task_run,
        }
        vals_list = []
        for reading in result.get("readings") or []:
            vals_list.append(
                {
                    **base,
                    "obis": reading.get("obis"),
                    "label": labels.get(reading.get("obis")),
                    "raw_value": json.dumps(reading.get("value")),
                    "unit": reading.get("unit"),
                    "reading_time": job_queue._parse_time(reading.get("time")),
                }
            )
        for obis, rows in (result.get("profiles") or {}).items():
            profile = profiles.get(obis)
            columns = profile._capture_columns() if profile else []
            for row in rows or []:
                if not row:
                    continue
                when = job_queue._parse_time(row[0])
                for index, value in enumerate(row[1:]):
                    col = columns[index] if index < len(columns) else f"{obis}#{index + 1}"
                    vals_list.append(
                        {
                            **base,
                            "obis": col,
                            "label": labels.get(col) or (profile.name if profile else obis),
                            "raw_value": json.dumps(value),
                            "unit": "Wh" if col.startswith("1.0.") and ".8." in col else False,
                            "reading_time": when,
                            "profile_obis": obis,
                        }
                    )
        for obis, message in (result.get("errors") or {}).items():
            vals_list.append(
                {
                    **base,
                    "obis": obis,
                    "label": labels.get(obis),
                    "state": "error",
                    "error": str(message),
                }
            )
        self.env["smartpm.reading.task.result"].create(vals_list)

    def _add_job_failure(self, job):
        self.ensure_one()
        self.env["smartpm.reading.task.result"].create(
            {
                "task_id": self.id,
                "meter_id": job.meter_id.id,
                "job_id": job.id,
                "run": job.task_run,
                "state": "error",
                "label": _("Meter did not answer"),
                "error": job.error or _("unknown error"),
            }
        )


class SmartpmReadingTaskResult(models.Model):
    """One value (or one failure) a reading task brought back."""

    _name = "smartpm.reading.task.result"
    _description = "Reading task result"
    _order = "task_id, meter_id, reading_time, obis, id"

    task_id = fields.Many2one("smartpm.reading.task", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="task_id.company_id", store=True, index=True)
    meter_id = fields.Many2one("smartpm.meter", required=True, ondelete="cascade", index=True)
    tenant_id = fields.Many2one(related="meter_id.tenant_id")
    job_id = fields.Many2one("smartpm.meter.job", ondelete="set null", index="btree_not_null")
    run = fields.Integer(readonly=True, help="The task's run this value came from.")
    obis = fields.Char(string="OBIS")
    label = fields.Char()
    profile_obis = fields.Char(help="The profile this value is a row of.")
    raw_value = fields.Char(string="Raw value (JSON)")  # Json would turn 0 into False
    value = fields.Float(
        string="Numeric value", compute="_compute_value", store=True, digits=(16, 4)
    )
    value_text = fields.Char(string="Raw text", compute="_compute_value", store=True)
    value_display = fields.Char(string="Value", compute="_compute_value_display")
    is_numeric = fields.Boolean(compute="_compute_value", store=True)
    unit = fields.Char()
    reading_time = fields.Datetime()
    state = fields.Selection([("ok", "Read"), ("error", "Failed")], default="ok", required=True)
    error = fields.Char(string="Reason")
    saved = fields.Boolean(readonly=True, copy=False)

    @api.depends("raw_value", "obis")
    def _compute_value(self):
        for res in self:
            try:
                raw = json.loads(res.raw_value) if res.raw_value else None
            except ValueError:
                raw = res.raw_value
            numeric = isinstance(raw, (int, float))  # bool is an int: relay state as 1/0
            res.is_numeric = numeric
            res.value = float(raw) if numeric else 0.0
            if isinstance(raw, bool):
                res.value_text = str(raw).lower()
            elif res.obis == OBIS_CLOCK and isinstance(raw, str):
                res.value_text = dlms_datetime_text(raw)
            else:
                res.value_text = "" if raw is None else str(raw)

    @api.depends("raw_value", "obis", "unit", "label")
    @api.depends_context("tz", "lang")
    def _compute_value_display(self):
        """The value as a person reads it: local date-time, relay state in words, number
        with its unit."""
        for res in self:
            try:
                raw = json.loads(res.raw_value) if res.raw_value else None
            except ValueError:
                raw = res.raw_value
            res.value_display = res._display_value(raw)

    def _display_value(self, raw):
        self.ensure_one()
        if raw is None:
            return ""
        if self.obis == OBIS_RELAY and isinstance(raw, (bool, int)):
            return _("Connected") if raw else _("Disconnected")
        if isinstance(raw, bool):
            return _("Yes") if raw else _("No")
        if self.obis == OBIS_CREDIT and isinstance(raw, (int, float)):
            # in kWh, as the meter's "last known credit": the object counts Wh unless the
            # unit says kWh (docs/meter-contract.md, job_queue.apply_result)
            kwh = raw if (self.unit or "").lower() == "kwh" else raw / 1000.0
            return f"{formatLang(self.env, kwh, digits=_decimals(kwh))} kWh"
        if isinstance(raw, (int, float)):
            text = formatLang(self.env, raw, digits=_decimals(raw))
            return f"{text} {self.unit}" if self.unit else text
        when = iso_datetime(raw)
        if when:
            return format_datetime(self.env, when, tz=self.env.context.get("tz") or "UTC")
        if self.obis == OBIS_CLOCK and isinstance(raw, str):
            return dlms_datetime_text(raw)
        return str(raw)

    def action_save(self):
        """Store these values as readings; the same value saved twice is stored once."""
        self.check_access("write")
        todo = self.filtered(lambda r: r.state == "ok" and r.is_numeric and not r.saved)
        if not todo:
            return True
        job_queue.ingest(
            self.env(su=True),
            [
                {
                    "meter_id": r.meter_id.id,
                    "obis": r.obis,
                    "value": r.value,
                    "unit": r.unit,
                    "time": r.reading_time,
                    "source": "task",
                    "job_id": r.job_id.id or None,
                }
                for r in todo
            ],
            [],
        )
        todo.write({"saved": True})
        for task in todo.task_id:
            task.message_post(body=_("%s value(s) saved as readings.", len(todo & task.result_ids)))
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Data saved"),
                "message": _("%s value(s) stored as readings.", len(todo)),
                "type": "success",
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }
