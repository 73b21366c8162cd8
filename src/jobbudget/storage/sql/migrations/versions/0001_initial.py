"""Initial schema: jobs, daily aggregates, budgets, budget spend, cost models, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

from jobbudget.storage.sql.tables import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = ("job_costs", "daily_costs", "budgets", "budget_spend", "cost_models", "audit_log", "store_meta")


def upgrade() -> None:
    bind = op.get_bind()
    # The first revision creates the tables as ``tables.py`` defines them at this
    # revision; later revisions must use explicit ``op`` calls.
    metadata.create_all(bind, tables=[metadata.tables[name] for name in TABLES])


def downgrade() -> None:
    bind = op.get_bind()
    metadata.drop_all(bind, tables=[metadata.tables[name] for name in reversed(TABLES)])
