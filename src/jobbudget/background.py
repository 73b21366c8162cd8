"""Work the service does off the request path: buffered audit writes, and the
periodic tasks (flush, resync, reconcile, budget watch, alert delivery, ...) run by
:class:`PeriodicWorker`, one daemon thread per worker."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .domain.errors import JobBudgetError
from .domain.records import AuditEntry
from .ports import Store

__all__ = ["AuditBuffer", "PeriodicTask", "PeriodicWorker"]

log = logging.getLogger("jobbudget")
#: While a task keeps failing, a reminder is logged this often (seconds).
REMIND_EVERY = 600.0


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


@dataclass(frozen=True, slots=True)
class PeriodicTask:
    """``run`` every ``interval`` seconds, and at once whenever ``wake`` is set (the
    worker clears it before the run, so a set during the run brings another)."""

    run: Callable[[], None]
    interval: float
    wake: threading.Event | None = None
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or getattr(self.run, "__name__", "task")


@dataclass(slots=True)
class _Schedule:
    task: PeriodicTask
    due: float
    failures: int = 0
    reminded: float = 0.0


class PeriodicWorker:
    """Runs each task at its own interval (at most once per ``min_interval``), one
    after another on one daemon thread, until stopped.

    A task that raises does not stop the others, nor itself: it is tried again at
    its interval.  The first failure of a streak is logged (a :class:`JobBudgetError`,
    an expected outage, as a warning; anything else as an error with its traceback),
    then a reminder every ``REMIND_EVERY`` seconds, and the recovery once it passes
    again.  Tasks may share one ``wake`` event (a worker waits on at most one);
    ``stop()`` sets it so the thread notices at once."""

    def __init__(
        self,
        tasks: Sequence[tuple[float, Callable[[], None]] | PeriodicTask],
        *,
        name: str = "jobbudget-background",
        min_interval: float = 1.0,
        join_timeout: float = 5.0,
    ) -> None:
        self._tasks = [t if isinstance(t, PeriodicTask) else PeriodicTask(run=t[1], interval=t[0]) for t in tasks]
        wakes = {id(t.wake): t.wake for t in self._tasks if t.wake is not None}
        if len(wakes) > 1:
            raise ValueError("the tasks of one worker share at most one wake event: give the others a worker each")
        self._wake = next(iter(wakes.values()), None)
        self._min_interval = min_interval
        self._join_timeout = join_timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop, waiting at most ``join_timeout`` seconds for a task that is running."""
        self._stop.set()
        if self._wake is not None:
            self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self._join_timeout)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _interval(self, task: PeriodicTask) -> float:
        return max(self._min_interval, task.interval)

    def _run(self) -> None:
        start = time.monotonic()
        schedules = [_Schedule(task, start + self._interval(task)) for task in self._tasks]
        bell = self._wake if self._wake is not None else self._stop
        while not self._stop.is_set():
            pause = min(s.due for s in schedules) - time.monotonic() if schedules else None
            woken = bell.wait(pause) if pause is None or pause > 0 else False
            if self._stop.is_set():
                return
            if woken and self._wake is not None:
                self._wake.clear()
            for schedule in schedules:
                now = time.monotonic()
                if now >= schedule.due or (woken and schedule.task.wake is not None):
                    schedule.due = max(schedule.due + self._interval(schedule.task), now)
                    self._call(schedule)
                    if self._stop.is_set():
                        return

    def _call(self, schedule: _Schedule) -> None:
        task = schedule.task
        try:
            task.run()
        except Exception as exc:
            schedule.failures += 1
            now = time.monotonic()
            if schedule.failures == 1 or now - schedule.reminded >= REMIND_EVERY:
                schedule.reminded = now
                again = "" if schedule.failures == 1 else f" ({schedule.failures} times in a row)"
                if isinstance(exc, JobBudgetError):
                    log.warning("background %s failed%s (will retry): %s", task.label, again, exc)
                else:
                    log.error("background %s failed%s (will retry)", task.label, again, exc_info=exc)
            return
        if schedule.failures:
            log.info("background %s works again after %d failure(s)", task.label, schedule.failures)
            schedule.failures = 0
