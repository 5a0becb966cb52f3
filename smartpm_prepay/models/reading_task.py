import json
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..services import ingest, job_queue

TASK_JOB_PRIORITY = 20  # someone is watching the screen: before scheduled reads


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
    run = fields.Integer(readonly=True, copy=False, default=0)
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
                raise UserError(self.env._("The profile range must end after it starts."))
            payload["from"] = self.date_from.isoformat() + "Z" if self.date_from else None
            payload["to"] = self.date_to.isoformat() + "Z" if self.date_to else None
        return payload

    def action_start(self):
        for task in self:
            if task.state != "draft":
                raise UserError(self.env._("Task %s was started already.", task.name))
            if not task.meter_ids:
                raise UserError(self.env._("Task %s: select at least one meter.", task.name))
            if not task.object_ids:
                raise UserError(self.env._("Task %s: select a scheme or OBIS codes.", task.name))
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
                body=self.env._(
                    "Run %(run)s started: %(count)s meter(s).", run=run, count=len(self.meter_ids)
                )
            )

    def action_read_again(self):
        """A new run with the same meters and objects; its counts start from zero."""
        for task in self:
            if task.state not in ("done", "cancelled"):
                raise UserError(self.env._("Task %s is still running.", task.name))
            if not task.meter_ids:
                raise UserError(self.env._("Task %s: select at least one meter.", task.name))
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
            raise UserError(self.env._("Cancel a running task before restarting it."))
        self.write({"state": "draft"})

    def action_save_data(self):
        """Store the task's shown values as readings (source ``task``)."""
        results = self._unsaved_results()
        if not results:
            raise UserError(self.env._("There is no unsaved value to store."))
        return results.action_save()

    def action_view_jobs(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Jobs"),
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
        # the whole OBIS catalogue (the addon's data, tens of rows): a result names any of its
        # codes and a profile's columns others
        catalogue = self.env["smartpm.obis.object"].with_context(active_test=False)
        objects = catalogue.search([])  # pylint: disable=no-search-all
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
                    "reading_time": ingest.parse_time(self.env, reading.get("time")),
                }
            )
        for obis, rows in (result.get("profiles") or {}).items():
            profile = profiles.get(obis)
            columns = profile._capture_columns() if profile else []
            for row in rows or []:
                if not row:
                    continue
                when = ingest.parse_time(self.env, row[0])
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
                "label": self.env._("Meter did not answer"),
                "error": job.error or self.env._("unknown error"),
            }
        )
