"""Who set each budget: ``operator`` (existing budgets) or ``tenant``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("budgets") as batch:
        batch.add_column(sa.Column("owner", sa.String(20), nullable=False, server_default="operator"))


def downgrade() -> None:
    with op.batch_alter_table("budgets") as batch:
        batch.drop_column("owner")
