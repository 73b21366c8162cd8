"""Keeping this process in step with the ledger, in the background: budgets other
processes created, changed or deactivated, the periodic rebuild of the spend state,
and (Redis) the shared counters' tick and reconciliation."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..domain.errors import JobBudgetError
from ..ports import Ledger
from .hot_state import HotState
from .spend_state import SpendState

__all__ = ["SharedSync"]

log = logging.getLogger("jobbudget")


class SharedSync:
    def __init__(self, ledger: Ledger, *, spend: SpendState, hot: HotState, clock: Callable[[], datetime]) -> None:
        self._ledger = ledger
        self._spend = spend
        self._hot = hot
        self._clock = clock
        self._budget_print: Any = None

    def reload(self) -> None:
        """Rebuild the in-memory spend state from the ledger now."""
        self._spend.reload(self._clock())

    def watch_budgets(self) -> None:
        """Pick up budgets created, changed or deactivated by other processes (the
        periodic worker runs this every ``budget_watch_interval``, 1 s by default)."""
        try:
            fingerprint = self._ledger.budget_token()
        except JobBudgetError as exc:
            log.debug("budget watch failed: %s", exc)
            return
        if self._budget_print is not None and fingerprint != self._budget_print:
            self.reload()
        self._budget_print = fingerprint

    def tick(self) -> None:
        """Every second: the shared counters notice an outage ending or lost data."""
        self._hot.tick()

    def reconcile(self) -> None:
        """Every ``flush_interval``: the shared counters against the ledger."""
        self._hot.reconcile()
