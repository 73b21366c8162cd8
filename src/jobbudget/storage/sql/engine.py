"""Engines for SQLite and PostgreSQL, and translation of driver errors."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from ...domain.errors import (
    ConflictError,
    StorageError,
    StorageFullError,
    StorageReadOnlyError,
    StorageUnavailableError,
    ValidationError,
)

__all__ = ["make_engine", "normalize_url", "translate_errors", "transaction"]


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3, as in the design document."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, *, schema: str | None = None) -> Engine:
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() == "sqlite":
        memory = parsed.database in (None, "", ":memory:")
        if memory:
            raise ValidationError(
                "database_url", url, "SQLite needs a file (sqlite:///path.db); use memory:// for tests"
            )
        engine = create_engine(parsed)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    connect_args: dict[str, Any] = {"connect_timeout": 5}
    if schema:
        connect_args["options"] = f"-csearch_path={schema}"
    engine = create_engine(parsed, pool_size=5, max_overflow=10, connect_args=connect_args)
    event.listen(engine, "checkout", _ping_if_idle)
    event.listen(engine, "checkin", _note_idle)
    return engine


#: A pooled connection idle longer than this is pinged before use (a round trip);
#: one used more recently is trusted, like one in the middle of a transaction.
IDLE_PING_SECONDS = 1.0


def _note_idle(_dbapi_conn: Any, record: Any) -> None:
    if record is not None:
        record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    """SQLAlchemy's ``pool_pre_ping`` pings at every checkout: a round trip per
    transaction.  Ping only connections idle for a while (a server restart while the
    pool slept); a dead one is replaced by a new connection."""
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
        return
    try:
        with dbapi_conn.cursor() as cursor:
            cursor.execute("SELECT 1")
        if not dbapi_conn.autocommit:
            dbapi_conn.rollback()
    except Exception as exc:
        raise sa_exc.DisconnectionError(f"pooled connection is dead: {exc}") from exc


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN, so writers can take the lock up front.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        with contextlib.suppress(Exception):  # read-only files cannot switch journal mode
            cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed (acknowledged) job survives power loss, not just a crash.
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Turn driver errors into jobbudget errors with stable codes."""
    try:
        yield
    except sa_exc.IntegrityError as exc:
        raise ConflictError(f"conflicting write: {exc.orig}") from exc
    except sa_exc.DBAPIError as exc:
        text = str(exc.orig).lower()
        sqlstate = getattr(exc.orig, "sqlstate", None)  # psycopg's SQLSTATE
        name = getattr(exc.orig, "sqlite_errorname", None) or ""  # sqlite3's (extended) code
        # SQLITE_IOERR_SHMSIZE: the WAL index (-shm) file could not grow, i.e. no space
        if sqlstate == "53100" or name in ("SQLITE_FULL", "SQLITE_IOERR_SHMSIZE") or any(w in text for w in _FULL):
            raise StorageFullError(
                f"database full, nothing was stored (free space, then retry): {_first_line(exc.orig)}"
            ) from exc
        if sqlstate == "25006" or name.startswith("SQLITE_READONLY") or any(w in text for w in _READ_ONLY):
            raise StorageReadOnlyError(
                f"database read-only, nothing was stored (make it writable, then retry): {_first_line(exc.orig)}"
            ) from exc
        if exc.connection_invalidated or isinstance(exc, (sa_exc.InterfaceError,)) or _is_unavailable(exc, text):
            raise StorageUnavailableError(f"database unavailable: {_first_line(exc.orig)}") from exc
        raise StorageError(f"database error: {_first_line(exc.orig)}") from exc
    except OverflowError as exc:  # sqlite3: an integer (nano-dollars) beyond 64 bits
        raise StorageError(f"value out of range for this database: {exc}") from exc


_FULL = ("database or disk is full", "no space left on device", "disk full")
_READ_ONLY = ("readonly database", "read-only transaction", "read-only file system")


def _is_unavailable(exc: sa_exc.DBAPIError, text: str) -> bool:
    if not isinstance(exc, sa_exc.OperationalError):
        return False
    permanent = ("readonly", "read-only", "disk is full", "disk full", "malformed", "no such table", "not a database")
    return not any(word in text for word in permanent)


def _first_line(err: BaseException | None) -> str:
    return str(err).strip().splitlines()[0] if err is not None and str(err).strip() else type(err).__name__


def _sqlite_begin(conn: Connection) -> None:
    # Writers begin IMMEDIATE: they hold the write lock from their first read, so a
    # check-then-insert cannot interleave with another process and never deadlocks.
    mode = conn.get_execution_options().get("sqlite_begin", "")
    conn.exec_driver_sql(f"BEGIN {mode}".strip())


@contextlib.contextmanager
def transaction(engine: Engine, *, write: bool = False) -> Iterator[Connection]:
    """One transaction; ``write=True`` takes SQLite's write lock at the start."""
    with translate_errors(), engine.connect() as conn:
        if write and engine.dialect.name == "sqlite":
            conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn
