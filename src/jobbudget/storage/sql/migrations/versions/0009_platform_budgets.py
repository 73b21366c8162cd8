"""Budgets for platforms: the organisation tree, budgets selecting job labels,
adjustments (refunds, credits, debits) and temporary raises.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from jobbudget.storage.sql.types import Money, UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("budgets") as batch:
        batch.add_column(sa.Column("labels", _JSON, nullable=True))
    op.create_table(
        "tenant_tree",
        sa.Column("node", sa.String(50), primary_key=True),
        sa.Column("parent", sa.String(50), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "adjustments",
        sa.Column("id", sa.String(300), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("tenant_id", sa.String(50), nullable=False),
        sa.Column("queue_name", sa.String(100), nullable=False),
        sa.Column("job_id", sa.String(200), nullable=False, server_default=""),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("keys", _JSON, nullable=False),
    )
    op.create_index("ix_adjustments_tenant_day", "adjustments", ["tenant_id", "day"])
    op.create_table(
        "budget_raises",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("budget_id", sa.String(36), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("approver", sa.String(500), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
    )
    op.create_index("ix_budget_raises_budget_id", "budget_raises", ["budget_id"])


def downgrade() -> None:
    op.drop_table("budget_raises")
    op.drop_index("ix_adjustments_tenant_day", table_name="adjustments")
    op.drop_table("adjustments")
    op.drop_table("tenant_tree")
    with op.batch_alter_table("budgets") as batch:
        batch.drop_column("labels")
