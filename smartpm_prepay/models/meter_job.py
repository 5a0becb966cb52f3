"""Meter jobs: the commands Odoo queues for the bridge (credit, settings, reads, pings).

The queue engine (claim, lease, retry, report) is ``services/job_queue.py``; this model is
its RPC face and says what a finished or failed job means for sales, reading tasks and
pings. Finished jobs are purged after a retention period (scheduled reads and pings add
several jobs per meter and day); the jobs that are the trail of money or of a reading task
are kept.
"""

from psycopg2.extras import execute_values

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ..services import credit_clear, engine, ingest, job_queue
from ..services.obis import ENERGY_EXPORT, ENERGY_IMPORT, LOAD_PROFILE
from .meter import BigInteger
from .res_config_settings import DEFAULT_RETENTION_DAYS, RETENTION_PARAM

JOB_TYPES = [
    ("read", "Read"),
    ("read_events", "Read events"),
    ("add_credit", "Add credit"),
    ("disconnect", "Disconnect"),
    ("reconnect", "Reconnect"),
    ("set_load_limit", "Set load limit"),
    ("set_thresholds", "Set thresholds"),
    ("sync_clock", "Synchronise clock"),
    ("ping", "Ping"),
    ("check_token", "Check credit token"),
    ("clear_credit", "Clear credit"),
    ("set_load_recovery", "Set load-trip recovery"),
    ("set_emergency_credit", "Set emergency credit"),
    ("take_emergency_credit", "Take emergency credit"),
    ("set_friendly_schedule", "Set friendly periods"),
    ("set_push", "Set push"),
    ("set_charge", "Set standing charge"),
    ("set_tariff_calendar", "Set time-of-use calendar"),
]
# Jobs that carry a transfer number (credit in or out): the trail of money, never deleted.
MONEY_JOB_TYPES = ("add_credit", "check_token", "clear_credit")
# Fields only the engine sets are refused in create/write from RPC, as OCA queue_job does
# (services/engine.py). Outside the engine (RPC, whatever the group, the Administrator
# included) a job is created only with these values, of a type an operator may queue as the
# meter's buttons do: never a credit (those come from a paid sale) nor a setting (those
# follow the meter's fields).
OPERATOR_JOB_TYPES = ("read", "read_events", "ping", "sync_clock", "disconnect", "reconnect")
OPERATOR_CREATE_FIELDS = {"meter_id", "job_type", "payload", "priority", "max_attempts"}
PAYLOAD_JOB_TYPES = ("read", "read_events")
# ... and rewritten only in its priority: type, payload, meter, state, attempts and lease
# are the engine's.
OPERATOR_WRITE_FIELDS = {"priority"}
INSERT_PAGE = 5000  # rows per INSERT of _create_scheduled


