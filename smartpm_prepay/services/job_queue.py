"""The meter job queue: notify, claim, lease, retry and back-off, report, requeue, purge,
long-poll.

Plain functions taking an ``env``; the models' RPC methods check access and call them.
Every state change is one short SQL statement guarded by the lease, so two bridges can never
both execute or both report the same job. What a finished job means for its meter is in
``job_results``; readings and events are stored by ``ingest``.
"""

import hashlib
import json
import logging
import select
import signal
import time
from datetime import timedelta

import psycopg2
from psycopg2 import sql as pgsql

from odoo import fields
from odoo.exceptions import UserError
from odoo.service import server as odoo_server
from odoo.sql_db import connection_info_for

from . import engine, ingest, job_results

_logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "smartpm_job"
BACKOFF_BASE_S = 10
BACKOFF_MAX_S = 3600
MAX_LEASE_S = 3600
MAX_CLAIM = 500


class LeaseLost(UserError):
    """A report from a bridge that does not hold the job's lease: nothing was changed."""


def backoff_seconds(attempt, base=BACKOFF_BASE_S):
    """Exponential back-off after the ``attempt``-th failed attempt (1-based)."""
    return min(base * 2 ** max(attempt - 1, 0), BACKOFF_MAX_S)


def _backoff_base(env):
    # a system parameter so an owner (or a test) can tune it without a code change
    value = env["ir.config_parameter"].sudo().get_param("smartpm_prepay.job_backoff_base_s")
    try:
        return float(value) if value else BACKOFF_BASE_S
    except ValueError:
        return BACKOFF_BASE_S


def _now():
    return fields.Datetime.now()


def notify(env):
    # Delivered by PostgreSQL at commit only, so a woken bridge always finds the job.
    env.cr.execute(f"NOTIFY {NOTIFY_CHANNEL}")


# After an Odoo restart a lease may have lapsed only because its bridge could not reach Odoo
# to renew it: the bridge is alive and still on the meter. A bridge holding jobs retries an
# unreachable Odoo every `_extend_every / 2` at most (meter_bridge/service.py, _mark_down:
# 2.5 s at the default 15 s lease), so its renewal (or late report) reaches the restarted
# Odoo within that, plus its own request on a loaded machine. Until then an idle bridge's
# claim would win the race (it waits on the same registry load) and run the job twice. So a
# lease that lapsed before this server had been serving for RESTART_GRACE_S seconds may be
# claimed by another bridge only RESTART_GRACE_S after the later of its lapse and the
# server's start; until then the meter counts as busy. A lease that lapses while the server
# is up is claimable at its end as before: a bridge killed under a serving Odoo is retried
# at its lease's end (issue 21 §4: within 20 s), with no grace.
RESTART_GRACE_S = 5
# When this registry started serving (set in smartpm.meter.job's _register_hook), and the
# transaction setting through which the queue's SQL sees it (_set_serving_since): unset, no
# job gets the grace.
SERVING_SINCE_ATTR = "smartpm_serving_since"
_SERVING_SINCE_GUC = "smartpm.serving_since"
_SERVING_SINCE_SQL = f"NULLIF(current_setting('{_SERVING_SINCE_GUC}', true), '')::timestamp"


def _claimable_at_sql(alias):
    """When the claimed job ``alias`` may go to another bridge: the end of its lease, or, for
    a lease that lapsed before the server had served for RESTART_GRACE_S, the grace's end."""
    grace = f"make_interval(secs => {RESTART_GRACE_S})"
    return f"""
        (CASE WHEN {alias}.lease_until < {_SERVING_SINCE_SQL} + {grace}
              THEN GREATEST({alias}.lease_until, {_SERVING_SINCE_SQL}) + {grace}
              ELSE {alias}.lease_until END)
    """


def mark_serving(registry):
    """This registry serves from now: leases that lapsed before get RESTART_GRACE_S."""
    setattr(registry, SERVING_SINCE_ATTR, fields.Datetime.now())


def _set_serving_since(cr, registry, local=True):
    """Let this transaction's (or, ``local`` False, this connection's) queue SQL see when the
    registry started serving."""
    since = getattr(registry, SERVING_SINCE_ATTR, None)
    cr.execute(
        "SELECT set_config(%s, %s, %s)",
        (_SERVING_SINCE_GUC, fields.Datetime.to_string(since) if since else "", local),
    )


_CLAIMABLE_AT_J = _claimable_at_sql("j")
_CLAIMABLE_AT_B = _claimable_at_sql("b")
_CLAIMABLE_AT_E = _claimable_at_sql("e")
_CLAIMABLE_AT_ROW = _claimable_at_sql("smartpm_meter_job")


# A job the bridge may take now: pending and due, or claimed under an expired lease (past
# the grace after a restart).
_DUE_SQL = f"""
    j.state IN ('pending', 'claimed')
    AND ((j.state = 'pending' AND j.next_attempt_at <= (clock_timestamp() at time zone 'utc'))
         OR (j.state = 'claimed'
             AND {_CLAIMABLE_AT_J} < (clock_timestamp() at time zone 'utc')
             AND j.attempt_count < j.max_attempts))
"""
# The meter has a job under a live lease (or in the grace after a restart): a bridge is (or
# may be) talking to it.
_BUSY_SQL = f"""
    EXISTS (SELECT 1 FROM smartpm_meter_job b
             WHERE b.meter_id = j.meter_id AND b.state = 'claimed'
               AND {_CLAIMABLE_AT_B} >= (clock_timestamp() at time zone 'utc'))
"""
_BUSY_METERS_SQL = f"""
    SELECT b.meter_id FROM smartpm_meter_job b
     WHERE b.state = 'claimed'
       AND {_CLAIMABLE_AT_B} >= (clock_timestamp() at time zone 'utc')
"""
CLAIM_SCAN_CHUNK = 500
# wait_for_jobs: a job claim() would hand out now. Not a due job of a busy meter (one under a
# live lease): that would wake the bridge for an empty claim, again and again until it ended.
_CLAIMABLE_SQL = f"""
    SELECT 1 FROM smartpm_meter_job j
     WHERE {_DUE_SQL}
       AND j.meter_id NOT IN ({_BUSY_METERS_SQL})
     LIMIT 1
"""


