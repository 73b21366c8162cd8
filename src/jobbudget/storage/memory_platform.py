"""The organisation tree, adjustments and budget raises of the memory store."""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from datetime import date, datetime
from decimal import Decimal

from ..domain.adjustments import Adjustment, BudgetRaise
from ..domain.extras import sum_resources
from ..domain.hierarchy import TreeNode
from ..domain.money import ZERO
from ..domain.records import AuditEntry, JobRecord, SpendKey

__all__ = ["MemoryPlatform"]


class MemoryPlatform:
    _lock: threading.RLock
    _audit: list[AuditEntry]
    _spend: dict[SpendKey, Decimal]
    _commits: int
    _budget_seq: int
    _jobs: dict[tuple[str, str], JobRecord]

    def _platform_init(self) -> None:
        self._tree: dict[str, tuple[str, datetime]] = {}
        self._adjustments: dict[str, Adjustment] = {}
        self._raises: dict[str, BudgetRaise] = {}

    def load_tree(self) -> list[TreeNode]:
        with self._lock:
            return [TreeNode(n, p) for n, (p, _) in self._tree.items()]

    def set_parent(self, node: str, parent: str, *, at: datetime, audit: AuditEntry) -> None:
        with self._lock:
            if parent:
                self._tree[node] = (parent, at)
            else:
                self._tree.pop(node, None)
            self._audit.append(audit)
            self._budget_seq += 1

    def add_adjustments(self, items: Sequence[Adjustment], *, audit: Sequence[AuditEntry]) -> list[bool]:
        with self._lock:
            new = []
            for item, entry in zip(items, audit, strict=True):
                fresh = item.id not in self._adjustments
                new.append(fresh)
                if fresh:
                    self._adjustments[item.id] = item
                    for key in item.keys:
                        self._spend[key] = self._spend.get(key, ZERO) + item.amount
                    self._audit.append(entry)
            if any(new):
                self._commits += 1
            return new

    def list_adjustments(
        self, *, tenant_ids: Collection[str] | None = None, start: date, end: date
    ) -> list[Adjustment]:
        with self._lock:
            found = [
                a
                for a in self._adjustments.values()
                if start <= a.day <= end and (tenant_ids is None or a.tenant_id in tenant_ids)
            ]
        return sorted(found, key=lambda a: (a.day, a.at, a.id))

    def resource_totals(
        self, *, tenant_ids: Collection[str], start: date, end: date, queue_name: str | None = None
    ) -> list[tuple[str, Decimal, Decimal]]:
        with self._lock:
            found = [
                r.cost.resources
                for r in self._jobs.values()
                if r.metrics.tenant_id in tenant_ids
                and start <= r.day <= end
                and r.cost.resources
                and queue_name in (None, r.metrics.queue_name)
            ]
        return sum_resources(found)

    def add_raise(self, item: BudgetRaise, *, audit: AuditEntry) -> None:
        with self._lock:
            self._raises[item.id] = item
            self._audit.append(audit)
            self._budget_seq += 1

    def list_raises(self, *, budget_id: str | None = None) -> list[BudgetRaise]:
        with self._lock:
            found = [r for r in self._raises.values() if budget_id in (None, r.budget_id)]
        return sorted(found, key=lambda r: (r.starts_at, r.id))
