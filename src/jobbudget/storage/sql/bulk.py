"""Fast paths for the hot write: storing a batch of jobs with its aggregates.

SQLAlchemy's per-value type processing costs more than the database work for
batches of 1,000 jobs, so these functions hand plain tuples to the driver:
``executemany`` on SQLite (inside ``BEGIN IMMEDIATE``, so the existence check and
the insert see the same data) and ``COPY`` into a temporary table followed by one
``INSERT ... ON CONFLICT DO NOTHING RETURNING`` on PostgreSQL.  Values are converted
exactly as the column types in :mod:`.types` would convert them.  Redelivered jobs
are read back with one cached query per chunk size (:func:`fetch_jobs`).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime
from decimal import Context, Decimal
from typing import Any

from sqlalchemy import Connection, TextualSelect, func, select, text
from sqlalchemy import exc as sa_exc

from ...domain.aggregation import daily_deltas, spend_deltas
from ...domain.cost import JobCost
from ...domain.extras import encode_extras
from ...domain.money import to_nanos
from ...domain.records import JobRecord, SpendKey
from . import rows
from .tables import SHARDS, budget_spend, job_costs
from .types import Money

JOB_COLUMNS = (
    "tenant_id", "job_id", "queue_name", "job_type", "priority", "ts", "day",
    "cpu_time", "memory_mb_seconds", "payload_bytes", "redis_ops", "network_bytes",
    "total_cost", "cpu_cost", "memory_cost", "payload_cost", "redis_cost", "network_cost", "base_cost",
    "resource_cost", "cost_model_version", "extras",
)  # fmt: skip
_SUMS = ("total_jobs", "total_cost", "cpu_cost", "memory_cost", "payload_cost", "redis_cost", "network_cost",
         "base_cost", "resource_cost")  # fmt: skip
DAILY_COLUMNS = ("tenant_id", "queue_name", "date", *_SUMS, "min_job_cost", "max_job_cost",
                 "avg_job_cost", "p95_job_cost", "stats_stale", "updated_at")  # fmt: skip
_KEYS_PER_QUERY = 400
#: The shard of the writing connection (PostgreSQL): see :data:`.tables.SHARDS`.
SHARD_SQL = f"(pg_backend_pid() %% {SHARDS})::int2"  # %% : a driver-level statement


def _sqlite_ts(value: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC (fixed width, so text order is time order)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


_BILLION = Decimal(10**9)
_SCALE = Context(prec=40).multiply  # exact for every cost (at most MAX_JOB_COST, 9 places)


def _cost_nanos(value: Decimal) -> int:
    """A job's cost, which the engine rounded to nano-dollars, in integer nano-dollars:
    the fast form of :func:`to_nanos` for the bulk path."""
    return int(_SCALE(value, _BILLION))


def _job_tuple(r: JobRecord, sqlite: bool) -> tuple[Any, ...]:
    m, c = r.metrics, r.cost
    b = c.cost_breakdown
    if sqlite:  # one explicit tuple: this runs once per stored job
        n = _cost_nanos
        return (
            m.tenant_id, m.job_id, m.queue_name, m.job_type, m.priority, _sqlite_ts(r.timestamp), r.day.isoformat(),
            str(m.cpu_time), str(m.memory_mb_seconds), str(m.payload_bytes), str(m.redis_ops), str(m.network_bytes),
            n(c.total_cost), n(b.cpu_cost) if b.cpu_cost else 0, n(b.memory_cost) if b.memory_cost else 0,
            n(b.payload_cost) if b.payload_cost else 0, n(b.redis_cost) if b.redis_cost else 0,
            n(b.network_cost) if b.network_cost else 0, n(b.base_cost) if b.base_cost else 0,
            n(b.resource_cost) if b.resource_cost else 0, c.cost_model_version, encode_extras(m, c),
        )  # fmt: skip
    return (m.tenant_id, m.job_id, m.queue_name, m.job_type, m.priority, r.timestamp, r.day,
            m.cpu_time, m.memory_mb_seconds, m.payload_bytes, m.redis_ops, m.network_bytes,
            c.total_cost, b.cpu_cost, b.memory_cost, b.payload_cost, b.redis_cost, b.network_cost, b.base_cost,
            b.resource_cost, c.cost_model_version, encode_extras(m, c))  # fmt: skip


def insert_jobs(conn: Connection, records: Sequence[JobRecord]) -> set[tuple[str, str]]:
    """Insert the records whose (tenant_id, job_id) is new; return those keys.
    ``records`` must not repeat a key."""
    if conn.dialect.name == "sqlite":
        return _insert_jobs_sqlite(conn, records)
    return _insert_jobs_postgres(conn, records)


def _insert_jobs_sqlite(conn: Connection, records: Sequence[JobRecord]) -> set[tuple[str, str]]:
    keys = [(r.metrics.tenant_id, r.metrics.job_id) for r in records]
    existing: set[tuple[str, str]] = set()
    for i in range(0, len(keys), _KEYS_PER_QUERY):
        chunk = keys[i : i + _KEYS_PER_QUERY]
        values = ",".join("(?,?)" for _ in chunk)
        # A join with a VALUES list searches the primary key once per key (a row-value
        # IN list would make SQLite scan the whole index).
        found = conn.exec_driver_sql(
            f"WITH v(t, j) AS (VALUES {values}) SELECT job_costs.tenant_id, job_costs.job_id "
            "FROM v JOIN job_costs ON job_costs.tenant_id = v.t AND job_costs.job_id = v.j",
            tuple(part for key in chunk for part in key),
        )
        existing.update((t, j) for t, j in found)
    new = [r for r, k in zip(records, keys, strict=True) if k not in existing]
    if new:
        placeholders = ",".join("?" for _ in JOB_COLUMNS)
        conn.exec_driver_sql(
            f"INSERT INTO job_costs ({','.join(JOB_COLUMNS)}) VALUES ({placeholders})",
            [_job_tuple(r, True) for r in new],
        )
    return {k for k in keys if k not in existing}


def _insert_jobs_postgres(conn: Connection, records: Sequence[JobRecord]) -> set[tuple[str, str]]:
    raw: Any = conn.connection.driver_connection
    driver_error: Any = conn.dialect.loaded_dbapi.Error  # psycopg.Error
    try:
        return _copy_jobs_postgres(raw, records)
    except driver_error as exc:  # the raw cursor's errors, wrapped as SQLAlchemy wraps its own
        raise sa_exc.DBAPIError.instance(
            None, None, exc, driver_error, connection_invalidated=conn.dialect.is_disconnect(exc, raw, None)
        ) from exc


def _copy_jobs_postgres(raw: Any, records: Sequence[JobRecord]) -> set[tuple[str, str]]:
    columns = ",".join(JOB_COLUMNS)
    with raw.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS jobbudget_incoming "
            "(LIKE job_costs INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cur.copy(f"COPY jobbudget_incoming ({columns}) FROM STDIN") as copy:
            for r in records:
                copy.write_row(_job_tuple(r, False))
        cur.execute(
            f"INSERT INTO job_costs ({columns}) SELECT {columns} FROM jobbudget_incoming "
            "ORDER BY tenant_id, job_id ON CONFLICT (tenant_id, job_id) DO NOTHING RETURNING tenant_id, job_id"
        )
        return {(t, j) for t, j in cur.fetchall()}


def add_daily(conn: Connection, new: Sequence[JobRecord], now: datetime) -> None:
    """Fold the new jobs into their (tenant, queue, day) rows; avg and p95 are marked
    stale and recomputed exactly from the jobs when read."""
    sqlite = conn.dialect.name == "sqlite"
    least, greatest = ("min", "max") if sqlite else ("LEAST", "GREATEST")
    rows = []
    stamp: Any = _sqlite_ts(now) if sqlite else now
    for (tenant, queue, day), d in sorted(daily_deltas(new).items()):
        money = (d.total_cost, d.cpu_cost, d.memory_cost, d.payload_cost, d.redis_cost, d.network_cost,
                 d.base_cost, d.resource_cost, d.min_job_cost, d.max_job_cost)  # fmt: skip
        if sqlite:
            rows.append((tenant, queue, day.isoformat(), d.total_jobs, *(to_nanos(x) for x in money), 0, 0, 1, stamp))
        else:
            rows.append((tenant, queue, day, d.total_jobs, *money, Decimal(0), Decimal(0), True, stamp))
    _upsert(conn, "daily_costs", DAILY_COLUMNS, _DAILY_TYPES, rows, daily_conflict(least, greatest))


def daily_conflict(least: str = "LEAST", greatest: str = "GREATEST") -> str:
    """How a day's new jobs fold into its row of this shard."""
    updates = ", ".join(f"{c} = daily_costs.{c} + excluded.{c}" for c in _SUMS)
    return (
        f"ON CONFLICT (tenant_id, queue_name, date, shard) DO UPDATE SET {updates}, "
        f"min_job_cost = {least}(daily_costs.min_job_cost, excluded.min_job_cost), "
        f"max_job_cost = {greatest}(daily_costs.max_job_cost, excluded.max_job_cost), "
        "stats_stale = excluded.stats_stale, updated_at = excluded.updated_at"
    )


