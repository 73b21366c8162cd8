"""Table definitions (SQLAlchemy Core).  Alembic migrations create them."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from ...domain.cost import COMPONENTS
from .types import Exact, Money, UTCDateTime

metadata = MetaData()
#: Concurrent PostgreSQL writers add to ``budget_spend`` and ``daily_costs`` rows of
#: their connection's shard, so they do not queue behind each other's commits.
SHARDS = 16


def _money_columns(*names: str) -> list[Column[Decimal]]:
    return [Column(name, Money, nullable=False) for name in names]


JsonDoc = JSON().with_variant(JSONB(), "postgresql")

#: One row per processed job, unique per tenant; kept ``raw_retention_days``.
job_costs = Table(
    "job_costs",
    metadata,
    Column("tenant_id", String(50), nullable=False),
    Column("job_id", String(200), nullable=False),
    Column("queue_name", String(100), nullable=False),
    Column("job_type", String(100), nullable=False, server_default=""),
    Column("priority", SmallInteger, nullable=False, server_default="5"),
    Column("ts", UTCDateTime, nullable=False),
    Column("day", Date, nullable=False),
    Column("cpu_time", Exact, nullable=False),
    Column("memory_mb_seconds", Exact, nullable=False),
    Column("payload_bytes", Exact, nullable=False),
    Column("redis_ops", Exact, nullable=False),
    Column("network_bytes", Exact, nullable=False),
    *_money_columns("total_cost", *COMPONENTS),
    Column("cost_model_version", Integer, nullable=False),
    #: named resources itemised, QoS, labels, exit state (see :mod:`jobbudget.domain.extras`)
    Column("extras", Text, nullable=False, server_default=""),
    PrimaryKeyConstraint("tenant_id", "job_id", name="pk_job_costs"),
    Index("ix_job_costs_scope_day", "tenant_id", "queue_name", "day"),
)

#: The design document's daily aggregates (plus ``base_cost`` so components add up,
#: and ``stats_stale``: avg and p95 are recomputed exactly from the jobs on read).
daily_costs = Table(
    "daily_costs",
    metadata,
    Column("tenant_id", String(50), nullable=False),
    Column("queue_name", String(100), nullable=False),
    Column("date", Date, nullable=False),
    Column("total_jobs", Integer, nullable=False, server_default="0"),
    *_money_columns("total_cost", *COMPONENTS),
    *_money_columns("avg_job_cost", "max_job_cost", "min_job_cost", "p95_job_cost"),
    Column("stats_stale", Boolean, nullable=False, server_default="1"),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("shard", SmallInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("tenant_id", "queue_name", "date", "shard", name="pk_daily_costs"),
    Index("ix_daily_costs_date", "date"),
)

budgets = Table(
    "budgets",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(50), nullable=False, index=True),
    Column("queue_name", String(100), nullable=False, server_default=""),
    Column("period_type", String(20), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("recurring", Boolean, nullable=False),
    Column("amount", Money, nullable=False),
    Column("currency", String(3), nullable=False, server_default="USD"),
    Column("warning_threshold", Exact, nullable=False),
    Column("throttle_threshold", Exact, nullable=False),
    Column("block_threshold", Exact, nullable=False),
    Column("enforcement_policy", JsonDoc, nullable=False),
    Column("notifications", JsonDoc, nullable=False),
    Column("tags", JsonDoc, nullable=False),
    Column("labels", JsonDoc, nullable=True),  # the jobs' labels it selects (NULL: none)
    Column("active", Boolean, nullable=False, server_default="1"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("created_by", String(100), nullable=False, server_default="system"),
    Column("owner", String(20), nullable=False, server_default="operator"),
)

#: Spend of each budget in each of its periods, kept in the same transaction as the
#: jobs that caused it: enforcement state is rebuilt from here at start.  A period's
#: spend is the sum of its shards (see :data:`SHARDS`).
budget_spend = Table(
    "budget_spend",
    metadata,
    Column("budget_id", String(36), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("spend", Money, nullable=False),
    Column("jobs", Integer, nullable=False, server_default="0"),
    Column("shard", SmallInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("budget_id", "period_start", "shard", name="pk_budget_spend"),
)

cost_models = Table(
    "cost_models",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("model", JsonDoc, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(100), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("kind", String(40), nullable=False),
    Column("tenant_id", String(50), nullable=False, server_default=""),
    Column("queue_name", String(100), nullable=False, server_default=""),
    Column("budget_id", String(36), nullable=False, server_default=""),
    Column("actor", String(100), nullable=False, server_default="system"),
    Column("details", JsonDoc, nullable=False),
)

#: Small key/value facts about the store, such as how far raw jobs were pruned.
store_meta = Table(
    "store_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

#: The forecast each budget period had at its midpoint, and (once the period has
#: closed) what was really spent: the record behind the forecast-accuracy metric.
forecast_snapshots = Table(
    "forecast_snapshots",
    metadata,
    Column("budget_id", String(36), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("as_of", Date, nullable=False),
    *_money_columns("predicted_spend", "lower_80", "upper_80", "lower_95", "upper_95"),
    Column("method", String(100), nullable=False),
    Column("actual_spend", Money, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    PrimaryKeyConstraint("budget_id", "period_start", name="pk_forecast_snapshots"),
)

#: Alert events, exactly one per (budget, type, period).
alerts = Table(
    "alerts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("budget_id", String(36), nullable=False),
    Column("tenant_id", String(50), nullable=False),
    Column("queue_name", String(100), nullable=False),
    Column("type", String(20), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    *_money_columns("current_spend", "budget_amount"),
    Column("utilization", Exact, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("forecast_spend", Money, nullable=True),
    Column("message", Text, nullable=False),
    Column("acknowledged_at", UTCDateTime, nullable=True),
    Column("acknowledged_by", String(100), nullable=True),
    UniqueConstraint("budget_id", "type", "period_start", name="uq_alerts_budget_type_period"),
    Index("ix_alerts_tenant_occurred", "tenant_id", "occurred_at"),
)

#: The outbox: one row per (alert, channel), written in the alert's transaction and
#: worked off by the dispatcher.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", String(36), nullable=False, index=True),
    Column("channel_key", String(64), nullable=False),
    Column("channel_type", String(10), nullable=False),
    Column("channel", JsonDoc, nullable=False),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("claimed_until", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("digest_id", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_deliveries_status_next", "status", "next_attempt_at"),
    Index("ix_deliveries_channel_sent", "channel_key", "sent_at"),
)

#: API keys of the HTTP API: only the SHA-256 digest of each key is stored.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("role", String(10), nullable=False),
    Column("tenant_id", String(50), nullable=True),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    UniqueConstraint("prefix", name="uq_api_keys_prefix"),
    UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
)

#: Open reservations (the database-shared hot state): one row per budget period held.
reservations = Table(
    "reservations",
    metadata,
    Column("id", String(64), nullable=False),
    Column("budget_id", String(36), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("tenant_id", String(50), nullable=False),
    Column("amount", Money, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("id", "budget_id", "period_start", name="pk_reservations"),
    Index("ix_reservations_period", "budget_id", "period_start", "expires_at"),
)

#: The organisation tree: each node (a tenant, team or organisation) and its parent.
tenant_tree = Table(
    "tenant_tree",
    metadata,
    Column("node", String(50), primary_key=True),
    Column("parent", String(50), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: Credits and debits after the fact (refunds, corrections), counted toward the
#: budget periods in ``keys`` like jobs; one row per adjustment id (a job's refund
#: has an id derived from the job, so it happens once).
adjustments = Table(
    "adjustments",
    metadata,
    Column("id", String(300), primary_key=True),
    Column("kind", String(10), nullable=False),
    Column("tenant_id", String(50), nullable=False),
    Column("queue_name", String(100), nullable=False),
    Column("job_id", String(200), nullable=False, server_default=""),
    Column("day", Date, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("amount", Money, nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("keys", JsonDoc, nullable=False),
    Column("labels", JsonDoc, nullable=True),
    Index("ix_adjustments_tenant_day", "tenant_id", "day"),
)

#: Temporary raises of a budget's amount, with who approved them and why.
budget_raises = Table(
    "budget_raises",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("budget_id", String(36), nullable=False, index=True),
    Column("amount", Money, nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("approver", String(500), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(100), nullable=False),
)
