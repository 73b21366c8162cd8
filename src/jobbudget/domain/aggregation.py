"""Folding newly stored jobs into daily aggregates and budget-period spend."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .money import ZERO
from .records import JobRecord, SpendKey

__all__ = ["DailyDelta", "daily_deltas", "spend_deltas"]


@dataclass(slots=True)
class DailyDelta:
    """What a batch adds to one (tenant, queue, day) row."""

    total_jobs: int
    total_cost: Decimal
    cpu_cost: Decimal
    memory_cost: Decimal
    payload_cost: Decimal
    redis_cost: Decimal
    network_cost: Decimal
    base_cost: Decimal
    resource_cost: Decimal
    min_job_cost: Decimal
    max_job_cost: Decimal


def daily_deltas(records: Iterable[JobRecord]) -> dict[tuple[str, str, date], DailyDelta]:
    out: dict[tuple[str, str, date], DailyDelta] = {}
    for r in records:
        key = (r.metrics.tenant_id, r.metrics.queue_name, r.day)
        c = r.cost
        b = c.cost_breakdown
        d = out.get(key)
        if d is None:
            out[key] = DailyDelta(
                1,
                c.total_cost,
                b.cpu_cost,
                b.memory_cost,
                b.payload_cost,
                b.redis_cost,
                b.network_cost,
                b.base_cost,
                b.resource_cost,
                c.total_cost,
                c.total_cost,
            )
            continue
        d.total_jobs += 1
        d.total_cost += c.total_cost
        d.cpu_cost += b.cpu_cost
        d.memory_cost += b.memory_cost
        d.payload_cost += b.payload_cost
        d.redis_cost += b.redis_cost
        d.network_cost += b.network_cost
        d.base_cost += b.base_cost
        d.resource_cost += b.resource_cost
        if c.total_cost < d.min_job_cost:
            d.min_job_cost = c.total_cost
        if c.total_cost > d.max_job_cost:
            d.max_job_cost = c.total_cost
    return out


def spend_deltas(records: Iterable[JobRecord]) -> dict[SpendKey, tuple[Decimal, int]]:
    out: dict[SpendKey, tuple[Decimal, int]] = {}
    for r in records:
        for key in r.spend_keys:
            spend, jobs = out.get(key, (ZERO, 0))
            out[key] = (spend + r.cost.total_cost, jobs + 1)
    return out
