"""Metering and pricing: ``/v1/jobs``, ``/v1/check``, ``/v1/forecast``,
``/v1/cost-model`` and ``/v1/calibration``."""

from __future__ import annotations

import io
import re
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..domain.apikeys import ApiKey
from ..domain.codec import cost_model_from_mapping, cost_model_to_mapping, to_jsonable
from ..domain.cost import COMPONENTS, JobCost, JobMetrics
from ..domain.enforcement import EnforcementAction
from ..domain.errors import NotFoundError, PermissionDeniedError, ValidationError
from ..domain.money import ZERO
from .deps import ExactJSONRoute, KeyDep, ServiceDep, actor_of, loads_exact, require_admin, require_read, require_write
from .responses import LOOKUP, WITH_BODY, WRITE, errors
from .schemas import (
    TEXT_PATTERN,
    ActionOut,
    AdmissionOut,
    AdmitIn,
    CheckIn,
    CostModelIn,
    CostModelOut,
    JobBatchIn,
    JobCostOut,
    JobIn,
    JobsIn,
    JobsOut,
    _exact,
)
from .threads import in_admission_thread

__all__ = ["action_out", "router"]

router = APIRouter(prefix="/v1", route_class=ExactJSONRoute)
_BATCH_FIELD = re.compile(r"^batch\[(\d+)\]")


def _metrics(job: JobIn) -> JobMetrics:
    return JobMetrics(
        job_id=job.job_id,
        tenant_id=job.tenant_id,
        queue_name=job.queue_name,
        cpu_time=job.cpu_time,
        memory_mb_seconds=job.memory_mb_seconds,
        payload_bytes=job.payload_bytes,
        redis_ops=job.redis_ops,
        network_bytes=job.network_bytes,
        job_type=job.job_type,
        priority=job.priority,
        timestamp=job.timestamp,
        resources=job.resources,
        qos=job.qos,
        labels=job.labels,
        exit_state=job.exit_state,
    )


def _cost_json(cost: JobCost) -> dict[str, Any]:
    """What ``JobCostOut`` serialises to, built directly: a batch of 10,000 jobs would
    otherwise be validated twice by pydantic on the way out."""
    b = cost.cost_breakdown
    return {
        "job_id": cost.job_id,
        "tenant_id": cost.tenant_id,
        "queue_name": cost.queue_name,
        "job_type": cost.job_type,
        "timestamp": cost.timestamp.isoformat().replace("+00:00", "Z") if cost.timestamp else None,
        "total_cost": _exact(cost.total_cost),
        "cost_breakdown": {name: _exact(getattr(b, name)) for name in COMPONENTS},
        "cost_model_version": cost.cost_model_version,
        "duplicate": cost.duplicate,
        "resources": [{"name": c.name, "quantity": _exact(c.quantity), "cost": _exact(c.cost)} for c in cost.resources],
    }


@router.post("/jobs", response_model=JobsOut, tags=["jobs"], summary="Price and store finished jobs", responses=WRITE)
def post_jobs(service: ServiceDep, key: KeyDep, body: Annotated[JobsIn, Body()]) -> JSONResponse:
    """One job, or ``{"jobs": [...]}`` (at most 10,000), stored in one transaction.
    A job id seen before for the tenant is not counted again (``duplicate``)."""
    jobs = body.jobs if isinstance(body, JobBatchIn) else [body]
    for tenant in sorted({job.tenant_id for job in jobs}):
        require_write(service, key, tenant)
    metrics = []
    for i, job in enumerate(jobs):
        try:
            metrics.append(_metrics(job))
        except ValidationError as exc:
            prefix = f"jobs[{i}]." if isinstance(body, JobBatchIn) else ""
            raise ValidationError(prefix + exc.field, exc.value, exc.reason) from None
    try:
        costs = service.process_job_costs(
            metrics,
            reservation_ids=[job.reservation_id for job in jobs],
            accept_late=key.role == "admin",  # a tenant key cannot date jobs out of the current period
        )
    except ValidationError as exc:  # the service's "batch[3].timestamp" in the request's words
        match = _BATCH_FIELD.match(exc.field)
        if match is None:
            raise
        rest = exc.field[match.end() :].lstrip(".")
        named = f"jobs[{match.group(1)}]{'.' + rest if rest else ''}" if isinstance(body, JobBatchIn) else rest or "job"
        raise ValidationError(named, exc.value, exc.reason) from None
    new = [c for c in costs if not c.duplicate]
    out = {
        "jobs": [_cost_json(c) for c in costs],
        "inserted": len(new),
        "duplicates": [c.job_id for c in costs if c.duplicate],
        "total_cost": _exact(sum((c.total_cost for c in new), ZERO)),
    }
    return JSONResponse(out)  # the JobsOut shape (response_model documents it)


