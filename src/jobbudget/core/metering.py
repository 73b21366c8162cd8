"""Metering: price finished jobs and store them, once each, in one transaction per
batch with the alerts their spend fires; then count them in the spend state and
the shared counters, and settle their admissions."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from ..config import Config
from ..domain.cost import JobCost, JobMetrics
from ..domain.errors import StorageUnavailableError, ValidationError
from ..domain.money import ZERO
from ..domain.records import JobRecord
from ..domain.validation import MAX_ID_LEN, check_identifier
from ..ports import Ledger, MetricsSink
from .alert_planning import AlertPlanner
from .hot_state import HotState
from .journal_drain import JournalDrain
from .pricing import Pricing
from .spend_state import SpendState

__all__ = ["FUTURE_TOLERANCE", "MAX_BATCH", "MAX_JOB_COST", "Metering"]

log = logging.getLogger("jobbudget")
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_BATCH = 100_000
#: No single job may cost more than this (a broken reporter, not a real job).
MAX_JOB_COST = Decimal(1_000_000)


def _duration(span: timedelta) -> str:
    """``2 days``, ``36 hours``, ``90 minutes``: a window as people say it."""
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"


class Metering:
    def __init__(
        self,
        ledger: Ledger,
        *,
        spend: SpendState,
        hot: HotState,
        pricing: Pricing,
        planner: AlertPlanner,
        metrics: MetricsSink,
        config: Config,
        clock: Callable[[], datetime],
    ) -> None:
        self._ledger = ledger
        self._spend = spend
        self._hot = hot
        self._pricing = pricing
        self._planner = planner
        self._metrics = metrics
        self._config = config
        self._clock = clock
        #: a batch failed at a moment its commit may have gone through
        self.commit_unknown = False
        #: the metering journal's drain (``metering_journal``), set by the composition root
        self.drain: JournalDrain | None = None
        #: called with each committed batch (and which jobs were new): the refund policy
        self.after_commit: Callable[[Sequence[JobRecord], Sequence[bool]], object] = lambda records, new: None

    def _validate(
        self, batch: Sequence[JobMetrics], reservation_ids: Sequence[str | None] | None, now: datetime, late: bool
    ) -> None:
        if len(batch) > MAX_BATCH:
            raise ValidationError("batch", len(batch), f"must hold at most {MAX_BATCH} jobs")
        if reservation_ids is not None:
            if len(reservation_ids) != len(batch):
                raise ValidationError("reservation_ids", len(reservation_ids), f"must hold one per job ({len(batch)})")
            for i, rid in enumerate(reservation_ids):
                if rid is not None:
                    check_identifier(f"reservation_ids[{i}]", rid, max_len=MAX_ID_LEN)
        limit = now + FUTURE_TOLERANCE
        oldest = None if late else now - self._config.late_job_window
        for i, m in enumerate(batch):
            if not isinstance(m, JobMetrics):
                raise ValidationError(f"batch[{i}]", type(m).__name__, "must be a JobMetrics")
            if m.timestamp is not None and m.timestamp > limit:
                raise ValidationError(f"batch[{i}].timestamp", m.timestamp.isoformat(), "is in the future")
            if oldest is not None and m.timestamp is not None and m.timestamp < oldest:
                raise ValidationError(
                    f"batch[{i}].timestamp",
                    m.timestamp.isoformat(),
                    f"is more than {_duration(self._config.late_job_window)} in the past (late_job_window): "
                    "historic jobs are imported with an admin key or `jobbudget import`",
                )

    def process(
        self,
        batch: Sequence[JobMetrics],
        *,
        reservation_ids: Sequence[str | None] | None,
        accept_late: bool,
        journal: bool = False,
    ) -> list[JobCost]:
        """See :meth:`jobbudget.service.BudgetService.process_job_costs`.  With
        ``journal`` and a metering journal configured, the batch is durable once
        journaled and reaches the ledger in the background (:mod:`.journal_drain`)."""
        now = self._clock()
        self._validate(batch, reservation_ids, now, accept_late)
        self.recount_unknown_commit()
        spend = self._spend
        if journal and self.drain is not None:
            # no write lock: the drain holds it while it writes the ledger, and a job
            # priced a moment before a period rolls counts in the period it finished in
            records, ends = self._price(batch, now)
            return self._journaled(batch, records, ends, reservation_ids, self.drain)
        with spend.write:  # no roll or resync can change the index meanwhile
            index = spend.index
            records, ends = self._price(batch, now)
            # the alerts this spend fires are written in the same transaction
            try:
                result = self._ledger.record_jobs(records, plan=self._planner.plan(records, ends, now))
            except StorageUnavailableError:
                self.commit_unknown = True  # the connection may have dropped after the commit
                raise
            with spend.lock:  # only jobs really stored count, once committed
                for record, new in zip(records, result.inserted, strict=True):
                    if new:
                        index.add(record.spend_keys, record.cost.total_cost)
            self._planner.fired.update(result.fired)
            self._count_stored(records, result.inserted)
            # the spend and the settled holds together, after the commit (never a moment
            # with neither); a hold is settled only by its own tenant's job
            holds = [
                (rid, m.tenant_id) for m, rid in zip(batch, reservation_ids or (), strict=False) if rid is not None
            ]
            self._hot.publish(records, result.inserted, holds)
        self._planner.announce(result.alerts)
        self.after_commit(records, result.inserted)
        first_cost: dict[tuple[str, str], JobCost] = {}
        out: list[JobCost] = []
        for record, new in zip(records, result.inserted, strict=True):
            key = (record.metrics.tenant_id, record.metrics.job_id)
            if new:
                first_cost[key] = record.cost
                out.append(record.cost)
            elif key in first_cost:
                out.append(replace(first_cost[key], duplicate=True))
            else:
                out.append(result.existing[key])
        return out

    def _price(
        self, batch: Sequence[JobMetrics], now: datetime
    ) -> tuple[list[JobRecord], dict[tuple[str, date], date]]:
        """Each job priced, with the budget periods it counts toward (and their ends)."""
        engine = self._pricing.engine
        index = self._spend.index
        records: list[JobRecord] = []
        ends: dict[tuple[str, date], date] = {}
        priced_from = time.perf_counter()
        for m in batch:
            ts = now if m.timestamp is None else m.timestamp.astimezone(UTC)
            try:
                cost = engine.calculate_job_cost(m, timestamp=ts)
            except ValidationError as exc:  # an unpriced resource: name the job
                raise ValidationError(f"batch[{len(records)}].{exc.field}", exc.value, exc.reason) from None
            if cost.total_cost > MAX_JOB_COST:
                raise ValidationError(
                    f"batch[{len(records)}]",
                    m.job_id,
                    f"costs {cost.total_cost}, over {MAX_JOB_COST}: check its metrics",
                )
            keys = index.spend_keys(m.tenant_id, m.queue_name, ts, ends, m.labels)
            records.append(JobRecord(metrics=m, cost=cost, timestamp=ts, day=ts.date(), spend_keys=keys))
        self._metrics.priced(jobs=len(records), seconds=time.perf_counter() - priced_from)
        return records, ends

    def _journaled(
        self,
        batch: Sequence[JobMetrics],
        records: list[JobRecord],
        ends: dict[tuple[str, date], date],
        reservation_ids: Sequence[str | None] | None,
        drain: JournalDrain,
    ) -> list[JobCost]:
        """Journal the batch (durable), count its spend and settle its holds in the
        shared state at once; the drain stores it.  A job
        repeated within the batch counts once; one the ledger already has (a
        redelivery) is found by the drain, which takes its spend back."""
        first: dict[tuple[str, str], JobCost] = {}
        new: list[bool] = []
        for record in records:
            key = (record.metrics.tenant_id, record.metrics.job_id)
            new.append(key not in first)
            first.setdefault(key, record.cost)
        unique = [r for r, n in zip(records, new, strict=True) if n]
        position = drain.journal.append(unique)
        drain.submit(unique, ends, position)
        holds = [(rid, m.tenant_id) for m, rid in zip(batch, reservation_ids or (), strict=False) if rid is not None]
        self._hot.publish(records, new, holds)
        return [
            r.cost if n else replace(first[(r.metrics.tenant_id, r.metrics.job_id)], duplicate=True)
            for r, n in zip(records, new, strict=True)
        ]

    def recount_unknown_commit(self) -> None:
        """After a batch failed with the database unreachable, the ledger may hold it
        although it was never counted here (its retry is then a duplicate, counted by
        nobody): rebuild the spend from the ledger, and Redis from it, once it answers."""
        if not self.commit_unknown:
            return
        with self._spend.write:
            try:
                self._spend.reload(self._clock())
            except StorageUnavailableError as exc:
                log.debug("spend not rebuilt yet, the database is still unavailable: %s", exc)
                return
            self.commit_unknown = False
            self._hot.mark_dirty()  # the next shared tick rebuilds Redis from the ledger

    def _count_stored(self, records: Sequence[JobRecord], inserted: Sequence[bool]) -> None:
        """After a commit (under the write lock): usage history for estimates, spend
        per tenant for the metrics, and each queue's mean job cost."""
        per_tenant: dict[str, Decimal] = {}
        for record, new in zip(records, inserted, strict=True):
            if new:
                m, cost = record.metrics, record.cost.total_cost
                self._pricing.observe(m, cost)
                per_tenant[m.tenant_id] = per_tenant.get(m.tenant_id, ZERO) + cost
        for tenant_id, amount in per_tenant.items():
            self._metrics.stored(tenant_id=tenant_id, amount=amount)
