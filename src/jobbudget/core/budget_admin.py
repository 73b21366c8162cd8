"""Budgets: create, change, deactivate, read, and the status of one budget now.  A
budget's current-period spend is recounted from the stored jobs whenever it is
stored, and the shared counters (Redis) get the same number, so a new or re-scoped
budget starts exact in every process."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from ..config import Config
from ..counters.memory import BudgetState
from ..domain.budget import Budget, validate_budget
from ..domain.budget_status import BudgetStatus
from ..domain.codec import to_jsonable
from ..domain.enforcement import EnforcementAction, Thresholds, decide, utilization
from ..domain.errors import BudgetError, ConflictError, JobBudgetError, NotFoundError, ValidationError
from ..domain.money import ZERO
from ..domain.outbound import check_channel_target
from ..domain.periods import PeriodWindow, resolve_period, window_at
from ..domain.records import AuditEntry, SpendKey
from ..domain.validation import MAX_ID_LEN, check_identifier
from ..ports import Ledger, PlatformStore
from .alert_planning import AlertPlanner
from .hot_state import HotState
from .spend_state import SpendState, previous_key

__all__ = ["BudgetAdmin", "BudgetStatus"]


class BudgetAdmin:
    def __init__(
        self,
        ledger: Ledger,
        *,
        spend: SpendState,
        hot: HotState,
        planner: AlertPlanner,
        config: Config,
        clock: Callable[[], datetime],
        viewing: Callable[[], bool] = lambda: False,
        platform: PlatformStore | None = None,
    ) -> None:
        self._platform = platform
        self._viewing = viewing  # reads as of another moment: from the ledger, the live state untouched
        self._ledger = ledger
        self._spend = spend
        self._hot = hot
        self._planner = planner
        self._config = config
        self._clock = clock

    def validate(self, budget: Budget, *, stored: Budget | None = None) -> None:
        validate_budget(budget)
        self._check_targets(budget, stored)

    def _check_targets(self, budget: Budget, stored: Budget | None) -> None:
        policy = self._config.outbound_policy()
        kept = {(c.type, c.target) for c in stored.notifications} if stored is not None else set()
        for index, channel in enumerate(budget.notifications):
            if (channel.type, channel.target) not in kept:
                check_channel_target(policy, channel, f"notifications[{index}].target")

    def create(self, budget: Budget, *, actor: str) -> Budget:
        self.validate(budget)
        if budget.id is not None:
            raise ValidationError("id", budget.id, "is assigned by create_budget; leave it empty")
        now = self._clock()
        stored = replace(
            budget,
            id=str(uuid.uuid4()),
            period=resolve_period(budget.period, now),
            created_at=now,
            updated_at=now,
            created_by=actor,
        )
        return self._persist("create_budget", stored, now=now, actor=actor)

    def update(self, budget: Budget, *, actor: str) -> Budget:
        if budget.id is None:
            raise ValidationError("id", None, "is required to update a budget")
        validate_budget(budget)
        old = self._ledger.get_budget(budget.id)
        self._check_targets(budget, old)
        if budget.tenant_id != old.tenant_id:
            raise ConflictError(f"budget {budget.id} belongs to tenant {old.tenant_id!r}; tenant_id cannot change")
        now = self._clock()
        stored = replace(
            budget,
            period=resolve_period(budget.period, now),
            created_at=old.created_at,
            updated_at=now,
            created_by=old.created_by,
        )
        return self._persist("update_budget", stored, now=now, actor=actor)

    def recount(self, budget: Budget, *, actor: str) -> Budget:
        """Store ``budget`` again with its current period's spend recounted (the tree
        under its node changed)."""
        return self._persist("update_budget", budget, now=self._clock(), actor=actor, kind="budget_recounted")

    def _persist(self, operation: str, budget: Budget, *, now: datetime, actor: str, kind: str = "") -> Budget:
        """Store ``budget`` with its current-period spend recounted from the stored
        jobs, and make enforcement use it (or drop it when inactive)."""
        spend = self._spend
        with spend.write:
            generation = spend.generation  # the seed below is read from the ledger after this
            window = window_at(budget.period, now)
            seed: dict[SpendKey, Decimal] = {}
            if window is not None and budget.active:
                seed[SpendKey(str(budget.id), window.start_date)] = self._spend_of(budget, window)
            write = self._ledger.add_budget if operation == "create_budget" else self._ledger.save_budget
            kind = kind or ("budget_created" if operation == "create_budget" else "budget_updated")
            try:
                write(budget, seed=seed, audit=_budget_audit(kind, budget, now, actor))
            except JobBudgetError as exc:
                if isinstance(exc, (ValidationError, NotFoundError)):
                    raise
                raise BudgetError(operation, budget.tenant_id, exc) from exc
            before = previous_key(budget, window) if budget.active else None
            previous = spend.load_spend(before) if before is not None else None  # not under `lock`
            with spend.lock:
                if budget.active:
                    state = spend.track(
                        spend.index,
                        budget,
                        window=window,
                        spend=next(iter(seed.values()), ZERO),
                        now=now,
                        previous=previous,
                    )
                    state.synced = generation
                else:
                    spend.index.remove(str(budget.id))
            self._hot.seed([(budget.tenant_id, key, amount) for key, amount in seed.items()])
        self._planner.budget_changed(budget, window, next(iter(seed.values()), ZERO))
        return budget

    def get(self, budget_id: str) -> Budget:
        check_identifier("budget_id", budget_id, max_len=MAX_ID_LEN)
        return self._ledger.get_budget(budget_id)

    def status(self, budget_id: str) -> BudgetStatus:
        now = self._clock()
        viewed = self._viewing()
        found = None if viewed else self._spend.snapshots([budget_id], now)[0]
        if found is None:
            budget = self._ledger.get_budget(budget_id)
            window = window_at(budget.period, now)
            if window is None:
                spend = ZERO
            elif viewed and budget.active:  # what the live state would have loaded for that period
                spend = self._spend.load_spend(SpendKey(str(budget.id), window.start_date))
            else:
                spend = self._spend_of(budget, window)
            state = BudgetState(budget, Thresholds.of(budget), window, spend)
        else:
            state = found
        budget, window = state.budget, state.window
        if window is not None and budget.active and not viewed:  # every process's spend, not only this one's
            key = SpendKey(str(budget.id), window.start_date)
            shared = self._hot.spends([(budget.tenant_id, key)])
            if key in shared:
                state = replace(state, spend=shared[key])
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
            budget=state.stored,  # as stored: what an editor sends back (never the raised amount)
            current_spend=state.spend,
            utilization=utilization(state.spend, budget.amount),
            action=action,
            period_start=window.start_date if window else None,
            period_end=window.end_date if window else None,
            amount_in_force=budget.amount,
            carried=state.carried,
            raised=state.raised,
        )

    def _spend_of(self, budget: Budget, window: PeriodWindow) -> Decimal:
        """The window's spend of every tenant below the budget's node (its jobs with
        the budget's labels), and the adjustments counted in it."""
        tenants = self._spend.index.tree.subtree(budget.tenant_id)
        total = self._ledger.compute_spend(
            tenant_id=budget.tenant_id,
            tenant_ids=tenants,
            queue_name=budget.queue_name,
            start=window.start,
            end=window.end,
            labels=budget.labels or None,
        )
        if self._platform is not None:  # the adjustments in its scope, counted as its jobs are
            for a in self._platform.list_adjustments(
                tenant_ids=tenants, start=window.start.date(), end=window.end.date()
            ):
                if (
                    window.start <= a.occurred_at < window.end
                    and (not budget.queue_name or a.queue_name == budget.queue_name)
                    and budget.matches(a.labels)
                ):
                    total += a.amount
        return total


def _budget_audit(kind: str, budget: Budget, now: datetime, actor: str) -> AuditEntry:
    return AuditEntry(
        at=now,
        kind=kind,
        tenant_id=budget.tenant_id,
        queue_name=budget.queue_name,
        budget_id=str(budget.id),
        actor=actor,
        details=to_jsonable(budget.redacted()),
    )
