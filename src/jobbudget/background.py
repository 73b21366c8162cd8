"""Work the service does off the request path: buffered audit writes and the
periodic resync with the ledger, run by one daemon thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .domain.errors import JobBudgetError
from .domain.records import AuditEntry
from .ports import Store

__all__ = ["AuditBuffer", "PeriodicWorker"]

log = logging.getLogger("jobbudget")


class AuditBuffer:
    """Audit entries collected on hot paths (bypasses) and written in batches, so an
    admission check never waits for the database."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._entries: list[AuditEntry] = []

    def append(self, entry: AuditEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def flush(self) -> list[AuditEntry]:
        """Write what is buffered (and return it); on failure the entries stay for the
        next try."""
        with self._lock:
            entries, self._entries = self._entries, []
        if not entries:
            return entries
        try:
            self._store.add_audit(entries)
        except JobBudgetError:
            with self._lock:
                self._entries[:0] = entries
            raise
        return entries


class PeriodicWorker:
    """Calls each task every ``interval`` seconds of its own (checked once a second)
    until stopped; a failing task is logged and tried again next time."""

    def __init__(self, tasks: list[tuple[float, Callable[[], None]]], *, name: str = "jobbudget-background") -> None:
        self._tasks = tasks
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        elapsed = 0.0
        while not self._stop.wait(1.0):
            elapsed += 1.0
            for interval, task in self._tasks:
                if elapsed % max(1.0, round(interval)) == 0:
                    try:
                        task()
                    except JobBudgetError as exc:
                        log.warning("background %s failed (will retry): %s", getattr(task, "__name__", "task"), exc)
