"""Storage back-ends: SQL (SQLite, PostgreSQL) and an in-memory store for tests."""

from __future__ import annotations

from ..ports import Store

__all__ = ["open_store"]


def open_store(url: str, *, schema: str | None = None) -> Store:
    """Open the store named by ``url``: ``memory://``, ``sqlite:///file.db`` or
    ``postgresql[+psycopg]://...``.  ``schema`` (PostgreSQL only) isolates the tables."""
    if url.startswith("memory:"):
        from .memory import MemoryStore

        return MemoryStore()
    from .sql.store import SqlStore

    return SqlStore(url, schema=schema)
