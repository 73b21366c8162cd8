"""Alembic migrations on SQLite and PostgreSQL (a fresh schema per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from conftest import POSTGRES_URL
from jobbudget.storage.sql.engine import make_engine
from jobbudget.storage.sql.migrate import alembic_config, current_revision, upgrade
from jobbudget.storage.sql.tables import metadata

TABLES_0001 = {"job_costs", "daily_costs", "budgets", "budget_spend", "cost_models", "audit_log", "store_meta"}
TABLES = TABLES_0001 | {
    "forecast_snapshots", "alerts", "deliveries", "api_keys", "reservations", "tenant_tree", "adjustments",
    "budget_raises",
}  # fmt: skip
HEAD = "0010"

#: The columns revision 0001 creates (its DDL is frozen in the revision; this
#: snapshot guards against editing a migration that has already shipped).
REVISION_0001_COLUMNS = {
    "job_costs": [
        "tenant_id",
        "job_id",
        "queue_name",
        "job_type",
        "priority",
        "ts",
        "day",
        "cpu_time",
        "memory_mb_seconds",
        "payload_bytes",
        "redis_ops",
        "network_bytes",
        "total_cost",
        "cpu_cost",
        "memory_cost",
        "payload_cost",
        "redis_cost",
        "network_cost",
        "base_cost",
        "cost_model_version",
    ],
    "daily_costs": [
        "tenant_id",
        "queue_name",
        "date",
        "total_jobs",
        "total_cost",
        "cpu_cost",
        "memory_cost",
        "payload_cost",
        "redis_cost",
        "network_cost",
        "base_cost",
        "avg_job_cost",
        "max_job_cost",
        "min_job_cost",
        "p95_job_cost",
        "stats_stale",
        "updated_at",
    ],
    "budgets": [
        "id",
        "tenant_id",
        "queue_name",
        "period_type",
        "period_start",
        "period_end",
        "timezone",
        "recurring",
        "amount",
        "currency",
        "warning_threshold",
        "throttle_threshold",
        "block_threshold",
        "enforcement_policy",
        "notifications",
        "tags",
        "active",
        "created_at",
        "updated_at",
        "created_by",
    ],
    "budget_spend": ["budget_id", "period_start", "spend", "jobs"],
    "cost_models": ["version", "model", "created_at", "created_by"],
    "audit_log": ["id", "at", "kind", "tenant_id", "queue_name", "budget_id", "actor", "details"],
    "store_meta": ["key", "value"],
}


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'migrate.db'}")
    else:
        schema = request.getfixturevalue("pg_schema")
        eng = make_engine(POSTGRES_URL, schema=schema)
        with eng.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield eng
    eng.dispose()


def table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_upgrade_creates_every_table(engine: sa.Engine) -> None:
    assert current_revision(engine) is None
    assert table_names(engine) == set()
    upgrade(engine)
    assert table_names(engine) == TABLES | {"alembic_version"}
    assert current_revision(engine) == HEAD


def test_upgrade_is_idempotent(engine: sa.Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO store_meta (key, value) VALUES ('probe', 'kept')"))
    upgrade(engine)
    upgrade(engine, "0001")  # already past it: nothing happens
    assert current_revision(engine) == HEAD
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT value FROM store_meta WHERE key = 'probe'")).scalar() == "kept"
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1


def test_migrated_schema_matches_metadata(engine: sa.Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_revision_0001_columns(engine: sa.Engine) -> None:
    upgrade(engine, "0001")
    inspector = sa.inspect(engine)
    assert table_names(engine) == TABLES_0001 | {"alembic_version"}
    found = {name: [c["name"] for c in inspector.get_columns(name)] for name in sorted(TABLES_0001)}
    assert found == REVISION_0001_COLUMNS


def test_upgrade_from_0001_keeps_data(engine: sa.Engine) -> None:
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO store_meta (key, value) VALUES ('probe', 'kept')"))
    upgrade(engine)
    assert current_revision(engine) == HEAD
    assert "forecast_snapshots" in table_names(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT value FROM store_meta WHERE key = 'probe'")).scalar() == "kept"


def test_downgrade_and_upgrade_again(engine: sa.Engine) -> None:
    upgrade(engine)
    command.downgrade(alembic_config(engine), "base")
    assert table_names(engine) <= {"alembic_version"}
    assert current_revision(engine) is None
    upgrade(engine)
    assert table_names(engine) == TABLES | {"alembic_version"}


def test_postgres_tables_live_in_their_schema(pg_schema: str) -> None:
    eng = make_engine(POSTGRES_URL, schema=pg_schema)
    try:
        with eng.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{pg_schema}"'))
        upgrade(eng)
        inspector = sa.inspect(eng)
        assert set(inspector.get_table_names(schema=pg_schema)) == TABLES | {"alembic_version"}
        with eng.connect() as conn:
            assert conn.execute(sa.text("SELECT current_schema()")).scalar() == pg_schema
    finally:
        eng.dispose()
