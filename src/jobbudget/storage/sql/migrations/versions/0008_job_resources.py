"""Named resources: each job's resource cost and its extras (resources itemised,
QoS, labels, exit state as JSON text), and the day's resource cost.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from jobbudget.storage.sql.types import Money

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_costs") as batch:
        batch.add_column(sa.Column("resource_cost", Money(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("extras", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("daily_costs") as batch:
        batch.add_column(sa.Column("resource_cost", Money(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("daily_costs") as batch:
        batch.drop_column("resource_cost")
    with op.batch_alter_table("job_costs") as batch:
        batch.drop_column("extras")
        batch.drop_column("resource_cost")
