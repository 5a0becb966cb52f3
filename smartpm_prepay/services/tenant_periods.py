"""Which tenant held a meter when: the assignment open at a time (smartpm.meter.assignment).

Readings and alarms keep the tenant who held the meter at their time (``tenant_id``, set at
ingest), daily consumption the tenant who held it at the end of the local day: what a
tenant sees in the portal is bounded by their own periods (record rules on ``tenant_id``),
never the previous or the next tenant's. An assignment starts at ``date_start`` included
and ends at ``date_end`` excluded: a reading at the instant of a move is the new tenant's.
When assignments are edited, the rows of the times they cover are set again, in SQL.
"""

# table -> its time column
TIMED_TABLES = {"smartpm_reading": "reading_time", "smartpm_alarm": "meter_time"}


def tenant_at_sql(meter_expr, time_expr):
    """SQL of the tenant whose assignment of meter ``meter_expr`` is open at ``time_expr``
    (NULL when none): a scalar subquery for a SELECT list."""
    return f"""(SELECT a.tenant_id FROM smartpm_meter_assignment a
                 WHERE a.meter_id = {meter_expr} AND a.date_start <= {time_expr}
                   AND (a.date_end IS NULL OR a.date_end > {time_expr})
                 ORDER BY a.date_start DESC, a.id DESC LIMIT 1)"""


def refresh_timed(env, table, meter_ids=None, since=None, ids=None):
    """Set ``tenant_id`` of the rows of ``table`` (readings or alarms) from the assignments,
    for the given meters, from ``since`` (naive UTC) on, or the given row ids; all rows
    when nothing narrows it. Returns how many rows changed."""
    time_col = TIMED_TABLES[table]
    where, params = ["TRUE"], []
    if meter_ids is not None:
        where.append("r.meter_id = ANY(%s)")
        params.append(list(meter_ids))
    if since is not None:
        where.append(f"r.{time_col} >= %s")
        params.append(since)
    if ids is not None:
        where.append("r.id = ANY(%s)")
        params.append(list(ids))
    env.cr.execute(
        f"""
        WITH x AS (
            SELECT r.id, {tenant_at_sql("r.meter_id", "r." + time_col)} AS tenant_id
              FROM {table} r WHERE {" AND ".join(where)}
        )
        UPDATE {table} r SET tenant_id = x.tenant_id FROM x
         WHERE r.id = x.id AND r.tenant_id IS DISTINCT FROM x.tenant_id
        """,
        params,
    )
    return env.cr.rowcount


def refresh_consumption(env, meter_ids, since=None):
    """Set ``tenant_id`` of the meters' daily consumption rows (from the local day holding
    ``since`` on) as the consumption computation does: the tenant holding the meter at the
    end of the day, else the last one who held it during the day."""
    params = {"meters": list(meter_ids), "since": since}
    env.cr.execute(
        """
        WITH b AS (
            SELECT c.id,
                   (c.day::timestamp AT TIME ZONE COALESCE(p.tz, 'UTC')) AT TIME ZONE 'UTC'
                       AS u0,
                   ((c.day + 1)::timestamp AT TIME ZONE COALESCE(p.tz, 'UTC'))
                       AT TIME ZONE 'UTC' AS u1
              FROM smartpm_consumption_daily c
              JOIN res_company co ON co.id = c.company_id
              JOIN res_partner p ON p.id = co.partner_id
             WHERE c.meter_id = ANY(%(meters)s)
        ), x AS (
            SELECT b.id,
                   (SELECT a.tenant_id FROM smartpm_meter_assignment a
                     WHERE a.meter_id = c.meter_id AND a.date_start < b.u1
                       AND (a.date_end IS NULL OR a.date_end > b.u0)
                     ORDER BY (a.date_end IS NULL OR a.date_end >= b.u1) DESC,
                              a.date_start DESC
                     LIMIT 1) AS tenant_id
              FROM b JOIN smartpm_consumption_daily c ON c.id = b.id
             WHERE %(since)s::timestamp IS NULL OR b.u1 > %(since)s::timestamp
        )
        UPDATE smartpm_consumption_daily c SET tenant_id = x.tenant_id FROM x
         WHERE c.id = x.id AND c.tenant_id IS DISTINCT FROM x.tenant_id
        """,
        params,
    )
    return env.cr.rowcount


def refresh_meters(env, meter_ids, since=None):
    """Readings, alarms and daily consumption of the meters from ``since`` on, after their
    assignments changed."""
    meter_ids = list(meter_ids)
    if not meter_ids:
        return
    env.flush_all()
    for table in TIMED_TABLES:
        refresh_timed(env, table, meter_ids=meter_ids, since=since)
    refresh_consumption(env, meter_ids, since=since)
    for model in ("smartpm.reading", "smartpm.alarm", "smartpm.consumption.daily"):
        env[model].invalidate_model(["tenant_id"])
