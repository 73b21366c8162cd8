"""Storing journaled jobs in the ledger, in batches, in the background.

With a metering journal (``metering_journal``), a single job is durable once it is
in this process's journal (:mod:`jobbudget.storage.journal`); its spend and its
reservation's settlement go to Redis at once, so every admission counts it.  The
drain stores the journal's jobs in the ledger a batch at a time (one transaction
each, with the alerts their spend fires), exactly as a synchronous batch would.

Idempotency by job id still holds: a job the ledger already had (a redelivery) is
not stored again and its provisional spend is taken back from Redis.  After a
failure that may have committed a batch, its retry cannot tell a redelivery from
its own first attempt, so nothing is taken back and the counters are rebuilt from
the ledger instead.  A dead process's journal is replayed by the next process that
opens the folder (at start, and every few seconds): into the ledger only, then the
counters are rebuilt from the ledger before the journal is deleted."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal

from ..domain.errors import JobBudgetError, StorageUnavailableError
from ..domain.money import ZERO
from ..domain.records import JobRecord
from ..ports import Journal, Ledger, MetricsSink
from .alert_planning import AlertPlanner
from .hot_state import HotState
from .pricing import Pricing
from .spend_state import SpendState

__all__ = ["JournalDrain"]

log = logging.getLogger("jobbudget")
#: A batch waits at most this long for more jobs.
BATCH_SECONDS = 0.1
MAX_BATCH = 2000
#: How often other (dead) processes' journals are looked for.
RECOVER_SECONDS = 5.0
RETRY_SECONDS = 1.0
Ends = dict[tuple[str, date], date]


class JournalDrain:
    def __init__(
        self,
        journal: Journal,
        ledger: Ledger,
        *,
        spend: SpendState,
        hot: HotState,
        pricing: Pricing,
        planner: AlertPlanner,
        metrics: MetricsSink,
        clock: Callable[[], datetime],
    ) -> None:
        self.journal = journal
        self._ledger = ledger
        self._spend = spend
        self._hot = hot
        self._pricing = pricing
        self._planner = planner
        self._metrics = metrics
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: list[JobRecord] = []
        self._ends: Ends = {}
        self._position: tuple[int, int] | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._maybe_committed = False
        #: called with each committed batch (and which jobs were new): the refund policy
        self.after_commit: Callable[[Sequence[JobRecord], Sequence[bool]], object] = lambda records, new: (
            None
        )  # the batch being retried may be in the ledger
        self._apply_lock = threading.Lock()  # one batch at a time (drain thread or flush)

    # -- life cycle ----------------------------------------------------------------
    def start(self) -> None:
        self.journal.open()
        self.recover()
        self._thread = threading.Thread(target=self._run, name="jobbudget-journal", daemon=True)
        self._thread.start()

    def close(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
        try:
            self.flush()
        except JobBudgetError as exc:  # durable all the same: the next process replays them
            log.warning("%d journaled jobs not stored at close (%s); the journal keeps them", self.backlog(), exc)
        self.journal.close()

    # -- the metering side ---------------------------------------------------------------
    def submit(self, records: Sequence[JobRecord], ends: Ends, position: tuple[int, int]) -> None:
        """Journaled (durable) records, to store in the ledger."""
        with self._cond:
            self._pending.extend(records)
            self._ends.update(ends)
            self._position = position
            self._cond.notify()

    def flush(self) -> None:
        """Store everything journaled so far, now (at close, and for tests)."""
        while True:
            with self._cond:
                if not self._pending:
                    return
            self._drain_once()

    def backlog(self) -> int:
        with self._cond:
            return len(self._pending)

    # -- the drain -----------------------------------------------------------------------
    def _run(self) -> None:
        next_recover = time.monotonic() + RECOVER_SECONDS
        while True:
            with self._cond:
                if not self._pending and not self._stopping:
                    self._cond.wait(timeout=RECOVER_SECONDS)
                if self._stopping:
                    return
                ready = bool(self._pending)
            if ready:
                time.sleep(BATCH_SECONDS)  # let a batch gather
                try:
                    self._drain_once()
                except StorageUnavailableError as exc:
                    log.warning("journaled jobs not stored yet (will retry): %s", exc)
                    time.sleep(RETRY_SECONDS)
                except Exception:
                    log.exception("journaled jobs not stored (will retry)")
                    time.sleep(RETRY_SECONDS)
            if time.monotonic() >= next_recover:
                next_recover = time.monotonic() + RECOVER_SECONDS
                try:
                    self.recover()
                except JobBudgetError as exc:
                    log.warning("abandoned journals not replayed yet: %s", exc)

    def _drain_once(self) -> None:
        with self._apply_lock:
            with self._cond:
                batch = self._pending[:MAX_BATCH]
                position = self._position if len(batch) == len(self._pending) else None
                ends = dict(self._ends)
            if not batch:
                return
            self._apply(batch, ends, retract=not self._maybe_committed)
            with self._cond:
                del self._pending[: len(batch)]
                if not self._pending:
                    self._ends.clear()
            if position is not None:
                self.journal.applied(position)

    def _apply(self, records: list[JobRecord], ends: Ends, *, retract: bool) -> None:
        now = self._clock()
        spend = self._spend
        with spend.write:
            try:
                result = self._ledger.record_jobs(records, plan=self._planner.plan(records, ends, now))
            except StorageUnavailableError:
                self._maybe_committed = True
                raise
            with spend.lock:
                for record, new in zip(records, result.inserted, strict=True):
                    if new:
                        spend.index.add(record.spend_keys, record.cost.total_cost)
            self._planner.fired.update(result.fired)
            stored: dict[str, Decimal] = {}
            for record, new in zip(records, result.inserted, strict=True):
                if new:
                    cost = record.cost.total_cost
                    self._pricing.observe(record.metrics, cost)
                    stored[record.metrics.tenant_id] = stored.get(record.metrics.tenant_id, ZERO) + cost
            for tenant_id, amount in stored.items():
                self._metrics.stored(tenant_id=tenant_id, amount=amount)
            repeated = [r for r, new in zip(records, result.inserted, strict=True) if not new]
            if self._maybe_committed:
                self._maybe_committed = False
                self._hot.rebuild()  # cannot tell our first attempt from a redelivery
            elif repeated and retract:
                self._hot.retract(repeated)  # redeliveries: their provisional spend goes
        self._planner.announce(result.alerts)
        self.after_commit(records, result.inserted)

    def recover(self) -> int:
        """Replay the journals of processes that died; how many jobs they held."""
        replayed = 0
        for abandoned in self.journal.abandoned():
            if abandoned.records:
                log.warning(
                    "replaying %d journaled jobs of a stopped process (%s)", len(abandoned.records), abandoned.path
                )
                for i in range(0, len(abandoned.records), MAX_BATCH):
                    chunk = abandoned.records[i : i + MAX_BATCH]
                    with self._apply_lock:
                        self._apply(chunk, self._ends_of(chunk), retract=False)
                # its jobs' spend may or may not have reached Redis, and redeliveries may
                # not have been taken back: rebuild now, before the journal goes (a
                # process killed meanwhile leaves it to be replayed again)
                self._hot.rebuild()
                replayed += len(abandoned.records)
            abandoned.done()
        return replayed

    def _ends_of(self, records: Sequence[JobRecord]) -> Ends:
        """The period ends of the budgets in force, for the alerts of replayed jobs."""
        ends: Ends = {}
        with self._spend.lock:
            for record in records:
                for key in record.spend_keys:
                    state = self._spend.index.get(key.budget_id)
                    if state is not None and state.key == key and state.window is not None:
                        ends[(key.budget_id, key.period_start)] = state.window.end_date
        return ends
