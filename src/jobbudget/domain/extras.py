"""A job's extras (named resources, QoS, labels, exit state) as one short JSON text
stored beside its row, and read back: ``""`` for a job with none, so the common job
costs nothing.  Quantities and costs travel as decimal text (exact)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .cost import JobCost, JobMetrics, ResourceCharge

__all__ = ["JobExtras", "decode_extras", "encode_extras"]


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
