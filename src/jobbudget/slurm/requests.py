"""A job at submission, as ``job_submit.lua`` sees it, priced for its whole time limit:
the cost that is held against its budgets until it ends and is metered.

CPUs × seconds, memory (MB) × seconds and each GPU type × seconds, where seconds is the
job's time limit (else its partition's default or maximum, else the policy's
``default_time_limit``), under the cost model in force with the job's partition (its
queue) and QOS.  A job array is priced as all of its tasks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ..domain.cost import JobMetrics
from ..domain.errors import ValidationError
from ..importers.slurm_resources import requested_gpus
from .policy import SlurmPolicy

__all__ = ["MAX_ARRAY_TASKS", "PricedRequest", "SubmitRequest", "array_tasks", "in_slurm_words", "request_metrics"]

#: Slurm's own ceiling (MaxArraySize is at most 4,000,001)
MAX_ARRAY_TASKS = 4_000_001
_RANGE = re.compile(r"^(\d{1,7})(?:-(\d{1,7})(?::(\d{1,7}))?)?$")
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """What a job asks for (``job_submit.lua`` fills it from ``job_desc``)."""

    user: str
    account: str
    partition: str
    qos: str = ""
    cpus: int = 1
    nodes: int = 1
    tasks: int = 1
    memory_per_node_mb: int | None = None
    memory_per_cpu_mb: int | None = None
    time_limit_minutes: int | None = None
    tres_per_job: str = ""
    tres_per_node: str = ""
    tres_per_task: str = ""
    tres_per_socket: str = ""
    #: ``--array``'s index expression (``1-100%10``, ``1,3,5-9:2``); "" for one job
    array: str = ""


@dataclass(frozen=True, slots=True)
class PricedRequest:
    """One task of the job as jobbudget meters it (for the time limit), how many tasks
    the job has, and the seconds it was priced for."""

    metrics: JobMetrics
    tasks: int
    seconds: int
    tenant_source: str


def array_tasks(text: str) -> int:
    """How many tasks ``--array=TEXT`` makes (``1-100%10`` is 100: ``%`` only limits
    how many run at once)."""
    spec, _, limit = text.strip().partition("%")
    if limit and not (limit.isascii() and limit.isdigit()):
        raise ValidationError("array", text, "must be task indexes such as 1-100%10 or 1,3,5-9:2")
    if not spec:
        return 1
    count = 0
    for item in spec.split(","):
        match = _RANGE.match(item.strip())
        if match is None:
            raise ValidationError("array", text, "must be task indexes such as 1-100%10 or 1,3,5-9:2")
        first, last, step = int(match.group(1)), match.group(2), match.group(3)
        if last is None:
            count += 1
            continue
        if int(last) < first or (step is not None and int(step) < 1):
            raise ValidationError("array", text, f"{item.strip()} is not a range of task indexes")
        count += len(range(first, int(last) + 1, int(step or 1)))
    if count > MAX_ARRAY_TASKS:
        raise ValidationError("array", text, f"makes {count:,} tasks, more than Slurm's {MAX_ARRAY_TASKS:,}")
    return count


def request_metrics(request: SubmitRequest, policy: SlurmPolicy, *, now: datetime) -> PricedRequest:
    """The job as if it ran its whole time limit with what it asks for."""
    if request.time_limit_minutes is not None:
        seconds = request.time_limit_minutes * 60
    else:
        seconds = int(policy.default_time_limit.total_seconds())
    tenant, source = policy.tenant(request.account, request.user)
    cpus = max(request.cpus, 1)
    nodes = max(request.nodes, 1)
    if request.memory_per_node_mb is not None:
        memory = request.memory_per_node_mb * nodes
    elif request.memory_per_cpu_mb is not None:
        memory = request.memory_per_cpu_mb * cpus
    else:
        memory = policy.default_memory_per_cpu_mb * cpus
    gpus: dict[str, Decimal] = {}
    for column, text, times in (
        ("tres_per_job", request.tres_per_job, 1),
        ("tres_per_node", request.tres_per_node, nodes),
        ("tres_per_task", request.tres_per_task, max(request.tasks, 1)),
        ("tres_per_socket", request.tres_per_socket, nodes),  # at least one socket a node
    ):
        if text:
            for name, count in requested_gpus(column, text).items():
                gpus[name] = gpus.get(name, _ZERO) + count * times
    span = Decimal(seconds)
    try:
        metrics = JobMetrics(
            job_id=policy.job_id("submit"),
            tenant_id=tenant,
            queue_name=policy.queue(request.partition),
            cpu_time=Decimal(cpus) * span,
            memory_mb_seconds=Decimal(memory) * span,
            payload_bytes=_ZERO,
            redis_ops=_ZERO,
            network_bytes=_ZERO,
            priority=policy.priority(request.qos),
            timestamp=now,
            resources={name: count * span for name, count in gpus.items() if count},
            qos=request.qos,
        )
    except ValidationError as exc:
        raise in_slurm_words(exc, source) from None
    return PricedRequest(metrics=metrics, tasks=array_tasks(request.array), seconds=seconds, tenant_source=source)


def in_slurm_words(exc: ValidationError, source: str) -> ValidationError:
    """A field of the job in Slurm's name for it (``account``, not ``tenant_id``)."""
    field = {"tenant_id": source, "queue_name": "partition"}.get(exc.field, exc.field)
    return ValidationError(field, exc.value, exc.reason)
