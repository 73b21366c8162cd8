"""Alerts (one per budget, type and period) and the delivery outbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from jobbudget.storage.sql.types import Exact, Money, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JsonDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("budget_id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(50), nullable=False),
        sa.Column("queue_name", sa.String(100), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("current_spend", Money(), nullable=False),
        sa.Column("budget_amount", Money(), nullable=False),
        sa.Column("utilization", Exact(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("forecast_spend", Money(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=True),
        sa.Column("acknowledged_by", sa.String(100), nullable=True),
        sa.UniqueConstraint("budget_id", "type", "period_start", name="uq_alerts_budget_type_period"),
    )
    op.create_index("ix_alerts_tenant_occurred", "alerts", ["tenant_id", "occurred_at"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(36), nullable=False),
        sa.Column("channel_key", sa.String(64), nullable=False),
        sa.Column("channel_type", sa.String(10), nullable=False),
        sa.Column("channel", JsonDoc, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("digest_id", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_deliveries_alert_id", "deliveries", ["alert_id"])
    op.create_index("ix_deliveries_status_next", "deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_deliveries_channel_sent", "deliveries", ["channel_key", "sent_at"])


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("alerts")
