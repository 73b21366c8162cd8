"""Named resources (GPU-seconds per type...), labels and QoS through ``meter``,
``report_resources`` and the Celery / RQ metering paths (without a broker: the paths
after the task ran, fed as the worker feeds them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from jobbudget.config import Config
from jobbudget.domain.errors import ValidationError
from jobbudget.integrations.celery import CeleryBudget, _Running
from jobbudget.integrations.meter import meter, metrics_of
from jobbudget.integrations.resources import ResourceMeter, Usage, report_resources
from jobbudget.integrations.rq import _Budget
from jobbudget.service import BudgetService
from jobbudget.storage.memory import MemoryStore

PRICES = {"gpu": Decimal("0.0008"), "gpu:a100": Decimal("0.001")}


@pytest.fixture
def service() -> Iterator[BudgetService]:
    svc = BudgetService(Config(cost_model={"preset": "seed", "resources": PRICES}), store=MemoryStore())
    yield svc
    svc.close()


def charges(service: BudgetService, tenant: str, job_id: str) -> dict[str, tuple[Decimal, Decimal]]:
    cost = service.get_job_cost(tenant, job_id)
    assert cost is not None
    return {c.name: (c.quantity, c.cost) for c in cost.resources}


def test_meter_bills_given_and_reported_resources(service: BudgetService) -> None:
    with meter("acme", "train", "job-1", service=service, resources={"gpu:a100": 600}, labels={"project": "llm"}):
        assert report_resources({"gpu:a100": 3000, "gpu:v100": Decimal("1.5")}, qos="high")
        assert report_resources({"gpu:a100": 0.25}, labels={"run": "7"})  # adds up, a float by its shortest form
    assert charges(service, "acme", "job-1") == {
        "gpu:a100": (Decimal("3600.25"), Decimal("3.60025")),  # 0.001 $ per A100-second
        "gpu:v100": (Decimal("1.5"), Decimal("0.0012")),  # no v100 price: the gpu family's 0.0008 $
    }
    stored = service.store.get_job("acme", "job-1")
    assert stored is not None and stored.total_cost > Decimal("3.60145")


def test_a_callable_is_asked_after_the_block(service: BudgetService) -> None:
    used: dict[str, int] = {}
    with meter("acme", "train", "job-2", service=service, resources=lambda: used):
        used["gpu"] = 100  # e.g. read from the GPU driver's accounting at the end
    assert charges(service, "acme", "job-2") == {"gpu": (Decimal(100), Decimal("0.08"))}


def test_an_unpriced_resource_fails_the_metering_by_name() -> None:
    with BudgetService(Config(cost_model="seed"), store=MemoryStore()) as bare:
        unpriced = pytest.raises(ValidationError, match=r"resources.gpu:a100: the cost model has no price")
        with unpriced, meter("acme", "train", "job-3", service=bare):
            report_resources({"gpu:a100": 60})
        assert bare.store.get_job("acme", "job-3") is None


def test_report_resources_checks_and_needs_a_meter() -> None:
    assert report_resources({"gpu": 1}) is False  # no job is metered in this thread
    for bad in ({"GPU": 1}, {"gpu": -1}, {"gpu": "lots"}, {"gpu": float("nan")}, {"gpu": True}):
        with pytest.raises(ValidationError):
            report_resources(bad)
    with pytest.raises(ValidationError):
        report_resources(labels={"bad key!": "x"})


def test_nested_meters_report_to_the_innermost() -> None:
    outer = ResourceMeter().start()
    inner = ResourceMeter().start()
    report_resources({"gpu": 1})
    assert inner.stop().resources == {"gpu": Decimal(1)}
    report_resources({"gpu": 2})
    assert outer.stop().resources == {"gpu": Decimal(2)}


def test_usage_travels_as_json_exactly() -> None:
    """RQ's horse writes the usage to ``job.meta``; the worker reads it back."""
    usage = Usage(1.5, 20.0, 2.0, 10.0, resources={"gpu:a100": Decimal("0.1")}, labels={"a": "b"}, qos="low")
    back = Usage.from_dict(json.loads(json.dumps(usage.as_dict())))
    assert back == usage
    assert (
        Usage.from_dict({"cpu_seconds": 1, "memory_mb_seconds": 2, "wall_seconds": 3, "peak_rss_mb": 4}).resources == {}
    )
    job = metrics_of(back, job_id="j", tenant_id="t", queue_name="q", resources={"gpu:a100": "0.2"}, qos="normal")
    assert (job.resources, job.labels, job.qos) == ({"gpu:a100": Decimal("0.3")}, {"a": "b"}, "low")


def test_celery_postrun_bills_what_the_task_reported(service: BudgetService) -> None:
    budget = CeleryBudget(app=None, service=service, resources_from=lambda request: {"gpu": request.gpu_seconds})
    running = _Running(
        meter=ResourceMeter().start(),
        tenant_id="acme",
        queue_name="train",
        priority=5,
        reservation_id=None,
        payload_bytes=0,
        factor=1.0,
        request=SimpleNamespace(gpu_seconds=50),
    )
    budget._running["task-1"] = running
    report_resources({"gpu:a100": 10})  # in the task's body: the same thread
    budget._on_postrun(sender=SimpleNamespace(name="train.step"), task_id="task-1")
    assert charges(service, "acme", "task-1") == {
        "gpu": (Decimal(50), Decimal("0.04")),
        "gpu:a100": (Decimal(10), Decimal("0.01")),
    }


def test_rq_worker_bills_what_the_horse_reported(service: BudgetService) -> None:
    budget = _Budget(
        service,
        tenant_from="t",
        queue_from=None,
        priority_from=None,
        estimate=None,
        pacer=None,
        resources_from=lambda job: {"license:matlab": 30},
    )
    usage = Usage(1.0, 2.0, 3.0, 4.0, resources={"gpu:a100": Decimal(20)}, labels={"project": "x"})
    meta: dict[str, Any] = {"jobbudget_usage": usage.as_dict()}
    job = SimpleNamespace(id="rq-1", data=b"12345", func_name="tasks.train", get_meta=lambda refresh: meta)
    budget._meter(job, "acme", "train", 5, None, None, 3.0)  # licences are not priced: logged, nothing stored
    assert service.get_job_cost("acme", "rq-1") is None
    budget.resources_from = None
    budget._meter(job, "acme", "train", 5, None, None, 3.0)
    assert charges(service, "acme", "rq-1") == {"gpu:a100": (Decimal(20), Decimal("0.02"))}
