"""The cost calculation engine: prices a job from its measured resources.

Each component is ``usage × weight × environment_multiplier`` where payload usage is
kilobytes (``payload_bytes / 1024``) and network usage is megabytes
(``network_bytes / 1048576``); the base cost is ``base_job_weight × multiplier``.
Every component is rounded once, half-even, to a nano-dollar and ``total_cost`` is
their sum, so a breakdown always adds up to the total exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from .errors import ValidationError
from .money import ZERO
from .resources import (
    BUILTIN_RATES,
    QueueRates,
    check_labels,
    check_multipliers,
    check_resource_name,
    check_resources,
    family,
)
from .validation import (
    MAX_JOB_ID_LEN,
    MAX_JOB_TYPE_LEN,
    MAX_QUEUE_LEN,
    MAX_TENANT_LEN,
    check_aware,
    check_identifier,
    check_non_negative,
    known_identifier,
    remember_identifier,
    usage_ok,
)

__all__ = [
    "CostBreakdown",
    "CostCalculationEngine",
    "CostModel",
    "JobCost",
    "JobMetrics",
    "ResourceCharge",
    "default_cost_model",
    "production_cost_model",
    "seed_cost_model",
    "staging_cost_model",
]

_KB = Decimal(1024)
_MB = Decimal(1048576)
_MAX_WEIGHT = Decimal(1000)
_MAX_UNIT_PRICE = Decimal(1_000_000)
_UNIT_PRICE_CONTEXT = Context(prec=15, rounding=ROUND_HALF_EVEN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 12, 31, tzinfo=UTC)
_USAGE_FIELDS = ("cpu_time", "memory_mb_seconds", "payload_bytes", "redis_ops", "network_bytes")
_SCALARS = (*BUILTIN_RATES, "environment_multiplier")
#: built-in components that may join a ``max_tres`` group
_GROUPABLE = ("cpu_time", "memory", "payload", "redis_ops", "network")


@dataclass(frozen=True, slots=True)
class CostModel:
    """Prices per unit of resource, in dollars.  The defaults are public cloud list
    prices in round numbers (see docs/cost-model.md): 0.036 $ per core-hour, about
    0.0037 $ per GiB-hour of memory, about 0.10 $ per GiB sent."""

    cpu_time_weight: Decimal = Decimal("0.00001")  # $/CPU-second: 0.036 $/core-hour
    memory_weight: Decimal = Decimal("0.000000001")  # $/MB·second: 0.0036864 $/GiB-hour
    payload_weight: Decimal = Decimal("0.0000001")  # $/KB of payload: 0.1048576 $/GiB
    redis_ops_weight: Decimal = Decimal("0.0000001")  # $/Redis operation: 0.10 $ per million
    network_weight: Decimal = Decimal("0.0001")  # $/MB transferred: 0.1024 $/GiB
    base_job_weight: Decimal = Decimal("0.00001")  # fixed $ per job: 10 $ per million jobs
    environment_multiplier: Decimal = Decimal(1)  # production vs staging
    #: $ per unit of each named resource (see :mod:`.resources`): ``{"gpu": ...}``
    #: prices every GPU type, ``{"gpu:h100": ...}`` one type
    resources: Mapping[str, Decimal] = field(default_factory=dict)
    #: per-queue (partition) multipliers and weights, like Slurm's TRESBillingWeights
    queues: Mapping[str, QueueRates] = field(default_factory=dict)
    #: per-QoS multipliers (0: free), applied on top of the queue's
    qos: Mapping[str, Decimal] = field(default_factory=dict)
    #: Slurm's ``MAX_TRES``: of these components (``cpu_time``, ``memory`` or resource
    #: names and families), only the largest is charged.  Empty: all are added up.
    max_tres: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in _SCALARS:
            value = check_non_negative(f"cost_model.{name}", getattr(self, name), maximum=_MAX_WEIGHT)
            object.__setattr__(self, name, value)
        if self.environment_multiplier == 0:
            raise ValidationError(
                "cost_model.environment_multiplier", self.environment_multiplier, "must be greater than 0"
            )
        prices = check_resources("cost_model.resources", self.resources)
        for name, weight in prices.items():
            if weight > _MAX_WEIGHT:
                raise ValidationError(f"cost_model.resources.{name}", weight, f"must be at most {_MAX_WEIGHT}")
        object.__setattr__(self, "resources", prices)
        if not isinstance(self.queues, Mapping):
            raise ValidationError("cost_model.queues", type(self.queues).__name__, "must map queue names to rates")
        queues = {str(q): QueueRates.from_value(str(q), self.queues[q]) for q in sorted(self.queues)}
        check_multipliers("cost_model.queues", {q: r.multiplier for q, r in queues.items()}, key="queue")
        object.__setattr__(self, "queues", queues)
        object.__setattr__(self, "qos", check_multipliers("cost_model.qos", self.qos, key="QoS"))
        if isinstance(self.max_tres, str) or not all(isinstance(n, str) for n in self.max_tres):
            raise ValidationError("cost_model.max_tres", self.max_tres, "must be a list of component names")
        group = tuple(self.max_tres)
        for name in group:
            if name not in _GROUPABLE:
                check_resource_name("cost_model.max_tres", name)
        if len(group) == 1:
            raise ValidationError("cost_model.max_tres", group[0], "must name at least two components, or none")
        object.__setattr__(self, "max_tres", group)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CostModel:
        """Build a model from a mapping of field names (unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ValidationError(f"cost_model.{key}", data[key], "unknown cost model key")
        return cls(**data)

    def to_mapping(self) -> dict[str, Any]:
        """Field names to values; the named resources, queues, QoS and ``max_tres``
        only when set (a model without them maps as it always has)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in _SCALARS}
        if self.resources:
            out["resources"] = dict(self.resources)
        if self.queues:
            out["queues"] = {q: r.to_mapping() for q, r in self.queues.items()}
        if self.qos:
            out["qos"] = dict(self.qos)
        if self.max_tres:
            out["max_tres"] = list(self.max_tres)
        return out

    def price_of(self, resource: str, queue: str = "") -> Decimal | None:
        """The weight of a named resource in ``queue``: the queue's own for the name or
        its family, else the model's for the name or its family; None: not priced."""
        rates = self.queues.get(queue)
        base = family(resource)
        for table in (rates.weights if rates else None, self.resources):
            if table:
                if resource in table:
                    return table[resource]
                if base in table:
                    return table[base]
        return None

    @classmethod
    def from_unit_prices(
        cls,
        *,
        cpu_per_vcpu_hour: Any,
        ram_per_gib_hour: Any,
        egress_per_gib: Any,
        payload_per_gib: Any = None,
        redis_per_million_ops: Any = ZERO,
        base_per_job: Any = ZERO,
        environment_multiplier: Any = 1,
    ) -> CostModel:
        """A model from cloud list prices in USD, converted to the model's units:
        $/CPU-second = per vCPU-hour / 3600; $/MB·s = per GiB-hour / 1024 / 3600
        (1 MB = 1 MiB = 1048576 bytes, as the engine counts); $/MB = egress per GiB / 1024;
        $/KB of payload = payload per GiB (default: the egress price) / 1048576;
        $/Redis operation = per million / 10⁶.  Each derived weight is rounded once,
        half-even, to 15 significant digits; base and multiplier are taken as given."""
        given = {
            "cpu_per_vcpu_hour": cpu_per_vcpu_hour,
            "ram_per_gib_hour": ram_per_gib_hour,
            "egress_per_gib": egress_per_gib,
            "payload_per_gib": egress_per_gib if payload_per_gib is None else payload_per_gib,
            "redis_per_million_ops": redis_per_million_ops,
        }
        p = {k: check_non_negative(f"unit_prices.{k}", v, maximum=_MAX_UNIT_PRICE) for k, v in given.items()}
        div = _UNIT_PRICE_CONTEXT.divide
        return cls(
            cpu_time_weight=div(p["cpu_per_vcpu_hour"], Decimal(3600)),
            memory_weight=div(p["ram_per_gib_hour"], Decimal(1024 * 3600)),
            payload_weight=div(p["payload_per_gib"], _MB),
            redis_ops_weight=div(p["redis_per_million_ops"], Decimal(1_000_000)),
            network_weight=div(p["egress_per_gib"], _KB),
            base_job_weight=base_per_job,
            environment_multiplier=environment_multiplier,
        )


def default_cost_model() -> CostModel:
    """Public cloud list prices in round numbers, multiplier 1 (see :class:`CostModel`)."""
    return CostModel()


def seed_cost_model() -> CostModel:
    """The design document's example weights (0.36 $ per core-hour, 36 $ per GB-hour
    of memory, 10 $ per MB sent): the preset ``seed``.  Far above any cloud's list
    prices, they suit toy examples, not real job logs."""
    return CostModel(
        cpu_time_weight=Decimal("0.0001"),
        memory_weight=Decimal("0.00001"),
        payload_weight=Decimal("0.00002"),
        redis_ops_weight=Decimal("0.000001"),
        network_weight=Decimal("0.01"),
        base_job_weight=Decimal("0.001"),
    )


def production_cost_model() -> CostModel:
    """Production: the default model with doubled CPU and memory weights and multiplier 2."""
    base = default_cost_model()
    return replace(
        base,
        cpu_time_weight=base.cpu_time_weight * 2,
        memory_weight=base.memory_weight * 2,
        environment_multiplier=Decimal(2),
    )


def staging_cost_model() -> CostModel:
    """Staging: default weights at half price."""
    return CostModel(environment_multiplier=Decimal("0.5"))


@dataclass(frozen=True, slots=True)
class JobMetrics:
    """What a finished job used.  Numbers may be int, float or Decimal (a float means
    its shortest decimal form); they are validated and stored as ``Decimal``.
    ``timestamp`` is when the job completed (aware datetime); None means "now" and is
    filled in by the service's clock."""

    job_id: str
    tenant_id: str
    queue_name: str
    cpu_time: Decimal
    memory_mb_seconds: Decimal
    payload_bytes: Decimal
    redis_ops: Decimal
    network_bytes: Decimal
    job_type: str = ""
    priority: int = 5
    timestamp: datetime | None = None
    #: named resources beyond the six (see :mod:`.resources`): ``{"gpu:a100": 14400}``
    resources: Mapping[str, Decimal] = field(default_factory=dict)
    #: the job's QoS (priced by the model's ``qos`` multipliers), "" for none
    qos: str = ""
    #: labels budgets may select on: a project, a cost centre, a model name
    labels: Mapping[str, str] = field(default_factory=dict)
    #: how the job ended (``COMPLETED``, ``FAILED``, ``NODE_FAIL``, ``PREEMPTED``...),
    #: "" when not reported: the refund policy reads it
    exit_state: str = ""

    def __post_init__(self) -> None:
        # Every job of every entry point is built here, so the common case is fast:
        # identifiers seen before and numbers that are already exact Decimals pass
        # with a few comparisons; anything else takes the checks that name the field.
        job_id = self.job_id
        if not (
            type(job_id) is str
            and 0 < len(job_id) <= MAX_JOB_ID_LEN
            and job_id.isprintable()
            and job_id.strip() == job_id
        ):
            check_identifier("job_id", job_id, max_len=MAX_JOB_ID_LEN)
        if not known_identifier(self.tenant_id, MAX_TENANT_LEN):
            remember_identifier(check_identifier("tenant_id", self.tenant_id, max_len=MAX_TENANT_LEN))
        if not known_identifier(self.queue_name, MAX_QUEUE_LEN):
            remember_identifier(check_identifier("queue_name", self.queue_name, max_len=MAX_QUEUE_LEN))
        if self.job_type:
            check_identifier("job_type", self.job_type, max_len=MAX_JOB_TYPE_LEN)
        if not (
            usage_ok(self.cpu_time)
            and usage_ok(self.memory_mb_seconds)
            and usage_ok(self.payload_bytes)
            and usage_ok(self.redis_ops)
            and usage_ok(self.network_bytes)
        ):
            setter = object.__setattr__
            for name in _USAGE_FIELDS:
                setter(self, name, check_non_negative(name, getattr(self, name)))
        if type(self.priority) is not int or not 0 <= self.priority <= 10:
            check_priority(self.priority)
        if self.timestamp is not None:
            check_aware("timestamp", self.timestamp)
            if not _EPOCH <= self.timestamp <= _LATEST:
                raise ValidationError("timestamp", self.timestamp.isoformat(), "must be between 1970 and 9000")
        if self.resources or self.labels or self.qos or self.exit_state:
            _check_extras(self)

    def with_timestamp(self, timestamp: datetime) -> JobMetrics:
        return replace(self, timestamp=timestamp)


def _check_extras(m: JobMetrics) -> None:
    setter = object.__setattr__
    setter(m, "resources", check_resources("resources", m.resources))
    setter(m, "labels", check_labels("labels", m.labels))
    for name in ("qos", "exit_state"):
        value = getattr(m, name)
        if value:
            check_identifier(name, value, max_len=MAX_QUEUE_LEN)


def check_priority(value: Any) -> int:
    """Priorities are whole numbers from 0 to 10 (the emergency threshold defaults to 9)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("priority", value, "must be a whole number")
    if not 0 <= value <= 10:
        raise ValidationError("priority", value, "must be between 0 and 10")
    return value


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    cpu_cost: Decimal = ZERO
    memory_cost: Decimal = ZERO
    payload_cost: Decimal = ZERO
    redis_cost: Decimal = ZERO
    network_cost: Decimal = ZERO
    base_cost: Decimal = ZERO
    #: the named resources' (GPUs, licences...) together; :attr:`JobCost.resources` itemises them
    resource_cost: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return (
            self.cpu_cost
            + self.memory_cost
            + self.payload_cost
            + self.redis_cost
            + self.network_cost
            + self.base_cost
            + self.resource_cost
        )

    def __add__(self, other: CostBreakdown) -> CostBreakdown:
        return CostBreakdown(*(getattr(self, f) + getattr(other, f) for f in COMPONENTS))


COMPONENTS = ("cpu_cost", "memory_cost", "payload_cost", "redis_cost", "network_cost", "base_cost", "resource_cost")


@dataclass(frozen=True, slots=True)
class ResourceCharge:
    """One named resource of a job: the quantity used and its cost (rounded once)."""

    name: str
    quantity: Decimal
    cost: Decimal


@dataclass(frozen=True, slots=True)
class JobCost:
    """The price of one job.  ``duplicate`` is True when the job id had been processed
    before: the stored cost is returned and nothing is counted again."""

    job_id: str
    tenant_id: str
    queue_name: str
    job_type: str
    timestamp: datetime | None
    total_cost: Decimal
    cost_breakdown: CostBreakdown
    cost_model_version: int = 0
    duplicate: bool = False
    #: the named resources itemised; their costs add up to ``cost_breakdown.resource_cost``
    resources: tuple[ResourceCharge, ...] = ()
    #: the job's labels (the budgets it counted toward select on them)
    labels: Mapping[str, str] = field(default_factory=dict)


from .engine import CostCalculationEngine  # noqa: E402  (the engine prices with the classes above)