SPEND_CONFLICT = (
    "ON CONFLICT (budget_id, period_start, shard) DO UPDATE SET "
    "spend = budget_spend.spend + excluded.spend, jobs = budget_spend.jobs + excluded.jobs"
)


_DAILY_TYPES = ("text", "text", "date", "integer", *("numeric",) * 12, "boolean", "timestamptz")


def _upsert(
    conn: Connection, table: str, columns: Sequence[str], pg_types: Sequence[str], rows: list[Any], conflict: str
) -> None:
    """``INSERT ... ON CONFLICT`` into this connection's shard: executemany on SQLite
    (shard 0); on PostgreSQL one statement over ``unnest`` of one array per column
    (one round trip, one plan)."""
    names = ",".join(columns)
    if conn.dialect.name == "sqlite":
        marks = ",".join("?" for _ in columns)
        conn.exec_driver_sql(f"INSERT INTO {table} ({names}, shard) VALUES ({marks}, 0) {conflict}", rows)
        return
    arrays = ", ".join(f"%s::{t}[]" for t in pg_types)
    conn.exec_driver_sql(
        f"INSERT INTO {table} ({names}, shard) SELECT u.*, {SHARD_SQL} FROM unnest({arrays}) AS u {conflict}",
        tuple(
            _numeric_array(col) if t == "numeric" else list(col)
            for t, col in zip(pg_types, zip(*rows, strict=True), strict=True)
        ),
    )


