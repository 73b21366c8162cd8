"""Named resources (GPUs first), per-queue and QoS rates, and MAX_TRES billing: the
engine's arithmetic, validation in the user's words, and the round trip through
every store and the HTTP API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobbudget.domain.codec import cost_model_from_mapping, cost_model_to_mapping
from jobbudget.domain.cost import CostModel, JobMetrics
from jobbudget.domain.engine import CostCalculationEngine
from jobbudget.domain.errors import ValidationError
from jobbudget.domain.money import NANO

D = Decimal
GPU_MODEL = CostModel(
    resources={"gpu": D("0.0007"), "gpu:h100": D("0.0012"), "license:matlab": D("0.5"), "energy_kwh": D("0.21")},
    queues={
        "gpu": {"multiplier": D("1.5"), "weights": {"cpu_time_weight": D("0.00002"), "gpu:a100": D("0.0009")}},
        "scavenger": D(0),
    },
    qos={"low": D("0.5"), "standby": D(0)},
)


def job(queue: str = "batch", *, qos: str = "", resources: dict[str, Any] | None = None, **usage: Any) -> JobMetrics:
    return JobMetrics(
        job_id="j1",
        tenant_id="acme",
        queue_name=queue,
        cpu_time=D(usage.get("cpu", 3600)),
        memory_mb_seconds=D(usage.get("memory", 0)),
        payload_bytes=D(0),
        redis_ops=D(0),
        network_bytes=D(0),
        resources=resources or {},
        qos=qos,
    )


def test_a_typed_gpu_takes_its_own_price_else_its_family() -> None:
    cost = CostCalculationEngine(GPU_MODEL).calculate_job_cost(job(resources={"gpu:a100": 7200, "gpu:h100": 3600}))
    charges = {c.name: c.cost for c in cost.resources}
    assert charges == {"gpu:a100": D("5.040000000"), "gpu:h100": D("4.320000000")}  # 7200 × 0.0007; 3600 × 0.0012
    assert cost.cost_breakdown.resource_cost == D("9.36")
    assert cost.total_cost == cost.cost_breakdown.cpu_cost + cost.cost_breakdown.base_cost + D("9.36")


def test_an_unpriced_resource_is_an_error_naming_it_never_free() -> None:
    engine = CostCalculationEngine(GPU_MODEL)
    with pytest.raises(ValidationError) as err:
        engine.calculate_job_cost(job(resources={"fpga:u250": 60}))
    assert err.value.field == "resources.fpga:u250"
    assert "no price for this resource" in str(err.value) and "fpga" in str(err.value)
    assert "{" not in str(err.value)  # no Python repr


def test_queue_rates_replace_weights_and_multiply() -> None:
    engine = CostCalculationEngine(GPU_MODEL)
    cost = engine.calculate_job_cost(job("gpu", resources={"gpu:a100": 3600, "gpu:h100": 3600}))
    b = cost.cost_breakdown
    assert b.cpu_cost == D("3600") * D("0.00002") * D("1.5")  # the queue's CPU weight × its multiplier
    assert {c.name: c.cost for c in cost.resources} == {
        "gpu:a100": D("3600") * D("0.0009") * D("1.5"),  # the queue's own a100 price
        "gpu:h100": D("3600") * D("0.0012") * D("1.5"),  # the model's h100 price, the queue's multiplier
    }


def test_a_free_queue_and_a_free_qos_charge_nothing() -> None:
    engine = CostCalculationEngine(GPU_MODEL)
    assert engine.calculate_job_cost(job("scavenger", resources={"gpu": 10**6})).total_cost == 0
    assert engine.calculate_job_cost(job(qos="standby", resources={"gpu": 10**6})).total_cost == 0
    half = engine.calculate_job_cost(job(qos="low")).total_cost
    full = engine.calculate_job_cost(job()).total_cost
    assert half * 2 == full


def test_max_tres_charges_the_larger_of_cpu_and_memory() -> None:
    model = CostModel(max_tres=("cpu_time", "memory", "gpu"), resources={"gpu": D("0.0007")})
    engine = CostCalculationEngine(model)
    cpu_heavy = engine.calculate_job_cost(job(cpu=36000, memory=10**6)).cost_breakdown
    assert cpu_heavy.cpu_cost == D("0.36") and cpu_heavy.memory_cost == 0
    mem_heavy = engine.calculate_job_cost(job(cpu=1, memory=10**9)).cost_breakdown
    assert mem_heavy.memory_cost == D("1") and mem_heavy.cpu_cost == 0
    gpu_heavy = engine.calculate_job_cost(job(cpu=36000, memory=10**6, resources={"gpu:a100": 3600}))
    assert gpu_heavy.cost_breakdown.cpu_cost == 0
    assert gpu_heavy.total_cost == D("2.52") + gpu_heavy.cost_breakdown.base_cost


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"resources": {"GPU": 1}}, "cost_model.resources.name"),
        ({"resources": {"gpu": -1}}, "cost_model.resources.gpu"),
        ({"resources": {"cpu_time_weight": 1}}, "cost_model.resources.name"),
        ({"queues": {"gpu": {"multiplier": -2}}}, "cost_model.queues.gpu.multiplier"),
        ({"queues": {"gpu": {"speed": 2}}}, "cost_model.queues.gpu"),
        ({"queues": {"gpu": {"weights": {"bogus weight": 1}}}}, "cost_model.queues.gpu.weights.name"),
        ({"qos": {"low": "x"}}, "cost_model.qos.low"),
        ({"max_tres": ["cpu_time"]}, "cost_model.max_tres"),
        ({"max_tres": ["cpu_time", "Bad Name"]}, "cost_model.max_tres"),
    ],
)
def test_bad_models_are_refused_naming_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        cost_model_from_mapping(data)
    assert err.value.field == field


@pytest.mark.parametrize(
    ("resources", "field"),
    [({"gpu:a100": -1}, "resources.gpu:a100"), ({"Not A Name": 1}, "resources.name"), ({"gpu": "x"}, "resources.gpu")],
)
def test_bad_job_resources_are_refused(resources: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        job(resources=resources)
    assert err.value.field == field


def test_the_model_maps_to_text_and_back() -> None:
    model = CostModel(**{**GPU_MODEL.to_mapping(), "max_tres": ("cpu_time", "memory")})
    text = cost_model_to_mapping(model)
    assert text["resources"]["gpu"] == "0.0007" and text["queues"]["scavenger"]["multiplier"] == "0"
    assert cost_model_from_mapping(text) == model
    assert "resources" not in cost_model_to_mapping(CostModel())  # the old shape for the old model


@given(
    quantities=st.dictionaries(
        st.sampled_from(["gpu", "gpu:a100", "gpu:h100", "license:matlab", "energy_kwh"]),
        st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False, allow_infinity=False),
        max_size=5,
    ),
    queue=st.sampled_from(["batch", "gpu", "scavenger"]),
    qos=st.sampled_from(["", "low", "standby"]),
)
def test_every_charge_is_rounded_once_and_the_total_is_their_sum(
    quantities: dict[str, Decimal], queue: str, qos: str
) -> None:
    cost = CostCalculationEngine(GPU_MODEL).calculate_job_cost(job(queue, qos=qos, resources=quantities))
    for charge in cost.resources:
        assert charge.cost == charge.cost.quantize(NANO)
    assert sum((c.cost for c in cost.resources), D(0)) == cost.cost_breakdown.resource_cost
    assert cost.total_cost == cost.cost_breakdown.total


# -- through the service, on every store -------------------------------------------------
def test_resources_are_stored_and_read_back_on_every_store(service_factory: Callable[..., Any]) -> None:
    service = service_factory(cost_model={"resources": {"gpu": "0.0007"}, "qos": {"low": "0.5"}})
    at = datetime(2024, 1, 15, 11, tzinfo=UTC)  # the fake clock: 2024-01-15 12:00
    metrics = JobMetrics(
        job_id="g1", tenant_id="acme", queue_name="gpu", cpu_time=D(10), memory_mb_seconds=D(0),
        payload_bytes=D(0), redis_ops=D(0), network_bytes=D(0), timestamp=at,
        resources={"gpu:a100": D(3600)}, qos="low", labels={"project": "llm"}, exit_state="COMPLETED",
    )  # fmt: skip
    first = service.process_job_cost(metrics)
    assert [(c.name, c.cost) for c in first.resources] == [("gpu:a100", D("1.26"))]
    again = service.process_job_cost(metrics)
    assert again.duplicate and again.resources == first.resources and again.total_cost == first.total_cost
    day = service.get_daily_costs("acme", queue_name="gpu", start=at.date(), end=at.date())[0]
    assert day.breakdown.resource_cost == D("1.26") and day.total_cost == day.breakdown.total


def test_the_api_takes_resources_and_itemises_them(api: Any) -> None:
    api.service.update_cost_model(CostModel(resources={"gpu": D("0.0007")}))
    body = {"job_id": "g1", "tenant_id": "acme", "queue_name": "gpu", "cpu_time": 10, "resources": {"gpu:h100": 100}}
    answer = api.client.post("/v1/jobs", json=body, headers=api.h("admin"))
    assert answer.status_code == 200, answer.text
    job_out = answer.json()["jobs"][0]
    assert job_out["resources"] == [{"name": "gpu:h100", "quantity": "100", "cost": "0.070000000"}]
    assert job_out["cost_breakdown"]["resource_cost"] == "0.070000000"
    bad = api.client.post("/v1/jobs", json={**body, "job_id": "g2", "resources": {"tpu": 1}}, headers=api.h("admin"))
    assert bad.status_code == 422 and bad.json()["error"]["field"].endswith("resources.tpu")
    model = api.client.get("/v1/cost-model", headers=api.h("admin")).json()["model"]
    assert model["resources"] == {"gpu": "0.0007"}
    put = api.client.put(
        "/v1/cost-model",
        json={**{k: v for k, v in model.items()}, "queues": {"scavenger": {"multiplier": 0}}, "max_tres": []},
        headers=api.h("admin"),
    )
    assert put.status_code == 200, put.text
    assert put.json()["model"]["queues"] == {"scavenger": {"multiplier": "0", "weights": {}}}
