"""Telling cheaply whether another process committed to the database, so that a
process keeping its own copy of spend sees other processes' jobs at its next check.

* SQLite: every transaction that changes spend also counts up ``spend_seq`` in
  ``store_meta``.  A look first asks whether any connection committed since the last
  look: in WAL mode by reading the wal-index header, which every commit rewrites, from
  the ``-shm`` file mapped into memory (about 0.2 µs, no system call, so the check
  never gives up the GIL); otherwise by ``PRAGMA data_version`` on a connection of the
  feed's own (a few µs).  Only after a commit is ``spend_seq`` read, and only a number
  this process did not write itself is a change (its own jobs, audit entries and
  alerts are not).  The header's layout is SQLite's documented WAL-index format
  (https://sqlite.org/walformat.html, "the WAL-index header"); the look only compares
  its bytes with the last ones seen, so any change of them, whatever it means, just
  leads to reading ``spend_seq``.
* PostgreSQL: every batch of jobs sends ``pg_notify`` in its transaction (so the
  notice goes out with the commit); a thread LISTENs on a connection of its own and
  counts the notices of other writers.  A lost connection is re-opened, and counts
  as a change (what was committed meanwhile is unknown).
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import sqlite3
import threading
from typing import Any

from sqlalchemy.engine import make_url

from .engine import normalize_url

__all__ = [
    "BUDGET_SEQ",
    "SPEND_SEQ",
    "bump_budget_seq",
    "PostgresChanges",
    "SqliteChanges",
    "mark_spend_changed",
    "notify_channel",
]

log = logging.getLogger("jobbudget")
_RETRY_SECONDS = 1.0
_POLL_SECONDS = 0.5  # how often the listener thread looks up from waiting, to stop
#: The ``store_meta`` key counting SQLite transactions that changed spend.
SPEND_SEQ = "spend_seq"
#: counts every change to budgets, the tree and raises (what budget watchers poll)
BUDGET_SEQ = "budget_seq"


def notify_channel(schema: str | None) -> str:
    """The NOTIFY channel of a schema (notices are database-wide; schemas must not mix)."""
    return f"jobbudget_spend_{schema or 'public'}"


class SqliteChanges:
    """Other connections' spend commits to a SQLite file (see the module docs)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._shm: mmap.mmap | None = None  # the WAL index, mapped (WAL mode only)
        self._version: int | bytes | None = None  # the last header bytes or data_version seen
        self._seq: int | None = None  # the spend_seq this process knows the ledger at
        self._pending = False  # another writer's spend was seen by one of our own commits

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None, timeout=10)
            conn.execute("PRAGMA query_only=ON")  # this connection only ever looks
            conn.execute("PRAGMA data_version").fetchone()  # a read: it maps the WAL index
            self._conn = conn
            self._shm = _map_wal_index(conn, self._path)
        return self._conn

    def _commits(self, conn: sqlite3.Connection) -> int | bytes:
        """What changes whenever any connection commits."""
        if self._shm is not None:
            return self._shm[:_WAL_HEADER]
        version: int = conn.execute("PRAGMA data_version").fetchone()[0]
        return version

    def changed(self) -> bool:
        """True once after another process committed spend (the first look is a
        change: nothing was known before)."""
        with self._lock:
            try:
                conn = self._connection()
                version = self._commits(conn)
                if version == self._version and not self._pending:
                    return False
                self._version = version
                row = conn.execute("SELECT value FROM store_meta WHERE key = ?", (SPEND_SEQ,)).fetchone()
            except sqlite3.Error as exc:
                log.debug("cannot tell whether the database changed: %s", exc)
                self._close_locked()
                return True
            seq = int(row[0]) if row else 0
            if seq == self._seq and not self._pending:
                return False
            self._seq, self._pending = seq, False
            return True

    def own_commit(self, seq: int) -> None:
        """This process committed the transaction that made ``spend_seq`` ``seq``:
        not a change to it, unless another writer's came in between."""
        with self._lock:
            if self._seq is not None and self._seq != seq - 1 and self._seq < seq:
                self._pending = True
            self._seq = seq if self._seq is None else max(self._seq, seq)

    def _close_locked(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
        self._conn, self._shm, self._version, self._seq = None, None, None, None

    def close(self) -> None:
        with self._lock:
            self._close_locked()


#: The first copy of the WAL-index header: iVersion, iChange (counts transactions),
#: mxFrame, nPage, checksums and salts, all rewritten by every commit.
_WAL_HEADER = 48


#: The ``-shm`` files mapped by this process, by (device, inode).  Never unmapped or
#: closed: POSIX drops *every* lock a process holds on a file when it closes *any*
#: descriptor of that file, and SQLite holds its WAL-index locks on ``-shm``; closing
#: ours would silently release the locks of this process's SQLite connections
#: (another process then re-initialises the index: "locking protocol" errors).  A
#: bounded number of files stay mapped; past it, feeds ask ``data_version``.
_MAPPED: dict[tuple[int, int], mmap.mmap] = {}
_MAPPED_LOCK = threading.Lock()
_MAX_MAPPED = 32


def _map_wal_index(conn: sqlite3.Connection, path: str) -> mmap.mmap | None:
    """The ``-shm`` file mapped read-only, when the database is in WAL mode (the feed's
    connection stays open, so the file is not removed while it looks)."""
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    if str(mode).lower() != "wal":
        return None
    shm = f"{path}-shm"
    with _MAPPED_LOCK:
        try:
            info = os.stat(shm)
        except OSError:
            return None
        key = (info.st_dev, info.st_ino)
        mapped = _MAPPED.get(key)
        if mapped is not None:
            return mapped
        if len(_MAPPED) >= _MAX_MAPPED or info.st_size < _WAL_HEADER:
            return None
        fd = os.open(shm, os.O_RDONLY)  # never closed: see _MAPPED
        try:
            mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None  # the descriptor stays open, for the same reason
        _MAPPED[key] = mapped
        return mapped


class PostgresChanges:
    """Other writers' notices on :func:`notify_channel`, counted by a listener thread.

    ``token`` names this process's own notices, which are not changes to it."""

    def __init__(self, url: str, *, schema: str | None, token: str) -> None:
        parsed = make_url(normalize_url(url))
        self._dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._channel = notify_channel(schema)
        self._token = token
        self._count = 1  # nothing is known before the first look: that is a change
        self._seen = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._listen, name="jobbudget-changes", daemon=True)
            self._thread.start()

    def changed(self) -> bool:
        count = self._count  # one read: the listener only ever increments it
        if count == self._seen:
            return False
        self._seen = count
        return True

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _listen(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'LISTEN "{self._channel}"')
                    self._count += 1  # whatever was committed while not listening
                    while not self._stop.is_set():
                        for notice in conn.notifies(timeout=_POLL_SECONDS):
                            if notice.payload != self._token:
                                self._count += 1
            except Exception as exc:  # any failure: listen again shortly
                log.debug("not listening for other processes' spend: %s", exc)
                self._count += 1
                self._stop.wait(_RETRY_SECONDS)


def mark_spend_changed(conn: Any, *, schema: str | None, token: str) -> int | None:
    """In a transaction that changes spend: count up ``spend_seq`` and return it
    (SQLite), or send this writer's notice, delivered with the commit (PostgreSQL)."""
    from sqlalchemy import text

    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify(:channel, :token)"), {"channel": notify_channel(schema), "token": token})
        return None
    conn.execute(
        text("INSERT INTO store_meta (key, value) VALUES (:key, '0') ON CONFLICT (key) DO NOTHING"), {"key": SPEND_SEQ}
    )
    bumped = "UPDATE store_meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = :key RETURNING value"
    return int(conn.execute(text(bumped), {"key": SPEND_SEQ}).scalar_one())


def bump_budget_seq(conn: Any) -> None:
    """In a transaction that changes budgets, the tree or raises: count ``budget_seq`` up."""
    from sqlalchemy import text

    conn.execute(
        text("INSERT INTO store_meta (key, value) VALUES (:key, '0') ON CONFLICT (key) DO NOTHING"), {"key": BUDGET_SEQ}
    )
    conn.execute(
        text("UPDATE store_meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = :key"),
        {"key": BUDGET_SEQ},
    )
