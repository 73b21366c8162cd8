"""Request and response models.  Request numbers arrive as ``Decimal`` (see
:func:`jobbudget.api.deps.loads_exact`); money goes out as exact decimal strings."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    WithJsonSchema,
)

from ..domain.money import plain
from ..domain.validation import MAX_JOB_TYPE_LEN, MAX_QUEUE_LEN, MAX_TENANT_LEN

__all__ = [
    "ActionOut",
    "BudgetIn",
    "BudgetOut",
    "BudgetPatch",
    "CheckIn",
    "CostModelIn",
    "CostModelOut",
    "ErrorDetail",
    "ErrorOut",
    "JobBatchIn",
    "JobCostOut",
    "JobIn",
    "JobsIn",
    "JobsOut",
    "MAX_API_BATCH",
    "Money",
    "Number",
    "StatusOut",
]

MAX_API_BATCH = 10_000


def _json_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ValueError("must be a JSON number")
    return value


def _number_or_text(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise ValueError("must be a number or a decimal string")
    return value


def _exact(value: Decimal) -> str:
    return plain(value)


#: A JSON number (never a string), read exactly.
Number = Annotated[
    Decimal,
    BeforeValidator(_json_number),
    PlainSerializer(_exact, return_type=str, when_used="json"),
    WithJsonSchema({"type": "number"}, mode="validation"),  # strings are refused: say so
]
#: Money or a rate: a JSON number or a decimal string such as "1500.00"; written as a string.
Money = Annotated[Decimal, BeforeValidator(_number_or_text), PlainSerializer(_exact, return_type=str, when_used="json")]


def _clean_text(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ValueError("must not contain control characters or lone surrogates")
    return value


#: Free text: no control characters (PostgreSQL cannot store NUL) nor lone surrogates.
Text = Annotated[StrictStr, AfterValidator(_clean_text)]
Id = Annotated[Text, Field(max_length=200)]
TenantId = Annotated[Text, Field(max_length=MAX_TENANT_LEN)]
QueueId = Annotated[Text, Field(max_length=MAX_QUEUE_LEN)]
JobType = Annotated[Text, Field(max_length=MAX_JOB_TYPE_LEN)]
#: Stored ids (budgets, alerts): printable ASCII without spaces.
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,100}$"
#: Query text: no control characters.
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _recent(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None
    if utc.year < 1970:
        raise ValueError("must be after 1970-01-01")
    return value


def _no_usage() -> Any:
    """A usage of 0 by default, shown in the schema as the number it is (pydantic would
    write the Decimal as the string "0", which a number field cannot hold)."""
    return Field(Decimal(0), json_schema_extra={"default": 0})


class JobIn(_In):
    """A finished job's measured resources (usages are JSON numbers, exact)."""

    job_id: Id
    tenant_id: TenantId
    queue_name: QueueId
    cpu_time: Number
    memory_mb_seconds: Number = _no_usage()
    payload_bytes: Number = _no_usage()
    redis_ops: Number = _no_usage()
    network_bytes: Number = _no_usage()
    job_type: JobType = ""
    priority: StrictInt = 5
    timestamp: Annotated[AwareDatetime | None, AfterValidator(_recent)] = None
    reservation_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,64}$")] | None = None
    resources: Annotated[
        dict[str, Number],
        Field(
            max_length=64,
            description="Named resources priced by the cost model's `resources`, e.g. "
            '`{"gpu:a100": 14400}` (GPU-seconds). A name the model does not price is an error.',
        ),
    ] = Field(default_factory=dict)
    qos: Annotated[Text, Field(max_length=MAX_QUEUE_LEN, description="The job's QoS (priced by `qos`).")] = ""
    labels: Annotated[
        dict[str, Annotated[Text, Field(min_length=1, max_length=200)]],
        Field(max_length=16, description="Labels that label budgets select on (project, cost centre...)."),
    ] = Field(default_factory=dict)
    exit_state: Annotated[
        Text, Field(max_length=MAX_QUEUE_LEN, description="How the job ended (`COMPLETED`, `NODE_FAIL`...).")
    ] = ""


class JobBatchIn(_In):
    jobs: Annotated[list[JobIn], Field(min_length=1, max_length=MAX_API_BATCH)]


def _job_or_batch(value: Any) -> str:
    return "batch" if isinstance(value, (dict, JobBatchIn)) and "jobs" in value else "job"