# Invocation counters reserved per claimed HLS-GMAC job: more than one job's association
# uses (a report of a higher counter raises the meter's stored one further).
INVOCATION_COUNTER_RESERVE = 1000
# DLMS invocation counters are unsigned 32-bit (4 octets of the security header).
INVOCATION_COUNTER_MAX = 2**32 - 1


# The credit lane (docs/job-protocol.md, "The credit lane"): the job types a bridge's lane
# claim asks for. Equal to meter_bridge.service.CREDIT_JOB_TYPES (a test ties them); the
# partial index smartpm_meter_job_lane_idx (models/meter_job.py) names them too.
LANE_JOB_TYPES = frozenset({"add_credit", "clear_credit", "take_emergency_credit"})
# The claim's `options` (an XML-RPC struct): what each key may be.
CLAIM_OPTIONS = {
    # only meters whose first due job is of these types (the credit lane)
    "job_types": "a non-empty list of job type names",
    # meters the bridge still runs a thread on (a stuck job whose lease it let lapse)
    "busy_meter_ids": "a list of meter ids (integers)",
    # "per_job" (each job's meter carries its profile's whole object_map, as always) or
    # "per_claim" (each distinct map once per claim: see _object_maps_per_claim)
    "object_maps": "per_job or per_claim",
}
OBJECT_MAPS_VALUES = ("per_job", "per_claim")
MAX_BUSY_METER_IDS = 10000


