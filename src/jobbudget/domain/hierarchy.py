"""The organisation tree: organisation → team → tenant (→ queue, which every budget
already has).  Each node names its parent; a tenant with no parent is a root, as
every tenant was before trees.  A budget set on a node counts every job of every
tenant below it, so an organisation's budget is checked even where its tenants have
none; a tenant key bound to a node sees that node's subtree only.

Pure: the tree is a value, built from the stored ``node → parent`` pairs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .errors import ValidationError
from .validation import MAX_TENANT_LEN, check_identifier

__all__ = ["MAX_DEPTH", "TenantTree", "TreeNode"]

#: Levels above a tenant, at most (organisation, division, team, ...).
MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class TreeNode:
    """A node and its parent ("" for a root)."""

    node: str
    parent: str = ""


@dataclass(frozen=True)
class TenantTree:
    """``parents``: node → parent.  Lookups are cached on first use (the tree is
    rebuilt, never changed, when a node moves)."""

    parents: Mapping[str, str] = field(default_factory=dict)
    _up: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)
    _down: dict[str, frozenset[str]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, nodes: Iterable[TreeNode]) -> TenantTree:
        return cls({n.node: n.parent for n in nodes if n.parent})

    def __bool__(self) -> bool:
        return bool(self.parents)

    def lineage(self, node: str) -> tuple[str, ...]:
        """``node`` and its ancestors, nearest first: the nodes whose budgets cover it."""
        up = self._up.get(node)
        if up is None:
            chain = [node]
            parent = self.parents.get(node, "")
            while parent and parent not in chain and len(chain) <= MAX_DEPTH:
                chain.append(parent)
                parent = self.parents.get(parent, "")
            if len(self._up) > 100_000:
                self._up.clear()
            up = self._up[node] = tuple(chain)
        return up

    def within(self, ancestor: str, node: str) -> bool:
        """Whether ``node`` is ``ancestor`` or lies below it."""
        return node == ancestor or (bool(self.parents) and ancestor in self.lineage(node))

    def subtree(self, node: str) -> frozenset[str]:
        """``node`` and every node below it (the tenants a key of ``node`` sees)."""
        down = self._down.get(node)
        if down is None:
            down = self._down[node] = frozenset({node} | {n for n in self.parents if node in self.lineage(n)[1:]})
        return down

    def _depth(self, node: str) -> int:
        """Ancestors of ``node``, counted up to one past the limit."""
        depth, parent = 0, self.parents.get(node, "")
        while parent and depth <= MAX_DEPTH:
            depth += 1
            parent = self.parents.get(parent, "")
        return depth

    def children(self, node: str) -> list[str]:
        return sorted(n for n, p in self.parents.items() if p == node)

    def roots(self) -> list[str]:
        return sorted({p for p in self.parents.values()} - set(self.parents))

    def moved(self, node: str, parent: str) -> TenantTree:
        """The tree with ``node`` under ``parent`` ("" : a root again); refused when it
        would make a cycle or pass :data:`MAX_DEPTH`."""
        check_identifier("node", node, max_len=MAX_TENANT_LEN)
        if parent:
            check_identifier("parent", parent, max_len=MAX_TENANT_LEN)
            if parent == node or node in self.lineage(parent):
                raise ValidationError("parent", parent, f"is {node} or lies below it: the tree would have a cycle")
        parents = dict(self.parents)
        if parent:
            parents[node] = parent
        else:
            parents.pop(node, None)
        tree = TenantTree(parents)
        deepest = max((tree._depth(n) for n in tree.subtree(node)), default=0)
        if deepest > MAX_DEPTH:
            raise ValidationError("parent", parent, f"would put a tenant more than {MAX_DEPTH} levels deep")
        return tree
