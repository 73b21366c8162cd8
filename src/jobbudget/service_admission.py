"""The admission side of :class:`jobbudget.service.BudgetService`: checks, and
reservations that keep concurrent admissions from overshooting a budget.

A reservation holds a job's estimated cost against every budget covering it, from
``admit`` until the job is metered (``process_job_cost(..., reservation_id=...)``),
released, or expires.  Open reservations count as spent for every decision, so
however many admissions race, spend plus reservations never passes a blocking budget's
block threshold.  In one process the reservations live in memory; with ``redis_url``
they live in Redis, shared by every process (see :mod:`jobbudget.counters.shared`)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .config import Config
from .counters.memory import BudgetState, SpendIndex
from .counters.reservations import LocalReservations
from .domain.enforcement import (
    Admission,
    EnforcementAction,
    decide,
    most_restrictive,
    reservation_limit,
    utilization,
)
from .domain.errors import StorageUnavailableError, ValidationError
from .domain.money import ZERO, plain, to_decimal
from .domain.records import AuditEntry, Reservation, SpendKey
from .domain.validation import MAX_ID_LEN, MAX_QUEUE_LEN, MAX_TENANT_LEN, check_identifier
from .ports import MetricsSink, SharedState, Store

if TYPE_CHECKING:
    from .background import AuditBuffer

__all__ = ["AdmissionMixin", "MAX_RESERVATION_TTL", "Undecided"]

#: Reservations live at most a week (a job that runs longer is metered without one).
MAX_RESERVATION_TTL = 7 * 24 * 3600.0
#: The CPU seconds of the job assumed when ``admit`` must estimate with no history.
DEFAULT_ESTIMATE_CPU_SECONDS = Decimal(60)


class Undecided(Exception):
    """The shared state is down and ``redis_failure_mode`` is fail_open or fail_closed."""

    def __init__(self, mode: str) -> None:
        super().__init__(mode)
        self.mode = mode

    def action(self) -> EnforcementAction:
        if self.mode == "fail_open":
            return EnforcementAction(type="allow", message="shared budget state unavailable: failing open")
        return EnforcementAction(type="block", message="shared budget state unavailable: failing closed")


def _check_scope(tenant_id: str, queue_name: str, priority: int) -> None:
    check_identifier("tenant_id", tenant_id, max_len=MAX_TENANT_LEN)
    check_identifier("queue_name", queue_name, max_len=MAX_QUEUE_LEN, allow_empty=True)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 10:
        raise ValidationError("priority", priority, "must be a whole number between 0 and 10")


class AdmissionMixin:
    """Mixed into BudgetService (which sets the attributes declared here)."""

    _index: SpendIndex
    _write: threading.RLock
    _state: threading.Lock
    _reservations: LocalReservations
    _shared: SharedState | None
    _shared_down: bool
    _store: Store
    config: Config
    _audit: AuditBuffer
    _metrics: MetricsSink
    _mean_cost: dict[tuple[str, str], tuple[Decimal, int]]

    if TYPE_CHECKING:  # provided by BudgetService and SharedMixin

        def _now(self) -> datetime: ...
        def _load_spend(self, key: SpendKey) -> Decimal: ...
        def _look_for_changes(self) -> None: ...
        def _stale(self, states: Sequence[BudgetState]) -> bool: ...
        def _resync(self, states: Sequence[BudgetState]) -> None: ...
        def _shared_failed(self, exc: Exception) -> None: ...
        def estimate_job_cost(
            self, job_type: str, cpu_time: Any, payload_kb: Any, *, tenant_id: str | None = None
        ) -> Decimal: ...

    # -- checks ---------------------------------------------------------------------
    def check_budget_compliance(self, tenant_id: str, queue_name: str = "", priority: int = 5) -> EnforcementAction:
        """Decide admission of a job: the most restrictive action of every active
        budget covering the tenant and queue (no budget: allow).  Open reservations
        count as spent."""
        started = time.perf_counter()
        _check_scope(tenant_id, queue_name, priority)
        now = self._now()
        try:
            actions = self._with_states(tenant_id, queue_name, now, lambda states: self._decide(states, priority, now))
        except Undecided as undecided:
            actions = [undecided.action()]
        action = most_restrictive(actions)
        self._after_decision(action, actions, tenant_id=tenant_id, queue_name=queue_name, priority=priority, now=now)
        self._metrics.checked(action=action.type, bypass=action.bypass, seconds=time.perf_counter() - started)
        return action

    def admit(
        self,
        tenant_id: str,
        queue_name: str = "",
        *,
        priority: int = 5,
        estimated_cost: Any = None,
        ttl_seconds: float = 3600.0,
    ) -> Admission:
        """Admit a job and reserve its estimated cost against every budget covering it,
        or refuse it (``action.type == "block"``, no reservation) when spend plus open
        reservations plus the estimate would pass a blocking budget's block threshold.
        ``estimated_cost`` defaults to this queue's mean job cost, else
        :meth:`estimate_job_cost` of a 60-CPU-second job.  Settle with
        ``process_job_cost(metrics, reservation_id=...)`` or :meth:`release`; the
        reservation expires by itself after ``ttl_seconds``."""
        started = time.perf_counter()
        _check_scope(tenant_id, queue_name, priority)
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int | float):
            raise ValidationError("ttl_seconds", ttl_seconds, "must be a number of seconds")
        if not 1 <= ttl_seconds <= MAX_RESERVATION_TTL:
            raise ValidationError("ttl_seconds", ttl_seconds, f"must lie between 1 and {MAX_RESERVATION_TTL:.0f}")
        estimate = self._estimate(tenant_id, queue_name, estimated_cost)
        now = self._now()
        expires = now + timedelta(seconds=float(ttl_seconds))
        reservation_id = uuid.uuid4().hex

        def attempt(states: list[BudgetState]) -> tuple[list[EnforcementAction], Reservation | None]:
            in_force = [s for s in states if s.key is not None]
            actions = self._decide(in_force, priority, now)
            if not in_force or most_restrictive(actions).type == "block":
                return actions, None
            reservation = Reservation(
                id=reservation_id,
                tenant_id=tenant_id,
                keys=tuple(s.key for s in in_force if s.key is not None),
                amount=estimate,
                expires_at=expires,
            )
            limits = [
                (
                    s.key,
                    s.spend,
                    reservation_limit(budget=s.budget, thresholds=s.thresholds, priority=priority, now=now),
                )
                for s in in_force
                if s.key is not None
            ]
            if self._hold(reservation, limits, now):
                return actions, reservation
            return [*actions, self._refusal(in_force, estimate, priority, now)], None

        try:
            actions, reservation = self._with_states(tenant_id, queue_name, now, attempt)
        except Undecided as undecided:
            actions, reservation = [undecided.action()], None
        action = most_restrictive(actions)
        self._after_decision(action, actions, tenant_id=tenant_id, queue_name=queue_name, priority=priority, now=now)
        self._metrics.checked(action=action.type, bypass=action.bypass, seconds=time.perf_counter() - started)
        if reservation is None:
            return Admission(action=action, estimated_cost=estimate)
        return Admission(action=action, reservation_id=reservation.id, estimated_cost=estimate, expires_at=expires)

    def release(self, reservation_id: str, *, tenant_id: str | None = None) -> bool:
        """Cancel a reservation (the job will not run); False if it was not open, or
        (with ``tenant_id``) belongs to another tenant."""
        check_identifier("reservation_id", reservation_id, max_len=MAX_ID_LEN)
        with self._state:
            held = self._reservations.get(reservation_id)
            local = held is not None and tenant_id in (None, held.tenant_id)
            if local:
                self._reservations.pop(reservation_id)
        return self._release_shared(reservation_id, tenant_id=tenant_id) or local

    def open_reservations(self) -> int:
        """How many reservations this process holds (all processes' with Redis)."""
        with self._state:
            self._reservations.expire(self._now())
            local = len(self._reservations)
        if self._shared is None or self._shared_down:
            return local
        return local + self._shared.open_reservations(self._now())

    # -- internals ------------------------------------------------------------------
    def _with_states(
        self, tenant_id: str, queue_name: str, now: datetime, fn: Callable[[list[BudgetState]], Any]
    ) -> Any:
        """Run ``fn`` on the budgets covering the scope, under the state lock, after
        rolling any whose period ended (rare: that reads the ledger).  With a shared
        state that cannot be reached, ``redis_failure_mode`` decides: ``local`` runs
        ``fn`` on the ledger's spend, the others raise :class:`Undecided`."""
        shared = self._shared is not None and not self._shared_down
        if self._shared is not None and not shared and self.config.redis_failure_mode != "local":
            raise Undecided(self.config.redis_failure_mode)
        self._look_for_changes()
        try:
            with self._state:
                states = self._index.covering(tenant_id, queue_name)
                if all(state.current_at(now) for state in states) and not self._stale(states):
                    return fn(self._fresh(states, now, shared=shared))
            with self._write, self._state:
                states = self._index.covering(tenant_id, queue_name)
                for state in states:
                    self._index.roll(state, now, self._load_spend)
                self._resync(states)
                return fn(self._fresh(states, now, shared=shared))
        except StorageUnavailableError as exc:
            if not shared:
                raise
            self._shared_failed(exc)
            return self._with_states(tenant_id, queue_name, now, fn)

    def _fresh(self, states: list[BudgetState], now: datetime, *, shared: bool) -> list[BudgetState]:
        """The states with spend including open reservations: from the shared state,
        or (shared state down, ``local``) from the ledger, or this process's own."""
        in_force = [s for s in states if s.key is not None]
        if shared:
            assert self._shared is not None
            keys = [(s.budget.tenant_id, s.key) for s in in_force if s.key is not None]
            totals = self._shared.totals(keys, now=now)
            return [_with_spend(s, total) for s, total in zip(in_force, totals, strict=True)]
        self._reservations.expire(now)
        if self._shared is not None:  # down: the ledger has every process's committed spend
            periods = [s.key for s in in_force if s.key is not None]
            ledger = self._store.load_spend(periods)
            return [
                _with_spend(s, ledger.get(key, ZERO) + self._reservations.held(key))
                for s, key in zip(in_force, periods, strict=True)
            ]
        if not len(self._reservations):
            return states
        out = []
        for state in states:
            held = self._reservations.held(state.key)
            out.append(state if not held else _with_spend(state, state.spend + held))
        return out

    def _hold(
        self, reservation: Reservation, limits: list[tuple[SpendKey, Decimal, Decimal | None]], now: datetime
    ) -> bool:
        if self._shared is not None and not self._shared_down:  # atomically against the shared numbers
            return self._shared.reserve(reservation, limits=[(key, limit) for key, _, limit in limits], now=now)
        # ``limits`` carry spend + held already counted by _fresh: check against spend alone
        raw = [(key, spend - self._reservations.held(key), limit) for key, spend, limit in limits]
        return self._reservations.try_add(reservation, limits=raw)

    @staticmethod
    def _refusal(states: list[BudgetState], estimate: Decimal, priority: int, now: datetime) -> EnforcementAction:
        for s in states:
            limit = reservation_limit(budget=s.budget, thresholds=s.thresholds, priority=priority, now=now)
            if limit is not None and s.spend + estimate > limit:
                what = "block threshold" if limit == s.thresholds.block_at else "end of the emergency bypass allowance"
                return EnforcementAction(
                    type="block",
                    budget_id=s.budget.id,
                    utilization=utilization(s.spend, s.budget.amount),
                    current_spend=s.spend,
                    budget_amount=s.budget.amount,
                    message=(
                        f"budget {s.budget.id} for {s.budget.scope}: spend and open reservations "
                        f"{s.spend:.2f} plus this job's estimate {estimate:.2f} would pass the {what} "
                        f"{limit:.2f} {s.budget.currency}"
                    ),
                )
        return EnforcementAction(type="block", message="spend and open reservations are at the block threshold")

    def _estimate(self, tenant_id: str, queue_name: str, given: Any) -> Decimal:
        if given is None:
            total, count = self._mean_cost.get((tenant_id, queue_name), (ZERO, 0))
            if count:
                return (total / count).quantize(Decimal("0.000000001"))
            return self.estimate_job_cost(queue_name, DEFAULT_ESTIMATE_CPU_SECONDS, Decimal(0), tenant_id=tenant_id)
        try:
            value = to_decimal(given)
        except (TypeError, ValueError) as exc:
            raise ValidationError("estimated_cost", given, f"must be a number ({exc})") from None
        if not value.is_finite() or value < 0 or value > 1_000_000:
            raise ValidationError("estimated_cost", given, "must be a finite amount from 0 to 1000000")
        return value

    def _settle(self, reservation_id: str | None, *, tenant_id: str) -> None:
        """The job is metered: drop its reservation (its real cost is now spend), if it
        is ``tenant_id``'s (a job never settles another tenant's admission)."""
        if reservation_id is not None:
            self.release(reservation_id, tenant_id=tenant_id)

    def _release_shared(self, reservation_id: str, *, tenant_id: str | None = None) -> bool:
        """Drop a shared reservation; if Redis is down it expires by itself."""
        if self._shared is None or self._shared_down:
            return False
        try:
            return self._shared.release(reservation_id, tenant_id=tenant_id)
        except StorageUnavailableError as exc:
            self._shared_failed(exc)
            return False

    @staticmethod
    def _decide(states: list[BudgetState], priority: int, now: datetime) -> list[EnforcementAction]:
        return [
            decide(
                budget=state.budget,
                thresholds=state.thresholds,
                window=state.window,
                spend=state.spend,
                priority=priority,
                now=now,
            )
            for state in states
            if state.window is not None
        ]

    def _after_decision(
        self,
        action: EnforcementAction,
        actions: list[EnforcementAction],
        *,
        tenant_id: str,
        queue_name: str,
        priority: int,
        now: datetime,
    ) -> None:
        """Audit bypasses, and count the work refused or deferred."""
        if action.bypass:
            for a in actions:
                if a.bypass:
                    self._audit.append(
                        AuditEntry(
                            at=now,
                            kind="bypass",
                            tenant_id=tenant_id,
                            queue_name=queue_name,
                            budget_id=a.budget_id or "",
                            details={
                                "priority": priority,
                                "spend": plain(a.current_spend),
                                "amount": plain(a.budget_amount),
                                "message": a.message,
                            },
                        )
                    )
        if action.type in ("block", "throttle"):
            total, count = self._mean_cost.get((tenant_id, queue_name), (ZERO, 0))
            if count:  # the work refused (or deferred by throttling), at this queue's mean job cost
                share = Decimal(1) if action.type == "block" else Decimal(1) - Decimal(repr(action.factor))
                self._metrics.deferred(amount=total / count * share)


def _with_spend(state: BudgetState, spend: Decimal) -> BudgetState:
    """A copy of ``state`` with another spend (the index's own state is untouched)."""
    copy = BudgetState(state.budget, state.thresholds, state.window, spend)
    copy.valid_from, copy.valid_until = state.valid_from, state.valid_until
    return copy