def _numeric_array(values: Sequence[Decimal]) -> str:
    # A numeric[] literal: much cheaper than adapting each Decimal separately.
    return "{" + ",".join(map(str, values)) + "}"


def add_spend(
    conn: Connection, new: Sequence[JobRecord], *, watch: Collection[str] = ()
) -> dict[tuple[str, date], Decimal]:
    """Add the new jobs' costs to each budget period they count toward; return the
    resulting spend (all processes' jobs included) of the periods of the ``watch``
    budgets that changed, read in the same transaction."""
    deltas = spend_deltas(new)
    if not deltas:
        return {}
    sqlite = conn.dialect.name == "sqlite"
    rows = [
        (k.budget_id, k.period_start.isoformat() if sqlite else k.period_start, to_nanos(s) if sqlite else s, n)
        for k, (s, n) in sorted(deltas.items(), key=lambda kv: (kv[0].budget_id, kv[0].period_start))
    ]
    upsert_spend(conn, rows)
    changed = {(k.budget_id, k.period_start) for k in deltas if k.budget_id in watch}
    if not changed:
        return {}
    found = spend_sums(conn, sorted({budget_id for budget_id, _ in changed}))
    return {
        (k.budget_id, k.period_start): spend for k, spend in found.items() if (k.budget_id, k.period_start) in changed
    }


def upsert_spend(conn: Connection, rows: list[Any]) -> None:
    """Add (budget_id, period_start, spend, jobs) rows to this connection's shard."""
    _upsert(conn, "budget_spend", ("budget_id", "period_start", "spend", "jobs"),
            ("text", "date", "numeric", "integer"), rows, SPEND_CONFLICT)  # fmt: skip


def spend_sums(conn: Connection, budget_ids: Sequence[str]) -> dict[SpendKey, Decimal]:
    """The spend of every period of ``budget_ids``: the sum of its shards."""
    c = budget_spend.c
    out: dict[SpendKey, Decimal] = {}
    for i in range(0, len(budget_ids), _KEYS_PER_QUERY):
        query = (
            select(c.budget_id, c.period_start, func.sum(c.spend, type_=Money))
            .where(c.budget_id.in_(budget_ids[i : i + _KEYS_PER_QUERY]))
            .group_by(c.budget_id, c.period_start)
        )
        for budget_id, start, spend in conn.execute(query):
            out[SpendKey(budget_id, start)] = spend
    return out


@functools.cache
def _jobs_by_key(count: int) -> TextualSelect:
    """The jobs of ``count`` keys bound as ``t0, j0, t1, j1, ...``, built once per size
    (SQLAlchemy does not cache a VALUES construct, and building and compiling one cost
    more than the query).  Joining a VALUES list lets both databases search the primary
    key once per key."""
    wanted = ", ".join(f"(:t{n}, :j{n})" for n in range(count))
    names = ", ".join(f"job_costs.{c.name}" for c in job_costs.c)
    return text(
        f"WITH wanted(t, j) AS (VALUES {wanted}) SELECT {names} FROM wanted "
        "JOIN job_costs ON job_costs.tenant_id = wanted.t AND job_costs.job_id = wanted.j"
    ).columns(*job_costs.c)


def fetch_jobs(conn: Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], JobCost]:
    """The stored jobs of ``keys`` (tenant_id, job_id), marked as duplicates."""
    out: dict[tuple[str, str], JobCost] = {}
    for i in range(0, len(keys), _KEYS_PER_QUERY):
        chunk = keys[i : i + _KEYS_PER_QUERY]
        params = {f"{part}{n}": value for n, key in enumerate(chunk) for part, value in zip("tj", key, strict=True)}
        for row in conn.execute(_jobs_by_key(len(chunk)), params).mappings():
            out[(row["tenant_id"], row["job_id"])] = rows.job_cost_from_row(row, duplicate=True)
    return out
