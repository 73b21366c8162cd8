"""The organisation tree, adjustments and budget raises on SQL (see
:mod:`jobbudget.domain.hierarchy` and :mod:`jobbudget.domain.adjustments`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, delete, select

from ...domain.adjustments import Adjustment, BudgetRaise
from ...domain.extras import decode_extras, sum_resources
from ...domain.hierarchy import TreeNode
from ...domain.money import to_nanos
from ...domain.records import AuditEntry, SpendKey
from . import bulk
from .changes import bump_budget_seq, mark_spend_changed
from .engine import transaction
from .tables import adjustments, budget_raises, job_costs, tenant_tree

__all__ = ["PlatformMixin"]


def _adjustment(row: Mapping[Any, Any]) -> Adjustment:
    return Adjustment(
        id=row["id"], kind=row["kind"], tenant_id=row["tenant_id"], queue_name=row["queue_name"],
        occurred_at=row["occurred_at"],
        amount=row["amount"], reason=row["reason"], actor=row["actor"], at=row["at"], job_id=row["job_id"],
        keys=tuple(SpendKey(b, date.fromisoformat(p)) for b, p in row["keys"]), labels=dict(row["labels"] or {}),
    )  # fmt: skip


def _raise(row: Mapping[Any, Any]) -> BudgetRaise:
    return BudgetRaise(**{c.name: row[c.name] for c in budget_raises.c})


class PlatformMixin:
    """The tree, adjustment and raise methods of :class:`~jobbudget.storage.sql.store.SqlStore`."""

    engine: Engine
    schema: str | None
    token: str
    announce_changes: bool

    def _audit(self, conn: Connection, entries: Sequence[AuditEntry]) -> None: ...

    # -- the tree ---------------------------------------------------------------------
    def load_tree(self) -> list[TreeNode]:
        with transaction(self.engine) as conn:
            return [TreeNode(n, p) for n, p in conn.execute(select(tenant_tree.c.node, tenant_tree.c.parent))]

    def set_parent(self, node: str, parent: str, *, at: datetime, audit: AuditEntry) -> None:
        with transaction(self.engine, write=True) as conn:
            conn.execute(delete(tenant_tree).where(tenant_tree.c.node == node))
            if parent:
                conn.execute(tenant_tree.insert().values(node=node, parent=parent, updated_at=at))
            self._audit(conn, [audit])
            bump_budget_seq(conn)

    # -- adjustments ------------------------------------------------------------------
    def add_adjustments(self, items: Sequence[Adjustment], *, audit: Sequence[AuditEntry]) -> list[bool]:
        """Store the adjustments whose id is new and add each to its periods' spend,
        in one transaction; ``audit[i]`` is written with ``items[i]`` when it is new."""
        with transaction(self.engine, write=True) as conn:
            ids = [a.id for a in items]
            known = set(conn.execute(select(adjustments.c.id).where(adjustments.c.id.in_(ids))).scalars())
            new = [a.id not in known and a.id not in ids[:i] for i, a in enumerate(items)]
            fresh = [a for a, n in zip(items, new, strict=True) if n]
            if fresh:
                conn.execute(
                    adjustments.insert(),
                    [
                        {
                            "id": a.id, "kind": a.kind, "tenant_id": a.tenant_id, "queue_name": a.queue_name,
                            "job_id": a.job_id, "day": a.day, "occurred_at": a.occurred_at, "amount": a.amount, "reason": a.reason,
                            "actor": a.actor, "at": a.at,
                            "keys": [[k.budget_id, k.period_start.isoformat()] for k in a.keys],
                            "labels": dict(a.labels) or None,
                        }
                        for a in fresh
                    ],
                )  # fmt: skip
                spend: dict[SpendKey, Decimal] = {}
                for a in fresh:
                    for key in a.keys:
                        spend[key] = spend.get(key, Decimal(0)) + a.amount
                sqlite = conn.dialect.name == "sqlite"
                rows = [
                    (k.budget_id, k.period_start.isoformat() if sqlite else k.period_start,
                     to_nanos(s) if sqlite else s, 0)
                    for k, s in sorted(spend.items(), key=lambda kv: (kv[0].budget_id, kv[0].period_start))
                ]  # fmt: skip
                if rows:
                    bulk.upsert_spend(conn, rows)
                    if self.announce_changes:
                        mark_spend_changed(conn, schema=self.schema, token=self.token)
                self._audit(conn, [e for e, n in zip(audit, new, strict=True) if n])
        return new

    def list_adjustments(
        self, *, tenant_ids: Collection[str] | None = None, start: date, end: date
    ) -> list[Adjustment]:
        a = adjustments.c
        query = select(adjustments).where(a.day >= start, a.day <= end).order_by(a.day, a.at, a.id)
        if tenant_ids is not None:
            query = query.where(a.tenant_id.in_(sorted(tenant_ids)))
        with transaction(self.engine) as conn:
            return [_adjustment(r) for r in conn.execute(query).mappings()]

    # -- resources --------------------------------------------------------------------
    def resource_totals(
        self, *, tenant_ids: Collection[str], start: date, end: date, queue_name: str | None = None
    ) -> list[tuple[str, Decimal, Decimal]]:
        c = job_costs.c
        query = select(c.extras).where(
            c.tenant_id.in_(sorted(tenant_ids)), c.day >= start, c.day <= end, c.extras != ""
        )
        if queue_name is not None:
            query = query.where(c.queue_name == queue_name)
        with transaction(self.engine) as conn:
            found = conn.execute(query).scalars().all()
        return sum_resources(decode_extras(text).resources for text in found)

    # -- raises -----------------------------------------------------------------------
    def add_raise(self, item: BudgetRaise, *, audit: AuditEntry) -> None:
        with transaction(self.engine, write=True) as conn:
            conn.execute(budget_raises.insert().values({c.name: getattr(item, c.name) for c in budget_raises.c}))
            self._audit(conn, [audit])
            bump_budget_seq(conn)

    def list_raises(self, *, budget_id: str | None = None) -> list[BudgetRaise]:
        r = budget_raises.c
        query = select(budget_raises).order_by(r.starts_at, r.id)
        if budget_id is not None:
            query = query.where(r.budget_id == budget_id)
        with transaction(self.engine) as conn:
            return [_raise(row) for row in conn.execute(query).mappings()]