#: One job, or ``{"jobs": [...]}``.
JobsIn = Annotated[Annotated[JobBatchIn, Tag("batch")] | Annotated[JobIn, Tag("job")], Discriminator(_job_or_batch)]
UNION_TAGS = ("batch", "job")


class CostBreakdownOut(BaseModel):
    cpu_cost: Money
    memory_cost: Money
    payload_cost: Money
    redis_cost: Money
    network_cost: Money
    base_cost: Money
    resource_cost: Money = Field(description="The named resources' together (itemised in `resources`).")


class ResourceChargeOut(BaseModel):
    name: str
    quantity: Money
    cost: Money


class JobCostOut(BaseModel):
    job_id: str
    tenant_id: str
    queue_name: str
    job_type: str
    timestamp: datetime | None
    total_cost: Money
    cost_breakdown: CostBreakdownOut
    cost_model_version: int
    duplicate: bool
    resources: list[ResourceChargeOut] = Field(default_factory=list)


class JobsOut(BaseModel):
    jobs: list[JobCostOut]
    inserted: int
    duplicates: list[str]
    total_cost: Money = Field(description="Sum of the costs of the jobs stored by this request.")


Labels = Annotated[
    dict[str, Annotated[Text, Field(min_length=1, max_length=200)]],
    Field(max_length=16, description="The job's labels: budgets that select labels count it when it carries them."),
]


class CheckIn(_In):
    tenant_id: TenantId
    queue_name: QueueId = ""
    priority: StrictInt = 5
    labels: Labels = {}


class AdmitIn(_In):
    """A job about to run: admit it and hold its estimated cost (``estimated_cost``
    defaults to the queue's mean job cost) until it is reported or released."""

    tenant_id: TenantId
    queue_name: QueueId = ""
    priority: StrictInt = 5
    estimated_cost: Money | None = None
    ttl_seconds: Annotated[StrictInt, Field(ge=1, le=604_800)] = 3600
    labels: Labels = {}


class ActionOut(BaseModel):
    type: str
    allowed: bool
    factor: float
    message: str
    budget_id: str | None
    utilization: Money
    current_spend: Money | None = Field(
        description="null when the deciding budget was set on a node above the key's (its team's or organisation's): "
        "a tenant learns how full it is, not its amount or what others spent"
    )
    budget_amount: Money | None
    bypass: bool


class AdmissionOut(BaseModel):
    action: ActionOut
    allowed: bool
    reservation_id: str | None
    estimated_cost: Money
    expires_at: AwareDatetime | None


def _calendar_date(value: date | None) -> date | None:
    if value is not None and not date(1970, 1, 1) <= value <= date(9000, 12, 31):
        raise ValueError("must lie between 1970-01-01 and 9000-12-31")
    return value


CalendarDate = Annotated[date | None, AfterValidator(_calendar_date)]


class PeriodIn(_In):
    type: Text = "monthly"
    start_date: CalendarDate = None
    end_date: CalendarDate = None
    timezone: Text = "UTC"
    recurring: StrictBool | None = None


class PolicyIn(_In):
    warn_only: StrictBool = False
    throttle_factor: Money = Decimal("0.5")
    block_new_jobs: StrictBool = True
    allow_emergency: StrictBool = True
    emergency_priority: StrictInt = 9
    grace_period_hours: StrictInt = 0
    max_bypass_fraction: Money = Field(
        Decimal("0.1"),
        description="Emergency jobs may spend at most this fraction of the amount past the block threshold "
        "per period (0 to 1).",
    )
    carry_over: Literal["none", "unused", "overage", "both"] = Field(
        "none",
        description="A recurring budget carries its previous period's unused amount, its overage, or both "
        "into the next period.",
    )
    carry_over_cap: Money = Field(
        Decimal(1), description="At most this fraction of the amount is carried either way (0 to 10)."
    )


class ChannelIn(_In):
    type: Text
    target: Text
    events: list[Text] = ["warning", "throttle", "block"]
    enabled: StrictBool = True
    metadata: dict[Text, Text] = {}


class _BudgetFields(_In):
    queue_name: QueueId = ""
    currency: Text = "USD"
    warning_threshold: Money = Decimal("0.75")
    throttle_threshold: Money = Decimal("0.90")
    block_threshold: Money = Decimal("1.00")
    enforcement_policy: PolicyIn = PolicyIn()
    notifications: Annotated[list[ChannelIn], Field(max_length=50)] = []
    tags: dict[Text, Text] = {}
    labels: Annotated[
        dict[Text, Text],
        Field(max_length=16, description="The budget counts only jobs carrying every one of these labels."),
    ] = {}
    active: StrictBool = True


