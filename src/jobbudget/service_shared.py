"""The shared hot state's life cycle in :class:`jobbudget.service.BudgetService`:
connect, load the counters from the ledger, publish each committed batch's spend,
notice when Redis is down or lost its data and rebuild it, reconcile against the
ledger, and pick up budget changes made by other processes.

The ledger in the database is the record.  Redis holds a hot copy that every
process reads at admission; a batch's spend is added to it right after the batch
commits.  If Redis is unreachable, ``redis_failure_mode`` decides admissions
(``local``: from the ledger in the database plus this process's reservations;
``fail_open``: allow; ``fail_closed``: block), the outage is logged once and
exported as ``jobbudget_shared_state_available``, and when Redis answers again the
counters are rebuilt from the ledger, so no job cost is lost."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .config import Config
from .counters.memory import SpendIndex
from .domain.errors import JobBudgetError, StorageUnavailableError, ValidationError
from .domain.money import ZERO
from .domain.records import JobRecord, SpendKey
from .ports import MetricsSink, SharedState, Store

if TYPE_CHECKING:
    from .counters.shared import RedisSharedState

__all__ = ["SharedMixin"]

log = logging.getLogger("jobbudget")
#: Seconds after a rebuild of the Redis counters during which they are reconciled
#: with the ledger every second (otherwise every ``reconcile_interval``).
RECONCILE_AFTER_REBUILD = 30.0


class SharedMixin:
    """Mixed into BudgetService (which sets the attributes declared here)."""

    config: Config
    _store: Store
    _index: SpendIndex
    _write: threading.RLock
    _metrics: MetricsSink
    _shared: SharedState | None
    _shared_down: bool = False
    _shared_dirty: bool = False
    _drift_seen: dict[SpendKey, Decimal]
    #: after a rebuild, reconcile every second until this monotonic time
    _reconcile_often_until: float = 0.0
    _budget_print: Any = None

    if TYPE_CHECKING:  # provided by BudgetService

        def _reload(self) -> None: ...
        def _now(self) -> datetime: ...

    def _open_shared(self) -> None:
        """Connect to Redis (``redis_url``) and load the counters if it has none."""
        self._drift_seen = {}
        mode = self.config.shared_state
        if mode == "auto":
            mode = "redis" if self.config.redis_url else "memory"
        if mode == "memory":
            return
        if mode == "database":
            from .counters.database import DatabaseSharedState

            self._shared = DatabaseSharedState(self._store)
            return
        if not self.config.redis_url:
            raise ValidationError("redis_url", None, "is required with shared_state: redis")
        from .counters.shared import RedisSharedState, connect

        client = connect(self.config.redis_url, timeout=self.config.redis_timeout)
        redis = RedisSharedState(client, prefix=self.config.redis_prefix)
        self._shared = redis
        try:
            if not redis.loaded():
                self._load_shared()
            self._metrics.shared_state(available=True)
        except StorageUnavailableError as exc:
            self._shared_failed(exc)

    def _redis(self) -> RedisSharedState | None:
        from .counters.shared import RedisSharedState

        return self._shared if isinstance(self._shared, RedisSharedState) else None

    def _ledger_entries(self) -> list[tuple[str, SpendKey, Decimal]]:
        """Every budget period in force, with its spend in the ledger now."""
        states = [s for s in self._index.states() if s.key is not None]
        keys = [s.key for s in states if s.key is not None]
        spend = self._store.load_spend(keys)
        return [(s.budget.tenant_id, s.key, spend.get(s.key, ZERO)) for s in states if s.key is not None]

    def _load_shared(self) -> None:
        """(Re)build the counters from the ledger.  A batch another process commits
        while this runs can be overwritten (or counted twice), so the counters are
        reconciled every second for :data:`RECONCILE_AFTER_REBUILD` seconds after it:
        a difference seen twice is corrected within about two seconds."""
        with self._write:
            entries = self._ledger_entries()
        assert self._shared is not None
        self._shared.load(entries)
        self._reconcile_often_until = time.monotonic() + RECONCILE_AFTER_REBUILD
        log.info("loaded %d budget counters into Redis from the ledger", len(entries))

    def _publish(self, records: Sequence[JobRecord], inserted: Sequence[bool]) -> None:
        """Add a committed batch's spend to the shared counters (never raises: the
        ledger has it, and the counters are rebuilt if this fails)."""
        if self._shared is None:
            return
        if self._shared_down:
            self._shared_dirty = True
            return
        totals: dict[tuple[str, SpendKey], Decimal] = {}
        for record, new in zip(records, inserted, strict=True):
            if new:
                for key in record.spend_keys:
                    pair = (record.metrics.tenant_id, key)
                    totals[pair] = totals.get(pair, ZERO) + record.cost.total_cost
        try:
            self._shared.add_spend([(tenant, key, amount) for (tenant, key), amount in totals.items()])
        except JobBudgetError as exc:
            self._shared_dirty = True
            self._shared_failed(exc)

    def _shared_failed(self, exc: Exception) -> None:
        """Logged once per outage, exported as a metric.  Only Redis has a failure
        mode: with the database as the shared state, its errors are the caller's."""
        if self._redis() is None:
            raise exc
        if not self._shared_down:
            log.warning(
                "shared budget state (Redis) unavailable, deciding admissions with redis_failure_mode=%s: %s",
                self.config.redis_failure_mode,
                exc,
            )
            self._metrics.shared_state(available=False)
        self._shared_down = True

    def _shared_tick(self) -> None:
        """Every second: notice Redis coming back or having lost its data, and
        rebuild the counters from the ledger then."""
        redis = self._redis()
        if redis is None:
            return
        try:
            loaded = redis.loaded()
            if loaded and not self._shared_down:
                periods = [(s.budget.tenant_id, s.key) for s in self._index.states() if s.key is not None]
                redis.sweep(periods, now=self._now())
            if self._shared_down or self._shared_dirty or not loaded:
                self._load_shared()
                if self._shared_down:
                    log.warning("shared budget state (Redis) is back; counters rebuilt from the ledger")
                elif not loaded:
                    log.warning("Redis had lost the budget counters; rebuilt from the ledger")
                self._shared_down = self._shared_dirty = False
                self._drift_seen = {}
                self._metrics.shared_state(available=True)
            elif time.monotonic() < self._reconcile_often_until:
                self._reconcile()
        except JobBudgetError as exc:
            self._shared_failed(exc)

    def _reconcile(self) -> None:
        """Compare the counters with the ledger.  A difference seen twice in a row
        (not a batch in flight between its commit and its counter update) is
        corrected; every difference is logged and exported."""
        redis = self._redis()
        if redis is None or self._shared_down:
            return
        try:
            with self._write:
                entries = self._ledger_entries()
            shared = redis.spends([(t, k) for t, k, _ in entries])
        except JobBudgetError as exc:
            self._shared_failed(exc)
            return
        seen: dict[SpendKey, Decimal] = {}
        worst = ZERO
        for (tenant, key, ledger), hot in zip(entries, shared, strict=True):
            drift = hot - ledger
            if not drift:
                continue
            worst = max(worst, abs(drift))
            log.warning(
                "Redis spend of budget %s period %s is off the ledger by %s", key.budget_id, key.period_start, drift
            )
            if self._drift_seen.get(key) == drift:
                try:
                    redis.add_spend([(tenant, key, -drift)])
                except JobBudgetError as exc:
                    self._shared_failed(exc)
                    return
            else:
                seen[key] = drift
        self._drift_seen = seen
        self._metrics.drift(amount=worst)

    def _watch_budgets(self) -> None:
        """Pick up budgets created, changed or deactivated by other processes (the
        periodic worker runs this every ``budget_watch_interval``, 1 s by default)."""
        try:
            fingerprint = tuple(self._store.budget_versions())
        except JobBudgetError as exc:
            log.debug("budget watch failed: %s", exc)
            return
        if self._budget_print is not None and fingerprint != self._budget_print:
            self._reload()
        self._budget_print = fingerprint
