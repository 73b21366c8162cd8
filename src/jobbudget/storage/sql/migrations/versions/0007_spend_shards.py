"""Spend and daily aggregates in shards: concurrent writers update different rows.

A budget period's spend (and a scope's day) was one row that every metered job
updated, so on PostgreSQL concurrent jobs of one budget queued behind each other's
commit.  Each row now carries a ``shard`` (the writing connection's, 0 to 15 on
PostgreSQL, always 0 on SQLite, which has one writer at a time); readers add the
shards up.  Existing rows become shard 0.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_KEYS = {
    "budget_spend": ("pk_budget_spend", ["budget_id", "period_start"]),
    "daily_costs": ("pk_daily_costs", ["tenant_id", "queue_name", "date"]),
}


def upgrade() -> None:
    for table, (name, columns) in _KEYS.items():
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("shard", sa.SmallInteger(), nullable=False, server_default="0"))
            batch.drop_constraint(name, type_="primary")
            batch.create_primary_key(name, [*columns, "shard"])


def downgrade() -> None:
    conn = op.get_bind()
    for table, (name, columns) in _KEYS.items():
        if table == "budget_spend":
            conn.execute(
                sa.text(
                    "UPDATE budget_spend SET spend = (SELECT SUM(s.spend) FROM budget_spend s WHERE "
                    "s.budget_id = budget_spend.budget_id AND s.period_start = budget_spend.period_start), "
                    "jobs = (SELECT SUM(s.jobs) FROM budget_spend s WHERE s.budget_id = budget_spend.budget_id "
                    "AND s.period_start = budget_spend.period_start) WHERE shard = 0"
                )
            )
        else:
            _fold_daily(conn)
        conn.execute(sa.text(f"DELETE FROM {table} WHERE shard <> 0"))
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(name, type_="primary")
            batch.create_primary_key(name, columns)
            batch.drop_column("shard")


def _fold_daily(conn: sa.Connection) -> None:
    """Add every shard of a day into its shard 0 row (created where missing)."""
    sums = ("total_jobs", "total_cost", "cpu_cost", "memory_cost", "payload_cost", "redis_cost", "network_cost",
            "base_cost")  # fmt: skip
    match = "s.tenant_id = d.tenant_id AND s.queue_name = d.queue_name AND s.date = d.date"
    conn.execute(
        sa.text(
            "INSERT INTO daily_costs (tenant_id, queue_name, date, shard, updated_at, stats_stale, "
            + ", ".join(sums)
            + ", avg_job_cost, max_job_cost, min_job_cost, p95_job_cost) "
            "SELECT tenant_id, queue_name, date, 0, MAX(updated_at), 1 = 1, "
            + ", ".join("0" for _ in sums)
            + ", 0, MAX(max_job_cost), MIN(min_job_cost), 0 FROM daily_costs d WHERE NOT EXISTS "
            "(SELECT 1 FROM daily_costs z WHERE z.tenant_id = d.tenant_id AND z.queue_name = d.queue_name "
            "AND z.date = d.date AND z.shard = 0) GROUP BY tenant_id, queue_name, date"
        )
    )
    sets = ", ".join(f"{c} = (SELECT SUM(s.{c}) FROM daily_costs s WHERE {match.replace('d.', 'daily_costs.')})"
                     for c in sums)  # fmt: skip
    extremes = (
        f"max_job_cost = (SELECT MAX(s.max_job_cost) FROM daily_costs s WHERE {match.replace('d.', 'daily_costs.')}), "
        f"min_job_cost = (SELECT MIN(s.min_job_cost) FROM daily_costs s WHERE {match.replace('d.', 'daily_costs.')})"
    )
    conn.execute(sa.text(f"UPDATE daily_costs SET {sets}, {extremes}, stats_stale = 1 = 1 WHERE shard = 0"))
