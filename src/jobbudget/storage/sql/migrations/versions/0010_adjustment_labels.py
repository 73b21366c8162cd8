"""Adjustments keep the labels of the job they correct, so a label budget counts a
refund of its jobs (and only of its jobs) when its spend is recounted.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("adjustments") as batch:
        batch.add_column(sa.Column("labels", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("adjustments") as batch:
        batch.drop_column("labels")
