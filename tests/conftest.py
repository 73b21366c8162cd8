"""Shared fixtures: a fixed clock and stores on memory, SQLite and real PostgreSQL.

PostgreSQL tests use ``JOBBUDGET_TEST_POSTGRES_URL`` (default: the local ``test``
database).  Each test gets its own schema, so runs cannot collide.  With ``CI=true``
a missing server fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from cli_support import CLI_VARIABLES, Run, cli_on
from jobbudget.ports import Store
from jobbudget.storage.memory import MemoryStore
from jobbudget.storage.sql.store import SqlStore

if TYPE_CHECKING:
    from test_api_support import Api

# Tests never deliver alerts from a background thread: a test that wants delivery runs
# the dispatcher itself, against servers it starts on 127.0.0.1.
os.environ.setdefault("JOBBUDGET_NOTIFICATIONS_IN_BACKGROUND", "false")
# Those servers listen on 127.0.0.1, which the outbound policy refuses by default: the
# tests' configuration allows that one address on purpose (servers started by the tests
# inherit it; tests/e2e/test_outbound.py plays the attacker without it).
os.environ.setdefault("JOBBUDGET_NOTIFICATION_ALLOWED_NETWORKS", "127.0.0.1/32")
# pytest-xdist's workers (make test runs two) set COLUMNS=80 and LINES=24, which the CLI
# and the TUI in a real terminal would obey: the tests see the terminal a single
# pytest process sees (tests of a width give it themselves).
if os.environ.get("PYTEST_XDIST_WORKER"):
    for name in ("COLUMNS", "LINES"):
        if os.environ.get(name) == {"COLUMNS": "80", "LINES": "24"}[name]:
            del os.environ[name]

POSTGRES_URL = os.environ.get("JOBBUDGET_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: The repository's own data (``data/``, see its README); ``JOBBUDGET_DATA_DIR`` may name another copy.
DATA_DIR = Path(os.environ.get("JOBBUDGET_DATA_DIR", Path(__file__).resolve().parents[1] / "data"))


#: The cost model the service tests price with: the design document's example weights.
SEED = "seed"


class FakeClock:
    """A settable clock for the service (aware UTC)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2024, 1, 15, 12, 0, tzinfo=UTC))


def _postgres_available() -> str | None:
    try:
        engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # pragma: no cover - depends on the machine
        return str(exc).splitlines()[0]


_PG_PROBLEM: list[str | None] = []


def require_postgres() -> None:
    if not _PG_PROBLEM:
        _PG_PROBLEM.append(_postgres_available())
    problem = _PG_PROBLEM[0]
    if problem is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards."""
    require_postgres()
    schema = f"jbtest_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    yield schema
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Builds stores of one kind; every store it builds shares the same database."""
    kind = request.param
    made: list[Store] = []
    memory = MemoryStore()
    schema = request.getfixturevalue("pg_schema") if kind == "postgres" else None

    def make() -> Store:
        if kind == "memory":
            store: Store = memory
        elif kind == "sqlite":
            store = SqlStore(f"sqlite:///{tmp_path / 'jobbudget.db'}")
        else:
            store = SqlStore(POSTGRES_URL, schema=schema)
        store.migrate()
        made.append(store)
        return store

    yield make
    for s in made:
        s.close()


@pytest.fixture
def store(store_factory: Callable[[], Store]) -> Store:
    return store_factory()


@pytest.fixture
def service_factory(store_factory: Callable[[], Store], clock: FakeClock) -> Iterator[Callable[..., object]]:
    """Builds BudgetServices on stores from ``store_factory`` (all on one database),
    driven by ``clock``; every service is closed afterwards."""
    from jobbudget.config import Config
    from jobbudget.service import BudgetService

    made: list[BudgetService] = []

    def make(config: Config | None = None, **config_values: object) -> BudgetService:
        # The service tests were written with the design document's example prices
        # (the preset "seed": round dollars for small usages); the default model, at
        # cloud list prices, has tests of its own (test_cost.py, test_pricing.py).
        config_values.setdefault("cost_model", SEED)
        service = BudgetService(config or Config(**config_values), clock=clock, store=store_factory())
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


# -- the CLI (tests/cli_support.py) ---------------------------------------------------
@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No variable of the machine's points the CLI elsewhere, and the working directory
    is the test's own folder."""
    for name in CLI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def seed_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    """The design document's example prices (preset ``seed``), which many CLI tests
    were written with."""
    monkeypatch.setenv("JOBBUDGET_COST_MODEL__PRESET", "seed")


@pytest.fixture
def db(tmp_path: Path) -> str:
    """The URL of the test's SQLite database (not created)."""
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def run(db: str, cli_env: None) -> Run:
    """The CLI on ``db``, made with `jobbudget init` first (see cli_support.cli_on)."""
    return cli_on(db)


# -- the HTTP API (tests/test_api_support.py) ------------------------------------------
@pytest.fixture
def api_config() -> dict[str, Any]:
    """Config values of the service behind ``api``: a module overrides this fixture
    to change them."""
    return {}


@pytest.fixture
def api(service_factory: Callable[..., Any], api_config: dict[str, Any]) -> Iterator[Api]:
    """The app over a service from ``service_factory``, with a key of every role."""
    from test_api_support import make_api  # FastAPI: only for the tests that use it

    made = make_api(service_factory(**api_config))
    with made.client:
        yield made