def _claim_options(env, options):
    """The claim's options, checked: a dict of CLAIM_OPTIONS keys, or None. Refused with a
    UserError naming the bad key or value, before anything is claimed."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise UserError(
            env._("claim: options must be a dict (struct), not %s", type(options).__name__)
        )
    unknown = sorted(str(key) for key in options if key not in CLAIM_OPTIONS)
    if unknown:
        raise UserError(
            env._(
                "claim: unknown option %(key)r (known: %(known)s)",
                key=unknown[0],
                known=", ".join(sorted(CLAIM_OPTIONS)),
            )
        )
    checked = {}
    if options.get("job_types") is not None:
        checked["job_types"] = _claim_job_types(env, options["job_types"])
    if options.get("busy_meter_ids") is not None:
        checked["busy_meter_ids"] = _claim_busy_meter_ids(env, options["busy_meter_ids"])
    if "object_maps" in options:
        value = options["object_maps"]
        if not isinstance(value, str) or value not in OBJECT_MAPS_VALUES:
            raise UserError(
                env._(
                    "claim: option %(key)s takes %(values)s, not %(value)s",
                    key="object_maps",
                    values=", ".join(OBJECT_MAPS_VALUES),
                    value=repr(value)[:40],
                )
            )
        checked["object_maps"] = value
    return checked


def _claim_job_types(env, job_types):
    known = {value for value, _label in env["smartpm.meter.job"]._fields["job_type"].selection}
    if not isinstance(job_types, (list, tuple)) or not job_types or len(job_types) > len(known):
        raise UserError(
            env._(
                "claim: job_types must be a non-empty list of at most %s job type names",
                len(known),
            )
        )
    for job_type in job_types:
        if not isinstance(job_type, str) or job_type not in known:
            raise UserError(env._("claim: job_types: %s is not a job type", repr(job_type)[:40]))
    return sorted(set(job_types))


def _claim_busy_meter_ids(env, meter_ids):
    if not isinstance(meter_ids, (list, tuple)) or len(meter_ids) > MAX_BUSY_METER_IDS:
        raise UserError(
            env._(
                "claim: busy_meter_ids must be a list of at most %s meter ids",
                MAX_BUSY_METER_IDS,
            )
        )
    for meter_id in meter_ids:
        if isinstance(meter_id, bool) or not isinstance(meter_id, int):
            raise UserError(
                env._("claim: busy_meter_ids: %s is not a meter id", repr(meter_id)[:40])
            )
    return set(meter_ids)


def claim(env, bridge_id, limit, lease_seconds, options=None):
    """Lease up to ``limit`` due jobs to ``bridge_id``, at most one per meter and none for a
    meter that already has a job under a live lease (a meter takes one association at a
    time); return them as dicts for the bridge.

    ``options`` (_claim_options): ``job_types``, hand out only meters whose first due job
    (the one a claim without it would hand out) is of these types: the credit lane, which
    never overtakes a meter's earlier job; ``busy_meter_ids``, meters the bridge still runs
    a thread on: none of them is handed out (one association per meter, even when the
    bridge let a stuck job's lease lapse).

    Why not one statement with SKIP LOCKED: a statement's snapshot predates its locks. If
    another claimer commits the claim of meter M's job J1 after our snapshot was taken, we
    still see M free, and neither SKIP LOCKED on job rows (M's J2 is locked by no one), nor
    locking M's row in the same statement (the other claimer's lock is gone at its commit;
    under READ COMMITTED the EXISTS test is not re-evaluated for the newer row), nor
    pg_try_advisory_xact_lock(meter_id) (released at commit too, and taken for rows the
    LIMIT then drops) stops us from claiming J2 as well. So:
      1. scan the due jobs in (priority, id) order for meters with no live lease, in
         chunks until ``limit`` meters are found (a hint, no locks);
      2. lock those meters' rows FOR NO KEY UPDATE SKIP LOCKED (the weakest row lock that
         excludes another claimer; inserting jobs of the meter is not blocked): a meter
         another claimer holds is skipped, and any claim of a meter we now hold was
         committed before we got its lock;
      3. claim the first due job of each locked meter still without a live lease (jobs
         locked FOR NO KEY UPDATE SKIP LOCKED) and stamp the meter row (job_claimed_at).
         The meter locks last until commit, so no one claims for these meters meanwhile.
    Under READ COMMITTED step 3 is a new statement with a new snapshot that sees those
    committed claims. Odoo's cursors are REPEATABLE READ (one snapshot for the whole
    request): there the stamp does it. A claimer whose snapshot predates the commit of a
    claim of M fails to lock M in step 2 ("could not serialize access due to concurrent
    update", M was updated after its snapshot): that chunk is given up (savepoint) and the
    claim hands out what it locked before, maybe nothing; the bridge asks again with a new
    snapshot. Two claimers meeting on a job row in step 3 fail the request, which Odoo
    retries.

    ``options``: a dict of CLAIM_OPTIONS (None: the defaults); anything else is refused
    before any job is touched.
    """
    options = _claim_options(env, options)
    if not bridge_id or not isinstance(bridge_id, str):
        raise UserError(env._("claim: bridge_id must be a non-empty string"))
    limit = max(1, min(int(limit), MAX_CLAIM))
    lease_seconds = max(1, min(int(lease_seconds), MAX_LEASE_S))
    job_types = options.get("job_types")
    env.flush_all()
    _check_bridge_id_is_own(env, bridge_id)
    _fail_expired_last_attempts(env)
    meter_ids = _lock_free_meters(
        env.cr, limit, job_types=job_types, skip_meter_ids=options.get("busy_meter_ids")
    )
    if not meter_ids:
        return []
    # job_types: the head is checked again under the meters' locks (a job of the meter
    # queued or retried since the scan may come first now): the meter is then left alone
    head_type = "WHERE h.job_type = ANY(%s)" if job_types else ""
    env.cr.execute(
        f"""
        WITH head AS (
            -- per meter: its first due job, read from the (meter_id, priority, id) index
            SELECT h.id
              FROM unnest(%s::int[]) AS meter(id)
              CROSS JOIN LATERAL (
                  SELECT j.id, j.job_type FROM smartpm_meter_job j
                   WHERE j.meter_id = meter.id AND {_DUE_SQL} AND NOT {_BUSY_SQL}
                   ORDER BY j.priority, j.id
                   LIMIT 1
              ) h
              {head_type}
        ), due AS (
            SELECT j.id FROM smartpm_meter_job j JOIN head ON head.id = j.id
               FOR NO KEY UPDATE OF j SKIP LOCKED
        ), claimed AS (
            -- a job under an expired lease is taken back here, cron or not
            UPDATE smartpm_meter_job j
               SET state = 'claimed', bridge_id = %s, bridge_user_id = %s,
                   lease_until = (clock_timestamp() at time zone 'utc') + make_interval(secs => %s),
                   attempt_count = COALESCE(j.attempt_count, 0) + 1,
                   error = CASE WHEN j.state = 'claimed'
                       THEN COALESCE(j.error || E'\n', '') || 'lease expired without a report from '
                            || COALESCE(j.bridge_id, '?')
                       ELSE j.error END,
                   -- the counters this job may use: above the block the claim reserves
                   -- (touched, below) and below the next claim's
                   invocation_counter_limit = COALESCE(m.invocation_counter, 0)
                       + CASE WHEN m.auth = 'hls_gmac' THEN 2 * %s ELSE %s END,
                   date_claimed = (clock_timestamp() at time zone 'utc'),
                   write_date = (clock_timestamp() at time zone 'utc'), write_uid = %s
              FROM due, smartpm_meter m WHERE j.id = due.id AND m.id = j.meter_id
            RETURNING j.id, j.meter_id
        ), touched AS (
            -- HLS-GMAC: the job's association starts above a block of invocation counters
            -- reserved here, so a bridge that dies before reporting the counters it used
            -- never makes the next association a replay the meter refuses
            UPDATE smartpm_meter m
               SET job_claimed_at = (clock_timestamp() at time zone 'utc'),
                   invocation_counter = CASE WHEN m.auth = 'hls_gmac'
                       THEN COALESCE(m.invocation_counter, 0) + %s
                       ELSE m.invocation_counter END
             WHERE m.id = ANY(ARRAY(SELECT meter_id FROM claimed))
        )
        SELECT id, meter_id FROM claimed
        """,
        (
            meter_ids,
            *([job_types] if job_types else []),
            bridge_id,
            env.uid,
            lease_seconds,
            INVOCATION_COUNTER_RESERVE,
            INVOCATION_COUNTER_RESERVE,
            env.uid,
            INVOCATION_COUNTER_RESERVE,
        ),
    )
    rows = env.cr.fetchall()
    env["smartpm.meter"].browse([row[1] for row in rows]).invalidate_recordset(
        ["job_claimed_at", "invocation_counter"]
    )
    ids = [row[0] for row in rows]
    jobs = env["smartpm.meter.job"].sudo().browse(ids)
    jobs.invalidate_recordset()
    # priority: the bridge runs the jobs waiting for its workers credit first, then by it.
    # lease_seconds: what was granted (clamped); the bridge sends no credit token after it.
    # invocation_counter_limit: the highest counter the job may use (a report above it is
    # refused), as a decimal string: XML-RPC carries no integer above 2**31 - 1.
    profiles = {}  # one object map per profile for the whole claim
    out = [
        dict(
            job._prepare_bridge_values(profiles),
            priority=job.priority,
            lease_seconds=lease_seconds,
            lease_until=fields.Datetime.to_string(job.lease_until),
            invocation_counter_limit=str(job.invocation_counter_limit),
        )
        for job in jobs.sorted(lambda j: (j.priority, j.id))
    ]
    if options.get("object_maps") == "per_claim":
        _object_maps_per_claim(out)
    return out


def object_map_key(raw):
    """A stable key of an object map's content: equal maps, equal keys (whatever profile
    holds them); a profile edited gets a new key."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def _object_maps_per_claim(jobs):
    """Each distinct object map once in the claim's answer (docs/job-protocol.md): every
    job whose meter has a map gets ``meter.object_map_key``; the first job of each key (in
    the answer's order) keeps ``meter.object_map``, the later ones carry the key alone.
    Odoo walks every node of an RPC's answer (odoo.service.model._traverse_containers) and
    a map is ~200 of them; the bridge parses each map once. Jobs of one profile share one
    map dict in the claim (``profiles``): its key is computed once."""
    keys = {}  # id(map dict) -> key
    sent = set()
    for job in jobs:
        meter = job["meter"]
        raw = meter.get("object_map")
        if raw is None:
            continue
        key = keys.get(id(raw))
        if key is None:
            key = keys[id(raw)] = object_map_key(raw)
        meter["object_map_key"] = key
        if key in sent:
            del meter["object_map"]
        else:
            sent.add(key)


