"""Estimating a job's cost before it runs, from its type, CPU time and payload.

What is not given (memory, Redis operations, network) is filled in from:

1. the tenant's own history for that job type, once it has at least
   ``MIN_OBSERVATIONS`` jobs: memory per CPU-second and Redis operations and network
   bytes per job are the averages of what those jobs really used;
2. otherwise the history of that job type across all tenants, with the same minimum;
3. otherwise a built-in profile of the job type (``PROFILES``; unknown types use
   ``default``).

The result is priced with the current cost model, so an estimate is what the same
job would cost if it used the typical amounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .cost import CostCalculationEngine
from .money import EXACT, ZERO
from .validation import check_non_negative

__all__ = ["MIN_OBSERVATIONS", "PROFILES", "UsageProfile", "UsageStats", "estimate_cost"]

MIN_OBSERVATIONS = 20


@dataclass(frozen=True, slots=True)
class UsageProfile:
    memory_mb_per_cpu_second: Decimal
    redis_ops_per_job: Decimal
    network_bytes_per_job: Decimal
    source: str = "profile"


PROFILES: dict[str, UsageProfile] = {
    # memory-heavy, moves model checkpoints
    "ml-training": UsageProfile(Decimal(4096), Decimal(50), Decimal(1048576)),
    "ml-inference": UsageProfile(Decimal(2048), Decimal(20), Decimal(262144)),
    # ETL and batch jobs stream data through
    "etl": UsageProfile(Decimal(1024), Decimal(200), Decimal(10485760)),
    "batch": UsageProfile(Decimal(1024), Decimal(20), Decimal(1048576)),
    "report": UsageProfile(Decimal(512), Decimal(100), Decimal(524288)),
    # light request-sized work
    "api-call": UsageProfile(Decimal(128), Decimal(5), Decimal(10240)),
    "email": UsageProfile(Decimal(64), Decimal(3), Decimal(51200)),
    "webhook": UsageProfile(Decimal(64), Decimal(3), Decimal(10240)),
    "default": UsageProfile(Decimal(512), Decimal(20), Decimal(102400)),
}


@dataclass(slots=True)
class UsageStats:
    """Running sums of what jobs of one type used."""

    count: int = 0
    cpu_time: Decimal = ZERO
    memory_mb_seconds: Decimal = ZERO
    redis_ops: Decimal = ZERO
    network_bytes: Decimal = ZERO

    def add(self, *, cpu_time: Decimal, memory_mb_seconds: Decimal, redis_ops: Decimal, network_bytes: Decimal) -> None:
        self.count += 1
        self.cpu_time += cpu_time
        self.memory_mb_seconds += memory_mb_seconds
        self.redis_ops += redis_ops
        self.network_bytes += network_bytes

    def merge(self, other: UsageStats) -> None:
        self.count += other.count
        self.cpu_time += other.cpu_time
        self.memory_mb_seconds += other.memory_mb_seconds
        self.redis_ops += other.redis_ops
        self.network_bytes += other.network_bytes

    def profile(self, source: str) -> UsageProfile | None:
        if self.count < MIN_OBSERVATIONS or self.cpu_time <= 0:
            return None
        return UsageProfile(
            memory_mb_per_cpu_second=self.memory_mb_seconds / self.cpu_time,
            redis_ops_per_job=self.redis_ops / self.count,
            network_bytes_per_job=self.network_bytes / self.count,
            source=source,
        )


def choose_profile(job_type: str, *, tenant: UsageStats | None, overall: UsageStats | None) -> UsageProfile:
    for stats, source in ((tenant, "tenant history"), (overall, "job type history")):
        if stats is not None and (found := stats.profile(source)) is not None:
            return found
    return PROFILES.get(job_type, PROFILES["default"])


def estimate_cost(
    engine: CostCalculationEngine, *, profile: UsageProfile, cpu_time: object, payload_kb: object
) -> Decimal:
    """Price a job of ``cpu_time`` CPU-seconds and ``payload_kb`` KB under ``profile``."""
    cpu = check_non_negative("cpu_time", cpu_time)
    payload = check_non_negative("payload_kb", payload_kb)
    breakdown = engine.calculate_breakdown(
        cpu_time=cpu,
        memory_mb_seconds=EXACT.multiply(cpu, profile.memory_mb_per_cpu_second),
        payload_bytes=EXACT.multiply(payload, Decimal(1024)),
        redis_ops=profile.redis_ops_per_job,
        network_bytes=profile.network_bytes_per_job,
    )
    return breakdown.total