@router.get("/jobs/{tenant_id}/{job_id}", tags=["jobs"], summary="A stored job's cost", responses=LOOKUP)
def get_job(
    service: ServiceDep,
    key: KeyDep,
    tenant_id: Annotated[str, Path(max_length=200, pattern=TEXT_PATTERN)],
    job_id: Annotated[str, Path(max_length=200, pattern=TEXT_PATTERN)],
) -> JobCostOut:
    """The job as it was priced and stored (404 when no such job was metered)."""
    require_read(key, tenant_id, kind="job", ident=f"{tenant_id}/{job_id}")
    cost = service.get_job_cost(tenant_id, job_id)
    if cost is None:
        raise NotFoundError("job", f"{tenant_id}/{job_id}")
    return JobCostOut.model_validate(_cost_json(cost))


def action_out(action: EnforcementAction, key: ApiKey | None = None) -> ActionOut:
    """The action as ``key`` may see it: a budget set above the key's node (a team's or
    organisation's, over the spend of other tenants too) shows how full it is and what
    it does, not its id, amount or spend."""
    if key is not None and not _sees(key, action.tenant_id):
        verb = {"block": "new jobs blocked", "throttle": f"throttled to {action.factor * 100:.0f}% capacity"}
        return ActionOut(
            type=action.type,
            allowed=action.allowed,
            factor=action.factor,
            message=f"a budget above {key.tenant_id} (set for its team or organisation) is "
            f"{action.utilization * 100:.1f}% used" + (f", {verb[action.type]}" if action.type in verb else ""),
            budget_id=None,
            utilization=action.utilization,
            current_spend=None,
            budget_amount=None,
            bypass=action.bypass,
        )
    return ActionOut(
        type=action.type,
        allowed=action.allowed,
        factor=action.factor,
        message=action.message,
        budget_id=action.budget_id,
        utilization=action.utilization,
        current_spend=action.current_spend,
        budget_amount=action.budget_amount,
        bypass=action.bypass,
    )


def _sees(key: ApiKey, node: str) -> bool:
    """Whether ``key`` may see a budget set on ``node`` ("": no budget decided)."""
    return not node or key.tenant_id is None or node == key.tenant_id or node in key.below


@router.post(
    "/check", tags=["enforcement"], summary="Decide admission of a job", responses=errors(*WITH_BODY, 404, 422)
)
async def post_check(service: ServiceDep, key: KeyDep, body: CheckIn) -> ActionOut:
    # in a worker thread of the admission pool: a check usually reads memory only, but
    # may read Redis or the database (a shared state, another writer's commits) or wait
    # for the write lock (a period roll, an ingest), and none of that may stall the loop
    require_read(key, body.tenant_id, kind="tenant", ident=body.tenant_id)
    action = await in_admission_thread(
        service.check_budget_compliance, body.tenant_id, body.queue_name, body.priority, labels=body.labels
    )
    return action_out(action, key)


@router.post("/admit", tags=["enforcement"], summary="Admit a job and reserve its cost", responses=WRITE)
async def post_admit(service: ServiceDep, key: KeyDep, body: AdmitIn) -> AdmissionOut:
    """Like ``/v1/check``, and if the job is admitted its estimated cost is held against
    every budget covering it (shared by every process), so concurrent admissions never
    overshoot a blocking budget.  Report the job with its ``reservation_id`` in
    ``/v1/jobs``, or release it with ``DELETE /v1/reservations/{id}``."""
    require_write(service, key, body.tenant_id)  # pure: the key's role and tenant
    admission = await in_admission_thread(
        service.admit,
        body.tenant_id,
        body.queue_name,
        priority=body.priority,
        estimated_cost=body.estimated_cost,
        ttl_seconds=body.ttl_seconds,
        labels=body.labels,
    )
    return AdmissionOut(
        action=action_out(admission.action, key),
        allowed=admission.allowed,
        reservation_id=admission.reservation_id,
        estimated_cost=admission.estimated_cost,
        expires_at=admission.expires_at,
    )


@router.delete(
    "/reservations/{reservation_id}", tags=["enforcement"], summary="Release a reservation", responses=errors(403, 422)
)
def delete_reservation(
    service: ServiceDep, key: KeyDep, reservation_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9]{1,64}$")]
) -> dict[str, bool]:
    """The job will not run: free its held cost.  ``released`` is false when the
    reservation was already settled, released or expired."""
    if key.role == "reporter":
        raise PermissionDeniedError("reporter keys cannot release reservations")
    tenant = None if key.role == "admin" else key.tenant_id  # a tenant key: only its own tenant's
    return {"released": service.release(reservation_id, tenant_id=tenant)}


