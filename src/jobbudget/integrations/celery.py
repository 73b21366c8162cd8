"""Budget enforcement and metering for Celery workers: ``install(app, service)``.

Before a task's body runs (a ``before_start`` hook added to every task class of the
app, which runs inside Celery's trace, after ``task_prerun``):

* the job is admitted with ``service.admit`` (tenant, queue, priority from the
  message, see ``tenant_from``/``queue_from``/``priority_from``);
* **block**: :class:`~jobbudget.integrations.meter.BudgetBlocked` is raised, so the
  task fails (``FAILURE``, ``task_failure`` is sent) without running its body;
  ``autoretry_for`` only wraps the body, so a refused task is not retried;
* **throttle** with factor ``f``: the task's key (tenant, queue) is paced by a
  :class:`~jobbudget.integrations.ratelimit.Pacer`: when its slot is later, the
  task is re-published with the same id and ``countdown`` = the wait until the slot
  (busy ``d`` out of every ``d/f`` seconds: the key's tasks start ``d/f`` apart,
  ``d`` being their measured duration) and the current delivery ends ``IGNORED``.
  The re-published message carries the header ``jobbudget_deferred`` and runs at its
  slot without being paced again (a block is still enforced);
* priority at or above the budget's emergency priority passes (the service says so).

After the body ran (``task_postrun``, whatever the outcome), the task is metered
once, job id = task id: CPU seconds (``time.process_time`` delta), memory MB·s (RSS
integrated over time by a sampler thread), payload bytes (the args and kwargs
re-encoded with the task's serializer), and settled with
``service.process_job_cost(metrics, reservation_id=...)``.  Named resources the task
used (GPU-seconds per GPU type, licences) come from
:func:`~jobbudget.integrations.resources.report_resources` called in the task's body
(with labels and a QoS) and from ``resources_from(request)`` after it; the cost model
must price them (an unpriced one fails the metering, logged, never billed as free).
A redelivered task has the same id, so it is counted once.  Measurements are of the worker process: use
``--pool=solo``, or prefork (one task at a time per child); not threads/gevent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .meter import BudgetBlocked, admit_job, metrics_of, release, settle
from .ratelimit import Pacer
from .resources import ResourceMeter

if TYPE_CHECKING:
    from ..service import BudgetService

__all__ = ["DEFERRED_HEADER", "CeleryBudget", "install"]

log = logging.getLogger("jobbudget.integrations.celery")
DEFERRED_HEADER = "jobbudget_deferred"
#: A header name / kwarg name, or a callable taking the task request (Any: celery is untyped).
Source = str | Callable[[Any], Any] | None


@dataclass
class _Running:
    meter: ResourceMeter
    tenant_id: str
    queue_name: str
    priority: int
    reservation_id: str | None
    payload_bytes: int
    factor: float
    request: Any = None


def _lookup(request: Any, source: Source, kwargs: dict[str, Any] | None) -> Any:
    """A value from the request: the callable's answer, or the named message header,
    or the named keyword argument."""
    if source is None:
        return None
    if callable(source):
        return source(request)
    value = getattr(request, source, None)  # Celery copies message headers onto the request
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(source)
    if value is None and kwargs:
        value = kwargs.get(source)
    return value


def _payload_bytes(task: Any, args: Any, kwargs: Any) -> int:
    try:
        from kombu.serialization import dumps as _dumps

        dumps: Any = _dumps  # Any: kombu has no type hints
        _type, _encoding, body = dumps((list(args or ()), dict(kwargs or {}), {}), serializer=task.serializer)
        return len(body)
    except Exception:  # unserialisable arguments (eager calls): count nothing
        return 0


class CeleryBudget:
    """What :func:`install` sets up; keeps the jobs in flight of this process."""

    def __init__(
        self,
        app: Any,  # Any: celery.Celery (celery has no type hints)
        service: BudgetService | Callable[[], BudgetService],
        *,
        tenant_from: Source = "tenant_id",
        queue_from: Source = None,
        priority_from: Source = "budget_priority",
        estimate: Callable[[Any], Decimal | None] | None = None,
        pacer: Pacer | None = None,
        interval: float = 0.02,
        resources_from: Callable[[Any], Mapping[str, Any] | None] | None = None,
    ) -> None:
        self.app = app
        self._service_or_factory = service
        self._service: BudgetService | None = None
        self.tenant_from = tenant_from
        self.queue_from = queue_from
        self.priority_from = priority_from
        self.estimate = estimate
        self.pacer = pacer or Pacer()
        self.interval = interval
        self.resources_from = resources_from
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}

    @property
    def service(self) -> BudgetService:
        """The service; a factory is called on first use (in the worker process)."""
        if self._service is None:
            with self._lock:
                if self._service is None:
                    from ..service import BudgetService

                    given = self._service_or_factory
                    self._service = given if isinstance(given, BudgetService) else given()
        assert self._service is not None
        return self._service

    # -- wiring ---------------------------------------------------------------------
    def connect(self) -> None:
        from celery import signals  # type: ignore[import-untyped, unused-ignore]

        signals.task_postrun.connect(self._on_postrun, weak=False)
        self.app.on_after_finalize.connect(self._patch_all, weak=False)
        if self.app.finalized:
            self._patch_all()

    def _patch_all(self, **_: Any) -> None:
        for task in list(self.app.tasks.values()):
            if not task.name.startswith("celery."):
                self.patch(task)

    def patch(self, task: Any) -> None:
        """Add the admission hook to one task's class (idempotent)."""
        cls = type(task)
        if cls.__dict__.get("_jobbudget_patched"):
            return
        original = cls.before_start
        budget = self

        def before_start(self: Any, task_id: str, args: Any, kwargs: Any) -> None:
            budget._admit(self, task_id, args, kwargs)
            original(self, task_id, args, kwargs)

        cls.before_start = before_start
        cls._jobbudget_patched = True

    # -- admission ------------------------------------------------------------------
    def _key(self, task: Any, request: Any, kwargs: dict[str, Any]) -> tuple[str, str, int]:
        tenant = _lookup(request, "jobbudget_tenant", None) or _lookup(request, self.tenant_from, kwargs)
        if not tenant:
            raise ValueError(f"task {task.name}: no tenant in the message ({self.tenant_from!r})")
        queue = _lookup(request, "jobbudget_queue", None) or _lookup(request, self.queue_from, kwargs)
        if not queue:
            queue = (getattr(request, "delivery_info", None) or {}).get("routing_key") or "celery"
        priority = _lookup(request, self.priority_from, kwargs)
        return str(tenant), str(queue), 5 if priority is None else int(priority)

    def _admit(self, task: Any, task_id: str, args: Any, kwargs: Any) -> None:
        from celery.exceptions import Ignore  # type: ignore[import-untyped, unused-ignore]

        request = task.request
        tenant, queue, priority = self._key(task, request, kwargs or {})
        estimated = self.estimate(request) if self.estimate else None
        ticket = admit_job(self.service, tenant, queue, priority=priority, estimated_cost=estimated)
        if not ticket.allowed:
            release(self.service, ticket.reservation_id, tenant)
            log.info("task %s[%s] refused: %s", task.name, task_id, ticket.action.message)
            raise BudgetBlocked(ticket.action, tenant, queue)
        factor = ticket.action.factor if ticket.action.type == "throttle" else 1.0
        if factor < 1 and not _lookup(request, DEFERRED_HEADER, None):
            delay = self.pacer.defer((tenant, queue), factor)
            if delay > 0:
                release(self.service, ticket.reservation_id, tenant)
                headers = {
                    **(getattr(request, "headers", None) or {}),
                    DEFERRED_HEADER: "1",
                    "jobbudget_tenant": tenant,
                    "jobbudget_queue": queue,
                }
                sig = task.signature_from_request(request, args, kwargs, countdown=delay, headers=headers)
                sig.apply_async()
                log.info("task %s[%s] throttled (factor %s): deferred %.3fs", task.name, task_id, factor, delay)
                raise Ignore()
        running = _Running(
            meter=ResourceMeter(interval=self.interval),
            tenant_id=tenant,
            queue_name=queue,
            priority=priority,
            reservation_id=ticket.reservation_id,
            payload_bytes=_payload_bytes(task, args, kwargs),
            factor=factor,
            request=request,
        )
        with self._lock:
            self._running[task_id] = running
        running.meter.start()

    # -- metering -------------------------------------------------------------------
    def _on_postrun(self, sender: Any = None, task_id: str | None = None, **_: Any) -> None:
        with self._lock:
            running = self._running.pop(task_id or "", None)
        if running is None:  # not ours, refused or deferred
            return
        usage = running.meter.stop()
        self.pacer.finished((running.tenant_id, running.queue_name), running.factor, usage.wall_seconds)
        try:
            given = self.resources_from(running.request) if self.resources_from else None
            metrics = metrics_of(
                usage,
                job_id=str(task_id),
                tenant_id=running.tenant_id,
                queue_name=running.queue_name,
                payload_bytes=running.payload_bytes,
                job_type=str(getattr(sender, "name", "") or "")[:100],
                priority=running.priority,
                resources=given,
            )
            settle(self.service, metrics, running.reservation_id)
        except Exception:
            release(self.service, running.reservation_id, running.tenant_id)
            log.exception("could not meter task %s", task_id)


