"""Budgets in :class:`jobbudget.service.BudgetService`: create, change, deactivate,
read, and the status of one budget now.  A budget's current-period spend is recounted
from the stored jobs whenever it is stored, and the shared counters (Redis) get the
same number, so a new or re-scoped budget starts exact in every process."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .config import Config
from .counters.memory import BudgetState, SpendIndex
from .domain.budget import Budget, validate_budget
from .domain.budget_status import BudgetStatus
from .domain.enforcement import EnforcementAction, Thresholds, decide, utilization
from .domain.errors import (
    BudgetError,
    ConflictError,
    JobBudgetError,
    NotFoundError,
    StorageUnavailableError,
    ValidationError,
)
from .domain.money import ZERO
from .domain.outbound import check_channel_target
from .domain.periods import PeriodWindow, resolve_period, window_at
from .domain.records import AuditEntry, SpendKey
from .domain.validation import MAX_ID_LEN, check_identifier
from .ports import SharedState, Store

__all__ = ["BudgetStatus", "BudgetsMixin"]


class BudgetsMixin:
    """Mixed into BudgetService (which sets the attributes declared here)."""

    config: Config
    _store: Store
    _index: SpendIndex
    _generation: int
    _write: threading.RLock
    _state: threading.Lock
    _shared: SharedState | None
    _shared_down: bool
    _viewed: threading.local

    if TYPE_CHECKING:  # provided by BudgetService and SharedMixin

        def _now(self) -> datetime: ...
        def _load_spend(self, key: SpendKey) -> Decimal: ...
        def _shared_failed(self, exc: Exception) -> None: ...
        def _look_for_changes(self) -> None: ...
        def _budget_changed_alerts(self, budget: Budget, window: PeriodWindow | None, spend: Decimal) -> None: ...
        def _resync(self, states: Sequence[BudgetState]) -> None: ...

    def validate_budget(self, budget: Budget, *, stored: Budget | None = None) -> None:
        """Raise :class:`ValidationError` naming the first field that is wrong, including a
        new channel whose target is an address the outbound policy refuses (channels the
        ``stored`` budget already had are kept as they are: they are refused when sent)."""
        validate_budget(budget)
        self._check_targets(budget, stored)

    def _check_targets(self, budget: Budget, stored: Budget | None) -> None:
        policy = self.config.outbound_policy()
        kept = {(c.type, c.target) for c in stored.notifications} if stored is not None else set()
        for index, channel in enumerate(budget.notifications):
            if (channel.type, channel.target) not in kept:
                check_channel_target(policy, channel, f"notifications[{index}].target")

    def create_budget(self, budget: Budget, *, actor: str = "system") -> Budget:
        """Validate and store a budget; returns it with its id and resolved period."""
        self.validate_budget(budget)
        if budget.id is not None:
            raise ValidationError("id", budget.id, "is assigned by create_budget; leave it empty")
        now = self._now()
        stored = replace(
            budget,
            id=str(uuid.uuid4()),
            period=resolve_period(budget.period, now),
            created_at=now,
            updated_at=now,
            created_by=actor,
        )
        return self._persist("create_budget", stored, now=now, actor=actor)

    def update_budget(self, budget: Budget, *, actor: str = "system") -> Budget:
        """Replace a stored budget (same id and tenant); the current period's spend is
        recounted from the stored jobs for its (possibly new) scope and period."""
        if budget.id is None:
            raise ValidationError("id", None, "is required to update a budget")
        validate_budget(budget)
        old = self._store.get_budget(budget.id)
        self._check_targets(budget, old)
        if budget.tenant_id != old.tenant_id:
            raise ConflictError(f"budget {budget.id} belongs to tenant {old.tenant_id!r}; tenant_id cannot change")
        now = self._now()
        stored = replace(
            budget,
            period=resolve_period(budget.period, now),
            created_at=old.created_at,
            updated_at=now,
            created_by=old.created_by,
        )
        return self._persist("update_budget", stored, now=now, actor=actor)

    def _persist(self, operation: str, budget: Budget, *, now: datetime, actor: str) -> Budget:
        """Store ``budget`` with its current-period spend recounted from the stored
        jobs, and make enforcement use it (or drop it when inactive)."""
        with self._write:
            generation = self._generation  # the seed below is read from the ledger after this
            window = window_at(budget.period, now)
            seed: dict[SpendKey, Decimal] = {}
            if window is not None and budget.active:
                seed[SpendKey(str(budget.id), window.start_date)] = self._spend_of(budget, window)
            write = self._store.add_budget if operation == "create_budget" else self._store.save_budget
            kind = "budget_created" if operation == "create_budget" else "budget_updated"
            try:
                write(budget, seed=seed, audit=self._budget_audit(kind, budget, now, actor))
            except JobBudgetError as exc:
                if isinstance(exc, (ValidationError, NotFoundError)):
                    raise
                raise BudgetError(operation, budget.tenant_id, exc) from exc
            with self._state:
                if budget.active:
                    state = self._index.put(budget, window=window, spend=next(iter(seed.values()), ZERO), now=now)
                    state.synced = generation
                else:
                    self._index.remove(str(budget.id))
            if self._shared is not None and not self._shared_down and seed:
                try:  # the recount, for every process (Redis; a no-op on the database)
                    self._shared.load([(budget.tenant_id, key, spend) for key, spend in seed.items()])
                except StorageUnavailableError as exc:
                    self._shared_failed(exc)
        self._budget_changed_alerts(budget, window, next(iter(seed.values()), ZERO))
        return budget

    def deactivate_budget(self, budget_id: str, *, actor: str = "system") -> Budget:
        budget = self.get_budget(budget_id)
        return self.update_budget(replace(budget, active=False), actor=actor)

    def get_budget(self, budget_id: str) -> Budget:
        check_identifier("budget_id", budget_id, max_len=MAX_ID_LEN)
        return self._store.get_budget(budget_id)

    def list_budgets(self, tenant_id: str | None = None, *, include_inactive: bool = False) -> list[Budget]:
        return self._store.list_budgets(tenant_id=tenant_id, include_inactive=include_inactive)

    @contextlib.contextmanager
    def as_of(self, at: datetime) -> Iterator[None]:
        """Reads made in this thread inside the block see ``at`` as now, as they would
        on a service whose clock said ``at`` (``jobbudget tui --at``: what is shown).
        Nothing else moves: other threads, enforcement and the background work keep the
        real clock.  For reads only: a write made inside the block would be stamped
        ``at``."""
        if not isinstance(at, datetime) or at.tzinfo is None:
            raise ValidationError("at", at, "must be an aware datetime")
        outer = self._viewed_at()
        self._viewed.at = at.astimezone(UTC)
        try:
            yield
        finally:
            self._viewed.at = outer

    def _viewed_at(self) -> datetime | None:
        """The moment :meth:`as_of` set for this thread's reads, if any."""
        at: datetime | None = getattr(self._viewed, "at", None)
        return at

    def get_budget_status(self, budget_id: str) -> BudgetStatus:
        now = self._now()
        viewed = self._viewed_at() is not None  # as_of(): from the ledger, the live state untouched
        state = None if viewed else self._live_state(budget_id, now)
        if state is None:
            budget = self._store.get_budget(budget_id)
            window = window_at(budget.period, now)
            if window is None:
                spend = ZERO
            elif viewed and budget.active:  # what the live state would have loaded for that period
                spend = self._load_spend(SpendKey(str(budget.id), window.start_date))
            else:
                spend = self._spend_of(budget, window)
            state = BudgetState(budget, Thresholds.of(budget), window, spend)
        budget, window = state.budget, state.window
        if window is not None and budget.active and not viewed and self._shared is not None and not self._shared_down:
            try:  # every process's spend, not only this one's
                spend = self._shared.spends([(budget.tenant_id, SpendKey(str(budget.id), window.start_date))])[0]
                state = replace(state, spend=spend)
            except StorageUnavailableError as exc:
                self._shared_failed(exc)
        if window is None:
            action = EnforcementAction(
                type="allow",
                budget_id=budget.id,
                budget_amount=budget.amount,
                message=f"budget {budget.id} is not in force now",
            )
        elif not budget.active:
            action = EnforcementAction(
                type="allow",
                budget_id=budget.id,
                current_spend=state.spend,
                budget_amount=budget.amount,
                utilization=utilization(state.spend, budget.amount),
                message=f"budget {budget.id} is inactive",
            )
        else:
            action = decide(
                budget=budget, thresholds=state.thresholds, window=window, spend=state.spend, priority=0, now=now
            )
        return BudgetStatus(
            budget=budget,
            current_spend=state.spend,
            utilization=utilization(state.spend, budget.amount),
            action=action,
            period_start=window.start_date if window else None,
            period_end=window.end_date if window else None,
        )

    def _live_state(self, budget_id: str, now: datetime) -> BudgetState | None:
        """A snapshot of the budget's enforcement state at ``now`` (None: not active)."""
        self._look_for_changes()
        with self._write, self._state:
            state = self._index.get(budget_id)
            if state is None:
                return None
            self._index.roll(state, now, self._load_spend)
            self._resync([state])
            return replace(state)  # a snapshot: later jobs do not change this status

    def _spend_of(self, budget: Budget, window: Any) -> Decimal:
        return self._store.compute_spend(
            tenant_id=budget.tenant_id, queue_name=budget.queue_name, start=window.start, end=window.end
        )

    @staticmethod
    def _budget_audit(kind: str, budget: Budget, now: datetime, actor: str) -> AuditEntry:
        from .domain.codec import to_jsonable

        return AuditEntry(
            at=now,
            kind=kind,
            tenant_id=budget.tenant_id,
            queue_name=budget.queue_name,
            budget_id=str(budget.id),
            actor=actor,
            details=to_jsonable(budget.redacted()),
        )
