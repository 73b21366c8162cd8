"""Forecast snapshots: each budget period's mid-period forecast and its outcome.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from jobbudget.storage.sql.types import Money, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "forecast_snapshots",
        sa.Column("budget_id", sa.String(36), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("predicted_spend", Money(), nullable=False),
        sa.Column("lower_80", Money(), nullable=False),
        sa.Column("upper_80", Money(), nullable=False),
        sa.Column("lower_95", Money(), nullable=False),
        sa.Column("upper_95", Money(), nullable=False),
        sa.Column("method", sa.String(100), nullable=False),
        sa.Column("actual_spend", Money(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("budget_id", "period_start", name="pk_forecast_snapshots"),
    )


def downgrade() -> None:
    op.drop_table("forecast_snapshots")
