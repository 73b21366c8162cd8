"""Budget enforcement and metering for RQ workers.

* :func:`enqueue` enqueues a job with its tenant, queue (budget scope) and priority
  in ``job.meta``.
* :func:`budget_worker_class` makes a worker class (``rq worker -w dotted.Name
  --with-scheduler``) that, in the worker process, before each job:

  - admits it with ``service.admit``;
  - **block**: the work horse fails the job with
    :class:`~jobbudget.integrations.meter.BudgetBlocked` instead of running it
    (status ``failed``, in the failed registry, retries cleared: not retried);
  - **throttle** with factor ``f``: paces the key (tenant, queue) with a
    :class:`~jobbudget.integrations.ratelimit.Pacer` (its jobs start ``d/f`` apart,
    ``d`` their measured duration); a job early for its slot is moved to the
    scheduled registry for the wait (``queue.schedule_job``: run the worker
    ``--with-scheduler``, which enqueues it again; whole seconds, rounded up, and
    its ~1 s polling make the wait up to ~2 s longer than the slot) and
    runs at its slot without being paced again;
  - emergency priority passes (the service decides).

  Then the job runs in the work horse under a
  :class:`~jobbudget.integrations.resources.ResourceMeter` (CPU seconds and memory
  MB·s of the horse, exact per job since a horse runs one job); the horse writes
  the usage to ``job.meta["jobbudget_usage"]`` and the worker prices it once (job
  id = RQ job id, payload = the size of the serialized call), settling the
  reservation.  Without the meta (the job was deleted) the CPU falls back to the
  ``RUSAGE_CHILDREN`` delta and memory to 0.  Named resources (GPU-seconds per GPU
  type...), labels and a QoS the job reported in the horse with
  :func:`~jobbudget.integrations.resources.report_resources` travel in the same meta;
  ``resources_from(job)`` adds more after the job.  The cost model must price them.
"""

from __future__ import annotations

import functools
import logging
import math
import resource
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rq.job import Job

from .meter import BudgetBlocked, admit_job, metrics_of, release, settle
from .ratelimit import Pacer
from .resources import ResourceMeter, Usage

if TYPE_CHECKING:
    from ..service import BudgetService

__all__ = ["BudgetJob", "budget_worker_class", "enqueue"]

log = logging.getLogger("jobbudget.integrations.rq")
META_TENANT = "jobbudget_tenant"
META_QUEUE = "jobbudget_queue"
META_PRIORITY = "jobbudget_priority"
META_USAGE = "jobbudget_usage"
META_DEFERRED = "jobbudget_deferred"
#: A ``job.meta`` key / keyword argument name, or a callable taking the job.
Source = str | Callable[[Any], Any]


def enqueue(
    queue: Any,  # Any: rq.Queue
    f: Any,
    *args: Any,
    tenant_id: str,
    queue_name: str | None = None,
    priority: int = 5,
    **kwargs: Any,
) -> Job:
    """``queue.enqueue(f, *args, **kwargs)`` with the budget scope in ``job.meta``
    (``queue_name`` defaults to the RQ queue's name)."""
    meta = {**kwargs.pop("meta", {}), META_TENANT: tenant_id, META_QUEUE: queue_name or queue.name}
    meta[META_PRIORITY] = priority
    job: Job = queue.enqueue(f, *args, meta=meta, **kwargs)
    return job


class BudgetJob(Job):
    """A job that measures itself in the work horse, or fails at once when the
    worker refused it."""

    def perform(self) -> Any:
        refusal: BaseException | None = self.__dict__.pop("_jobbudget_refusal", None)
        if refusal is not None:
            self.retries_left = None  # a refused job is not retried
            raise refusal
        meter = ResourceMeter().start()
        try:
            return super().perform()
        finally:
            self.meta[META_USAGE] = meter.stop().as_dict()
            try:
                save: Any = self.save_meta  # Any: untyped in rq
                save()
            except Exception:
                log.warning("job %s: could not save its usage", self.id, exc_info=True)


@functools.cache
def _budget_job_class(cls: type[Job]) -> type[Job]:
    """``cls`` with :class:`BudgetJob`'s ``perform`` (``rq worker --job-class`` wins
    over a worker class's ``job_class``)."""
    if issubclass(cls, BudgetJob):
        return cls
    return type(f"Budget{cls.__name__}", (BudgetJob, cls), {})


def _lookup(job: Any, source: Source | None) -> Any:
    if source is None:
        return None
    if callable(source):
        return source(job)
    value = job.meta.get(source)
    if value is None:
        value = (job.kwargs or {}).get(source)
    return value


