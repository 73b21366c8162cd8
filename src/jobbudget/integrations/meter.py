"""Meter any block of code: ``meter(tenant_id, queue_name, job_id, service=svc)`` is a
context manager and a decorator that measures the CPU seconds and memory MB·s of the
block (see :mod:`jobbudget.integrations.resources`) and prices them with
``service.process_job_cost``.  With ``admit=True`` the job is admitted first
(``service.admit``, which reserves its estimated cost) and :class:`BudgetBlocked` is
raised, before the block runs, when a budget blocks it.  Named resources (GPU-seconds
per GPU type, licences...) come from ``resources=`` (a mapping, or a callable asked
after the block) and from :func:`~jobbudget.integrations.resources.report_resources`
called inside the block; ``labels=`` and ``qos=`` likewise.

Also the admission helpers the queue integrations share: :func:`admit_job`,
:func:`settle` and :func:`release`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from contextlib import ContextDecorator
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..domain.cost import JobCost, JobMetrics
from ..domain.enforcement import EnforcementAction
from ..domain.errors import EnforcementError
from .resources import ResourceMeter, Usage, exact

if TYPE_CHECKING:
    from ..service import BudgetService

__all__ = ["BudgetBlocked", "Resources", "Ticket", "admit_job", "meter", "metrics_of", "release", "settle"]

log = logging.getLogger("jobbudget.integrations")
#: Named resources of a job: ``{"gpu:a100": 3600}``, or a callable returning them
#: once the job has run (e.g. reading the GPU driver's accounting).
Resources = Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None


class BudgetBlocked(EnforcementError):
    """A job was refused because a budget blocks its tenant or queue.  ``enforcement``
    is the full decision; ``action`` (from :class:`EnforcementError`) is ``"block"``."""

    code = "BUDGET_BLOCKED"

    def __init__(self, enforcement: EnforcementAction, tenant_id: str = "", queue_name: str = "") -> None:
        self.enforcement = enforcement
        self.tenant_id = tenant_id
        self.queue_name = queue_name
        super().__init__(
            action=enforcement.type,
            current_spend=enforcement.current_spend,
            budget_amount=enforcement.budget_amount,
            utilization=enforcement.utilization,
            message=enforcement.message or f"budget blocks tenant {tenant_id!r}",
            budget_id=enforcement.budget_id,
        )

    def __reduce__(self) -> tuple[Any, ...]:  # picklable: Celery's pickle result backend, RQ
        return (type(self), (self.enforcement, self.tenant_id, self.queue_name))


@dataclass(frozen=True, slots=True)
class Ticket:
    """The outcome of an admission: the decision and the reservation it holds."""

    action: EnforcementAction
    reservation_id: str | None = None

    @property
    def allowed(self) -> bool:
        return self.action.type != "block"


def admit_job(
    service: BudgetService,
    tenant_id: str,
    queue_name: str = "",
    *,
    priority: int = 5,
    estimated_cost: Decimal | None = None,
) -> Ticket:
    """Admit a job with ``service.admit``, reserving ``estimated_cost``."""
    admission = service.admit(tenant_id, queue_name, priority=priority, estimated_cost=estimated_cost)
    return Ticket(admission.action, admission.reservation_id)


def settle(service: BudgetService, metrics: JobMetrics, reservation_id: str | None) -> JobCost:
    """Price and store a finished job, settling its reservation with the real cost."""
    return service.process_job_cost(metrics, reservation_id=reservation_id)


def release(service: BudgetService, reservation_id: str | None, tenant_id: str | None = None) -> None:
    """Cancel a reservation (a refused, deferred or lost job).  Never raises."""
    if reservation_id is None:
        return
    try:
        service.release(reservation_id, tenant_id=tenant_id)
    except Exception:  # a reservation left behind expires with its ttl
        log.warning("could not release reservation %s", reservation_id, exc_info=True)


def metrics_of(
    usage: Usage,
    *,
    job_id: str,
    tenant_id: str,
    queue_name: str,
    payload_bytes: int = 0,
    redis_ops: int = 0,
    network_bytes: int = 0,
    job_type: str = "",
    priority: int = 5,
    resources: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    qos: str = "",
) -> JobMetrics:
    """JobMetrics from measured usage.  Floats go through ``repr`` (their shortest
    decimal form) rounded to microseconds / micro-MB·s.  Named resources are those
    the job reported (``usage.resources``) plus ``resources`` (quantities of one name
    add up); labels are merged, the reported QoS wins over ``qos``."""
    named = dict(usage.resources)
    for name, quantity in (resources or {}).items():
        named[name] = named.get(name, Decimal(0)) + exact(name, quantity)
    return JobMetrics(
        job_id=job_id,
        tenant_id=tenant_id,
        queue_name=queue_name,
        cpu_time=Decimal(f"{usage.cpu_seconds:.6f}"),
        memory_mb_seconds=Decimal(f"{usage.memory_mb_seconds:.6f}"),
        payload_bytes=Decimal(payload_bytes),
        redis_ops=Decimal(redis_ops),
        network_bytes=Decimal(network_bytes),
        job_type=job_type,
        priority=priority,
        resources=named,
        labels={**(labels or {}), **usage.labels},
        qos=usage.qos or qos,
    )


class meter(ContextDecorator):
    """Measure a block and record it as one job.

    As a context manager the instance holds the results afterwards: ``usage``,
    ``cost`` (the :class:`JobCost`), ``action`` (the admission decision when
    ``admit=True``).  As a decorator every call is a separate job; without a
    ``job_id`` each gets a fresh uuid4 (with one, every call after the first is a
    duplicate and counted once).  A block that raises is metered all the same.
    ``resources``: named resources the block used (``{"gpu:a100": 3600}``), or a
    callable returning them after the block; the cost model must price them.
    """

    def __init__(
        self,
        tenant_id: str,
        queue_name: str,
        job_id: str | None = None,
        *,
        service: BudgetService,
        admit: bool = False,
        priority: int = 5,
        job_type: str = "",
        payload_bytes: int = 0,
        redis_ops: int = 0,
        network_bytes: int = 0,
        estimated_cost: Decimal | None = None,
        interval: float = 0.02,
        resources: Resources = None,
        labels: Mapping[str, str] | None = None,
        qos: str = "",
    ) -> None:
        self.tenant_id = tenant_id
        self.queue_name = queue_name
        self._given_id = job_id
        self.job_id = job_id or str(uuid.uuid4())
        self.service = service
        self.admit = admit
        self.priority = priority
        self.job_type = job_type
        self.payload_bytes = payload_bytes
        self.redis_ops = redis_ops
        self.network_bytes = network_bytes
        self.estimated_cost = estimated_cost
        self.interval = interval
        self.resources = resources
        self.labels = labels
        self.qos = qos
        self.action: EnforcementAction | None = None
        self.reservation_id: str | None = None
        self.usage: Usage | None = None
        self.cost: JobCost | None = None
        self._meter: ResourceMeter | None = None

    def _recreate_cm(self) -> meter:
        """Each decorated call gets its own meter (and job id)."""
        return meter(
            self.tenant_id,
            self.queue_name,
            self._given_id,
            service=self.service,
            admit=self.admit,
            priority=self.priority,
            job_type=self.job_type,
            payload_bytes=self.payload_bytes,
            redis_ops=self.redis_ops,
            network_bytes=self.network_bytes,
            estimated_cost=self.estimated_cost,
            interval=self.interval,
            resources=self.resources,
            labels=self.labels,
            qos=self.qos,
        )

    def __enter__(self) -> meter:
        if self._meter is not None:
            raise RuntimeError("a meter instance measures one block; use a new one")
        if self.admit:
            ticket = admit_job(
                self.service,
                self.tenant_id,
                self.queue_name,
                priority=self.priority,
                estimated_cost=self.estimated_cost,
            )
            self.action, self.reservation_id = ticket.action, ticket.reservation_id
            if not ticket.allowed:
                release(self.service, ticket.reservation_id, self.tenant_id)
                raise BudgetBlocked(ticket.action, self.tenant_id, self.queue_name)
        self._meter = ResourceMeter(interval=self.interval).start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._meter is not None
        self.usage = self._meter.stop()
        try:
            given = self.resources() if callable(self.resources) else self.resources
            metrics = metrics_of(
                self.usage,
                job_id=self.job_id,
                tenant_id=self.tenant_id,
                queue_name=self.queue_name,
                payload_bytes=self.payload_bytes,
                redis_ops=self.redis_ops,
                network_bytes=self.network_bytes,
                job_type=self.job_type,
                priority=self.priority,
                resources=given,
                labels=self.labels,
                qos=self.qos,
            )
            self.cost = settle(self.service, metrics, self.reservation_id)
        except Exception:
            release(self.service, self.reservation_id, self.tenant_id)
            if exc is None:
                raise
            log.exception("could not meter job %s (the block itself failed too)", self.job_id)