def _check_bridge_id_is_own(env, bridge_id):
    """A bridge id belongs to the user whose bridge holds jobs under it: another Bridge API
    user may not claim under it (docs/job-protocol.md)."""
    env.cr.execute(
        """
        SELECT 1 FROM smartpm_meter_job
         WHERE state = 'claimed' AND bridge_id = %s
           AND bridge_user_id IS DISTINCT FROM %s
         LIMIT 1
        """,
        (bridge_id, env.uid),
    )
    if env.cr.fetchone():
        raise UserError(
            env._(
                "claim: bridge id %(bridge)r holds jobs of another Bridge API user; give "
                "each bridge its own id",
                bridge=bridge_id,
            )
        )


def _fail_expired_last_attempts(env):
    """Jobs on their last attempt whose lease expired: failed here, as requeue_expired()
    does, so that no job stays claimed for ever when the cron does not run. (Those with
    attempts left are taken back by the claim itself, _DUE_SQL.) Rows another claimer
    holds are skipped; a newer commit than our snapshot is left for the next claim. A lease
    in the grace after a restart is not expired yet: its bridge's late report is awaited.
    claim() runs this first: the setting made here (for the transaction, outside the
    savepoint) is what its later statements' grace reads."""
    _set_serving_since(env.cr, env.registry)
    try:
        with env.cr.savepoint(flush=False):
            env.cr.execute(
                f"""
                UPDATE smartpm_meter_job j
                   SET state = 'failed',
                       error = COALESCE(j.error || E'\n', '')
                               || 'lease expired without a report from '
                               || COALESCE(j.bridge_id, '?'),
                       lease_until = NULL,
                       date_done = (clock_timestamp() at time zone 'utc')
                 WHERE j.id IN (
                       SELECT e.id FROM smartpm_meter_job e
                        WHERE e.state = 'claimed'
                          AND {_CLAIMABLE_AT_E} < (clock_timestamp() at time zone 'utc')
                          AND e.attempt_count >= e.max_attempts
                          FOR NO KEY UPDATE SKIP LOCKED)
                RETURNING j.id
                """,
                log_exceptions=False,
            )
            ids = [row[0] for row in env.cr.fetchall()]
    except psycopg2.errors.SerializationFailure:
        return
    if ids:
        jobs = engine.as_engine(env["smartpm.meter.job"]).browse(ids)
        jobs.invalidate_recordset()
        jobs._on_final_failure()


def _lock_free_meters(cr, limit, job_types=None, skip_meter_ids=None):
    """Steps 1 and 2 of claim(): lock up to ``limit`` meters that have a due job and no job
    under a live lease, in the order of their first due job; return their ids.

    job_types: only meters whose first due job is of these types, found by scanning the due
    jobs of these types alone (for the lane's types, the smartpm_meter_job_lane_idx partial
    index: a lane claim does not walk the read backlog). skip_meter_ids: never these."""
    # The busy meters are read once into a hash (NOT IN, hashed subplan): the scan then
    # skips jobs of busy meters for a hash probe each; usually it stops after `limit`.
    # JIT off: the row estimate of the volatile clock_timestamp() filter inflates the cost
    # past jit_above_cost, and compiling took longer than the scan itself.
    # Sort off: read the due jobs in order from the (priority, id) partial index and stop
    # at the chunk. Right after a burst of new jobs (the daily billing reads) the statistics
    # still count few pending ones, and the planner would sort every pending job instead.
    # The figures behind these choices: bench/RESULTS.md, "claim() planner settings".
    cr.execute("SELECT set_config('jit', 'off', true), set_config('enable_sort', 'off', true)")
    locked = _scan_and_lock(cr, limit, job_types, skip_meter_ids)
    # not in a `finally`: after an error the transaction is aborted and rolled back,
    # which undoes the SET LOCAL anyway
    cr.execute("SET LOCAL enable_sort TO DEFAULT")
    return locked


# _scan_and_lock with job_types: of the due jobs of these types (chunk), which is its
# meter's first due job (the (meter_id, priority, id) index, a few rows per meter)
_LANE_SCAN_SQL = f"""
    SELECT c.priority, c.id, c.meter_id,
           c.id = (SELECT j.id FROM smartpm_meter_job j
                    WHERE j.meter_id = c.meter_id AND {_DUE_SQL}
                    ORDER BY j.priority, j.id LIMIT 1) AS is_head
      FROM (SELECT j.priority, j.id, j.meter_id FROM smartpm_meter_job j
             WHERE {_DUE_SQL} AND j.job_type = ANY(%(job_types)s) {{keyset}}
               AND j.meter_id NOT IN ({_BUSY_METERS_SQL})
             ORDER BY j.priority, j.id
             LIMIT %(chunk)s) c
     ORDER BY c.priority, c.id
"""
_SCAN_SQL = f"""
    SELECT j.priority, j.id, j.meter_id, true FROM smartpm_meter_job j
     WHERE {_DUE_SQL} {{keyset}}
       AND j.meter_id NOT IN ({_BUSY_METERS_SQL})
     ORDER BY j.priority, j.id
     LIMIT %(chunk)s
"""


def _scan_and_lock(cr, limit, job_types=None, skip_meter_ids=None):
    locked, tried = [], set(skip_meter_ids or ())
    after = None  # keyset position (priority, id) in the due-jobs index
    scan = _LANE_SCAN_SQL if job_types else _SCAN_SQL
    while len(locked) < limit:
        keyset = "AND (j.priority, j.id) > (%(after_priority)s, %(after_id)s)" if after else ""
        cr.execute(
            scan.format(keyset=keyset),
            {
                "job_types": list(job_types or ()),
                "chunk": CLAIM_SCAN_CHUNK,
                "after_priority": after and after[0],
                "after_id": after and after[1],
            },
        )
        rows = cr.fetchall()
        if not rows:
            break
        after = rows[-1][:2]
        fresh = []
        for _priority, _job_id, meter_id, is_head in rows:
            if meter_id not in tried:
                tried.add(meter_id)  # a meter whose head is not of job_types: not this claim
                if is_head:
                    fresh.append(meter_id)
        if fresh:
            try:
                with cr.savepoint(flush=False):
                    cr.execute(
                        """
                        SELECT m.id FROM unnest(%s::int[]) WITH ORDINALITY AS f(id, n)
                          JOIN smartpm_meter m ON m.id = f.id
                         ORDER BY f.n
                         LIMIT %s
                           FOR NO KEY UPDATE OF m SKIP LOCKED
                        """,
                        (fresh, limit - len(locked)),
                        log_exceptions=False,
                    )
                    locked += [row[0] for row in cr.fetchall()]
            except psycopg2.errors.SerializationFailure:
                # A concurrent claim of one of these meters committed after this request's
                # snapshot (see claim()). Hand out what is locked so far and let the bridge
                # ask again with a new snapshot: cheaper than failing the request, which
                # Odoo retries after a random sleep of up to 2 s, with an ERROR in its log.
                break
        if len(rows) < CLAIM_SCAN_CHUNK or after[0] is None:
            break  # the end, or the NULL-priority tail (sorted last; no keyset through it)
    return locked


