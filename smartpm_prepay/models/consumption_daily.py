"""Daily consumption per meter, energy balance per transformer, load curves.

Consumption is computed in SQL from the energy-import register readings (billing reads,
task saves and load-profile captures alike): the energy between two consecutive readings
is spread over the days the interval covers, in proportion to time. So a day without any
reading still gets its share, and no day is counted twice. A register that goes *down*
(the meter was replaced or reset) is taken to restart from zero: the interval counts the
new register's value, never a negative amount.
"""

from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..services import local_time
from ..services.obis import ENERGY_IMPORT

MAX_GAP_DAYS = 31  # a previous reading older than this is not used to fill the gap
# Fields of a daily row that the per-transformer sums keep: a read_group that filters and
# groups on these only is answered from smartpm.consumption.grid.daily.
GRID_FIELDS = {"day", "transformer_id", "line_id", "site_id", "company_id", "is_check_meter"}
GRID_AGGREGATES = {"kwh:sum": "kwh:sum", "__count": "meter_count:sum"}
GRID_LOCK = 7_460_001  # advisory lock class of the per-transformer sums (any fixed number)


class SmartpmConsumptionDaily(models.Model):
    _name = "smartpm.consumption.daily"
    _description = "Daily consumption"
    _order = "day desc, meter_id"
    _rec_name = "meter_id"

    meter_id = fields.Many2one("smartpm.meter", required=True, index=True, ondelete="cascade")
    day = fields.Date(required=True)  # indexed by day_cover_idx (init)
    kwh = fields.Float(string="Energy (kWh)", digits=(16, 3), aggregator="sum")
    company_id = fields.Many2one("res.company", required=True, index=True)
    tenant_id = fields.Many2one("res.partner", index=True)
    transformer_id = fields.Many2one("smartpm.transformer", index=True)
    line_id = fields.Many2one("smartpm.line", index=True)
    site_id = fields.Many2one("smartpm.site", string="Property")
    is_check_meter = fields.Boolean(
        help="The transformer's own check meter: left out of tenant statistics."
    )

    _sql_constraints = [
        ("meter_day_uniq", "unique(meter_id, day)", "One consumption per meter and day."),
    ]

    def init(self):
        # A month by tenant or meter (top consumers, grouped lists) reads the index only,
        # not 3 million table rows.
        self.env.cr.execute(
            f"""CREATE INDEX IF NOT EXISTS {self._table}_day_cover_idx ON {self._table} (day)
                INCLUDE (tenant_id, meter_id, kwh, is_check_meter)"""
        )
        # It replaces the plain index on the day, which the planner would prefer (smaller)
        # and then read 3 million table rows through.
        self.env.cr.execute(f"DROP INDEX IF EXISTS {self._table}__day_index")

    # ------------------------------------------------------------ per-transformer sums
    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        records._refresh_grid_of_rows()
        return records

    def write(self, vals):
        keys = self._grid_keys()
        res = super().write(vals)
        self._refresh_grid_of_rows(keys)
        return res

    def unlink(self):
        keys = self._grid_keys()
        res = super().unlink()
        self._refresh_grid(keys)
        return res

    def _grid_keys(self):
        self.flush_recordset(["company_id", "day"])
        if not self.ids:
            return set()
        self.env.cr.execute(
            "SELECT DISTINCT company_id, day FROM smartpm_consumption_daily WHERE id = ANY(%s)",
            (self.ids,),
        )
        return set(self.env.cr.fetchall())

    def _refresh_grid_of_rows(self, keys=()):
        self.env.flush_all()
        self._refresh_grid(set(keys) | self._grid_keys())

    @api.model
    def _refresh_grid(self, keys):
        """Recompute the per-transformer sums of the given (company id, day) pairs."""
        by_company = {}
        for company_id, day in keys:
            by_company.setdefault(company_id, []).append(day)
        for company_id, days in by_company.items():
            self._refresh_grid_days(company_id, sorted(days))

    @api.model
    def _refresh_grid_days(self, company_id, days):
        cr = self.env.cr
        # one refresher per company at a time: delete-then-insert is not an upsert
        cr.execute("SELECT pg_advisory_xact_lock(%s, %s)", (GRID_LOCK, company_id))
        cr.execute(
            "DELETE FROM smartpm_consumption_grid_daily WHERE company_id = %s AND day = ANY(%s)",
            (company_id, days),
        )
        cr.execute(
            """
            INSERT INTO smartpm_consumption_grid_daily
                (company_id, day, transformer_id, line_id, site_id, is_check_meter, kwh,
                 meter_count, create_uid, write_uid, create_date, write_date)
            SELECT company_id, day, transformer_id, line_id, site_id,
                   COALESCE(is_check_meter, FALSE), sum(kwh), count(*), %(uid)s, %(uid)s,
                   now() at time zone 'utc', now() at time zone 'utc'
              FROM smartpm_consumption_daily
             WHERE company_id = %(company)s AND day = ANY(%(days)s)
             GROUP BY company_id, day, transformer_id, line_id, site_id,
                      COALESCE(is_check_meter, FALSE)
            """,
            {"company": company_id, "days": days, "uid": self.env.uid},
        )
        self.env["smartpm.consumption.grid.daily"].invalidate_model()

    @api.model
    def _grid_read_group_args(self, domain, groupby, aggregates, having, order):
        """The arguments of the same _read_group on the per-transformer sums, or None when
        the request needs the meters' rows (a meter, a tenant, another measure)."""
        if having:
            return None
        if not self.env.su and not self.env.user._is_internal():
            return None  # a tenant's rows (rule_consumption_daily_portal) are not the grid's
        for leaf in domain or ():
            if isinstance(leaf, (list, tuple)) and len(leaf) == 3:
                if not isinstance(leaf[0], str) or leaf[0].split(".")[0] not in GRID_FIELDS:
                    return None
            elif leaf not in ("&", "|", "!"):
                return None
        if any(spec.split(":")[0] not in GRID_FIELDS or "." in spec for spec in groupby):
            return None
        if any(spec not in GRID_AGGREGATES for spec in aggregates):
            return None
        if order:
            allowed = set(groupby) | {s.split(":")[0] for s in groupby} | set(GRID_AGGREGATES)
            terms = [t.split()[0] for t in order.split(",") if t.strip()]
            if any(t not in allowed for t in terms):
                return None
            order = ",".join(
                " ".join([GRID_AGGREGATES.get(t.split()[0], t.split()[0]), *t.split()[1:]])
                for t in order.split(",")
                if t.strip()
            )
        return [GRID_AGGREGATES[spec] for spec in aggregates], order

    @api.model
    def _read_group(
        self, domain, groupby=(), aggregates=(), having=(), offset=0, limit=None, order=None
    ):
        # A month of 100,000 meters is 3 million rows; summed per transformer, 31,000.
        args = self._grid_read_group_args(domain, groupby, aggregates, having, order)
        if args is None:
            return super()._read_group(domain, groupby, aggregates, having, offset, limit, order)
        grid_aggregates, grid_order = args
        self.check_access("read")
        rows = self.env["smartpm.consumption.grid.daily"]._read_group(
            domain, groupby, grid_aggregates, (), offset, limit, grid_order
        )
        counts = [i for i, spec in enumerate(aggregates, len(groupby)) if spec == "__count"]
        if not counts:
            return rows
        return [tuple(int(v or 0) if i in counts else v for i, v in enumerate(row)) for row in rows]

    @api.model
    @api.readonly
    def web_read_group(
        self, domain, fields, groupby, limit=None, offset=0, orderby=False, lazy=True
    ):
        # "Top consumers" (context smartpm_top_groups=N): the N biggest groups only. One bar
        # per tenant of a 100,000-meter fleet is neither readable nor fast to send.
        top = self.env.context.get("smartpm_top_groups")
        if not top or limit or offset or orderby or any(g.startswith("day") for g in groupby):
            return super().web_read_group(domain, fields, groupby, limit, offset, orderby, lazy)
        groups = self._web_read_group(domain, fields, groupby, top, 0, "kwh desc", lazy)
        return {"groups": groups, "length": len(groups)}

    @api.model
    def _rebuild_days(self, date_from, date_to, company=None):
        """(Re)compute the consumption of every meter of ``company`` for the local days
        ``date_from`` .. ``date_to`` (inclusive). Returns the number of rows of the period."""
        company = company or self.env.company
        date_from, date_to = fields.Date.to_date(date_from), fields.Date.to_date(date_to)
        if not date_from or not date_to or date_from > date_to:
            raise UserError(self.env._("Give a period whose start is not after its end."))
        tz = local_time.company_tz(company).zone
        t0 = local_time.day_start_utc(company, date_from)
        t1 = local_time.day_start_utc(company, date_to + timedelta(days=1))
        self.env.flush_all()
        cr = self.env.cr
        cr.execute(
            """
            WITH meters AS (
                SELECT id FROM smartpm_meter WHERE company_id = %(company)s
            ), pts AS (
                -- readings inside the period, the last one before it and the first after it
                SELECT r.meter_id, r.reading_time AS t, r.value, r.unit
                  FROM smartpm_reading r JOIN meters m ON m.id = r.meter_id
                 WHERE r.obis = %(obis)s AND r.reading_time >= %(t0)s AND r.reading_time < %(t1)s
                UNION ALL
                SELECT m.id, p.reading_time, p.value, p.unit FROM meters m
                  CROSS JOIN LATERAL (
                      SELECT reading_time, value, unit FROM smartpm_reading
                       WHERE meter_id = m.id AND obis = %(obis)s AND reading_time < %(t0)s
                         AND reading_time >= %(t0)s - make_interval(days => %(gap)s)
                       ORDER BY reading_time DESC LIMIT 1) p
                UNION ALL
                SELECT m.id, p.reading_time, p.value, p.unit FROM meters m
                  CROSS JOIN LATERAL (
                      SELECT reading_time, value, unit FROM smartpm_reading
                       WHERE meter_id = m.id AND obis = %(obis)s AND reading_time >= %(t1)s
                         AND reading_time < %(t1)s + make_interval(days => %(gap)s)
                       ORDER BY reading_time LIMIT 1) p
            ), wh AS (
                SELECT meter_id, t,
                       CASE WHEN lower(unit) = 'kwh' THEN value * 1000 ELSE value END AS v
                  FROM pts
            ), iv AS (
                SELECT meter_id, t,
                       lag(t) OVER w AS t_prev,
                       CASE WHEN v >= lag(v) OVER w THEN v - lag(v) OVER w
                            ELSE GREATEST(v, 0) END AS energy
                  FROM wh
                WINDOW w AS (PARTITION BY meter_id ORDER BY t)
            ), days AS (
                SELECT d::date AS day,
                       (d AT TIME ZONE %(tz)s) AT TIME ZONE 'UTC' AS u0,
                       ((d + interval '1 day') AT TIME ZONE %(tz)s) AT TIME ZONE 'UTC' AS u1
                  FROM generate_series(%(d0)s::timestamp, %(d1)s::timestamp, interval '1 day') d
            ), split AS (
                SELECT iv.meter_id, days.day, days.u0, days.u1,
                       sum(iv.energy
                           * extract(epoch FROM LEAST(iv.t, days.u1) - GREATEST(iv.t_prev, days.u0))
                           / extract(epoch FROM iv.t - iv.t_prev)) AS energy
                  FROM iv JOIN days ON iv.t_prev < days.u1 AND iv.t > days.u0
                 WHERE iv.t > iv.t_prev
                 GROUP BY iv.meter_id, days.day, days.u0, days.u1
            ), computed AS (
                SELECT s.meter_id, s.day, round((s.energy / 1000.0)::numeric, 3) AS kwh,
                       m.company_id, ta.tenant_id, m.transformer_id, m.line_id, m.site_id,
                       EXISTS (SELECT 1 FROM smartpm_transformer tr
                                WHERE tr.check_meter_id = m.id) AS is_check_meter
                  FROM split s
                  JOIN smartpm_meter m ON m.id = s.meter_id
                  LEFT JOIN LATERAL (
                      -- the tenant holding the meter at the end of the day, else the last
                      -- one who held it during the day
                      SELECT a.tenant_id FROM smartpm_meter_assignment a
                       WHERE a.meter_id = s.meter_id AND a.date_start < s.u1
                         AND (a.date_end IS NULL OR a.date_end > s.u0)
                       ORDER BY (a.date_end IS NULL OR a.date_end >= s.u1) DESC,
                                a.date_start DESC
                       LIMIT 1) ta ON TRUE
            ), stored AS (
                -- upsert, touching only rows whose figures changed: an hourly recompute
                -- of 100,000 meters mostly updates today's kWh in place
                INSERT INTO smartpm_consumption_daily AS c
                    (meter_id, day, kwh, company_id, tenant_id, transformer_id, line_id,
                     site_id, is_check_meter, create_uid, write_uid, create_date, write_date)
                SELECT meter_id, day, kwh, company_id, tenant_id, transformer_id, line_id,
                       site_id, is_check_meter, %(uid)s, %(uid)s,
                       now() at time zone 'utc', now() at time zone 'utc'
                  FROM computed
                ON CONFLICT (meter_id, day) DO UPDATE
                   SET kwh = EXCLUDED.kwh, company_id = EXCLUDED.company_id,
                       tenant_id = EXCLUDED.tenant_id, transformer_id = EXCLUDED.transformer_id,
                       line_id = EXCLUDED.line_id, site_id = EXCLUDED.site_id,
                       is_check_meter = EXCLUDED.is_check_meter,
                       write_uid = EXCLUDED.write_uid, write_date = EXCLUDED.write_date
                 WHERE (c.kwh, c.company_id, c.tenant_id, c.transformer_id, c.line_id,
                        c.site_id, c.is_check_meter)
                       IS DISTINCT FROM
                       (EXCLUDED.kwh, EXCLUDED.company_id, EXCLUDED.tenant_id,
                        EXCLUDED.transformer_id, EXCLUDED.line_id, EXCLUDED.site_id,
                        EXCLUDED.is_check_meter)
            )
            -- rows of the period that have no figure any more (readings deleted)
            DELETE FROM smartpm_consumption_daily c
             WHERE c.company_id = %(company)s AND c.day BETWEEN %(d0)s AND %(d1)s
               AND NOT EXISTS (SELECT 1 FROM computed
                                WHERE computed.meter_id = c.meter_id AND computed.day = c.day)
            """,
            {
                "company": company.id,
                "obis": ENERGY_IMPORT,
                "t0": t0,
                "t1": t1,
                "gap": MAX_GAP_DAYS,
                "tz": tz,
                "d0": date_from,
                "d1": date_to,
                "uid": self.env.uid,
            },
        )
        self.invalidate_model()
        days = [date_from + timedelta(days=i) for i in range((date_to - date_from).days + 1)]
        self._refresh_grid_days(company.id, days)
        cr.execute(
            "SELECT count(*) FROM smartpm_consumption_daily"
            " WHERE company_id = %s AND day BETWEEN %s AND %s",
            (company.id, date_from, date_to),
        )
        return cr.fetchone()[0]

    @api.model
    def _cron_compute_recent(self, days=2):
        """Recompute today and the ``days - 1`` days before, for every company."""
        for company in self.env["res.company"]._smartpm_with_meters():
            today = local_time.local_today(company)
            self._rebuild_days(today - timedelta(days=max(days, 1) - 1), today, company)
        return True
