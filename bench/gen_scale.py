"""Fill a database at the scale of one owner: tenants, meters, finished jobs and readings,
streamed with COPY (no ORM loops), then time what must stay fast at that scale.

    .venv/bin/python bench/gen_scale.py [--meters 100000] [--jobs 1000000]
                                        [--readings 10000000] [--db smartpm_scale]

The database is created afresh (smartpm_prepay installed, no demo data), the daily
consumption computed from the readings by the product's own SQL. Then it prints: claim(100)
with as many pending jobs as meters, the meter list searched by serial and by tenant, one
run of the daily billing cron queueing every active meter, and each statistics view opened
on one month (the RPCs the web client sends). ``--measure-only`` times a database a
previous run left. Not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import itertools
import secrets
import subprocess
import time

from common import CONF, PG, Timer, ensure_db, figures


class Lines(io.RawIOBase):
    """A file-like object over generated text lines, so COPY streams without a temp file."""

    def __init__(self, lines, chunk=20000):
        self._lines = iter(lines)
        self._chunk = chunk
        self._buf = memoryview(b"")

    def readable(self):
        return True

    def readinto(self, b):
        if not self._buf:
            # join many lines at once: per-line bytes concatenation is what makes COPY slow
            self._buf = memoryview("".join(itertools.islice(self._lines, self._chunk)).encode())
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


# the columns both job COPYs fill (finished jobs add date_done and result)
JOB_COLUMNS = [
    "meter_id",
    "company_id",
    "job_type",
    "state",
    "priority",
    "attempt_count",
    "max_attempts",
    "next_attempt_at",
    "payload",
]


def reserve_ids(cr, table, n):
    cr.execute(f"SELECT nextval('{table}_id_seq')")
    start = cr.fetchone()[0]
    cr.execute(f"SELECT setval('{table}_id_seq', %s)", (start + n,))
    return start


def required_defaults(env, table, columns):
    """NOT NULL columns that other installed modules add (e.g. account's autopost_bills on
    res_partner), with their Odoo defaults, so COPY stays valid whatever is installed."""
    env.cr.execute(
        """SELECT column_name FROM information_schema.columns
            WHERE table_name = %s AND is_nullable = 'NO' AND column_default IS NULL""",
        (table,),
    )
    missing = [c for (c,) in env.cr.fetchall() if c not in columns and c != "id"]
    model = next(m for m in env.registry.models.values() if m._table == table)
    defaults = env[model._name].default_get(missing)
    for column in missing:
        if (
            defaults.get(column) in (None, False)
            and env[model._name]._fields[column].type != "boolean"
        ):
            raise SystemExit(f"{table}.{column} is required and has no default: add it here")
    return missing, [
        str(defaults.get(c, False)).replace("False", "f").replace("True", "t") for c in missing
    ]


def copy(cr, table, columns, lines, label, n, env=None):
    if env is not None:
        extra_cols, extra_vals = required_defaults(env, table, columns)
        if extra_cols:
            suffix = "\t" + "\t".join(extra_vals) + "\n"
            columns = [*columns, *extra_cols]
            lines = (line[:-1] + suffix for line in lines)
    with Timer() as t:
        cr.copy_expert(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN",
            io.BufferedReader(Lines(lines), 1 << 20),
        )
    print(
        f"[gen] {label}: {n} rows in {t.elapsed:.1f}s ({n / max(t.elapsed, 1e-9):.0f} rows/s)",
        flush=True,
    )


def generate(env, n_meters, n_jobs, n_readings):
    cr = env.cr
    company = env.company.id
    now = dt.datetime.utcnow().replace(microsecond=0)
    site = env["smartpm.site"].create({"name": "Scale City"})
    lines = env["smartpm.line"].create(
        [{"name": f"Line {i}", "site_id": site.id} for i in range(max(1, n_meters // 10000))]
    )
    transformers = env["smartpm.transformer"].create(
        [
            {"name": f"TR {i}", "line_id": lines[i % len(lines)].id}
            for i in range(max(1, n_meters // 100))
        ]
    )
    tr = [(t.id, t.line_id.id) for t in transformers]
    env.flush_all()

    p0 = reserve_ids(cr, "res_partner", n_meters)
    copy(
        cr,
        "res_partner",
        [
            "id",
            "name",
            "complete_name",
            "active",
            "is_tenant",
            "tenant_number",
            "type",
            "commercial_partner_id",
            "create_date",
            "write_date",
        ],
        (
            f"{p0 + i}\tTenant {i:06d}\tTenant {i:06d}\tt\tt\tS{i:07d}\tcontact\t"
            f"{p0 + i}\t{now}\t{now}\n"
            for i in range(n_meters)
        ),
        "tenants",
        n_meters,
        env,
    )

    # Meters as Odoo creates them: the management client with HLS-GMAC and random keys.
    def key():
        return secrets.token_hex(16).upper()

    m0 = reserve_ids(cr, "smartpm_meter", n_meters)
    copy(
        cr,
        "smartpm_meter",
        [
            "id",
            "serial_number",
            "company_id",
            "state",
            "active",
            "connection_type",
            "framing",
            "auth",
            "host",
            "port",
            "baudrate",
            "client_address",
            "auth_key",
            "encryption_key",
            "token_key",
            "server_logical_address",
            "server_physical_address",
            "tenant_id",
            "transformer_id",
            "line_id",
            "site_id",
            "low_credit_kwh",
            "trip_kwh",
            "load_limit_w",
            "credit_kwh",
            "relay_state",
            "online_state",
            "meter_model",
            "create_date",
            "write_date",
        ],
        (
            f"{m0 + i}\tSCL{i:07d}\t{company}\tactive\tt\ttcp\twrapper\thls_gmac\t127.0.0.1\t"
            f"{4100 + i % 1000}\t9600\t1\t{key()}\t{key()}\t{key()}\t1\t17\t{p0 + i}\t"
            f"{tr[i % len(tr)][0]}\t"
            f"{tr[i % len(tr)][1]}\t{site.id}\t5\t0\t0\t{20 + i % 50}\tconnected\tonline\t"
            f"SmartPM 1100Net\t{now}\t{now}\n"
            for i in range(n_meters)
        ),
        "meters",
        n_meters,
        env,
    )
    days = max(2, n_readings // n_meters)
    # one energy-register reading per meter and day, the last at midnight today: every
    # day up to yesterday then has a consumption
    start = now.replace(hour=0, minute=0, second=0) - dt.timedelta(days=days - 1)
    since = start - dt.timedelta(days=1)
    copy(
        cr,
        "smartpm_meter_assignment",
        ["meter_id", "tenant_id", "company_id", "date_start", "is_open"],
        # held since before the first reading: every day's consumption has its tenant
        (f"{m0 + i}\t{p0 + i}\t{company}\t{since}\tt\n" for i in range(n_meters)),
        "assignments",
        n_meters,
    )
    copy(
        cr,
        "smartpm_meter_job",
        [*JOB_COLUMNS, "date_done", "result"],
        (
            f"{m0 + i % n_meters}\t{company}\tread\tdone\t50\t1\t5\t{now}\t{{}}\t{now}\t{{}}\n"
            for i in range(n_jobs)
        ),
        "finished jobs",
        n_jobs,
    )
    copy(
        cr,
        "smartpm_reading",
        ["meter_id", "company_id", "obis", "reading_time", "value", "unit", "source"],
        (
            f"{m0 + i % n_meters}\t{company}\t1.0.1.8.0.255\t"
            f"{start + dt.timedelta(days=i // n_meters)}\t{(i // n_meters) * 9000 + i % 5000}\t"
            f"Wh\tschedule\n"
            for i in range(days * n_meters)
        ),
        "readings",
        days * n_meters,
    )
    copy(
        cr,
        "smartpm_meter_job",
        JOB_COLUMNS,
        (f"{m0 + i}\t{company}\tping\tpending\t50\t0\t5\t{now}\t{{}}\n" for i in range(n_meters)),
        "pending jobs",
        n_meters,
    )
    # transformer k measures its total with meter k (one of its own): the energy balance
    cr.execute(
        """UPDATE smartpm_transformer t SET check_meter_id = %s + v.k
             FROM unnest(%s::int[]) WITH ORDINALITY AS v(id, k)
            WHERE t.id = v.id""",
        (m0 - 1, [t for t, _line in tr]),
    )
    with Timer() as t:
        for table in (
            # the grid was created through the ORM: autovacuum would analyze it soon after
            "smartpm_site",
            "smartpm_line",
            "smartpm_transformer",
            "res_partner",
            "smartpm_meter",
            "smartpm_meter_assignment",
            "smartpm_meter_job",
            "smartpm_reading",
        ):
            cr.execute(f"ANALYZE {table}")
    print(f"[gen] analyze: {t.elapsed:.1f}s")
    cr.commit()
    env.invalidate_all()
    return start.date()


def fill_consumption(registry, first_day, last_day, chunk_days=7):
    """The daily consumption table as the hourly cron leaves it: the product's own SQL
    (``_rebuild_days``) over the readings, a week at a time, oldest first."""
    from odoo import SUPERUSER_ID, api

    rows = 0
    with Timer() as t:
        day = first_day
        while day <= last_day:
            end = min(day + dt.timedelta(days=chunk_days - 1), last_day)
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                rows = env["smartpm.consumption.daily"]._rebuild_days(day, end)
            day = end + dt.timedelta(days=1)
    with registry.cursor() as cr:
        cr.execute("SELECT count(*) FROM smartpm_consumption_daily")
        rows = cr.fetchone()[0]
    print(
        f"[gen] daily consumption (product SQL, {first_day}..{last_day}): {rows} rows in "
        f"{t.elapsed:.1f}s ({rows / max(t.elapsed, 1e-9):.0f} rows/s)",
        flush=True,
    )
    # what autovacuum does after a bulk insert: statistics and the visibility map
    with Timer() as t:
        subprocess.run(
            [
                "psql",
                *PG,
                "-d",
                registry.db_name,
                "-qc",
                "VACUUM ANALYZE smartpm_consumption_daily, smartpm_consumption_grid_daily",
            ],
            check=True,
        )
    print(f"[gen] vacuum analyze consumption: {t.elapsed:.1f}s", flush=True)


def measure(registry, n_meters):
    from odoo import SUPERUSER_ID, api
    from odoo.addons.smartpm_prepay.services import job_queue

    def timed(label, fn, repeat=10, rollback=True):
        values = []
        for _ in range(repeat):
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                t0 = time.perf_counter()
                fn(env)
                values.append(time.perf_counter() - t0)
                if rollback:
                    cr.rollback()
        figures(label, values)

    timed(
        f"claim(100) with {n_meters} pending jobs",
        lambda env: job_queue.claim(env, "bench", 100, 60),
    )
    fields_list = [
        "serial_number",
        "tenant_id",
        "transformer_id",
        "credit_kwh",
        "relay_state",
        "online_state",
        "state",
    ]
    timed(
        "meter list: search by serial",
        lambda env: env["smartpm.meter"].search_read(
            [("serial_number", "ilike", "SCL00424")], fields_list, limit=80
        ),
    )
    timed(
        "meter list: search by tenant",
        lambda env: env["smartpm.meter"].search_read(
            [("tenant_id", "ilike", "Tenant 04242")], fields_list, limit=80
        ),
    )
    timed(
        "meter list: first page, no filter",
        lambda env: env["smartpm.meter"].search_read([], fields_list, limit=80),
    )

    def billing_cron(env):
        # the cron's own code, with a batch and backlog that let one run queue the fleet
        jobs = env["smartpm.meter"]._cron_queue_billing_reads(
            batch_size=n_meters, max_backlog=n_meters
        )
        env.flush_all()
        assert len(jobs) == n_meters, (len(jobs), n_meters)

    timed(
        f"daily billing cron: one run queues every active meter ({n_meters} jobs)",
        billing_cron,
        repeat=3,
    )
    measure_statistics(registry)


def measure_statistics(registry, repeat=5):
    """Each statistics view as the web client opens it on one month (the 31 days before
    today): the RPCs of its first screen, in order, timed together."""
    from odoo import SUPERUSER_ID, api

    today = dt.date.today()
    month = [
        ("day", ">=", str(today - dt.timedelta(days=31))),
        ("day", "<=", str(today - dt.timedelta(days=1))),
    ]
    tenants = [("is_check_meter", "=", False), *month]  # the actions' "Tenant meters" filter
    m2o = {"fields": {"display_name": {}}}

    def read_group(model, domain, measures, groupby, **kw):
        return lambda env: (
            env[model].with_context(**kw).read_group(domain, measures, groupby, lazy=False)
        )

    def web_read_group(model, domain, measures, groupby, **context):
        return lambda env: (
            env[model]
            .with_context(fill_temporal=True, **context)
            .web_read_group(domain, measures, groupby, lazy=False)
        )

    def pivot(model, domain, measures, rows, cols):
        # the pivot reads every (row prefix, column prefix) pair when it opens
        sections = [rows[:i] for i in range(len(rows) + 1)]
        col_sections = [cols[:i] for i in range(len(cols) + 1)]
        return [read_group(model, domain, measures, r + c) for r in sections for c in col_sections]

    def web_search_read(model, domain, spec):
        return lambda env: env[model].web_search_read(domain, spec, limit=80, count_limit=10001)

    def dashboard(env):
        action = env["smartpm.dashboard"].action_open()
        env["smartpm.dashboard"].browse(action["res_id"]).web_read(
            {
                name: {}
                for name in (
                    "currency_id",
                    "has_sales",
                    "sales_today_amount",
                    "sales_today_count",
                    "sold_month_kwh",
                    "consumed_month_kwh",
                    "meters_offline",
                    "meters_active",
                    "alarms_open",
                    "alarms_theft",
                )
            }
        )

    daily = "smartpm.consumption.daily"
    balance = "smartpm.energy.balance"
    views = {
        "dashboard": [dashboard],
        "consumption pivot (line, transformer x month)": pivot(
            daily, tenants, ["kwh:sum"], ["line_id", "transformer_id"], ["day:month"]
        ),
        "consumption graph (per day)": [web_read_group(daily, tenants, ["kwh:sum"], ["day:day"])],
        "consumption list (first page)": [
            web_search_read(
                daily,
                tenants,
                {
                    "day": {},
                    "meter_id": m2o,
                    "tenant_id": m2o,
                    "transformer_id": m2o,
                    "kwh": {},
                },
            )
        ],
        "top consumers graph (per tenant)": [
            # with the action's context: its 20 biggest tenants
            web_read_group(daily, tenants, ["kwh:sum"], ["tenant_id"], smartpm_top_groups=20)
        ],
        "energy balance list (first page)": [
            web_search_read(
                balance,
                month,
                {
                    "day": {},
                    "transformer_id": m2o,
                    "check_meter_id": m2o,
                    "check_kwh": {},
                    "meters_kwh": {},
                    "loss_kwh": {},
                    "loss_pct": {},
                    "threshold_pct": {},
                    "meter_count": {},
                },
            )
        ],
        "energy balance graph (per day)": [
            web_read_group(balance, month, ["check_kwh:sum", "meters_kwh:sum"], ["day:day"])
        ],
        "energy balance pivot (transformer x month)": pivot(
            balance,
            month,
            ["check_kwh:sum", "meters_kwh:sum", "loss_kwh:sum"],
            ["transformer_id"],
            ["day:month"],
        ),
    }
    for label, calls in views.items():
        values = []
        for _ in range(repeat):
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                t0 = time.perf_counter()
                for call in calls:
                    call(env)
                    env.invalidate_all()
                values.append(time.perf_counter() - t0)
                cr.rollback()
        figures(f"statistics, one month: {label} ({len(calls)} RPC)", values)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--meters", type=int, default=100000)
    p.add_argument("--jobs", type=int, default=1000000)
    p.add_argument("--readings", type=int, default=10000000)
    p.add_argument("--db", default="smartpm_scale")
    p.add_argument(
        "--measure-only",
        action="store_true",
        help="time the database as a previous run left it, no new data",
    )
    args = p.parse_args()
    if not args.measure_only:
        with Timer() as t:
            ensure_db(args.db, fresh=True)
        print(f"[gen] install: {t.elapsed:.1f}s", flush=True)

    import odoo
    from odoo import SUPERUSER_ID, api

    odoo.tools.config.parse_config(["-c", str(CONF), "-d", args.db, "--log-level=warn"])
    registry = odoo.modules.registry.Registry(args.db)
    if not args.measure_only:
        with registry.cursor() as cr:
            first_day = generate(
                api.Environment(cr, SUPERUSER_ID, {}), args.meters, args.jobs, args.readings
            )
        fill_consumption(registry, first_day, dt.date.today() - dt.timedelta(days=1))
    with registry.cursor() as cr:
        cr.execute("SELECT count(*) FROM smartpm_meter WHERE active")
        meters = cr.fetchone()[0]  # what the database holds, whatever --meters says
    measure(registry, meters)


if __name__ == "__main__":
    main()
