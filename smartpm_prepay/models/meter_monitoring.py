"""Scheduled readings, "always online" pings and what finished jobs mean for statistics.

Extends the job engine through its hooks only: ``_on_done`` routes reading-task results
to their task and stores load profiles; ``_on_final_failure`` counts missed pings.
"""

from datetime import timedelta

from psycopg2.extras import execute_values

from odoo import _, api, fields, models

from ..services import engine, ingest, job_queue
from ..services.obis import ENERGY_EXPORT, ENERGY_IMPORT, LOAD_PROFILE
from .job import BILLING_OBJECTS

SCHEDULE_PRIORITY = {"events": 55, "billing": 60, "profile": 70, "ping": 80}
PROFILE_OBJECT = {"obis": LOAD_PROFILE, "ic": 7, "attribute": 2}
PROFILE_MAX_DAYS = 7  # the meter keeps 672 quarter-hours
DEFAULT_BATCH = 1000
DEFAULT_MAX_BACKLOG = 5000
INSERT_PAGE = 5000


class SmartpmMeterJob(models.Model):
    _inherit = "smartpm.meter.job"

    task_id = fields.Many2one(
        "smartpm.reading.task", index="btree_not_null", ondelete="set null", readonly=True
    )
    task_run = fields.Integer(readonly=True, help="The run of the reading task it belongs to.")

    def _on_done(self, result):
        super()._on_done(result)
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

    def _on_final_failure(self):
        pings = self.filtered(lambda j: j.job_type == "ping")
        scheduled = pings.filtered(lambda j: (j.payload or {}).get("schedule"))
        # A missed scheduled ping is counted, not posted: the comm-lost alarm tells the story.
        super(SmartpmMeterJob, self - scheduled)._on_final_failure()
        for job in self.filtered("task_id"):
            task = job.task_id.sudo()
            task._add_job_failure(job)
            task._check_finished()
        pings.meter_id._register_missed_ping()

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