@router.get("/forecast", tags=["analytics"], summary="Forecast the current period of a budget scope", responses=LOOKUP)
def get_forecast(
    service: ServiceDep,
    key: KeyDep,
    tenant: Annotated[str, Query(pattern=TEXT_PATTERN, max_length=200)],
    queue: Annotated[str, Query(pattern=TEXT_PATTERN, max_length=200)] = "",
) -> dict[str, Any]:
    require_read(key, tenant, kind="forecast", ident=f"{tenant}/{queue}")
    result: dict[str, Any] = to_jsonable(service.get_forecast(tenant, queue))
    return result


@router.get("/cost-model", tags=["cost model"], summary="The cost model in force")
def get_cost_model(service: ServiceDep, key: KeyDep) -> CostModelOut:
    return CostModelOut(version=service.get_cost_model_version(), model=cost_model_to_mapping(service.get_cost_model()))


@router.put("/cost-model", tags=["cost model"], summary="Price new jobs with a new model", responses=WRITE)
def put_cost_model(service: ServiceDep, key: KeyDep, body: CostModelIn) -> CostModelOut:
    require_admin(service, key)
    model = cost_model_from_mapping(body.model_dump())
    version = service.update_cost_model(model, actor=actor_of(key))
    return CostModelOut(version=version.version, model=cost_model_to_mapping(model))


_CALIBRATION_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "array", "items": {"type": "object"}},
                        {
                            "type": "object",
                            "properties": {"benchmarks": {"type": "array", "items": {"type": "object"}}},
                            "required": ["benchmarks"],
                        },
                    ]
                }
            },
        },
    }
}


def _benchmarks_csv(data: Any) -> str:
    """JSON benchmarks (a list of objects, or ``{"benchmarks": [...]}``) as CSV text for
    :func:`read_benchmarks_csv` (which names every bad line)."""
    if isinstance(data, dict) and set(data) == {"benchmarks"}:
        data = data["benchmarks"]
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise ValidationError("benchmarks", "<json>", 'must be a list of objects or {"benchmarks": [...]}')
    columns: list[str] = []
    for row in data:
        columns.extend(k for k in row if k not in columns)
    out = io.StringIO()
    import csv

    writer = csv.writer(out)
    writer.writerow(columns)
    for i, row in enumerate(data):
        cells = []
        for name in columns:
            value = row.get(name, "")
            if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
                raise ValidationError(
                    f"benchmarks[{i}].{name}", f"<{type(value).__name__}>", "must be a number or text"
                )
            cells.append(str(value))
        writer.writerow(cells)
    return out.getvalue()


@router.post(
    "/calibration",
    tags=["cost model"],
    summary="Calibrate the cost model",
    openapi_extra=_CALIBRATION_BODY,
    responses=WRITE,
)
async def post_calibration(
    request: Request, service: ServiceDep, key: KeyDep, apply: Annotated[bool, Query()] = False
) -> dict[str, Any]:
    """Benchmarks as CSV (``text/csv``) or JSON; with ``apply=true`` (admin only) the
    calibrated model prices new jobs from now on."""
    if apply:
        require_admin(service, key)
    else:  # a dry run reads every tenant's pricing, and records its outcome
        service.authorize(key, action="read", tenant_id=None)
    raw = await request.body()
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    # decoding up to 16 MiB is CPU work of its own: in the thread, with the calibration
    return await run_in_threadpool(_calibrate, service, raw, kind, apply, actor_of(key))


def _benchmarks_text(raw: bytes, kind: str) -> str:
    """The benchmarks of a body sent as ``kind``, as CSV text (a ValidationError for a
    type or a text that is not theirs)."""
    if kind in ("application/json", ""):
        try:
            return _benchmarks_csv(loads_exact(raw))
        except ValueError as exc:
            if isinstance(exc, ValidationError):
                raise
            raise ValidationError("body", "<json>", f"is not valid JSON ({exc})") from None
    if kind in ("text/csv", "text/plain"):
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError("body", "<csv>", "is not UTF-8 text") from None
    raise ValidationError("content-type", kind, "must be text/csv or application/json")


def _calibrate(service: Any, raw: bytes, kind: str, apply: bool, actor: str) -> dict[str, Any]:
    """(In a worker thread.)"""
    from ..analytics.calibration import run_calibration
    from ..domain.calibration_io import read_benchmarks_csv

    text = _benchmarks_text(raw, kind)
    items = read_benchmarks_csv(io.StringIO(text, newline=""), model=service.get_cost_model(), source="body")
    outcome = run_calibration(service, items, apply=apply, actor=actor)
    result: dict[str, Any] = to_jsonable(
        {
            "report": outcome.report,
            "calibrated_model": cost_model_to_mapping(outcome.model),
            "applied": outcome.applied,
            "cost_model_version": outcome.cost_model_version,
        }
    )
    return result
