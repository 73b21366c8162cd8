"""Slurm (docs/slurm.md): ``/v1/slurm/admit`` answers ``job_submit.lua`` at ``sbatch``,
``/v1/slurm/jobs`` meters a job the moment it ends (the jobcomp script sends it) and ``/v1/slurm/sacct`` meters a backfill from ``sacct``.
All three need an admin key: the controller acts for every tenant."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field, StrictInt
from starlette.concurrency import run_in_threadpool

from ..core.admission import MAX_RESERVATION_TTL
from ..domain.budget import Budget
from ..domain.cost import JobMetrics
from ..domain.errors import NotFoundError, UnsupportedMediaTypeError, ValidationError
from ..domain.money import ZERO
from ..importers.slurm_resources import GPU
from ..service import BudgetService
from ..slurm.messages import decision_text, reply
from ..slurm.policy import SlurmPolicy
from ..slurm.records import Finished, NeverRan, Outcome, Pending, Unreadable, backfill_outcomes, ended_job
from ..slurm.requests import SubmitRequest, request_metrics
from .deps import ExactJSONRoute, KeyDep, ServiceDep, require_admin
from .responses import WRITE
from .schemas import Money, _In
from .threads import in_admission_thread

__all__ = ["router"]

router = APIRouter(prefix="/v1/slurm", route_class=ExactJSONRoute, tags=["slurm"])
_Name = Annotated[str, Field(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
_Count = Annotated[StrictInt, Field(ge=0, le=4_294_967_293)]
_Tres = Annotated[str, Field(max_length=1000, pattern=r"^[^\x00-\x1f\x7f]*$")]


class SlurmSubmitIn(_In):
    """A job at submission, as ``job_submit.lua`` reads it from ``job_desc``."""

    user: _Name = ""
    account: _Name = ""
    partition: _Name = ""
    qos: _Name = ""
    cpus: _Count = 1
    nodes: _Count = 1
    tasks: _Count = 1
    memory_per_node_mb: _Count | None = None
    memory_per_cpu_mb: _Count | None = None
    time_limit_minutes: Annotated[StrictInt, Field(ge=0, le=10_080_000)] | None = Field(
        default=None, description="The job's limit, else its partition's; none: the policy's default_time_limit."
    )
    tres_per_job: _Tres = ""
    tres_per_node: _Tres = ""
    tres_per_task: _Tres = ""
    tres_per_socket: _Tres = ""
    array: Annotated[str, Field(max_length=1000)] = Field(default="", description="--array's indexes: 1-100%10")


class SlurmAdmissionOut(BaseModel):
    action: str = Field(description="allow, warn, throttle or block")
    allowed: bool
    reservation_id: str | None
    estimated_cost: Money = Field(description="the job's request for its whole time limit, all array tasks")
    tenant_id: str
    queue_name: str
    seconds: int = Field(description="the time the job was priced for")
    tasks: int
    message: str = Field(description="what sbatch shows the user; empty when the job is simply allowed")
    nice: int | None = Field(default=None, description="throttled: the nice value job_submit.lua gives the job")
    hold: bool = False
    qos: str | None = None


class SlurmJobOut(BaseModel):
    slurm_job_id: str
    job_id: str | None = None
    tenant_id: str | None = None
    queue_name: str | None = None
    total_cost: Money | None = None
    duplicate: bool = False
    state: str = ""


class SlurmRejectedOut(BaseModel):
    slurm_job_id: str
    line: int = 0
    message: str


class SlurmMeteredOut(BaseModel):
    metered: list[SlurmJobOut] = Field(description="jobs that ran, priced (a duplicate was metered before)")
    released: list[SlurmJobOut] = Field(description="jobs that never ran: their holds released")
    pending: list[SlurmJobOut] = Field(description="jobs not ended yet: nothing done")
    rejected: list[SlurmRejectedOut]
    stored: int
    duplicates: int
    total_cost: Money


def _policy(service: BudgetService) -> SlurmPolicy:
    return service.config.slurm.policy()


_TEXT_REPLY: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/plain": {
                "schema": {"type": "string"},
                "example": "action=block\nreservation=\nestimate=20\nmessage=budget acme/gpu: ...\n",
            }
        }
    }
}


@router.post(
    "/admit",
    summary="Admit a Slurm job at sbatch",
    response_model=SlurmAdmissionOut,
    responses={**WRITE, **_TEXT_REPLY},
)
async def post_admit(request: Request, service: ServiceDep, key: KeyDep, body: SlurmSubmitIn) -> Any:
    """Price the job's request for its whole time limit and admit it, holding that cost
    until it ends (``/v1/slurm/jobs``) or never runs.  With ``Accept: text/plain`` the
    answer is ``key=value`` lines for ``job_submit.lua``."""
    require_admin(service, key)
    out = await in_admission_thread(_admit, service, SubmitRequest(**body.model_dump()))
    if "text/plain" in request.headers.get("accept", ""):
        fields = {"action": out.action, "reservation": out.reservation_id or "", "estimate": str(out.estimated_cost)}
        if out.nice is not None:
            fields["nice"] = str(out.nice)
        if out.hold:
            fields["hold"] = "1"
        if out.qos:
            fields["qos"] = out.qos
        fields["message"] = out.message
        return PlainTextResponse(reply(fields))
    return out


def _admit(service: BudgetService, request: SubmitRequest) -> SlurmAdmissionOut:
    """(In an admission thread.)"""
    policy = _policy(service)
    now = service.now()
    priced = request_metrics(request, policy, now=now)
    priced = replace(priced, metrics=_priciest_gpu(service, priced.metrics))
    estimate = service.price_job(priced.metrics).total_cost * priced.tasks
    if estimate > 1_000_000:
        raise ValidationError(
            "estimate",
            f"{estimate:,.2f}",
            "the job's request for its time limit costs more than 1,000,000: ask for less time or fewer resources",
        )
    # an array's tasks may run one after another: the hold lasts for all of them
    ttl = min(priced.seconds * priced.tasks + policy.pending_allowance.total_seconds(), MAX_RESERVATION_TTL)
    m = priced.metrics
    admission = service.admit(
        m.tenant_id, m.queue_name, priority=m.priority, estimated_cost=estimate, ttl_seconds=max(ttl, 60.0)
    )
    action = admission.action
    throttle = policy.throttled(action.factor) if action.type == "throttle" else {}
    effect = ""
    if "nice" in throttle:
        effect = f"this job runs at a lower priority (nice {throttle['nice']})"
    elif "hold" in throttle:
        effect = "this job is held until an administrator releases it"
    elif "qos" in throttle:
        effect = f"this job runs in QOS {throttle['qos']}"
    elif action.type == "block":
        effect = "job refused"
    budget, spent = _budget(service, action.budget_id) if action.type != "allow" or action.bypass else (None, None)
    message = decision_text(
        action, budget, tenant_id=m.tenant_id, estimate=estimate, now=now, spent=spent, effect=effect
    )
    return SlurmAdmissionOut(
        action=action.type,
        allowed=admission.allowed,
        reservation_id=admission.reservation_id,
        estimated_cost=estimate,
        tenant_id=m.tenant_id,
        queue_name=m.queue_name,
        seconds=priced.seconds,
        tasks=priced.tasks,
        message=message,
        nice=int(throttle["nice"]) if "nice" in throttle else None,
        hold="hold" in throttle,
        qos=throttle.get("qos"),
    )


def _priciest_gpu(service: BudgetService, metrics: JobMetrics) -> JobMetrics:
    """GPUs asked for without a type (``--gpus=2``) at the dearest GPU type the model
    prices for the queue: the node decides the type, and the estimate is an upper bound."""
    untyped = metrics.resources.get(GPU)
    if untyped is None:
        return metrics
    model = service.get_cost_model()
    names = {n for n in model.resources if n == GPU or n.startswith(GPU + ":")}
    names |= {n for q in model.queues.values() for n in q.weights if n == GPU or n.startswith(GPU + ":")}
    priced = [(p, n) for n in names if (p := model.price_of(n, metrics.queue_name)) is not None]
    if not priced:
        return metrics  # refused by pricing, naming gpu
    dearest = max(priced)[1]
    resources = {k: v for k, v in metrics.resources.items() if k != GPU}
    resources[dearest] = resources.get(dearest, Decimal(0)) + untyped
    return replace(metrics, resources=resources)


def _budget(service: BudgetService, budget_id: str | None) -> tuple[Budget | None, Decimal | None]:
    """The deciding budget and its spend without open reservations."""
    if not budget_id:
        return None, None
    try:
        status = service.get_budget_status(budget_id)
    except NotFoundError:
        return None, None
    return status.budget, status.current_spend


_JOB_FIELDS = ("job_id", "job_state", "start", "end", "cpus", "account", "user", "partition", "qos", "tres")
_JOB_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {name: {"type": "string"} for name in (*_JOB_FIELDS, "admin_comment")},
                    "required": ["job_id", "job_state", "start", "end"],
                }
            }
        },
    }
}


@router.post("/jobs", summary="Meter a Slurm job that ended", openapi_extra=_JOB_BODY, responses=WRITE)
async def post_jobs(request: Request, service: ServiceDep, key: KeyDep) -> SlurmMeteredOut:
    """The jobcomp script's call when a job ends (form fields: slurmctld's ``JOBID``,
    ``JOBSTATE``, ``START``, ``END``, ``PROCS``, ``ACCOUNT``, ``USERNAME``,
    ``PARTITION``, ``QOS``, the TRES it held and its admin comment).  A job that ran is
    priced for elapsed × allocated TRES and settles its hold; one that never ran
    releases it.  A job metered before is a duplicate: counted once."""
    require_admin(service, key)
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise UnsupportedMediaTypeError(f"content-type {kind or '(none)'}: send application/x-www-form-urlencoded")
    try:
        pairs = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise ValidationError("body", "<form>", "is not a UTF-8 form (name=value&...)") from None
    fields = dict(pairs)
    unknown = sorted(set(fields) - {*_JOB_FIELDS, "admin_comment"})
    if unknown:
        raise ValidationError(
            unknown[0],
            fields[unknown[0]][:100],
            f"is not a field of a job (fields: {', '.join(_JOB_FIELDS)}, admin_comment)",
        )
    outcome = ended_job(fields, _policy(service))
    out = await run_in_threadpool(_settle, service, [outcome])
    if out.rejected:  # the jobcomp script logs it; the backfill meters the job from sacct
        raise ValidationError("job", fields.get("job_id", ""), out.rejected[0].message)
    return out


_SACCT_BODY = {
    "requestBody": {
        "required": True,
        "content": {  # text/plain is taken too (what curl sends); one type keeps client generators happy
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary", "description": "sacct -X --parsable2 output"}
            },
        },
    }
}


@router.post("/sacct", summary="Backfill Slurm jobs from sacct", openapi_extra=_SACCT_BODY, responses=WRITE)
async def post_sacct(request: Request, service: ServiceDep, key: KeyDep) -> SlurmMeteredOut:
    """``jobbudget slurm backfill`` sends ``sacct -X --parsable2`` output (see
    ``BACKFILL_COLUMNS``): jobs missed while jobbudget was down are metered, those
    metered already are duplicates, so running it twice counts each job once."""
    require_admin(service, key)
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind not in ("text/plain", "application/octet-stream", ""):
        raise UnsupportedMediaTypeError(f"content-type {kind}: send text/plain (sacct's output)")
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("body", "<sacct>", "is not UTF-8 text") from None
    outcomes = list(backfill_outcomes(text.splitlines(), _policy(service)))
    return await run_in_threadpool(_settle, service, outcomes)


def _settle(service: BudgetService, outcomes: Iterable[Outcome]) -> SlurmMeteredOut:
    """(In a worker thread.)"""
    finished: list[Finished] = []
    out = SlurmMeteredOut(metered=[], released=[], pending=[], rejected=[], stored=0, duplicates=0, total_cost=ZERO)
    for item in outcomes:
        if isinstance(item, Finished):
            finished.append(item)
        elif isinstance(item, NeverRan):
            if item.reservation_id and item.tenant_id:  # only the job's own tenant's hold, never "any"
                service.release(item.reservation_id, tenant_id=item.tenant_id)
            out.released.append(SlurmJobOut(slurm_job_id=item.slurm_job_id, state=item.state))
        elif isinstance(item, Pending):
            out.pending.append(SlurmJobOut(slurm_job_id=item.slurm_job_id, state=item.state))
        elif isinstance(item, Unreadable):
            out.rejected.append(SlurmRejectedOut(slurm_job_id=item.slurm_job_id, line=item.line, message=item.message))
    total = ZERO
    for job, cost in _meter(service, finished, out.rejected):
        out.metered.append(
            SlurmJobOut(
                slurm_job_id=job.slurm_job_id,
                job_id=cost.job_id,
                tenant_id=cost.tenant_id,
                queue_name=cost.queue_name,
                total_cost=cost.total_cost,
                duplicate=cost.duplicate,
                state=job.metrics.exit_state,
            )
        )
        if cost.duplicate:
            out.duplicates += 1
        else:
            out.stored += 1
            total += cost.total_cost
    out.total_cost = total
    return out


def _meter(
    service: BudgetService, jobs: list[Finished], rejected: list[SlurmRejectedOut]
) -> list[tuple[Finished, Any]]:
    """Price and store ``jobs`` in one transaction; if one of them is refused, each on
    its own, so the others are stored and the refused one is named."""
    if not jobs:
        return []
    try:
        costs = service.process_job_costs(
            [j.metrics for j in jobs], reservation_ids=[j.reservation_id for j in jobs], accept_late=True
        )
        return list(zip(jobs, costs, strict=True))
    except ValidationError:
        pass  # one at a time below: the others are stored, the refused one named
    done = []
    for job in jobs:
        try:
            cost = service.process_job_cost(job.metrics, reservation_id=job.reservation_id)
        except ValidationError as exc:  # in the words of a Slurm job, not of a batch
            field = exc.field.split(".", 1)[1] if exc.field.startswith("batch[") and "." in exc.field else exc.field
            said = ValidationError({"timestamp": "end"}.get(field, field), exc.value, exc.reason)
            rejected.append(SlurmRejectedOut(slurm_job_id=job.slurm_job_id, message=str(said)))
            continue
        done.append((job, cost))
    return done