class SmartpmMeter(models.Model):
    _inherit = "smartpm.meter"

    missed_ping_count = fields.Integer(
        readonly=True, copy=False, help="Scheduled pings missed in a row."
    )
    consumption_ids = fields.One2many("smartpm.consumption.daily", "meter_id")

    # ---------------------------------------------------------------- always online
    def _register_answer(self):
        """The meter answered: forget missed pings and clear communication-lost alarms."""
        if not self:
            return
        self.env.flush_all()
        self.env.cr.execute(
            """
            UPDATE smartpm_meter SET missed_ping_count = 0
             WHERE id = ANY(%s) AND missed_ping_count > 0
            RETURNING id
            """,
            (self.ids,),
        )
        recovered = [row[0] for row in self.env.cr.fetchall()]
        if not recovered:
            return
        self.browse(recovered).invalidate_recordset(["missed_ping_count"])
        alarms = (
            self.env["smartpm.alarm"]
            .sudo()
            .search(
                [
                    ("meter_id", "in", recovered),
                    ("alarm_type", "=", "comm_lost"),
                    ("state", "in", ("new", "acknowledged")),
                ]
            )
        )
        alarms._clear(_("The meter answers again."))

    @api.model
    def _offline_after_minutes(self, company):
        """How long a meter may stay silent before it counts as offline: the company's
        pings in a row at its ping interval (the limit of the comm-lost alarm)."""
        return (company.smartpm_ping_interval_min or 60) * (company.smartpm_comm_lost_pings or 3)

    @api.model
    def _mark_never_seen_offline(self, now=None):
        """Meters in service that never answered, activated longer than the offline threshold
        ago, are offline, not "unknown" (also when no ping could even be tried)."""
        now = now or fields.Datetime.now()
        self.env.flush_all()
        marked = []
        for company in self.env["res.company"].sudo().search([]):
            since = now - timedelta(minutes=self._offline_after_minutes(company))
            self.env.cr.execute(
                """
                UPDATE smartpm_meter SET online_state = 'offline'
                 WHERE company_id = %s AND active AND state IN ('active', 'disconnected')
                   AND last_seen IS NULL AND online_state IS DISTINCT FROM 'offline'
                   AND COALESCE(date_activated, create_date) < %s
                RETURNING id
                """,
                (company.id, since),
            )
            marked += [row[0] for row in self.env.cr.fetchall()]
        meters = self.browse(marked)
        meters.invalidate_recordset(["online_state"])
        return meters

    def _register_missed_ping(self):
        """Count a missed ping; at the company's limit the meter is offline and alarmed.
        A meter that never answered is offline at its first missed ping."""
        if not self:
            return
        self.env.flush_all()
        self.env.cr.execute(
            """
            UPDATE smartpm_meter SET missed_ping_count = COALESCE(missed_ping_count, 0) + 1
             WHERE id = ANY(%s)
            RETURNING id, missed_ping_count
            """,
            (self.ids,),
        )
        counts = dict(self.env.cr.fetchall())
        self.invalidate_recordset(["missed_ping_count"])
        lost = self.browse(
            [
                m.id
                for m in self.sudo()
                if counts.get(m.id, 0) >= (m.company_id.smartpm_comm_lost_pings or 3)
            ]
        ).sudo()
        never_seen = self.sudo().filtered(lambda m: not m.last_seen)
        (lost | never_seen).filtered(lambda m: m.online_state != "offline").write(
            {"online_state": "offline"}
        )
        if not lost:
            return
        already = set(
            self.env["smartpm.alarm"]
            .sudo()
            .search(
                [
                    ("meter_id", "in", lost.ids),
                    ("alarm_type", "=", "comm_lost"),
                    ("state", "in", ("new", "acknowledged")),
                ]
            )
            .meter_id.ids
        )
        now = fields.Datetime.now()
        self.env["smartpm.alarm"].sudo().create(
            [
                {
                    "meter_id": meter.id,
                    "alarm_type": "comm_lost",
                    "meter_time": now,
                    # env._: a comprehension's frame has no `self` for _() to find a language
                    "description": self.env._(
                        "No answer to %(n)s pings in a row; last seen %(seen)s.",
                        n=counts[meter.id],
                        seen=meter.last_seen or self.env._("never"),
                    ),
                }
                for meter in lost
                if meter.id not in already
            ]
        )

    # ---------------------------------------------------------------- scheduled jobs
    @api.model
    def _queue_backlog(self, kind):
        self.env.cr.execute(
            """
            SELECT count(*) FROM smartpm_meter_job
             WHERE state IN ('pending', 'claimed') AND payload->>'schedule' = %s
            """,
            (kind,),
        )
        return self.env.cr.fetchone()[0]

    @api.model
    def _scheduled_candidates(self, key_prefix, limit, extra_where="", params=()):
        """Active meters without a job keyed ``key_prefix || meter id`` yet (one per period)."""
        self.env.flush_all()
        self.env.cr.execute(
            f"""
            SELECT m.id FROM smartpm_meter m
             WHERE m.active AND m.state IN ('active', 'disconnected')
               AND NOT EXISTS (SELECT 1 FROM smartpm_meter_job j
                                WHERE j.idempotency_key = %s || m.id::text)
               {extra_where}
             ORDER BY m.id
             LIMIT %s
            """,  # noqa: S608 - extra_where is a constant of this module
            (key_prefix, *params, limit),
        )
        return [row[0] for row in self.env.cr.fetchall()]

    @api.model
    def _queue_scheduled(
        self, kind, key_prefix, vals_for, batch_size, max_backlog, extra_where="", params=()
    ):
        """Queue one job per candidate meter, in one create(), never past ``max_backlog``."""
        room = min(batch_size, max_backlog - self._queue_backlog(kind))
        if room <= 0:
            return self.env["smartpm.meter.job"]
        meter_ids = self._scheduled_candidates(key_prefix, room, extra_where, params)
        if not meter_ids:
            return self.env["smartpm.meter.job"]
        vals_list = vals_for(meter_ids)
        for meter_id, vals in zip(meter_ids, vals_list, strict=True):
            vals.update(
                meter_id=meter_id,
                idempotency_key=f"{key_prefix}{meter_id}",
                priority=SCHEDULE_PRIORITY[kind],
            )
            vals["payload"] = dict(vals.get("payload") or {}, schedule=kind)
        return engine.as_engine(self.env["smartpm.meter.job"])._create_scheduled(vals_list)

    @api.model
    def _cron_queue_billing_reads(self, batch_size=DEFAULT_BATCH, max_backlog=DEFAULT_MAX_BACKLOG):
        """Daily billing read of every active meter; runs often, queues a batch each time."""
        key = f"billing:{fields.Date.context_today(self)}:"
        return self._queue_scheduled(
            "billing",
            key,
            lambda ids: [
                {"job_type": "read", "payload": {"objects": BILLING_OBJECTS}} for _i in ids
            ],
            batch_size,
            max_backlog,
        )

    @api.model
    def _cron_queue_profile_reads(self, batch_size=DEFAULT_BATCH, max_backlog=DEFAULT_MAX_BACKLOG):
        """Daily load-profile collection from the last stored capture on."""
        now = fields.Datetime.now().replace(microsecond=0)
        key = f"profile:{fields.Date.context_today(self)}:"

        def vals_for(meter_ids):
            self.env.cr.execute(
                """
                SELECT meter_id, max(reading_time) FROM smartpm_reading
                 WHERE meter_id = ANY(%s) AND obis = %s AND source = 'profile'
                 GROUP BY meter_id
                """,
                (meter_ids, ENERGY_IMPORT),
            )
            last = dict(self.env.cr.fetchall())
            oldest = now - timedelta(days=PROFILE_MAX_DAYS)
            out = []
            for meter_id in meter_ids:
                start = max(last.get(meter_id) or now - timedelta(days=1), oldest)
                out.append(
                    {
                        "job_type": "read",
                        "max_attempts": 3,
                        "payload": {
                            "objects": [PROFILE_OBJECT],
                            "from": start.isoformat() + "Z",
                            "to": now.isoformat() + "Z",
                        },
                    }
                )
            return out

        return self._queue_scheduled("profile", key, vals_for, batch_size, max_backlog)

    @api.model
    def _cron_queue_event_reads(
        self, interval_hours=None, batch_size=DEFAULT_BATCH, max_backlog=DEFAULT_MAX_BACKLOG
    ):
        """Collect the meters' event logs every company's interval (``interval_hours``
        overrides it): tampering events become alarms. Each read starts where the meter's
        last successful one did (a meter back from an outage sends what it logged
        meanwhile); alarms are deduplicated anyway."""
        now = fields.Datetime.now()
        jobs = self.env["smartpm.meter.job"]
        for company in self.env["res.company"].sudo().search([]):
            minutes = interval_hours * 60 if interval_hours else company.smartpm_event_interval_min
            jobs |= self._queue_event_reads(
                company, max(int(minutes or 240), 1), now, batch_size, max_backlog
            )
        return jobs

    def _queue_event_reads(self, company, minutes, now, batch_size, max_backlog):
        slot = int(now.timestamp() // (minutes * 60))

        def vals_for(meter_ids):
            self.env.cr.execute(
                """
                SELECT meter_id, max(date_claimed) FROM smartpm_meter_job
                 WHERE meter_id = ANY(%s) AND job_type = 'read_events' AND state = 'done'
                 GROUP BY meter_id
                """,
                (meter_ids,),
            )
            last = dict(self.env.cr.fetchall())
            out = []
            for meter_id in meter_ids:
                since = last.get(meter_id)
                # a margin for the meter's clock drift
                since = (since - timedelta(minutes=10)).isoformat() + "Z" if since else None
                out.append(
                    {"job_type": "read_events", "max_attempts": 3, "payload": {"since": since}}
                )
            return out

        return self._queue_scheduled(
            "events",
            f"events:{minutes}:{slot}:",
            vals_for,
            batch_size,
            max_backlog,
            extra_where=" AND m.company_id = %s",
            params=(company.id,),
        )

    @api.model
    def _cron_queue_pings(self, batch_size=DEFAULT_BATCH, max_backlog=DEFAULT_MAX_BACKLOG):
        """Ping meters not heard from for the company's interval (one attempt: a miss is a
        miss); the slot in the key keeps one ping per meter per interval."""
        jobs = self.env["smartpm.meter.job"]
        now = fields.Datetime.now()
        self._mark_never_seen_offline(now)
        for company in self.env["res.company"].sudo().search([]):
            interval = company.smartpm_ping_interval_min or 60
            slot = int(now.timestamp() // (interval * 60))
            jobs |= self._queue_scheduled(
                "ping",
                f"ping:{slot}:",
                lambda ids: [{"job_type": "ping", "payload": {}, "max_attempts": 1} for _i in ids],
                batch_size,
                max_backlog,
                extra_where="""
                   AND m.company_id = %s
                   AND (m.last_seen IS NULL OR m.last_seen < %s)
                   AND NOT EXISTS (SELECT 1 FROM smartpm_meter_job p
                                    WHERE p.meter_id = m.id AND p.job_type = 'ping'
                                      AND p.state IN ('pending', 'claimed'))
                """,
                params=(company.id, now - timedelta(minutes=interval)),
            )
        return jobs

    # ---------------------------------------------------------------- statistics buttons
    def action_view_load_curve(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("smartpm_prepay.action_load_curve")
        action["domain"] = [("meter_id", "=", self.id)]
        action["name"] = _("Load curve of %s", self.serial_number)
        return action

    def action_view_consumption(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "smartpm_prepay.action_consumption_daily"
        )
        action["domain"] = [("meter_id", "=", self.id)]
        action["context"] = {"search_default_group_day": 1}
        return action
