"""The platform operations of :class:`jobbudget.service.BudgetService`: the
organisation tree, refunds and corrections, temporary raises (see
:mod:`jobbudget.core.platform_admin`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from .domain.adjustments import Adjustment, BudgetRaise
from .domain.hierarchy import TenantTree

if TYPE_CHECKING:
    from .core.compose import Core

__all__ = ["PlatformFacade"]


class PlatformFacade:
    @property
    def core(self) -> Core:  # provided by BudgetService
        raise NotImplementedError

    def tenant_tree(self) -> TenantTree:
        """The organisation tree: each node's parent (tenants, teams, organisations)."""
        return self.core.platform.tree

    def set_parent(self, node: str, parent: str, *, actor: str = "system") -> TenantTree:
        """Place ``node`` (a tenant or team) under ``parent`` ("": a root again).  A
        budget on a node covers every tenant below it; the budgets of the old and new
        ancestors are recounted.  Cycles and trees deeper than 8 levels are refused."""
        return self.core.platform.set_parent(node, parent, actor=actor)

    def refund_job(self, tenant_id: str, job_id: str, *, reason: str, actor: str = "system") -> Adjustment | None:
        """Refund a stored job's whole cost to the budgets it counted toward, audited;
        None if it was refunded before (a job is refunded once)."""
        return self.core.platform.refund(tenant_id, job_id, reason=reason, actor=actor)

    def adjust_spend(
        self,
        tenant_id: str,
        amount: Any,
        *,
        reason: str,
        actor: str = "system",
        queue_name: str = "",
        at: datetime | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Adjustment:
        """A correction: a credit (negative) or debit (positive) counted at ``at``
        (default: now, or a past instant for a late charge) toward the budgets covering
        the tenant and queue then.  Reports show it apart from jobs."""
        return self.core.platform.adjust(
            tenant_id, amount, reason=reason, actor=actor, queue_name=queue_name, at=at, labels=labels
        )

    def list_adjustments(self, tenant_id: str | None = None, *, start: date, end: date) -> list[Adjustment]:
        """Adjustments counted on the UTC days ``start..end`` of a node's subtree (None: all)."""
        return self.core.platform.adjustments(tenant_id, start, end)

    def raise_budget(
        self,
        budget_id: str,
        amount: Any,
        *,
        expires_at: datetime,
        approver: str,
        reason: str,
        actor: str = "system",
        starts_at: datetime | None = None,
    ) -> BudgetRaise:
        """Raise a budget's amount by ``amount`` until ``expires_at`` (approved by
        ``approver``, audited); the raise ends by itself."""
        return self.core.platform.raise_budget(
            budget_id, amount, expires_at=expires_at, approver=approver, reason=reason, actor=actor,
            starts_at=starts_at,
        )  # fmt: skip

    def list_raises(self, budget_id: str) -> list[BudgetRaise]:
        return self.core.platform.raises(budget_id)
