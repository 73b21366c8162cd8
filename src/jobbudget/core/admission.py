"""Admission: checks, and reservations that keep concurrent admissions from
overshooting a budget.

A reservation holds a job's estimated cost against every budget covering it, from
``admit`` until the job is metered (``process_job_cost(..., reservation_id=...)``),
released, or expires.  Open reservations count as spent for every decision, so
however many admissions race, spend plus reservations never passes a blocking budget's
block threshold.  Where they live is the hot state's business (:mod:`.hot_state`)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from ..background import AuditBuffer
from ..counters.memory import BudgetState
from ..domain.enforcement import (
    Admission,
    EnforcementAction,
    decide_each,
    most_restrictive,
    reservation_limit,
    utilization,
)
from ..domain.errors import StorageUnavailableError, ValidationError
from ..domain.money import plain, to_decimal
from ..domain.records import AuditEntry, Reservation
from ..domain.resources import check_labels
from ..domain.validation import (
    MAX_ID_LEN,
    MAX_QUEUE_LEN,
    MAX_TENANT_LEN,
    check_identifier,
    known_identifier,
    remember_identifier,
)
from ..ports import MetricsSink
from .hot_state import HotState, Undecided
from .pricing import NINE_PLACES, Pricing
from .spend_state import SpendState

__all__ = ["DEFAULT_ESTIMATE_CPU_SECONDS", "MAX_RESERVATION_TTL", "Admissions"]

#: Reservations live at most a week (a job that runs longer is metered without one).
MAX_RESERVATION_TTL = 7 * 24 * 3600.0
#: The CPU seconds of the job assumed when ``admit`` must estimate with no history.
DEFAULT_ESTIMATE_CPU_SECONDS = Decimal(60)
T = TypeVar("T")


def _check_scope(tenant_id: str, queue_name: str, priority: int) -> None:
    # names seen before pass with a set lookup (see domain.validation.known_identifier)
    if not known_identifier(tenant_id, MAX_TENANT_LEN):
        remember_identifier(check_identifier("tenant_id", tenant_id, max_len=MAX_TENANT_LEN))
    if queue_name != "" and not known_identifier(queue_name, MAX_QUEUE_LEN):
        remember_identifier(check_identifier("queue_name", queue_name, max_len=MAX_QUEUE_LEN, allow_empty=True))
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 10:
        raise ValidationError("priority", priority, "must be a whole number between 0 and 10")


class Admissions:
    def __init__(
        self,
        *,
        spend: SpendState,
        hot: HotState,
        pricing: Pricing,
        audit: AuditBuffer,
        metrics: MetricsSink,
        clock: Callable[[], datetime],
    ) -> None:
        self._spend = spend
        self._hot = hot
        self._pricing = pricing
        self._audit = audit
        self._metrics = metrics
        self._clock = clock

    def check(
        self, tenant_id: str, queue_name: str, priority: int, *, labels: Mapping[str, str] | None = None
    ) -> EnforcementAction:
        started = time.perf_counter()
        _check_scope(tenant_id, queue_name, priority)
        if labels:
            labels = check_labels("labels", labels)
        now = self._clock()
        try:
            actions = self._with_states(
                tenant_id, queue_name, now, lambda states: _decide(states, priority, now), labels=labels
            )
        except Undecided as undecided:
            actions = [undecided.action()]
        action = most_restrictive(actions)
        self._after_decision(action, actions, tenant_id=tenant_id, queue_name=queue_name, priority=priority, now=now)
        self._metrics.checked(action=action.type, bypass=action.bypass, seconds=time.perf_counter() - started)
        return action

    def admit(
        self,
        tenant_id: str,
        queue_name: str,
        *,
        priority: int,
        estimated_cost: Any,
        ttl_seconds: float,
        labels: Mapping[str, str] | None = None,
    ) -> Admission:
        started = time.perf_counter()
        _check_scope(tenant_id, queue_name, priority)
        if labels:
            labels = check_labels("labels", labels)
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int | float):
            raise ValidationError("ttl_seconds", ttl_seconds, "must be a number of seconds")
        if not 1 <= ttl_seconds <= MAX_RESERVATION_TTL:
            raise ValidationError("ttl_seconds", ttl_seconds, f"must lie between 1 and {MAX_RESERVATION_TTL:.0f}")
        estimate = self._estimate(tenant_id, queue_name, estimated_cost)
        now = self._clock()
        expires = now + timedelta(seconds=float(ttl_seconds))
        reservation_id = uuid.uuid4().hex

        undo: list[str] = []  # a hold taken for a job that is then blocked anyway (rare)

        def attempt(states: list[BudgetState]) -> tuple[list[EnforcementAction], Reservation | None]:
            in_force = [s for s in states if s.key is not None]
            if not in_force:
                return [], None
            reservation = Reservation(
                id=reservation_id,
                tenant_id=tenant_id,
                keys=tuple(s.key for s in in_force if s.key is not None),
                amount=estimate,
                expires_at=expires,
                nodes=tuple(s.budget.tenant_id for s in in_force if s.key is not None),
            )
            limits = [
                (s.key, reservation_limit(budget=s.budget, thresholds=s.thresholds, priority=priority, now=now))
                for s in in_force
                if s.key is not None
            ]
            # one step: the spend decided on, and the hold if no limit is passed
            fresh, granted = self._hot.reserve(in_force, reservation, limits, now)
            actions = _decide(fresh, priority, now)
            if most_restrictive(actions).type == "block":
                if granted:
                    undo.append(reservation.id)
                return actions, None
            if granted:
                return actions, reservation
            return [*actions, _refusal(fresh, estimate, priority, now)], None

        try:
            actions, reservation = self._with_states(tenant_id, queue_name, now, attempt, fresh=False, labels=labels)
        except Undecided as undecided:
            actions, reservation = [undecided.action()], None
        for held in undo:  # outside the state lock (a release takes it)
            self._hot.release(held, tenant_id=tenant_id)
        action = most_restrictive(actions)
        self._after_decision(action, actions, tenant_id=tenant_id, queue_name=queue_name, priority=priority, now=now)
        self._metrics.checked(action=action.type, bypass=action.bypass, seconds=time.perf_counter() - started)
        if reservation is None:
            return Admission(action=action, estimated_cost=estimate)
        return Admission(action=action, reservation_id=reservation.id, estimated_cost=estimate, expires_at=expires)

    def release(self, reservation_id: str, *, tenant_id: str | None = None) -> bool:
        check_identifier("reservation_id", reservation_id, max_len=MAX_ID_LEN)
        return self._hot.release(reservation_id, tenant_id=tenant_id)

    def open_reservations(self) -> int:
        return self._hot.open_reservations(self._clock())

    # -- internals ------------------------------------------------------------------
    def _with_states(
        self,
        tenant_id: str,
        queue_name: str,
        now: datetime,
        fn: Callable[[list[BudgetState]], T],
        *,
        fresh: bool = True,
        labels: Mapping[str, str] | None = None,
    ) -> T:
        """Run ``fn`` on the budgets covering the scope with the hot state's spend
        (``fresh=False``: as this process knows it; ``fn`` asks the hot state).  If
        the shared state fails meanwhile, its failure mode decides (see
        :meth:`HotState.failed`) and the decision is made again."""
        self._hot.precheck()
        up = self._hot.up()
        try:
            if not fresh:
                return self._spend.covering(tenant_id, queue_name, now, fn, labels)
            return self._spend.covering(
                tenant_id, queue_name, now, lambda states: fn(self._hot.fresh(states, now)), labels
            )
        except StorageUnavailableError as exc:
            if not (self._hot.shared and up):
                raise
            self._hot.failed(exc)
            return self._with_states(tenant_id, queue_name, now, fn, fresh=fresh, labels=labels)

    def _estimate(self, tenant_id: str, queue_name: str, given: Any) -> Decimal:
        if given is None:
            mean = self._pricing.mean_cost(tenant_id, queue_name)
            if mean is not None:
                return mean.quantize(NINE_PLACES)
            return self._pricing.estimate(queue_name, DEFAULT_ESTIMATE_CPU_SECONDS, Decimal(0), tenant_id=tenant_id)
        try:
            value = to_decimal(given)
        except (TypeError, ValueError) as exc:
            raise ValidationError("estimated_cost", given, f"must be a number ({exc})") from None
        if not value.is_finite() or value < 0 or value > 1_000_000:
            raise ValidationError("estimated_cost", given, "must be a finite amount from 0 to 1000000")
        return value

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
            mean = self._pricing.mean_cost(tenant_id, queue_name)
            if mean is not None:  # the work refused (or deferred by throttling), at this queue's mean job cost
                share = Decimal(1) if action.type == "block" else Decimal(1) - Decimal(repr(action.factor))
                self._metrics.deferred(amount=mean * share)


def _decide(states: list[BudgetState], priority: int, now: datetime) -> list[EnforcementAction]:
    """The winning action and the bypasses (see :func:`decide_each`)."""
    return decide_each(
        [(s.budget, s.thresholds, s.window, s.spend) for s in states if s.window is not None],
        priority=priority,
        now=now,
    )


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
                tenant_id=s.budget.tenant_id,
                message=(
                    f"budget {s.budget.id} for {s.budget.scope}: spend and open reservations "
                    f"{s.spend:.2f} plus this job's estimate {estimate:.2f} would pass the {what} "
                    f"{limit:.2f} {s.budget.currency}"
                ),
            )
    return EnforcementAction(type="block", message="spend and open reservations are at the block threshold")