class BudgetIn(_BudgetFields):
    tenant_id: TenantId
    amount: Money
    period: PeriodIn = PeriodIn()


class BudgetPatch(_In):
    """Fields to change; the others keep their stored values (``period`` is replaced whole)."""

    tenant_id: TenantId | None = None
    amount: Money | None = None
    period: PeriodIn | None = None
    queue_name: QueueId | None = None
    currency: Text | None = None
    warning_threshold: Money | None = None
    throttle_threshold: Money | None = None
    block_threshold: Money | None = None
    enforcement_policy: PolicyIn | None = None
    notifications: Annotated[list[ChannelIn], Field(max_length=50)] | None = None
    tags: dict[Text, Text] | None = None
    labels: dict[Text, Text] | None = None
    active: StrictBool | None = None


class PeriodOut(BaseModel):
    type: str
    start_date: date | None
    end_date: date | None
    timezone: str
    recurring: bool | None


class PolicyOut(BaseModel):
    warn_only: bool
    throttle_factor: float
    block_new_jobs: bool
    allow_emergency: bool
    emergency_priority: int
    grace_period_hours: int
    max_bypass_fraction: Money
    carry_over: str = "none"
    carry_over_cap: Money = Decimal(1)


class ChannelOut(BaseModel):
    """A notification channel with its target and secret metadata redacted."""

    type: str
    target: str
    events: list[str]
    enabled: bool
    metadata: dict[str, str]


class BudgetOut(BaseModel):
    """A budget as stored (money as exact decimal strings, secrets redacted)."""

    id: str | None
    tenant_id: str
    queue_name: str
    amount: Money
    currency: str
    period: PeriodOut
    warning_threshold: Money
    throttle_threshold: Money
    block_threshold: Money
    enforcement_policy: PolicyOut
    notifications: list[ChannelOut]
    tags: dict[str, str]
    labels: dict[str, str] = Field(default_factory=dict)
    active: bool
    created_at: datetime | None
    updated_at: datetime | None
    created_by: str
    owner: Literal["operator", "tenant", "team"] = Field(
        description="operator: set with an admin key, the CLI or the library, a cap a tenant key cannot change or "
        "remove; tenant: set with the tenant's own key; team: set with the key of a team or organisation above "
        "the tenant, a cap the tenant's own key cannot change or remove"
    )


class StatusOut(BaseModel):
    budget: BudgetOut = Field(description="The budget as stored.")
    current_spend: Money
    utilization: Money
    action: ActionOut
    period_start: date | None
    period_end: date | None
    amount_in_force: Money = Field(
        description="What this period allows: the amount, plus what the previous period carried over (negative: "
        "an overage) and the raises in force. Utilization and the action are measured against it."
    )
    carried: Money = Field(description="Carried over from the previous period (0 without rollover).")
    raised: Money = Field(description="The raises in force now.")


class QueueRatesIn(_In):
    multiplier: Money = Decimal(1)
    weights: dict[str, Money] = Field(default_factory=dict)


class CostModelIn(_In):
    cpu_time_weight: Money
    memory_weight: Money
    payload_weight: Money
    redis_ops_weight: Money
    network_weight: Money
    base_job_weight: Money
    environment_multiplier: Money
    resources: dict[str, Money] = Field(
        default_factory=dict, description='$ per unit of each named resource, e.g. `{"gpu": "0.0007"}`.'
    )
    queues: dict[str, QueueRatesIn] = Field(
        default_factory=dict, description="Per-queue multiplier (0: free) and weights replacing the model's."
    )
    qos: dict[str, Money] = Field(default_factory=dict, description="Per-QoS multipliers (0: free).")
    max_tres: list[str] = Field(
        default_factory=list, description="Charge only the largest of these components (Slurm's MAX_TRES)."
    )


class CostModelOut(BaseModel):
    version: int
    model: dict[str, Any]


class AckIn(_In):
    by: Annotated[Text, Field(min_length=1, max_length=100)] | None = None


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable code, e.g. `VALIDATION_FAILED`, `BUDGET_NOT_FOUND`.")
    message: str = Field(description="What went wrong, for people.")
    field: str | None = Field(description="The input at fault (validation errors), else null.")


class ErrorOut(BaseModel):
    """Every error: ``{"error": {"code", "message", "field"}}``."""

    error: ErrorDetail
