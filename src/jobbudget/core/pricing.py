"""The cost model in force, estimates of a job's cost before it runs, and each
queue's mean job cost (for admissions without an estimate and the metrics)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..config import Config
from ..counters.usage import UsageCache
from ..domain.cost import CostCalculationEngine, CostModel, JobMetrics
from ..domain.errors import ValidationError
from ..domain.estimation import choose_profile, estimate_cost
from ..domain.money import ZERO
from ..domain.records import CostModelVersion
from ..domain.validation import MAX_TENANT_LEN, check_identifier
from ..ports import Ledger

__all__ = ["NINE_PLACES", "Pricing"]

NINE_PLACES = Decimal("0.000000001")


class Pricing:
    def __init__(self, ledger: Ledger, *, config: Config, clock: Callable[[], datetime]) -> None:
        self._ledger = ledger
        self._config = config
        self._clock = clock
        self._engine: CostCalculationEngine | None = None
        self.usage = UsageCache(ledger)
        self._mean_cost: dict[tuple[str, str], tuple[Decimal, int]] = {}

    def start(self) -> None:
        """The latest stored cost model, or (a new database) the configuration's."""
        latest = self._ledger.latest_cost_model()
        if latest is None:
            latest = self._ledger.add_cost_model(
                self._config.build_cost_model(), created_at=self._clock(), created_by="config"
            )
        self._engine = CostCalculationEngine(latest.model, version=latest.version)

    @property
    def engine(self) -> CostCalculationEngine:
        if self._engine is None:
            raise RuntimeError("pricing is not started")
        return self._engine

    def update(self, model: CostModel, *, actor: str) -> CostModelVersion:
        """Price new jobs with ``model`` from now on."""
        if not isinstance(model, CostModel):
            raise ValidationError("model", type(model).__name__, "must be a CostModel")
        version = self._ledger.add_cost_model(model, created_at=self._clock(), created_by=actor)
        self._engine = CostCalculationEngine(model, version=version.version)
        return version

    def estimate(self, job_type: str, cpu_time: Any, payload_kb: Any, *, tenant_id: str | None = None) -> Decimal:
        """Estimate a job's cost before it runs (see :mod:`jobbudget.domain.estimation`)."""
        check_identifier("job_type", job_type, max_len=100, allow_empty=True)
        if tenant_id is not None:
            check_identifier("tenant_id", tenant_id, max_len=MAX_TENANT_LEN)
        now = self._clock()
        tenant = self.usage.get(job_type, tenant_id, now) if tenant_id is not None else None
        overall = self.usage.get(job_type, None, now)
        profile = choose_profile(job_type, tenant=tenant, overall=overall)
        return estimate_cost(self.engine, profile=profile, cpu_time=cpu_time, payload_kb=payload_kb)

    def observe(self, metrics: JobMetrics, cost: Decimal) -> None:
        """A stored job: usage history for estimates and its queue's mean cost."""
        self.usage.observe(metrics)
        key = (metrics.tenant_id, metrics.queue_name)
        total, count = self._mean_cost.get(key, (ZERO, 0))
        self._mean_cost[key] = (total + cost, count + 1)

    def mean_cost(self, tenant_id: str, queue_name: str) -> Decimal | None:
        """The exact mean cost of the jobs this process stored for the queue (None:
        none yet); an estimate rounds it to 1e-9 (:data:`NINE_PLACES`)."""
        total, count = self._mean_cost.get((tenant_id, queue_name), (ZERO, 0))
        return total / count if count else None
