"""Open reservations, for admissions shared through the database (no Redis).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from jobbudget.storage.sql.types import Money, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("budget_id", sa.String(36), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("tenant_id", sa.String(50), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", "budget_id", "period_start", name="pk_reservations"),
    )
    op.create_index("ix_reservations_period", "reservations", ["budget_id", "period_start", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_reservations_period", table_name="reservations")
    op.drop_table("reservations")
