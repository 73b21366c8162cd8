"""One :class:`LiveHub` per application and event loop: the open sockets of ``/v1/ws``
by API key (and how many still wait for theirs: at most
:data:`MAX_ANONYMOUS_SOCKETS`), and the one task that watches every budget they follow.

Following budgets costs nothing while nothing happens.  Every :data:`POLL_SECONDS`
the hub asks the service in O(1) whether any budget, period or spend may have
changed (:meth:`BudgetService.live_version`); only then does it read the followed
budgets' marks (O(1) each, :meth:`BudgetService.live_marks`) and recompute the
status of those whose mark changed, once for all the sockets that follow them (the
forecast at most every :data:`FORECAST_SECONDS` per scope).  Time-driven changes
(a period ending, a grace period ending) wake it at their moment; every
:data:`REFRESH_SECONDS` it recomputes every followed status regardless (inactive
budgets, a shared state corrected by reconciliation).  With a shared state (Redis,
the database) it reads the marks at every poll for :data:`SETTLE_SECONDS` after a
change, since another process commits to the database before it counts the spend
in Redis.

Every :data:`REAUTH_SECONDS` it checks each key with open sockets again (a lookup at
most :data:`REAUTH_SECONDS` old): the sockets of a revoked key are closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool

from ..core.live import BudgetMark, LiveVersion
from ..domain.errors import AuthenticationError, JobBudgetError
from ..service import BudgetService
from .live_messages import StatusMessage

__all__ = [
    "FORECAST_SECONDS",
    "MAX_ANONYMOUS_PER_CLIENT",
    "MAX_ANONYMOUS_SOCKETS",
    "POLL_SECONDS",
    "REAUTH_SECONDS",
    "REFRESH_SECONDS",
    "LiveHub",
    "Subscriber",
]

log = logging.getLogger("jobbudget.api")
POLL_SECONDS = 0.25
SETTLE_SECONDS = 1.0
REFRESH_SECONDS = 60.0
FORECAST_SECONDS = 30.0
REAUTH_SECONDS = 1.0
#: Sockets per process (per application and event loop) that may wait for their first
#: message's key at once: one more is closed at once (1013, try again later).
MAX_ANONYMOUS_SOCKETS = 256
#: ... and from one client address (behind a proxy every client shares its address).
MAX_ANONYMOUS_PER_CLIENT = 8
_NEVER = datetime.max.replace(tzinfo=UTC)


class Subscriber:
    """One socket as the hub sees it: its key, what it follows, and the statuses the
    hub has for it since it last looked (``wake`` is set whenever there is news)."""

    def __init__(self, key_id: str, token: str) -> None:
        self.key_id = key_id
        self.token = token
        self.budgets: tuple[str, ...] = ()
        self.pending: dict[str, StatusMessage] = {}
        self.revoked = False
        self.wake = asyncio.Event()

    def offer(self, status: StatusMessage) -> None:
        self.pending[status.budget_id] = status
        self.wake.set()

    def revoke(self) -> None:
        self.revoked = True
        self.wake.set()


@dataclass(slots=True)
class _Known:
    mark: BudgetMark
    status: StatusMessage | None  # None: the budget could not be read


class LiveHub:
    def __init__(self, service: BudgetService, *, max_sockets_per_key: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.service = service
        self.max_sockets_per_key = max_sockets_per_key
        self._by_key: dict[str, set[Subscriber]] = {}
        self._anonymous = 0
        self._anonymous_from: dict[str, int] = {}
        self._followers: dict[str, set[Subscriber]] = {}
        self._known: dict[str, _Known] = {}
        self._forecasts: dict[tuple[str, str], tuple[float, Decimal | None]] = {}
        self._lock = asyncio.Lock()  # one reader of marks and statuses at a time
        self._task: asyncio.Task[None] | None = None
        self._version: LiveVersion | None = None
        self._settle_until = 0.0
        self._wake_at = _NEVER
        self._refresh_at = time.monotonic() + REFRESH_SECONDS
        self._auth_at = time.monotonic() + REAUTH_SECONDS

    @classmethod
    def of(cls, state: Any, service: BudgetService) -> LiveHub:
        """The hub of this application (``app.state``) on the running event loop."""
        hub: LiveHub | None = getattr(state, "live_hub", None)
        if hub is None or hub.loop is not asyncio.get_running_loop():
            hub = cls(service, max_sockets_per_key=service.config.ws_max_sockets_per_key)
            state.live_hub = hub
        return hub

    # -- sockets ------------------------------------------------------------------
    @property
    def max_anonymous_sockets(self) -> int:
        return MAX_ANONYMOUS_SOCKETS

    def wait_for_key(self, client: str) -> bool:
        """Count a socket without a key yet from ``client`` (its address), until
        :meth:`key_checked`; False when :data:`MAX_ANONYMOUS_SOCKETS` already wait, or
        :data:`MAX_ANONYMOUS_PER_CLIENT` from that address."""
        waiting = self._anonymous_from.get(client, 0)
        if self._anonymous >= MAX_ANONYMOUS_SOCKETS or waiting >= MAX_ANONYMOUS_PER_CLIENT:
            return False
        self._anonymous += 1
        self._anonymous_from[client] = waiting + 1
        return True

    def key_checked(self, client: str) -> None:
        self._anonymous -= 1
        left = self._anonymous_from.pop(client, 1) - 1
        if left > 0:
            self._anonymous_from[client] = left

    def join(self, subscriber: Subscriber) -> bool:
        """Count ``subscriber`` toward its key; False when the key has its maximum."""
        sockets = self._by_key.setdefault(subscriber.key_id, set())
        if len(sockets) >= self.max_sockets_per_key:
            return False
        sockets.add(subscriber)
        return True

    def leave(self, subscriber: Subscriber) -> None:
        sockets = self._by_key.get(subscriber.key_id)
        if sockets is not None:
            sockets.discard(subscriber)
            if not sockets:
                del self._by_key[subscriber.key_id]
        for budget_id in subscriber.budgets:
            followers = self._followers.get(budget_id)
            if followers is not None:
                followers.discard(subscriber)
                if not followers:
                    del self._followers[budget_id]
                    self._known.pop(budget_id, None)
        if not self._by_key and self._task is not None:
            self._task.cancel()
            self._task = None

    async def follow(self, subscriber: Subscriber, budget_ids: Sequence[str]) -> list[StatusMessage]:
        """Watch ``budget_ids`` for ``subscriber`` from now on; their statuses now."""
        async with self._lock:
            new = [i for i in budget_ids if i not in self._known]
            if new:
                marks = await run_in_threadpool(self.service.live_marks, new)
                self._wake_at = min(self._wake_at, marks.wake_at)
                await self._read(new, marks.marks)
            subscriber.budgets = tuple(budget_ids)
            for budget_id in budget_ids:
                self._followers.setdefault(budget_id, set()).add(subscriber)
            if self._task is None and self._by_key:
                self._task = asyncio.create_task(self._run())
            found = (self._known.get(i) for i in budget_ids)
            return [k.status for k in found if k is not None and k.status is not None]

    # -- the watch ------------------------------------------------------------------
    async def _run(self) -> None:
        while self._by_key:
            try:
                await self._reauthenticate()
                await self._tick()
            except JobBudgetError as exc:  # the database or Redis is out: try again next time
                log.debug("live status not read: %s", exc)
                self._version = None
            except Exception:
                log.exception("live status watch failed; trying again")
                self._version = None
            await asyncio.sleep(POLL_SECONDS)

    async def _reauthenticate(self) -> None:
        now = time.monotonic()
        if now < self._auth_at:
            return
        self._auth_at = now + REAUTH_SECONDS
        for sockets in list(self._by_key.values()):
            token = next(iter(sockets)).token
            try:
                await run_in_threadpool(partial(self.service.authenticate, token, max_age=REAUTH_SECONDS))
            except AuthenticationError:
                for subscriber in list(sockets):
                    subscriber.revoke()
            except JobBudgetError as exc:  # not known now: the key stands until it is
                log.debug("API key not checked again: %s", exc)

    async def _tick(self) -> None:
        now = time.monotonic()
        # in a thread: without a shared state the version asks the store's change feed
        # (SQLite: a query, behind the lock the checks' threads use for the same)
        version = await run_in_threadpool(self.service.live_version)
        if version != self._version:
            self._version = version
            if self.service.shares_state:
                self._settle_until = now + SETTLE_SECONDS
        elif now >= self._settle_until and now < self._refresh_at and self.service.now() < self._wake_at:
            return  # nothing can have changed
        refresh = now >= self._refresh_at
        if refresh:
            self._refresh_at = now + REFRESH_SECONDS
        async with self._lock:
            ids = list(self._followers)
            marks = await run_in_threadpool(self.service.live_marks, ids)
            self._wake_at = marks.wake_at
            changed = [i for i in ids if refresh or (k := self._known.get(i)) is None or k.mark != marks.marks[i]]
            if not changed:
                return
            await self._read(changed, marks.marks)
            for budget_id in changed:
                if budget_id not in self._followers:  # its last socket left meanwhile
                    self._known.pop(budget_id, None)
            if refresh:
                self._forget_forecasts()
        for budget_id in changed:
            known = self._known.get(budget_id)
            if known is not None and known.status is not None:
                for subscriber in self._followers.get(budget_id, ()):
                    subscriber.offer(known.status)

    async def _read(self, budget_ids: list[str], marks: dict[str, BudgetMark]) -> None:
        statuses = await run_in_threadpool(self._statuses, budget_ids)
        for budget_id, status in zip(budget_ids, statuses, strict=True):
            self._known[budget_id] = _Known(marks[budget_id], status)

    def _forget_forecasts(self) -> None:
        """Keep the forecasts of followed scopes only."""
        scopes = {(k.status.tenant_id, k.status.queue_name) for k in self._known.values() if k.status is not None}
        for scope in [s for s in self._forecasts if s not in scopes]:
            del self._forecasts[scope]

    def _statuses(self, budget_ids: list[str]) -> list[StatusMessage | None]:
        """(In a worker thread; one call at a time.)"""
        out: list[StatusMessage | None] = []
        for budget_id in budget_ids:
            try:
                status = self.service.get_budget_status(budget_id)
            except JobBudgetError:
                out.append(None)
                continue
            budget = status.budget
            out.append(
                StatusMessage(
                    budget_id=budget_id,
                    tenant_id=budget.tenant_id,
                    queue_name=budget.queue_name,
                    current_spend=status.current_spend,
                    budget_amount=status.amount,  # in force: with carry-over and raises
                    utilization=status.utilization,
                    action=status.action.type,
                    period_start=status.period_start,
                    period_end=status.period_end,
                    forecast_spend=self._forecast(budget.tenant_id, budget.queue_name),
                )
            )
        return out

    def _forecast(self, tenant_id: str, queue_name: str) -> Decimal | None:
        scope = (tenant_id, queue_name)
        cached = self._forecasts.get(scope)
        if cached is not None and time.monotonic() - cached[0] < FORECAST_SECONDS:
            return cached[1]
        try:
            predicted: Decimal | None = self.service.get_forecast(tenant_id, queue_name).predicted_spend
        except JobBudgetError:
            predicted = None
        self._forecasts[scope] = (time.monotonic(), predicted)
        return predicted
