"""A few jobs metered in one statement on PostgreSQL (the fleet's hot path).

A worker meters one job at a time.  Through the general path that is a temporary
table, a ``COPY``, an insert, two upserts and a read: six round trips.  Here it is
one statement in one round trip, its own transaction (autocommit): data-modifying CTEs insert the jobs that are new, fold
them into their day and their budget periods (this connection's shard, see
:data:`.tables.SHARDS`), announce the commit to other processes' change feeds when
asked to, and return the new jobs' keys and the spend now seen of the watched
periods.  The alerts that spend fires are written right after, in a transaction of
their own (each alert exists once: a unique key); one lost between the two (a
crash) or missed because two shards crossed a threshold together is found by the
service's threshold sweep (:meth:`jobbudget.core.alert_planning.AlertPlanner.sweep`).

The statement is the same text for any number of jobs (the jobs travel as one JSON
document, read with ``json_populate_recordset``: exact, since PostgreSQL reads each
value with its column type's own input), so psycopg prepares it once per connection."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from ...domain.extras import encode_extras
from ...domain.records import JobRecord
from .bulk import JOB_COLUMNS, SHARD_SQL, SPEND_CONFLICT, daily_conflict

__all__ = ["SMALL_BATCH", "record_small"]

#: Batches up to this size take this path; larger ones ``COPY``.
SMALL_BATCH = 64

_COSTS = ("total_cost", "cpu_cost", "memory_cost", "payload_cost", "redis_cost", "network_cost", "base_cost",
          "resource_cost")  # fmt: skip


def _statement(notify: bool) -> str:
    columns = ", ".join(JOB_COLUMNS)
    sums = ", ".join(f"sum({c})" for c in _COSTS)
    # a plain CTE runs only if read: the final SELECT reads ``note`` (data-modifying
    # ones always run to completion)
    note = ", note AS (SELECT pg_notify(%s, %s) FROM (SELECT 1 FROM ins LIMIT 1) AS any_new)" if notify else ""
    return (
        "WITH incoming AS (SELECT * FROM json_populate_recordset(NULL::job_costs, %s::json)), "
        f"ins AS (INSERT INTO job_costs ({columns}) SELECT {columns} FROM incoming ORDER BY tenant_id, job_id "
        f"ON CONFLICT (tenant_id, job_id) DO NOTHING RETURNING tenant_id, job_id, queue_name, day, "
        f"{', '.join(_COSTS)}), "
        f"daily AS (INSERT INTO daily_costs (tenant_id, queue_name, date, shard, total_jobs, {', '.join(_COSTS)}, "
        "min_job_cost, max_job_cost, avg_job_cost, p95_job_cost, stats_stale, updated_at) "
        f"SELECT tenant_id, queue_name, day, {SHARD_SQL}, count(*), {sums}, min(total_cost), max(total_cost), "
        "0, 0, true, %s::timestamptz FROM ins GROUP BY tenant_id, queue_name, day ORDER BY 1, 2, 3 "
        f"{daily_conflict()}), "
        "counted AS (SELECT * FROM json_to_recordset(%s::json) "
        "AS k(tenant_id text, job_id text, budget_id text, period_start date)), "
        f"spend AS (INSERT INTO budget_spend (budget_id, period_start, shard, spend, jobs) "
        f"SELECT k.budget_id, k.period_start, {SHARD_SQL}, sum(ins.total_cost), count(*) "
        "FROM ins JOIN counted AS k ON k.tenant_id = ins.tenant_id AND k.job_id = ins.job_id "
        f"GROUP BY k.budget_id, k.period_start ORDER BY 1, 2 {SPEND_CONFLICT} "
        "RETURNING budget_id, period_start, shard, spend)"
        f"{note} "
        "SELECT 'job', tenant_id, job_id, NULL::date, NULL::numeric FROM ins "
        "UNION ALL SELECT 'spend', s.budget_id, NULL, s.period_start, s.spend + COALESCE((SELECT sum(o.spend) "
        "FROM budget_spend AS o WHERE o.budget_id = s.budget_id AND o.period_start = s.period_start "
        "AND o.shard <> s.shard), 0) FROM spend AS s WHERE s.budget_id = ANY(%s::text[])"
        + (" UNION ALL SELECT 'note', NULL, NULL, NULL, NULL FROM note" if notify else "")
    )


_STATEMENTS = {flag: _statement(flag) for flag in (False, True)}


def _params(
    records: Sequence[JobRecord], now: datetime, watch: Collection[str], notify: tuple[str, str] | None
) -> tuple[Any, ...]:
    """The jobs and the periods they count toward as two JSON documents: one
    parameter each to send (adapting a dozen arrays cost more than the statement)."""
    jobs = []
    counted = []
    for r in records:
        m, c = r.metrics, r.cost
        b = c.cost_breakdown
        jobs.append(
            {
                "tenant_id": m.tenant_id, "job_id": m.job_id, "queue_name": m.queue_name, "job_type": m.job_type,
                "priority": m.priority, "ts": r.timestamp.isoformat(), "day": r.day.isoformat(),
                "cpu_time": str(m.cpu_time), "memory_mb_seconds": str(m.memory_mb_seconds),
                "payload_bytes": str(m.payload_bytes), "redis_ops": str(m.redis_ops),
                "network_bytes": str(m.network_bytes), "total_cost": str(c.total_cost), "cpu_cost": str(b.cpu_cost),
                "memory_cost": str(b.memory_cost), "payload_cost": str(b.payload_cost),
                "redis_cost": str(b.redis_cost), "network_cost": str(b.network_cost), "base_cost": str(b.base_cost),
                "resource_cost": str(b.resource_cost), "cost_model_version": c.cost_model_version,
                "extras": encode_extras(m, c),
            }
        )  # fmt: skip
        for key in r.spend_keys:
            counted.append(
                {
                    "tenant_id": m.tenant_id,
                    "job_id": m.job_id,
                    "budget_id": key.budget_id,
                    "period_start": key.period_start.isoformat(),
                }
            )
    # in the order of the placeholders
    return (json.dumps(jobs), now, json.dumps(counted), *(notify or ()), sorted(watch))


def record_small(
    engine: Engine,
    records: Sequence[JobRecord],
    *,
    now: datetime,
    watch: Collection[str],
    notify: tuple[str, str] | None,
) -> tuple[set[tuple[str, str]], dict[tuple[str, date], Decimal]]:
    """Store ``records`` (no key repeated) and commit, in one round trip: the keys
    that were new, and the spend (every shard's) of the changed periods of the
    ``watch`` budgets.  ``notify``: (channel, token) to announce the commit."""
    driver_error: Any = engine.dialect.loaded_dbapi.Error
    try:  # a checkout's own error comes unwrapped from the pool: wrap it as SQLAlchemy would
        pooled = engine.raw_connection()
    except driver_error as exc:
        raise sa_exc.DBAPIError.instance(None, None, exc, driver_error, connection_invalidated=True) from exc
    raw: Any = pooled.driver_connection
    try:
        raw.autocommit = True  # the statement is its own transaction: one round trip
        try:
            with raw.cursor() as cur:
                cur.execute(_STATEMENTS[notify is not None], _params(records, now, watch, notify))
                result = cur.fetchall()
        finally:
            raw.autocommit = False
    except driver_error as exc:  # wrapped as SQLAlchemy wraps its own
        disconnected = engine.dialect.is_disconnect(exc, raw, None)
        if disconnected:
            pooled.invalidate(exc)
        raise sa_exc.DBAPIError.instance(None, None, exc, driver_error, connection_invalidated=disconnected) from exc
    finally:
        pooled.close()
    new: set[tuple[str, str]] = set()
    spend: dict[tuple[str, date], Decimal] = {}
    for kind, first, second, start, amount in result:
        if kind == "job":
            new.add((first, second))
        elif kind == "spend":
            spend[(first, start)] = amount
    return new, spend