class _Budget:
    def __init__(
        self,
        service: BudgetService | Callable[[], BudgetService],
        *,
        tenant_from: Source,
        queue_from: Source | None,
        priority_from: Source | None,
        estimate: Callable[[Any], Decimal | None] | None,
        pacer: Pacer | None,
        resources_from: Callable[[Any], Mapping[str, Any] | None] | None = None,
    ) -> None:
        self._given = service
        self._service: BudgetService | None = None
        self._lock = threading.Lock()
        self.tenant_from = tenant_from
        self.queue_from = queue_from
        self.priority_from = priority_from
        self.estimate = estimate
        self.pacer = pacer or Pacer()
        self.resources_from = resources_from

    @property
    def service(self) -> BudgetService:
        with self._lock:
            if self._service is None:
                from ..service import BudgetService

                given = self._given
                self._service = given if isinstance(given, BudgetService) else given()
            return self._service

    def key(self, job: Any, rq_queue: Any) -> tuple[str, str, int]:
        tenant = _lookup(job, self.tenant_from)
        if not tenant:
            raise ValueError(f"job {job.id}: no tenant ({self.tenant_from!r})")
        queue = _lookup(job, self.queue_from) or rq_queue.name
        priority = _lookup(job, self.priority_from)
        return str(tenant), str(queue), 5 if priority is None else int(priority)

    def execute(self, worker: Any, job: Any, rq_queue: Any, run: Callable[[Any, Any], None]) -> None:
        """Admit, then run (``run``: the base class's execute_job), then meter."""
        try:
            tenant, queue, priority = self.key(job, rq_queue)
            ticket = admit_job(
                self.service,
                tenant,
                queue,
                priority=priority,
                estimated_cost=self.estimate(job) if self.estimate else None,
            )
        except Exception as exc:  # no tenant, or no decision: fail the job, keep the worker
            log.exception("job %s: admission failed", job.id)
            job._jobbudget_refusal = exc
            run(job, rq_queue)
            return
        if not ticket.allowed:
            release(self.service, ticket.reservation_id, tenant)
            log.info("job %s refused: %s", job.id, ticket.action.message)
            job._jobbudget_refusal = BudgetBlocked(ticket.action, tenant, queue)
            run(job, rq_queue)  # fails in the horse, through RQ's own failure handling
            return
        factor = ticket.action.factor if ticket.action.type == "throttle" else 1.0
        if factor < 1 and not job.meta.get(META_DEFERRED):
            delay = self.pacer.defer((tenant, queue), factor)
            if delay > 0:
                release(self.service, ticket.reservation_id, tenant)
                job.meta[META_DEFERRED] = 1
                job.save_meta()
                with worker.connection.pipeline() as pipe:
                    pipe.lrem(rq_queue.intermediate_queue_key, 1, job.id)
                    # the scheduled registry keeps whole seconds (truncated): round up, never early
                    when = datetime.fromtimestamp(math.ceil(time.time() + delay), UTC)
                    rq_queue.schedule_job(job, when, pipeline=pipe)
                    pipe.execute()
                log.info("job %s throttled (factor %s): deferred %.3fs", job.id, factor, delay)
                return
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        meter = ResourceMeter().start()  # wall time only: the horse measures itself
        try:
            run(job, rq_queue)
        finally:
            wall = meter.stop().wall_seconds
            self.pacer.finished((tenant, queue), factor, wall)
            self._meter(job, tenant, queue, priority, ticket.reservation_id, before, wall)

    def _meter(
        self,
        job: Any,
        tenant: str,
        queue: str,
        priority: int,
        reservation_id: str | None,
        before: Any,
        wall: float,
    ) -> None:
        try:
            try:
                usage = Usage.from_dict(job.get_meta(refresh=True)[META_USAGE])
            except Exception:  # the job is gone, or its horse died before writing
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                usage = Usage(cpu_seconds=cpu, memory_mb_seconds=0.0, wall_seconds=wall, peak_rss_mb=0.0)
            try:
                payload = len(job.data)
            except Exception:
                payload = 0
            metrics = metrics_of(
                usage,
                job_id=str(job.id),
                tenant_id=tenant,
                queue_name=queue,
                payload_bytes=payload,
                job_type=str(job.func_name or "")[:100],
                priority=priority,
                resources=self.resources_from(job) if self.resources_from else None,
            )
            settle(self.service, metrics, reservation_id)
        except Exception:
            release(self.service, reservation_id, tenant)
            log.exception("could not meter job %s", job.id)


def budget_worker_class(
    service: BudgetService | Callable[[], BudgetService],
    *,
    base: Any = None,  # Any: an rq worker class (default rq.Worker)
    tenant_from: Source = META_TENANT,
    queue_from: Source | None = META_QUEUE,
    priority_from: Source | None = META_PRIORITY,
    estimate: Callable[[Any], Decimal | None] | None = None,
    pacer: Pacer | None = None,
    name: str = "BudgetWorker",
    resources_from: Callable[[Any], Mapping[str, Any] | None] | None = None,
) -> Any:
    """A subclass of ``base`` (``rq.Worker``, or ``rq.SimpleWorker``; not
    ``SpawnWorker``) enforcing budgets and metering each job.  ``service``: a
    BudgetService or a callable making one (called on the first job, in the worker).
    ``tenant_from``/``queue_from``/``priority_from``: a ``job.meta`` key (as
    :func:`enqueue` writes), else a keyword argument of that name, or a callable
    taking the job.  The queue defaults to the RQ queue's name, priority to 5.
    ``resources_from(job)``: named resources of a finished job, added to those it
    reported with ``report_resources``."""
    if base is None:
        from rq import Worker

        base = Worker
    budget = _Budget(
        service,
        tenant_from=tenant_from,
        queue_from=queue_from,
        priority_from=priority_from,
        estimate=estimate,
        pacer=pacer,
        resources_from=resources_from,
    )

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        base.__init__(self, *args, **kwargs)
        self.job_class = _budget_job_class(self.job_class)

    def execute_job(self: Any, job: Any, queue: Any) -> None:
        budget.execute(self, job, queue, lambda j, q: base.execute_job(self, j, q))

    attrs = {"__init__": __init__, "execute_job": execute_job, "job_class": BudgetJob, "jobbudget": budget}
    return type(name, (base,), attrs)
