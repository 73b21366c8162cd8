"""What platform operators do beyond budgets: place tenants in the organisation tree,
refund jobs and correct spend after the fact, and raise a budget for a while.

Every change is audited.  An adjustment counts toward the budget periods covering
its tenant and queue at its instant (a refund: the job's own periods), in the ledger
and in every process's spend at once; the tree and raises reach other processes
through the budget watch (about a second)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from ..domain.adjustments import Adjustment, BudgetRaise, RefundPolicy, refund_id
from ..domain.errors import NotFoundError, ValidationError
from ..domain.hierarchy import TenantTree
from ..domain.money import parse_decimal, plain, to_decimal
from ..domain.records import AuditEntry, JobRecord, SpendKey
from ..domain.validation import MAX_ID_LEN, MAX_JOB_ID_LEN, MAX_QUEUE_LEN, MAX_TENANT_LEN, check_identifier
from ..ports import Ledger, PlatformStore
from .budget_admin import BudgetAdmin
from .hot_state import HotState
from .metering import FUTURE_TOLERANCE
from .spend_state import SpendState, previous_key

__all__ = ["POLICY_ACTOR", "PlatformAdmin"]

#: Who the refund policy's refunds are audited as.
POLICY_ACTOR = "refund-policy"


def _money(field: str, value: Any) -> Decimal:
    """An amount given as a number or as decimal text ("12.50")."""
    try:
        number = parse_decimal(value.strip()) if isinstance(value, str) else to_decimal(value)
    except (TypeError, ValueError):
        raise ValidationError(field, value, "must be an amount such as 12.50") from None
    if not number.is_finite():
        raise ValidationError(field, value, "must be a finite amount")
    return number


class PlatformAdmin:
    def __init__(
        self,
        ledger: Ledger,
        platform: PlatformStore,
        *,
        spend: SpendState,
        hot: HotState,
        budgets: BudgetAdmin,
        refunds: RefundPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self._ledger = ledger
        self._platform = platform
        self._spend = spend
        self._hot = hot
        self._budgets = budgets
        self._refunds = refunds
        self._clock = clock

    # -- the tree -----------------------------------------------------------------------
    @property
    def tree(self) -> TenantTree:
        return self._spend.index.tree

    def set_parent(self, node: str, parent: str, *, actor: str) -> TenantTree:
        """Place ``node`` under ``parent`` ("": make it a root).  The budgets of its old
        and new ancestors are recounted, so each covers exactly its tenants' spend.  The
        tree is stored first, then each budget in a transaction of its own: should a
        recount fail (the database went away), the same call again recounts them all."""
        now = self._clock()
        spend = self._spend
        with spend.write:
            before = self.tree
            after = before.moved(node, parent)
            old_parent = before.parents.get(node, "")
            audit = AuditEntry(
                at=now, kind="tree_changed", tenant_id=node, actor=actor, details={"parent": parent, "was": old_parent}
            )
            self._platform.set_parent(node, parent, at=now, audit=audit)
            affected = set(before.lineage(node)[1:]) | set(after.lineage(node)[1:])
            spend.reload(now)
            for budget in self._ledger.list_budgets():
                if budget.tenant_id in affected:
                    self._budgets.recount(budget, actor=actor)
        return self.tree

    # -- adjustments ----------------------------------------------------------------------
    def refund(self, tenant_id: str, job_id: str, *, reason: str, actor: str) -> Adjustment | None:
        """Refund a stored job's cost (once: None when it was refunded before)."""
        check_identifier("tenant_id", tenant_id, max_len=MAX_TENANT_LEN)
        check_identifier("job_id", job_id, max_len=MAX_JOB_ID_LEN)
        job = self._ledger.get_job(tenant_id, job_id)
        if job is None:
            raise NotFoundError("job", f"{tenant_id}/{job_id}")
        assert job.timestamp is not None
        item = self._adjustment(
            refund_id(tenant_id, job_id), "refund", tenant_id, job.queue_name, job.timestamp, -job.total_cost,
            reason, actor, job_id=job_id, labels=job.labels,
        )  # fmt: skip
        applied = self._apply([item])
        return applied[0] if applied else None

    def refund_failed(self, records: Sequence[JobRecord], inserted: Sequence[bool]) -> int:
        """Refund the jobs that ended in a state the refund policy names.  A redelivered
        one is refunded too if it was not yet (the refund has the job's id, so this is
        once): a crash or a failed write between storing a job and refunding it is
        repaired by the queue's next delivery."""
        items = []
        for r, new in zip(records, inserted, strict=True):
            m = r.metrics
            if not self._refunds.refunds(m.exit_state):
                continue
            reason = f"exit state {m.exit_state.upper()} (refund policy)"
            if new:
                if r.cost.total_cost:
                    items.append(
                        self._adjustment(
                            refund_id(m.tenant_id, m.job_id), "refund", m.tenant_id, m.queue_name, r.timestamp,
                            -r.cost.total_cost, reason, POLICY_ACTOR, job_id=m.job_id, keys=r.spend_keys,
                            labels=m.labels,
                        )
                    )  # fmt: skip
            else:
                self.refund(m.tenant_id, m.job_id, reason=reason, actor=POLICY_ACTOR)
        return len(self._apply(items)) if items else 0

    def adjust(
        self,
        tenant_id: str,
        amount: Any,
        *,
        reason: str,
        actor: str,
        queue_name: str = "",
        at: datetime | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Adjustment:
        """A credit (negative ``amount``) or debit (positive) counted at ``at`` (default:
        now) toward the budgets covering the tenant and queue then."""
        check_identifier("tenant_id", tenant_id, max_len=MAX_TENANT_LEN)
        check_identifier("queue_name", queue_name, max_len=MAX_QUEUE_LEN, allow_empty=True)
        value = _money("amount", amount)
        if not value:
            raise ValidationError("amount", amount, "must not be 0")
        now = self._clock()
        instant = at or now
        if instant.tzinfo is None:
            raise ValidationError("at", instant.isoformat(), "must include a time zone")
        if instant > now + FUTURE_TOLERANCE:
            raise ValidationError("at", instant.isoformat(), "is in the future: a correction counts when it happened")
        kind = "credit" if value < 0 else "debit"
        item = self._adjustment(
            uuid.uuid4().hex, kind, tenant_id, queue_name, instant, value, reason, actor, labels=labels or {}
        )
        return self._apply([item])[0]

    def adjustments(self, tenant_id: str | None, start: date, end: date) -> list[Adjustment]:
        """The adjustments counted on ``start..end`` (UTC days) of a node's subtree (None: all)."""
        tenants = None if tenant_id is None else self.tree.subtree(tenant_id)
        return self._platform.list_adjustments(tenant_ids=tenants, start=start, end=end)

    def _adjustment(
        self,
        ident: str,
        kind: str,
        tenant_id: str,
        queue_name: str,
        instant: datetime,
        amount: Decimal,
        reason: str,
        actor: str,
        *,
        job_id: str = "",
        labels: Mapping[str, str] | None = None,
        keys: tuple[SpendKey, ...] | None = None,
    ) -> Adjustment:
        if keys is None:
            with self._spend.lock:
                keys = self._spend.index.spend_keys(tenant_id, queue_name, instant.astimezone(UTC), labels=labels)
        return Adjustment(
            id=ident, kind=kind, tenant_id=tenant_id, queue_name=queue_name, occurred_at=instant.astimezone(UTC),
            amount=amount, reason=reason, actor=actor, at=self._clock(), job_id=job_id, keys=keys,
            labels=dict(labels or {}),
        )  # fmt: skip

    def _apply(self, items: Sequence[Adjustment]) -> list[Adjustment]:
        """Store the new ones with their spend; add it to this process's and the shared spend."""
        audit = [
            AuditEntry(
                at=a.at,
                kind=a.kind,
                tenant_id=a.tenant_id,
                queue_name=a.queue_name,
                actor=a.actor,
                details={
                    "amount": plain(a.amount),
                    "reason": a.reason,
                    "job_id": a.job_id,
                    "occurred_at": a.occurred_at.isoformat(),
                    "budgets": sorted({k.budget_id for k in a.keys}),
                },
            )
            for a in items
        ]
        spend = self._spend
        with spend.write:
            new = self._platform.add_adjustments(items, audit=audit)
            applied = [a for a, n in zip(items, new, strict=True) if n]
            entries: list[tuple[str, SpendKey, Decimal]] = []
            with spend.lock:
                for a in applied:
                    spend.index.add(a.keys, a.amount)
                    for key in a.keys:
                        state = spend.index.get(key.budget_id)
                        entries.append((state.budget.tenant_id if state else a.tenant_id, key, a.amount))
            if entries:
                self._hot.adjust(entries)
        return applied

    # -- raises -----------------------------------------------------------------------
    def raise_budget(
        self,
        budget_id: str,
        amount: Any,
        *,
        expires_at: datetime,
        approver: str,
        reason: str,
        actor: str,
        starts_at: datetime | None = None,
    ) -> BudgetRaise:
        """Add ``amount`` to a budget's amount from ``starts_at`` (default: now) until
        ``expires_at``; approved by ``approver``, audited."""
        check_identifier("budget_id", budget_id, max_len=MAX_ID_LEN)
        budget = self._ledger.get_budget(budget_id)
        now = self._clock()
        for name, value in (("expires_at", expires_at), ("starts_at", starts_at)):
            if value is not None and value.tzinfo is None:
                raise ValidationError(name, value.isoformat(), "must include a time zone")
        if expires_at <= now:
            raise ValidationError("expires_at", expires_at.isoformat(), "must be in the future")
        item = BudgetRaise(
            id=str(uuid.uuid4()), budget_id=budget_id, amount=_money("amount", amount), starts_at=starts_at or now,
            expires_at=expires_at, approver=approver, reason=reason, created_at=now, created_by=actor,
        )  # fmt: skip
        audit = AuditEntry(
            at=now, kind="budget_raised", tenant_id=budget.tenant_id, queue_name=budget.queue_name,
            budget_id=budget_id, actor=actor,
            details={"amount": plain(item.amount), "starts_at": item.starts_at.isoformat(),
                     "expires_at": expires_at.isoformat(), "approver": approver, "reason": reason},
        )  # fmt: skip
        spend = self._spend
        with spend.write:
            self._platform.add_raise(item, audit=audit)
            state = spend.index.get(budget_id)
            before = previous_key(state.stored, state.window) if state is not None else None
            previous = spend.load_spend(before) if before is not None else None  # not under `lock`
            with spend.lock:
                spend.raises.setdefault(budget_id, []).append(item)
                if state is not None:
                    spend.reprice(state, now, previous)
        return item

    def raises(self, budget_id: str) -> list[BudgetRaise]:
        check_identifier("budget_id", budget_id, max_len=MAX_ID_LEN)
        return self._platform.list_raises(budget_id=budget_id)