# The claim a report or a renewal names is still the job's last one, its lease lapsed
# (the bridge could not reach Odoo: an Odoo restart, a network cut) and no one claimed the job
# since: still `claimed` under the lapsed lease (no claim or cron has run), or put back to
# pending by the lease-expiry cron (requeue_expired keeps the lapsed lease_until and the
# bridge id for this: a pending job has a lease_until only then). A claim since has moved
# attempt_count on (and the bridge id, for another bridge); release() clears the bridge id; a
# report ends the lease (lease_until NULL). The attempt must be named: it tells the claim.
_LAPSED_SQL = """
    (j.state = 'claimed' OR (j.state = 'pending' AND j.lease_until IS NOT NULL))
"""
_LIVE_SQL = """
    (j.state = 'claimed' AND j.lease_until >= (clock_timestamp() at time zone 'utc'))
"""


def _lock_held_job(env, job_id, bridge_id, attempt=None):
    """Lock the job row; refuse unless ``bridge_id`` (under this user) holds it: a live
    lease, or the claim of ``attempt`` whose lease lapsed with no claim since; and, when the
    report says which attempt it is of, the job is still on that attempt."""
    if attempt is not None and (isinstance(attempt, bool) or not isinstance(attempt, int)):
        raise UserError(env._("report: the attempt of job %s must be an integer", job_id))
    env.flush_all()
    env.cr.execute(
        f"""
        SELECT id FROM smartpm_meter_job j
         WHERE id = %s AND bridge_id = %s AND bridge_user_id = %s
           AND ({_LIVE_SQL} OR (%s::int IS NOT NULL AND attempt_count = %s AND {_LAPSED_SQL}))
           FOR NO KEY UPDATE
        """,
        (int(job_id), bridge_id, env.uid, attempt, attempt),
    )
    if not env.cr.fetchone():
        raise LeaseLost(
            f"job {job_id}: bridge {bridge_id!r} does not hold its lease (expired and "
            "claimed again, reassigned or already reported); the report was ignored"
        )
    job = env["smartpm.meter.job"].sudo().browse(int(job_id))
    job.invalidate_recordset()
    _check_attempt(job, attempt)
    return job


def _check_attempt(job, attempt):
    """A report of an earlier claim of the job (its lease ran out and it was claimed again
    under the same bridge id: two bridge processes configured with one id, say) must not
    settle the claim running now: refused by the attempt the claim handed out."""
    if attempt is not None and attempt != job.attempt_count:
        raise LeaseLost(
            f"job {job.id}: the report is of attempt {attempt}, the job is on attempt "
            f"{job.attempt_count}; the report was ignored"
        )


def _notify_if_meters_have_more(env, jobs):
    """The meters are free again (claim() gives one job per meter at a time): wake waiting
    bridges if one has another job, or they sleep until their long-poll times out."""
    env.cr.execute(
        """
        SELECT 1 FROM smartpm_meter_job
         WHERE meter_id = ANY(%s) AND state = 'pending' AND id != ALL(%s) LIMIT 1
        """,
        (jobs.meter_id.ids, jobs.ids),
    )
    if env.cr.fetchone():
        notify(env)


def complete(env, job_id, bridge_id, result, attempt=None):
    if not isinstance(result, dict):
        raise UserError(env._("complete: result must be a JSON object"))
    job = _lock_held_job(env, job_id, bridge_id, attempt)
    _complete_locked(job, result)
    _notify_if_meters_have_more(env, job)
    return True


def _complete_locked(job, result, readings_out=None):
    counter = _check_result(job, result)
    job.write(
        {
            "state": "done",
            "result": result,
            "error": False,
            "date_done": _now(),
            "lease_until": False,
        }
    )
    job_results.apply_result(job, result, readings_out, counter)


def _keep_invocation_counter(meter, counter):
    # HLS-GMAC: only ever raise the stored counter (reports can come late or twice)
    if isinstance(counter, int) and counter > (meter.invocation_counter or 0):
        meter.write({"invocation_counter": counter})


def _checked_counter(env, counter):
    """An HLS-GMAC invocation counter from a bridge: an integer, or its decimal string (XML-RPC
    carries no integer above 2**31 - 1), within uint32; None when absent."""
    if counter is None:
        return None
    if isinstance(counter, str) and counter.isascii() and counter.isdigit():
        counter = int(counter)
    if isinstance(counter, bool) or not isinstance(counter, int):
        raise UserError(env._("invocation_counter must be an integer, not %r", str(counter)[:40]))
    if not 0 <= counter <= INVOCATION_COUNTER_MAX:
        raise UserError(
            env._(
                "invocation_counter %(counter)s is outside 0..%(max)s (uint32)",
                counter=counter,
                max=INVOCATION_COUNTER_MAX,
            )
        )
    return counter


def _job_counter(job, counter):
    """The checked counter of a report on ``job``: refused above the block its claim
    reserved, which would lock every later association of the meter out."""
    counter = _checked_counter(job.env, counter)
    limit = job.sudo().invocation_counter_limit
    if counter is not None and limit and counter > limit:
        raise UserError(
            job.env._(
                "job %(job)s (meter %(meter)s): invocation counter %(counter)s "
                "is above the %(limit)s reserved for it; the report was refused",
                job=job.id,
                meter=job.meter_id.serial_number,
                counter=counter,
                limit=limit,
            )
        )
    return counter