class SmartpmMeterJob(models.Model):
    _name = "smartpm.meter.job"
    _description = "Meter job"
    _order = "id desc"
    _check_company_auto = True

    meter_id = fields.Many2one(
        "smartpm.meter", required=True, index=True, ondelete="restrict", check_company=True
    )
    company_id = fields.Many2one(related="meter_id.company_id", store=True, index=True)
    job_type = fields.Selection(JOB_TYPES, required=True, index=True)
    payload = fields.Json(default=dict)
    state = fields.Selection(
        [
            ("pending", "Pending"),
            ("claimed", "Running"),
            ("done", "Done"),
            ("failed", "Failed"),
            ("cancelled", "Cancelled"),
        ],
        default="pending",
        required=True,
        index=True,
        readonly=True,
    )
    priority = fields.Integer(default=50, help="Lower runs first: credit is 10.")
    attempt_count = fields.Integer(readonly=True, default=0)
    max_attempts = fields.Integer(default=5)
    next_attempt_at = fields.Datetime(default=fields.Datetime.now, required=True)
    bridge_id = fields.Char(readonly=True, help="Bridge holding (or last holding) the lease.")
    bridge_user_id = fields.Many2one(
        "res.users",
        string="Bridge user",
        readonly=True,
        ondelete="set null",
        help="Bridge API user whose bridge holds (or last held) the lease: only this user may "
        "report, extend or release the job.",
    )
    invocation_counter_limit = BigInteger(
        readonly=True,
        groups="smartpm_prepay.group_manager",
        help="Highest HLS-GMAC invocation counter the claim reserved for this job: a report of "
        "a higher one is refused.",
    )
    lease_until = fields.Datetime(readonly=True)
    date_claimed = fields.Datetime(readonly=True)
    date_done = fields.Datetime(readonly=True)
    result = fields.Json(readonly=True)
    result_text = fields.Text(compute="_compute_texts", string="Result (JSON)")
    payload_text = fields.Text(compute="_compute_texts", string="Payload (JSON)")
    error = fields.Text(readonly=True)
    idempotency_key = fields.Char(index=True, copy=False)
    is_stuck = fields.Boolean(compute="_compute_is_stuck", search="_search_is_stuck")

    purchase_ids = fields.One2many("smartpm.credit.purchase", "job_id", string="Purchases")
    task_id = fields.Many2one(
        "smartpm.reading.task", index="btree_not_null", ondelete="set null", readonly=True
    )
    task_run = fields.Integer(readonly=True, help="The run of the reading task it belongs to.")
    # What asked for the job (clear_credit: the settlement or replacement), told the outcome
    # (services/credit_clear.py). Engine-only, as every field outside OPERATOR_*_FIELDS.
    origin_model = fields.Char(readonly=True, help="Model of the record that asked for the job.")
    origin_res_id = fields.Many2oneReference(
        model_field="origin_model",
        readonly=True,
        index="btree_not_null",
        help="Record that asked for the job; told when the job is done or fails for good.",
    )

    _sql_constraints = [
        ("idempotency_key_uniq", "unique(idempotency_key)", "A job with this key exists."),
        ("max_attempts_positive", "CHECK(max_attempts > 0)", "A job needs one attempt at least."),
    ]

    def _register_hook(self):
        # The registry is loaded and about to serve: leases that lapsed before (Odoo was
        # down, their bridges could not renew) get a grace (job_queue.RESTART_GRACE_S).
        super()._register_hook()
        job_queue.mark_serving(self.env.registry)

    def init(self):
        # Keeps claim() an index scan however many finished jobs the table holds.
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS smartpm_meter_job_due_idx
            ON smartpm_meter_job (priority, id)
            WHERE state IN ('pending', 'claimed')
            """
        )
        # claim() for the credit lane: its scan reads the few credit jobs, not the due-jobs
        # index past a backlog of reads. The types are job_queue.LANE_JOB_TYPES (a test
        # compares them with the index's definition).
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS smartpm_meter_job_lane_idx
            ON smartpm_meter_job (priority, id)
            WHERE state IN ('pending', 'claimed')
              AND job_type IN ('add_credit', 'clear_credit', 'take_emergency_credit')
            """
        )
        # claim(): "has this meter a job under a live lease" and "its first due job",
        # without reading the meter's finished jobs.
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS smartpm_meter_job_meter_open_idx
            ON smartpm_meter_job (meter_id, priority, id)
            WHERE state IN ('pending', 'claimed')
            """
        )

    @api.depends("result", "payload")
    def _compute_texts(self):
        import json

        for job in self:
            job.result_text = json.dumps(job.result, indent=2) if job.result else False
            job.payload_text = json.dumps(job.payload, indent=2) if job.payload else False

    def _compute_is_stuck(self):
        now = fields.Datetime.now()
        for job in self:
            job.is_stuck = job.state == "claimed" and job.lease_until and job.lease_until < now

    def _search_is_stuck(self, operator, value):
        stuck = [("state", "=", "claimed"), ("lease_until", "<", fields.Datetime.now())]
        if (operator == "=") == bool(value):
            return stuck
        return ["!", "&", *stuck]

    @api.depends("job_type", "meter_id")
    def _compute_display_name(self):
        labels = dict(JOB_TYPES)
        for job in self:
            job.display_name = f"{labels.get(job.job_type)} {job.meter_id.serial_number or ''}"

    # ---------------------------------------------------------------- create / write
    def _check_engine_fields(self, vals):
        """A job created outside the engine: an operator's command for one meter."""
        if engine.is_engine(self.env):
            return
        engine.check_fields(self, vals, set(vals) - OPERATOR_CREATE_FIELDS, self.env._("Meter job"))
        job_type = vals.get("job_type")
        if job_type not in OPERATOR_JOB_TYPES:
            raise AccessError(
                self.env._(
                    "A %(type)s job is queued by Odoo only (credit by a paid sale, settings "
                    "by the meter's fields); operators queue %(allowed)s.",
                    type=job_type,
                    allowed=", ".join(OPERATOR_JOB_TYPES),
                )
            )
        payload = vals.get("payload") or {}
        if not isinstance(payload, dict) or (payload and job_type not in PAYLOAD_JOB_TYPES):
            raise AccessError(self.env._("A %s job takes no payload of yours.", job_type))
        meter_id = vals.get("meter_id")
        meter = self.env["smartpm.meter"]
        if isinstance(meter_id, int) and not isinstance(meter_id, bool):
            meter = meter.browse(meter_id).exists()
        if not meter:
            raise UserError(self.env._("A meter job needs an existing meter."))
        meter.check_access("write" if job_type != "read" else "read")
        meter._check_can_command()

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._check_engine_fields(vals)
            if vals.get("job_type") in ("add_credit", "clear_credit"):
                vals.setdefault("priority", 10)
        jobs = super().create(vals_list)
        job_queue.notify(self.env)
        return jobs

    def write(self, vals):
        engine.check_fields(self, vals, set(vals) - OPERATOR_WRITE_FIELDS, self.env._("Meter job"))
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_money(self):
        """A sale's delivery or token check, or a settlement's clear, is the trail of its
        money: deleting it would leave a paid sale queued for ever (or a reversal or a
        settlement waiting for ever). Cancel it instead; the retention purge keeps these
        jobs too."""
        money = self.filtered("purchase_ids") | self.filtered(
            lambda j: j.job_type in MONEY_JOB_TYPES
        )
        if money:
            raise UserError(
                self.env._(
                    "Jobs %(jobs)s deliver, check or clear credit: they are never deleted "
                    "(cancel the job, or reverse the sale, instead).",
                    jobs=", ".join(money.mapped("display_name")[:5]),
                )
            )

    # ---------------------------------------------------------------- bridge RPC
    @api.model
    def _check_bridge(self):
        if not (self.env.su or self.env.user.has_group("smartpm_prepay.group_bridge_api")):
            raise AccessError(self.env._("Only Bridge API users may call the meter job protocol."))
        return engine.as_engine(self)

    @api.model
    def claim(self, bridge_id, limit=10, lease_seconds=60, options=None):
        return job_queue.claim(self._check_bridge().env, bridge_id, limit, lease_seconds, options)

    @api.model
    def complete(self, job_id, bridge_id, result, attempt=None):
        return job_queue.complete(self._check_bridge().env, job_id, bridge_id, result, attempt)

    @api.model
    def fail(self, job_id, bridge_id, error, retryable=True, invocation_counter=None, attempt=None):
        return job_queue.fail(
            self._check_bridge().env,
            job_id,
            bridge_id,
            error,
            retryable,
            invocation_counter,
            attempt=attempt,
        )

    @api.model
    def report(self, bridge_id, reports):
        return job_queue.report_many(self._check_bridge().env, bridge_id, reports)

    @api.model
    def extend_lease(self, job_ids, bridge_id, lease_seconds=60, attempts=None):
        return job_queue.extend_lease(
            self._check_bridge().env, job_ids, bridge_id, lease_seconds, attempts
        )

    @api.model
    def release(self, job_ids, bridge_id):
        return job_queue.release(self._check_bridge().env, job_ids, bridge_id)

    @api.model
    def ingest(self, bridge_id, readings=None, events=None):
        return ingest.ingest_held(self._check_bridge().env, bridge_id, readings, events)

    @api.model
    def push_ingest(self, bridge_id, messages):
        """Ciphered pushes a listener received (services/push.py): Odoo authenticates and
        decrypts each; one answer per message."""
        from ..services import push

        env = self._check_bridge().env
        try:
            return push.ingest_pushes(env, bridge_id, messages)
        except push.PushError as exc:
            raise UserError(str(exc)) from exc

    @api.model
    def wait_for_jobs(self, timeout=25):
        return job_queue.wait_for_jobs(self._check_bridge().env, timeout)

    @api.model
    def _cron_requeue_expired(self):
        return job_queue.requeue_expired(engine.as_engine(self).env)

    def _prepare_bridge_values(self, profiles=None):
        """profiles: see SmartpmMeter._prepare_bridge_values."""
        self.ensure_one()
        meter = self.meter_id.sudo()
        return {
            "id": self.id,
            "job_type": self.job_type,
            "payload": self.payload or {},
            "attempt_count": self.attempt_count,
            "max_attempts": self.max_attempts,
            "idempotency_key": self.idempotency_key or None,
            "meter": meter._prepare_bridge_values(profiles),
        }

    def _on_done(self, result):
        """A job finished on the meter: what its result means for sales, reading tasks,
        load profiles and missed pings."""
        for job in self.filtered(lambda j: j.job_type == "add_credit"):
            job.purchase_ids.sudo()._on_delivered(result)
        for job in self.filtered(lambda j: j.job_type == "check_token"):
            job._checked_purchases()._on_token_checked(result)
        for job in self.filtered(lambda j: j.job_type == "clear_credit"):
            credit_clear.on_cleared(job, result)
        # From the cache (the job's snapshot, like the UPDATE's WHERE): usually nothing to
        # do, and no flush in the middle of a batch of reports.
        self.meter_id.filtered("missed_ping_count")._register_answer()
        for job in self:
            if job.task_id:
                task = job.task_id.sudo()
                task._add_job_results(job, result)
                task._check_finished()
            elif result.get("profiles"):
                job._store_profiles(result["profiles"])
        for job in self._move_out_jobs():
            job._move_outs()._on_job_done(job, result)

    def _on_final_failure(self):
        """No attempt is left: posted on the meter, the sale or the reading task told."""
        pings = self.filtered(lambda j: j.job_type == "ping")
        scheduled = pings.filtered(lambda j: (j.payload or {}).get("schedule"))
        # A missed scheduled ping is counted, not posted: the comm-lost alarm tells the story.
        for job in self - scheduled:
            job.meter_id.sudo().message_post(
                body=self.env._(
                    "Job %(job)s failed after %(n)s attempt(s): %(error)s",
                    job=job.display_name,
                    n=job.attempt_count,
                    error=job.error,
                ),
            )
        self.filtered(
            lambda j: j.job_type == "add_credit"
        ).purchase_ids.sudo()._on_delivery_failed()
        for job in self.filtered(lambda j: j.job_type == "check_token"):
            job._checked_purchases()._on_token_check_failed()
        for job in self.filtered(lambda j: j.job_type == "clear_credit"):
            credit_clear.on_clear_failed(job)
        for job in self.filtered("task_id"):
            task = job.task_id.sudo()
            task._add_job_failure(job)
            task._check_finished()
        pings.meter_id._register_missed_ping()
        for job in self._move_out_jobs():
            job._move_outs()._on_job_failed(job)

    def _move_out_jobs(self):
        """Jobs of a move-out's reading (keys ``move-out-<id>-...``, models/move_out.py)."""
        return self.filtered(lambda j: (j.idempotency_key or "").startswith("move-out-"))

    def _move_outs(self):
        return (
            self.env["smartpm.move.out"]
            .sudo()
            .search(
                [
                    "|",
                    "|",
                    ("read_job_id", "=", self.id),
                    ("disconnect_job_id", "=", self.id),
                    ("zero_job_id", "=", self.id),
                ]
            )
        )

    def _checked_purchases(self):
        return self.env["smartpm.credit.purchase"].sudo().search([("check_job_id", "in", self.ids)])

    @api.model
    def _create_scheduled(self, vals_list):
        """create() for a fleet's scheduled jobs, as one INSERT per page of rows: the ORM
        create of 100,000 jobs takes about a minute, this a few seconds. The rows hold what
        create() would store (defaults, the meter's company, who and when); a key taken in
        the meantime by a concurrent run is skipped instead of failing the batch."""
        if not vals_list:
            return self.browse()
        for vals in vals_list:
            self._check_engine_fields(vals)
        # Anything create() would compute besides the meter's company: let create() do it.
        if any(
            f.store and f.compute and name != "company_id" and name not in models.MAGIC_COLUMNS
            for name, f in self._fields.items()
        ):
            return self.create(vals_list)
        given = set().union(*vals_list)
        # stored fields the values leave out get their defaults, as in create()
        stored = {
            name
            for name, f in self._fields.items()
            if f.store and f.column_type and not f.compute and name not in models.MAGIC_COLUMNS
        }
        defaults = self.default_get(sorted(stored - given))
        columns = sorted(given | set(defaults))
        rows = []
        for vals in vals_list:
            merged = {**defaults, **vals}
            rows.append(
                tuple(
                    self._fields[c].convert_to_column(merged.get(c), self, merged) for c in columns
                )
            )
        # typed placeholders: a NULL or a JSON text in VALUES has no type of its own
        template = "(" + ", ".join(f"%s::{self._fields[c].column_type[1]}" for c in columns) + ")"
        names = ", ".join(columns)
        self.env.flush_all()
        ids = execute_values(
            self.env.cr._obj,
            f"""
            INSERT INTO smartpm_meter_job
                   ({names}, company_id, create_uid, create_date, write_uid, write_date)
            SELECT v.*, m.company_id, {int(self.env.uid)}, now() at time zone 'utc',
                   {int(self.env.uid)}, now() at time zone 'utc'
              FROM (VALUES %s) AS v ({names})
              JOIN smartpm_meter m ON m.id = v.meter_id
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING id
            """,  # noqa: S608 - column names are the model's own fields
            rows,
            template=template,
            page_size=INSERT_PAGE,
            fetch=True,
        )
        job_queue.notify(self.env)
        return self.browse(sorted(i for (i,) in ids))

    def _store_profiles(self, profiles):
        """Load-profile rows become register readings at each capture time (source profile)."""
        self.ensure_one()
        rows = profiles.get(LOAD_PROFILE) or []
        readings = []
        for row in rows:
            if not row or len(row) < 2:
                continue
            for obis, value in zip((ENERGY_IMPORT, ENERGY_EXPORT), row[1:3], strict=False):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    readings.append(
                        {
                            "meter_id": self.meter_id.id,
                            "obis": obis,
                            "value": value,
                            "unit": "Wh",
                            "time": row[0],
                            "source": "profile",
                            "job_id": self.id,
                        }
                    )
        if readings:
            ingest.ingest(self.env, readings, [])

    @api.model
    def _cron_purge_finished(self, limit=job_queue.PURGE_CHUNK):
        value = self.env["ir.config_parameter"].sudo().get_param(RETENTION_PARAM)
        try:
            days = int(value)
        except (TypeError, ValueError):  # unset or not a number
            days = DEFAULT_RETENTION_DAYS
        if days <= 0:
            return 0  # 0: keep every job
        purged = job_queue.purge_finished(self.sudo().env, days, limit)
        if purged >= limit:  # more to do: run again soon rather than in a day
            self.env.ref("smartpm_prepay.cron_purge_finished_jobs")._trigger()
        return purged

    # ---------------------------------------------------------------- buttons
    def action_retry(self):
        blocked = ("reversed", "delivered", "pending_check")
        if self.filtered(lambda j: j.job_type == "add_credit").purchase_ids.filtered(
            lambda p: p.state in blocked
        ):
            raise UserError(
                self.env._(
                    "This job delivers a sale that is reversed or delivered (or whose "
                    "reversal waits for the meter's answer): it cannot run again."
                )
            )
        # a retry starts the attempt count again: remember that the token may be out
        self.filtered(
            lambda j: j.job_type == "add_credit" and j.attempt_count
        ).purchase_ids.sudo().with_env(engine.as_engine(self).env).write(
            {"delivery_attempted": True}
        )
        self.check_access("write")
        retryable = self.filtered(lambda j: j.state in ("failed", "cancelled"))
        if retryable != self:
            raise UserError(self.env._("Only failed or cancelled jobs can be retried."))
        for job in retryable.filtered(lambda j: j.job_type == "clear_credit"):
            credit_clear.resign_if_key_changed(job)  # same transfer number, same Wh
        engine.as_engine(retryable).write(
            {
                "state": "pending",
                "attempt_count": 0,
                "next_attempt_at": fields.Datetime.now(),
                "error": False,
                "date_done": False,
            }
        )
        job_queue.notify(self.env)

    def action_cancel(self):
        self.check_access("write")
        # a failed one was told already (_on_final_failure)
        clears = self.filtered(lambda j: j.job_type == "clear_credit" and j.state == "pending")
        cancelled = job_queue.cancel(self.env, self.ids)
        if set(cancelled) != set(self.ids):
            raise UserError(
                self.env._(
                    "Only pending or failed jobs can be cancelled: a running job may be on the "
                    "meter already."
                )
            )
        # a credit job cancelled from the job list: the sale needs a decision (retry/reverse)
        self.purchase_ids.sudo()._on_delivery_failed()
        for job in clears.sudo():
            credit_clear.on_clear_failed(job)
        # a move-out waiting for this job waits no more: it is blocked, with its retry
        for job in self.sudo()._move_out_jobs():
            job._move_outs()._on_job_cancelled(job)
