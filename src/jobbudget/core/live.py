"""What the live WebSocket (``/v1/ws``) asks, so that following budgets costs
nothing while nothing happens.

* :meth:`LiveView.version`: O(1), whether anything a budget's status depends on
  may have changed since the last call (this process's spend state, its rebuilds, and
  other processes' commits through the store's change feed).
* :meth:`LiveView.marks`: per budget, O(1) from the in-memory state, a
  :class:`BudgetMark` of what its status is computed from (the budget's version, its
  period, its spend): while a budget's mark is unchanged, so is its status, except
  for what time alone changes, which :attr:`LiveMarks.wake_at` tells (a period roll,
  the end of a grace period).

With a shared state (Redis or the database) the spend of the marks is read from it
in one batch, as :meth:`get_budget_status` does one budget at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from ..domain.money import ZERO
from ..ports import ChangeFeed, StoreLifecycle
from .hot_state import HotState
from .spend_state import SpendState

__all__ = ["UNTRACKED", "BudgetMark", "LiveMarks", "LiveVersion", "LiveView"]

_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LiveVersion:
    """Equal versions: no budget, period or spend changed in between."""

    index: int  # the spend state in use (a rebuild makes a new one)
    changes: int  # changes made to it by this process
    commits: int  # other processes' commits seen


@dataclass(frozen=True, slots=True)
class BudgetMark:
    """What a budget's status is computed from.  ``tracked`` is False for a budget the
    service does not enforce now (inactive or unknown): its status is read from the
    store, and its mark never changes."""

    tracked: bool
    updated_at: datetime | None = None
    period_start: date | None = None
    spend: Decimal = ZERO


UNTRACKED = BudgetMark(tracked=False)


@dataclass(frozen=True, slots=True)
class LiveMarks:
    marks: dict[str, BudgetMark] = field(default_factory=dict)
    #: the first instant at which time alone may change a status (a period ends or
    #: starts, a grace period ends); marks must be read again then
    wake_at: datetime = _NEVER


class LiveView:
    def __init__(
        self, lifecycle: StoreLifecycle, *, spend: SpendState, hot: HotState, clock: Callable[[], datetime]
    ) -> None:
        self._lifecycle = lifecycle
        self._spend = spend
        self._hot = hot
        self._clock = clock
        self._feed: ChangeFeed | None = None
        self._commits = 0

    def version(self) -> LiveVersion:
        """O(1): changes whenever a budget, a period or a spend may have changed (by
        this process or, through the store's change feed, by another one)."""
        if not self._hot.shared:
            self._spend.look_for_changes()
            commits = self._spend.generation
        else:  # checks read the shared state, not the feed: the live view has its own
            if self._feed is None:
                self._feed = self._lifecycle.changes()
            if self._feed.changed():
                self._commits += 1
            commits = self._commits
        index = self._spend.index
        return LiveVersion(index.serial, index.changes, commits)

    def marks(self, budget_ids: Sequence[str]) -> LiveMarks:
        """The marks of ``budget_ids`` now (O(1) each from memory; a period that has
        ended is rolled and, after other processes' commits, the spend re-read from the
        ledger, in one query for all of them)."""
        now = self._clock()
        snapshot = self._spend.snapshots(budget_ids, now)
        keys = [(s.budget.tenant_id, s.key) for s in snapshot if s is not None and s.key is not None]
        spend = self._hot.spends(keys)
        marks: dict[str, BudgetMark] = {}
        wake_at = _NEVER
        for budget_id, state in zip(budget_ids, snapshot, strict=True):
            if state is None:
                marks[budget_id] = UNTRACKED
                continue
            key = state.key
            marks[budget_id] = BudgetMark(
                tracked=True,
                updated_at=state.budget.updated_at,
                period_start=key.period_start if key else None,
                spend=spend.get(key, state.spend) if key else state.spend,
            )
            wake_at = min(wake_at, state.valid_until)
            grace = state.thresholds.grace_until
            if grace is not None and grace > now:
                wake_at = min(wake_at, grace)
        return LiveMarks(marks, wake_at)