def _check_result(job, result):
    """Refuse (UserError, before anything is written) a result that speaks for another meter
    than the job's, or carries a counter outside the job's reserved block. Returns the
    result's checked counter."""
    counter = _job_counter(job, result.get("invocation_counter"))
    meter = job.meter_id
    for key in ("readings", "events"):
        items = result.get(key) or []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise UserError(
                job.env._("job %(job)s: %(key)s must be a list of objects", job=job.id, key=key)
            )
        for item in items:
            other = [
                str(item[k])
                for k in ("meter_id", "serial_number", "meter")
                if item.get(k) not in (None, False, "")
                and str(item[k]) not in (str(meter.id), meter.serial_number)
            ]
            if other:
                raise UserError(
                    job.env._(
                        "job %(job)s (meter %(meter)s): its result names another "
                        "meter (%(other)s); the report was refused",
                        job=job.id,
                        meter=meter.serial_number,
                        other=other[0][:40],
                    )
                )
    return counter


def fail(env, job_id, bridge_id, error, retryable=True, invocation_counter=None, attempt=None):
    """``invocation_counter``: the last HLS-GMAC counter the failed job used (the bridge
    sends it when the job got as far as the association); kept like a result's, since the
    meter refuses any association that starts at or below a counter it has seen."""
    job = _lock_held_job(env, job_id, bridge_id, attempt)
    answer = _fail_locked(job, error, retryable, _job_counter(job, invocation_counter))
    _notify_if_meters_have_more(env, job)
    return answer


def _fail_locked(job, error, retryable=True, invocation_counter=None):
    _keep_invocation_counter(job.meter_id.sudo(), invocation_counter)
    error = str(error or "unknown error")[:4000]
    if retryable and job.attempt_count < job.max_attempts:
        delay = backoff_seconds(job.attempt_count, _backoff_base(job.env))
        next_at = _now() + timedelta(seconds=delay)
        job.write(
            {"state": "pending", "error": error, "next_attempt_at": next_at, "lease_until": False}
        )
    else:
        job.write({"state": "failed", "error": error, "lease_until": False, "date_done": _now()})
        job._on_final_failure()
    return {"state": job.state, "next_attempt_at": fields.Datetime.to_string(job.next_attempt_at)}


def extend_lease(env, job_ids, bridge_id, lease_seconds, attempts=None):
    """Renew the leases ``bridge_id`` holds among ``job_ids``; return the ids renewed.

    ``attempts``: the claim's ``attempt_count`` of each job, in the order of ``job_ids``
    (None where unknown). A renewal naming its attempt is refused when the job has moved on
    to another claim (two bridge processes under one id); and it re-takes a lease that
    lapsed with no claim since (the bridge could not reach Odoo for a while): the job is
    its own again (``claimed``), as if the lease had never lapsed."""
    lease_seconds = max(1, min(int(lease_seconds), MAX_LEASE_S))
    ids = [int(i) for i in job_ids or []]
    if not ids:
        return []
    attempts = list(attempts or [])
    if len(attempts) != len(ids):
        attempts = [None] * len(ids)
    attempts = [
        a if isinstance(a, int) and not isinstance(a, bool) and a >= 0 else None for a in attempts
    ]
    env.flush_all()
    env.cr.execute(
        f"""
        UPDATE smartpm_meter_job j
           SET state = 'claimed',
               lease_until = (clock_timestamp() at time zone 'utc') + make_interval(secs => %s)
          FROM unnest(%s::int[], %s::int[]) AS r(id, attempt)
         WHERE j.id = r.id AND j.bridge_id = %s AND j.bridge_user_id = %s
           AND (({_LIVE_SQL} AND (r.attempt IS NULL OR j.attempt_count = r.attempt))
                OR (j.attempt_count = r.attempt AND {_LAPSED_SQL}))
        RETURNING j.id
        """,
        (lease_seconds, ids, attempts, bridge_id, env.uid),
    )
    held = sorted(row[0] for row in env.cr.fetchall())
    env["smartpm.meter.job"].browse(held).invalidate_recordset()
    return held


def release(env, job_ids, bridge_id):
    """Give back jobs a stopping bridge claimed but did not start: no attempt is spent."""
    ids = [int(i) for i in job_ids or []]
    if not ids:
        return []
    env.cr.execute(
        """
        UPDATE smartpm_meter_job
           SET state = 'pending', bridge_id = NULL, lease_until = NULL,
               attempt_count = GREATEST(attempt_count - 1, 0),
               next_attempt_at = (clock_timestamp() at time zone 'utc')
         WHERE id = ANY(%s) AND state = 'claimed' AND bridge_id = %s AND bridge_user_id = %s
        RETURNING id
        """,
        (ids, bridge_id, env.uid),
    )
    released = sorted(row[0] for row in env.cr.fetchall())
    env["smartpm.meter.job"].browse(released).invalidate_recordset()
    if released:
        notify(env)
    return released


def cancel(env, job_ids, never_claimed=False, expired=False):
    """Cancel jobs no bridge holds; the guard in SQL keeps a concurrent claim() safe.
    ``never_claimed``: only jobs no bridge ever claimed (no attempt spent). ``expired``:
    also jobs still claimed under a lease that has passed (their bridge is gone; a late
    report of theirs is refused as for any lost lease)."""
    env.flush_all()
    states = "state IN ('pending', 'failed')"
    if expired:
        states = (
            "(state IN ('pending', 'failed') OR (state = 'claimed'"
            " AND lease_until < (clock_timestamp() at time zone 'utc')))"
        )
    env.cr.execute(
        f"""
        UPDATE smartpm_meter_job
           SET state = 'cancelled', date_done = (clock_timestamp() at time zone 'utc'),
               lease_until = NULL
         WHERE id = ANY(%s) AND {states}
           {"AND COALESCE(attempt_count, 0) = 0" if never_claimed else ""}
        RETURNING id
        """,
        ([int(i) for i in job_ids],),
    )
    ids = [row[0] for row in env.cr.fetchall()]
    env["smartpm.meter.job"].browse(ids).invalidate_recordset()
    return ids