def install(
    app: Any,  # Any: celery.Celery
    service: BudgetService | Callable[[], BudgetService],
    *,
    tenant_from: Source = "tenant_id",
    queue_from: Source = None,
    priority_from: Source = "budget_priority",
    estimate: Callable[[Any], Decimal | None] | None = None,
    pacer: Pacer | None = None,
    interval: float = 0.02,
    resources_from: Callable[[Any], Mapping[str, Any] | None] | None = None,
) -> CeleryBudget:
    """Enforce budgets on and meter every task of ``app``.

    ``service``: a BudgetService, or a callable making one (called on the first task,
    in the worker process: right for prefork children).  ``tenant_from`` /
    ``queue_from`` / ``priority_from``: a message header name (``apply_async(headers=
    {...})``), else a keyword argument of that name, or a callable taking the task
    request.  The queue defaults to the delivery routing key; the priority (0-10) to 5.
    ``estimate``: the cost to reserve for a request (None: the service's estimate).
    ``resources_from``: named resources of a finished task's request
    (``{"gpu:a100": 3600}``), added to those it reported with ``report_resources``.
    """
    budget = CeleryBudget(
        app,
        service,
        tenant_from=tenant_from,
        queue_from=queue_from,
        priority_from=priority_from,
        estimate=estimate,
        pacer=pacer,
        interval=interval,
        resources_from=resources_from,
    )
    budget.connect()
    return budget
