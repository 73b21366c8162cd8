"""Cached usage history per job type (and tenant) for cost estimates."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..domain.cost import JobMetrics
from ..domain.estimation import UsageStats
from ..ports import Ledger

__all__ = ["UsageCache"]


class UsageCache:
    """Reads usage sums from the store at most once per ``ttl`` per key and adds the
    jobs this process stores in between."""

    def __init__(self, store: Ledger, *, ttl: timedelta = timedelta(seconds=60)) -> None:
        self._store = store
        self._ttl = ttl
        self._cached: dict[tuple[str, str | None], tuple[UsageStats, datetime]] = {}

    def get(self, job_type: str, tenant_id: str | None, now: datetime) -> UsageStats:
        key = (job_type, tenant_id)
        cached = self._cached.get(key)
        if cached is None or now - cached[1] > self._ttl:
            cached = (self._store.usage_stats(job_type=job_type, tenant_id=tenant_id), now)
            self._cached[key] = cached
        return cached[0]

    def observe(self, m: JobMetrics) -> None:
        for key in ((m.job_type, m.tenant_id), (m.job_type, None)):
            cached = self._cached.get(key)
            if cached is not None:
                cached[0].add(
                    cpu_time=m.cpu_time,
                    memory_mb_seconds=m.memory_mb_seconds,
                    redis_ops=m.redis_ops,
                    network_bytes=m.network_bytes,
                )