def requeue_expired(env):
    """Cron: jobs whose bridge died. Retry them, or fail them after their last attempt. Not
    those in the grace after a restart (their bridge's renewal is awaited)."""
    _set_serving_since(env.cr, env.registry)
    env.cr.execute(
        f"""
        UPDATE smartpm_meter_job
           SET state = CASE WHEN attempt_count < max_attempts THEN 'pending' ELSE 'failed' END,
               error = COALESCE(error || E'\\n', '') || 'lease expired without a report from '
                       || COALESCE(bridge_id, '?'),
               -- requeued: the lapsed lease's end and its bridge stay, so that this
               -- bridge's late report (or renewal) of this claim is still taken as long as
               -- no one claims the job again (_LAPSED_SQL); failed: no lease left
               lease_until = CASE WHEN attempt_count < max_attempts THEN lease_until END,
               next_attempt_at = (clock_timestamp() at time zone 'utc'),
               date_done = CASE WHEN attempt_count < max_attempts THEN NULL
                                ELSE (clock_timestamp() at time zone 'utc') END
         WHERE state = 'claimed'
           AND {_CLAIMABLE_AT_ROW} < (clock_timestamp() at time zone 'utc')
        RETURNING id, state
        """
    )
    rows = env.cr.fetchall()
    jobs = env["smartpm.meter.job"].sudo().browse([r[0] for r in rows])
    jobs.invalidate_recordset()
    jobs.filtered(lambda j: j.state == "failed")._on_final_failure()
    return len(rows)


PURGE_CHUNK = 20000


def purge_finished(env, days, limit=PURGE_CHUNK):
    """Delete up to ``limit`` finished jobs older than ``days``; return how many. Jobs a
    credit purchase or a reading task refers to, and clear_credit jobs, are kept; readings
    lose their job link."""
    env.flush_all()
    env.cr.execute(
        """
        DELETE FROM smartpm_meter_job WHERE id IN (
            SELECT j.id FROM smartpm_meter_job j
             WHERE j.state IN ('done', 'failed', 'cancelled')
               AND COALESCE(j.date_done, j.write_date)
                   < (now() at time zone 'utc') - make_interval(days => %s)
               AND j.task_id IS NULL
               AND j.job_type != 'clear_credit'
               AND j.id NOT IN (SELECT p.job_id FROM smartpm_credit_purchase p
                                 WHERE p.job_id IS NOT NULL
                                UNION ALL
                                SELECT p.reconnect_job_id FROM smartpm_credit_purchase p
                                 WHERE p.reconnect_job_id IS NOT NULL
                                UNION ALL
                                SELECT p.check_job_id FROM smartpm_credit_purchase p
                                 WHERE p.check_job_id IS NOT NULL)
             LIMIT %s)
        """,
        (int(days), int(limit)),
    )
    purged = env.cr.rowcount
    env["smartpm.meter.job"].invalidate_model()
    env["smartpm.reading"].invalidate_model(["job_id"])
    if purged:
        _logger.info("purged %s finished meter jobs older than %s days", purged, days)
    return purged


def wait_for_jobs(env, timeout):
    """Long-poll: return True as soon as a job may be due (a NOTIFY, or the earliest live
    lease running out: its job is claimable again), False after ``timeout`` seconds or when
    the server is shutting down."""
    timeout = max(0.0, min(float(timeout), 30.0))
    env.cr.execute("SELECT set_config('jit', 'off', true)")  # see _lock_free_meters
    _set_serving_since(env.cr, env.registry)
    env.cr.execute(_CLAIMABLE_SQL)
    if env.cr.fetchone() or not timeout:
        return bool(env.cr.rowcount)
    # A job whose bridge died is due again when its lease runs out; no NOTIFY says so. An
    # idle bridge waking then takes it over within a short lease, not a long-poll later.
    expiry = _seconds_to_first_lease_end(env.cr)
    wake_on_expiry = expiry is not None and expiry < timeout
    if wake_on_expiry:
        timeout = expiry + LEASE_END_SLACK_S
    # A dedicated autocommit connection: LISTEN on Odoo's transactional cursor would only
    # see notifications after this request's transaction ends.
    _name, params = connection_info_for(env.cr.dbname)
    conn = psycopg2.connect(**params)
    try:
        conn.autocommit = True
        with conn.cursor() as cr:
            cr.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(NOTIFY_CHANNEL)))
            # Once more, now that we listen: a job committed after this request's snapshot
            # (taken at its first query) but before the LISTEN sent its NOTIFY to no one,
            # and would have waited out the whole timeout.
            cr.execute("SET jit = off")
            _set_serving_since(cr, env.registry, local=False)
            cr.execute(_CLAIMABLE_SQL)
            if cr.fetchone():
                return True
        readable = _wait_readable(conn, timeout)
    finally:
        conn.close()
    return readable or (wake_on_expiry and not server_stopping())


# seconds after a lease's end at which a long-poll wakes: a claim then finds it expired
LEASE_END_SLACK_S = 0.05
# a long-poll looks at the server's shutdown this often: Odoo waits 1 s for its request
# threads when stopping, then the interpreter waits for every non-daemon one to end
SHUTDOWN_CHECK_S = 0.25


# when the first job held by a bridge may be claimed again (see _seconds_to_first_lease_end)
_FIRST_LEASE_END_SQL = f"""
    SELECT EXTRACT(EPOCH FROM MIN({_CLAIMABLE_AT_J}) - (clock_timestamp() at time zone 'utc'))
      FROM smartpm_meter_job j
     WHERE j.state = 'claimed' AND j.attempt_count < j.max_attempts
       AND {_CLAIMABLE_AT_J} >= (clock_timestamp() at time zone 'utc')
"""


def _seconds_to_first_lease_end(cr):
    """Seconds until the first job with attempts left held by a bridge may be claimed again
    (its live lease ends, or the grace after a restart), or None."""
    cr.execute(_FIRST_LEASE_END_SQL)
    seconds = cr.fetchone()[0]
    return None if seconds is None else max(0.0, float(seconds))


