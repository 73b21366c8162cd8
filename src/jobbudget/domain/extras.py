"""A job's extras (named resources, QoS, labels, exit state) as one short JSON text
stored beside its row, and read back: ``""`` for a job with none, so the common job
costs nothing.  Quantities and costs travel as decimal text (exact)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .cost import JobCost, JobMetrics, ResourceCharge
from .money import EXACT

__all__ = ["JobExtras", "decode_extras", "encode_extras", "sum_resources"]


@dataclass(frozen=True, slots=True)
class JobExtras:
    resources: tuple[ResourceCharge, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    qos: str = ""
    exit_state: str = ""


def encode_extras(metrics: JobMetrics, cost: JobCost) -> str:
    if not (cost.resources or metrics.labels or metrics.qos or metrics.exit_state):
        return ""
    doc: dict[str, Any] = {}
    if cost.resources:
        doc["r"] = {c.name: [str(c.quantity), str(c.cost)] for c in cost.resources}
    if metrics.labels:
        doc["l"] = dict(metrics.labels)
    if metrics.qos:
        doc["q"] = metrics.qos
    if metrics.exit_state:
        doc["x"] = metrics.exit_state
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def decode_extras(text: str | None) -> JobExtras:
    if not text:
        return JobExtras()
    doc = json.loads(text)
    charges = tuple(ResourceCharge(name, Decimal(q), Decimal(c)) for name, (q, c) in sorted(doc.get("r", {}).items()))
    return JobExtras(
        resources=charges, labels=dict(doc.get("l", {})), qos=doc.get("q", ""), exit_state=doc.get("x", "")
    )


def sum_resources(charges: Iterable[Iterable[ResourceCharge]]) -> list[tuple[str, Decimal, Decimal]]:
    """(name, quantity, cost) added up exactly over the jobs' charges, by name."""
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    for job in charges:
        for c in job:
            quantity, cost = totals.get(c.name, (Decimal(0), Decimal(0)))
            totals[c.name] = (EXACT.add(quantity, c.quantity), EXACT.add(cost, c.cost))
    return [(name, q, c) for name, (q, c) in sorted(totals.items())]
