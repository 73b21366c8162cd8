"""The cost calculation engine: prices a job from its measured resources.

Each component is ``usage × weight × multiplier`` where payload usage is kilobytes
(``payload_bytes / 1024``) and network usage is megabytes (``network_bytes /
1048576``); the base cost is ``base_job_weight × multiplier``.  The multiplier is the
environment's, times the job's queue's and QoS's when the model sets them; a queue
may also replace weights.  Named resources (GPUs, licences...) are ``quantity ×
weight × multiplier`` each.  Every component and every resource is rounded once,
half-even, to a nano-dollar; ``total_cost`` is their sum, so a breakdown always adds
up to the total exactly.  With ``max_tres`` only the largest of the grouped
components is charged (the others count 0), as Slurm's ``MAX_TRES`` billing does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from .cost import CostBreakdown, CostModel, JobCost, JobMetrics, ResourceCharge
from .errors import ValidationError
from .money import EXACT, NANO, round_money
from .resources import family

__all__ = ["CostCalculationEngine"]

_KB = Decimal(1024)
_MB = Decimal(1048576)
_ZERO_COST = Decimal(0).quantize(NANO)  # what a zero usage or a zero rate prices to
#: built-in components by the name ``max_tres`` gives them
_GROUP_FIELDS = {
    "cpu_time": "cpu_cost",
    "memory": "memory_cost",
    "payload": "payload_cost",
    "redis_ops": "redis_cost",
    "network": "network_cost",
}


@dataclass(frozen=True, slots=True)
class _Rates:
    cpu: Decimal
    memory: Decimal
    payload: Decimal
    redis: Decimal
    network: Decimal
    base: Decimal
    multiplier: Decimal  # for the named resources


def _priced(usage: Decimal, rate: Decimal) -> Decimal:
    """usage × rate rounded once, half-even, to a nano-dollar (exact: wide context)."""
    if not usage or not rate:
        return _ZERO_COST
    return EXACT.multiply(usage, rate).quantize(NANO, context=EXACT)


def _rates(model: CostModel, queue: str, qos: str) -> _Rates:
    mul = EXACT.multiply
    k = model.environment_multiplier
    weights: dict[str, Decimal] = {}
    rates = model.queues.get(queue)
    if rates is not None:
        k = mul(k, rates.multiplier)
        weights = dict(rates.weights)
    if qos in model.qos:
        k = mul(k, model.qos[qos])

    def w(name: str) -> Decimal:
        value = weights.get(name)
        return value if value is not None else getattr(model, name)

    # Folding the multiplier and unit conversions into one rate per component is
    # exact (the context is wide enough), so usage × rate equals the formula.
    return _Rates(
        cpu=mul(w("cpu_time_weight"), k),
        memory=mul(w("memory_weight"), k),
        payload=EXACT.divide(mul(w("payload_weight"), k), _KB),
        redis=mul(w("redis_ops_weight"), k),
        network=EXACT.divide(mul(w("network_weight"), k), _MB),
        base=round_money(mul(w("base_job_weight"), k)),
        multiplier=k,
    )


class CostCalculationEngine:
    """Prices jobs under one :class:`CostModel`."""

    __slots__ = ("_by_scope", "_plain", "_rates", "model", "version")

    def __init__(self, model: CostModel | None = None, *, version: int = 0) -> None:
        self.model = model or CostModel()
        self.version = version
        m = self.model
        self._rates = _rates(m, "", "")
        self._by_scope: dict[tuple[str, str], _Rates] = {}
        #: no queue rates, QoS or MAX_TRES: every job of every queue takes the base rates
        self._plain = not (m.queues or m.qos or m.max_tres)

    def calculate_breakdown(
        self,
        *,
        cpu_time: Decimal,
        memory_mb_seconds: Decimal,
        payload_bytes: Decimal,
        redis_ops: Decimal,
        network_bytes: Decimal,
    ) -> CostBreakdown:
        """Price validated usage figures (see :class:`JobMetrics`) at the base rates."""
        return self._breakdown(self._rates, cpu_time, memory_mb_seconds, payload_bytes, redis_ops, network_bytes)

    @staticmethod
    def _breakdown(
        r: _Rates, cpu_time: Decimal, memory: Decimal, payload: Decimal, redis_ops: Decimal, network: Decimal
    ) -> CostBreakdown:
        return CostBreakdown(
            cpu_cost=_priced(cpu_time, r.cpu),
            memory_cost=_priced(memory, r.memory),
            payload_cost=_priced(payload, r.payload),
            redis_cost=_priced(redis_ops, r.redis),
            network_cost=_priced(network, r.network),
            base_cost=r.base,
            resource_cost=_ZERO_COST,
        )

    def rates_for(self, queue: str, qos: str = "") -> _Rates:
        if self._plain:
            return self._rates
        scope = (queue, qos)
        rates = self._by_scope.get(scope)
        if rates is None:
            if len(self._by_scope) > 10_000:
                self._by_scope.clear()
            rates = self._by_scope[scope] = _rates(self.model, queue, qos)
        return rates

    def price_resources(self, resources: dict[str, Decimal], queue: str, qos: str = "") -> tuple[ResourceCharge, ...]:
        """Each named resource priced (an unpriced name is an error naming it)."""
        multiplier = self.rates_for(queue, qos).multiplier
        charges = []
        for name, quantity in resources.items():
            weight = self.model.price_of(name, queue)
            if weight is None:
                priced = ", ".join(sorted(self.model.resources)) or "none"
                raise ValidationError(
                    f"resources.{name}",
                    str(quantity),
                    f"the cost model has no price for this resource (it prices: {priced}); add a price "
                    f"for {name} or for its family {family(name)} to the cost model's resources",
                )
            charges.append(ResourceCharge(name, quantity, _priced(quantity, EXACT.multiply(weight, multiplier))))
        return tuple(charges)

    def calculate_job_cost(self, metrics: JobMetrics, *, timestamp: datetime | None = None) -> JobCost:
        """Price one job.  ``metrics`` was validated when it was built; ``timestamp``
        (default: the metrics' own) is recorded on the result."""
        m = metrics
        rates = self._rates if self._plain else self.rates_for(m.queue_name, m.qos)
        breakdown = self._breakdown(
            rates, m.cpu_time, m.memory_mb_seconds, m.payload_bytes, m.redis_ops, m.network_bytes
        )
        charges: tuple[ResourceCharge, ...] = ()
        if m.resources:
            charges = self.price_resources(dict(m.resources), m.queue_name, m.qos)
        if self.model.max_tres:
            breakdown, charges = self._max_tres(breakdown, charges)
        if charges:
            breakdown = replace(breakdown, resource_cost=sum((c.cost for c in charges), _ZERO_COST))
        return JobCost(
            job_id=m.job_id,
            tenant_id=m.tenant_id,
            queue_name=m.queue_name,
            job_type=m.job_type,
            timestamp=timestamp or m.timestamp,
            total_cost=breakdown.total,
            cost_breakdown=breakdown,
            cost_model_version=self.version,
            resources=charges,
            labels=m.labels,
        )

    def _max_tres(
        self, breakdown: CostBreakdown, charges: tuple[ResourceCharge, ...]
    ) -> tuple[CostBreakdown, tuple[ResourceCharge, ...]]:
        """Keep the largest member of the ``max_tres`` group (the first on a tie);
        the other members count 0 (a resource keeps its quantity)."""
        group = self.model.max_tres
        members: list[tuple[Decimal, str, int]] = []  # (cost, built-in field or "", charge index)
        for name in group:
            if name in _GROUP_FIELDS:
                members.append((getattr(breakdown, _GROUP_FIELDS[name]), _GROUP_FIELDS[name], -1))
        for i, charge in enumerate(charges):
            if charge.name in group or family(charge.name) in group:
                members.append((charge.cost, "", i))
        if len(members) < 2:
            return breakdown, charges
        keep = max(range(len(members)), key=lambda j: (members[j][0], -j))
        zeroed = {f: _ZERO_COST for j, (_, f, _) in enumerate(members) if f and j != keep}
        drop = {i for j, (_, f, i) in enumerate(members) if not f and j != keep}
        if zeroed:
            breakdown = replace(breakdown, **zeroed)
        if drop:
            charges = tuple(replace(c, cost=_ZERO_COST) if i in drop else c for i, c in enumerate(charges))
        return breakdown, charges