def _wait_readable(conn, timeout):
    """select() on ``conn`` for up to ``timeout`` seconds, in slices, so that a shutting-down
    server ends the wait at once: True when a notification came."""
    end = time.monotonic() + timeout
    while not server_stopping():
        left = end - time.monotonic()
        if left <= 0:
            return False
        if select.select([conn], [], [], min(left, SHUTDOWN_CHECK_S))[0]:
            return True
    return False


def server_stopping():
    """Whether this Odoo process is shutting down: a long request (the long-poll) must end
    then, or it holds the stop up for its whole wait.

    Threaded server (``--workers=0``): it counts the SIGINT/SIGTERM it received. Prefork
    worker: its SIGINT handler is the Worker's bound method, which sets ``alive`` False
    (also when the worker is to recycle itself after this request: ending early is fine).
    """
    if getattr(odoo_server.server, "quit_signals_received", 0):
        return True
    worker = getattr(signal.getsignal(signal.SIGINT), "__self__", None)
    return isinstance(worker, odoo_server.Worker) and not worker.alive


def _lock_held_jobs(env, job_ids, bridge_id):
    """Lock the jobs ``bridge_id`` holds a live lease on, among ``job_ids``; return their ids."""
    env.flush_all()
    env.cr.execute(
        """
        SELECT id FROM smartpm_meter_job
         WHERE id = ANY(%s) AND state = 'claimed' AND bridge_id = %s AND bridge_user_id = %s
           AND lease_until >= (clock_timestamp() at time zone 'utc')
         ORDER BY id
           FOR NO KEY UPDATE
        """,
        (list(job_ids), bridge_id, env.uid),
    )
    return {row[0] for row in env.cr.fetchall()}


def _valid_report(report):
    if not isinstance(report, dict) or not isinstance(report.get("job_id"), int):
        return False
    attempt = report.get("attempt")
    if attempt is not None and (isinstance(attempt, bool) or not isinstance(attempt, int)):
        return False
    return "result" not in report or isinstance(report["result"], dict)


def _attempts_match(env, reports):
    """Every report that names its attempt is of the attempt its job is on."""
    named = {r["job_id"]: r["attempt"] for r in reports if r.get("attempt") is not None}
    if not named:
        return True
    jobs = env["smartpm.meter.job"].sudo().browse(list(named))
    return all(job.attempt_count == named[job.id] for job in jobs)


def report_many(env, bridge_id, reports):
    """Several complete/fail reports in one call: one RPC per batch instead of per job.

    Each report is ``{"job_id", "result"}`` (done) or ``{"job_id", "error", "retryable"}``,
    with the claim's ``attempt`` (the job's ``attempt_count`` in the claim) where the bridge
    sends it: a report of an earlier attempt is refused.
    Answers, in order: ``{"job_id", "ok", ...}``; a refused report (lost lease, bad shape)
    changes nothing and does not undo the others. The whole batch is applied at once (one
    lock, one fetch, one write per table); if any report is refused on the way, the batch
    is undone and applied again one report per savepoint, which isolates the refusal.
    """
    if not isinstance(reports, list) or len(reports) > MAX_CLAIM:
        raise UserError(env._("report: a list of at most %s reports is expected", MAX_CLAIM))
    if reports and all(_valid_report(r) for r in reports):
        ids = [r["job_id"] for r in reports]
        if (
            len(set(ids)) == len(ids)
            and _lock_held_jobs(env, ids, bridge_id) == set(ids)
            and _attempts_match(env, reports)
        ):
            try:
                with env.cr.savepoint():
                    return _report_batch(env, reports)
            except UserError:
                env.invalidate_all()
    return [_report_one(env, bridge_id, report) for report in reports]


def _report_batch(env, reports):
    """Apply reports on jobs already locked for this bridge (see report_many)."""
    jobs = env["smartpm.meter.job"].sudo().browse([r["job_id"] for r in reports])
    jobs.invalidate_recordset()
    jobs.meter_id.invalidate_recordset()
    readings, answers = [], []
    for job, report in zip(jobs, reports, strict=True):
        if "result" in report:
            _complete_locked(job, report["result"], readings)
            answers.append({"job_id": job.id, "ok": True, "state": "done"})
        else:
            answer = _fail_locked(
                job,
                report.get("error"),
                report.get("retryable", True),
                _job_counter(job, report.get("invocation_counter")),
            )
            answers.append({"job_id": job.id, "ok": True, **answer})
    if readings:
        ingest.ingest(env, readings, [])
    env.flush_all()
    _notify_if_meters_have_more(env, jobs)
    return answers


def _report_one(env, bridge_id, report):
    job_id = report.get("job_id") if isinstance(report, dict) else None
    try:
        with env.cr.savepoint():
            if not isinstance(job_id, int):
                raise UserError(env._("report: every report needs an integer job_id"))
            attempt = report.get("attempt")
            if attempt is not None and not _valid_report(report):
                raise UserError(env._("report: the attempt of job %s must be an integer", job_id))
            if "result" in report:
                complete(env, job_id, bridge_id, report["result"], attempt)
                return {"job_id": job_id, "ok": True, "state": "done"}
            answer = fail(
                env,
                job_id,
                bridge_id,
                report.get("error"),
                report.get("retryable", True),
                report.get("invocation_counter"),
                attempt,
            )
            return {"job_id": job_id, "ok": True, **answer}
    except UserError as exc:
        env.invalidate_all()
        _keep_counter_of_refused(env, job_id, report)
        return {"job_id": job_id, "ok": False, "refused": True, "error": str(exc)}


def _keep_counter_of_refused(env, job_id, report):
    """A refused report (lease lost) still tells which HLS-GMAC counters the meter saw:
    keep them, or the meter refuses the next association as a replay. Only from the user
    whose bridge last held the job, and within the block its claim reserved."""
    result = report.get("result") if isinstance(report.get("result"), dict) else {}
    counter = report.get("invocation_counter", result.get("invocation_counter"))
    if not isinstance(job_id, int) or counter is None:
        return
    job = env["smartpm.meter.job"].sudo().browse(job_id).exists()
    if not job or job.bridge_user_id.id != env.uid:
        return
    try:
        counter = _job_counter(job, counter)
    except UserError:
        return
    _keep_invocation_counter(job.meter_id, counter)
