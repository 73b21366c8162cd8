"""Initial schema: jobs, daily aggregates, budgets, budget spend, cost models, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from jobbudget.storage.sql.types import Exact, Money, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JsonDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TABLES = ("job_costs", "daily_costs", "budgets", "budget_spend", "cost_models", "audit_log", "store_meta")


def upgrade() -> None:
    op.create_table(
        "job_costs",
        sa.Column("tenant_id", sa.String(50), nullable=False),
        sa.Column("job_id", sa.String(200), nullable=False),
        sa.Column("queue_name", sa.String(100), nullable=False),
        sa.Column("job_type", sa.String(100), nullable=False, server_default=""),
        sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="5"),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("cpu_time", Exact(), nullable=False),
        sa.Column("memory_mb_seconds", Exact(), nullable=False),
        sa.Column("payload_bytes", Exact(), nullable=False),
        sa.Column("redis_ops", Exact(), nullable=False),
        sa.Column("network_bytes", Exact(), nullable=False),
        sa.Column("total_cost", Money(), nullable=False),
        sa.Column("cpu_cost", Money(), nullable=False),
        sa.Column("memory_cost", Money(), nullable=False),
        sa.Column("payload_cost", Money(), nullable=False),
        sa.Column("redis_cost", Money(), nullable=False),
        sa.Column("network_cost", Money(), nullable=False),
        sa.Column("base_cost", Money(), nullable=False),
        sa.Column("cost_model_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "job_id", name="pk_job_costs"),
    )
    op.create_index("ix_job_costs_scope_day", "job_costs", ["tenant_id", "queue_name", "day"])
    op.create_table(
        "daily_costs",
        sa.Column("tenant_id", sa.String(50), nullable=False),
        sa.Column("queue_name", sa.String(100), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("total_jobs", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("total_cost", Money(), nullable=False),
        sa.Column("cpu_cost", Money(), nullable=False),
        sa.Column("memory_cost", Money(), nullable=False),
        sa.Column("payload_cost", Money(), nullable=False),
        sa.Column("redis_cost", Money(), nullable=False),
        sa.Column("network_cost", Money(), nullable=False),
        sa.Column("base_cost", Money(), nullable=False),
        sa.Column("avg_job_cost", Money(), nullable=False),
        sa.Column("max_job_cost", Money(), nullable=False),
        sa.Column("min_job_cost", Money(), nullable=False),
        sa.Column("p95_job_cost", Money(), nullable=False),
        sa.Column("stats_stale", sa.Boolean(), nullable=False, server_default="1"),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "queue_name", "date", name="pk_daily_costs"),
    )
    op.create_index("ix_daily_costs_date", "daily_costs", ["date"])
    op.create_table(
        "budgets",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(50), nullable=False),
        sa.Column("queue_name", sa.String(100), nullable=False, server_default=""),
        sa.Column("period_type", sa.String(20), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("recurring", sa.Boolean(), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False, server_default="USD"),
        sa.Column("warning_threshold", Exact(), nullable=False),
        sa.Column("throttle_threshold", Exact(), nullable=False),
        sa.Column("block_threshold", Exact(), nullable=False),
        sa.Column("enforcement_policy", JsonDoc, nullable=False),
        sa.Column("notifications", JsonDoc, nullable=False),
        sa.Column("tags", JsonDoc, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default="1"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False, server_default="system"),
    )
    op.create_index("ix_budgets_tenant_id", "budgets", ["tenant_id"])
    op.create_table(
        "budget_spend",
        sa.Column("budget_id", sa.String(36), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("spend", Money(), nullable=False),
        sa.Column("jobs", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("budget_id", "period_start", name="pk_budget_spend"),
    )
    op.create_table(
        "cost_models",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("model", JsonDoc, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("tenant_id", sa.String(50), nullable=False, server_default=""),
        sa.Column("queue_name", sa.String(100), nullable=False, server_default=""),
        sa.Column("budget_id", sa.String(36), nullable=False, server_default=""),
        sa.Column("actor", sa.String(100), nullable=False, server_default="system"),
        sa.Column("details", JsonDoc, nullable=False),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_table(
        "store_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
