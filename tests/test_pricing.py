"""Cost models from cloud list prices: unit conversions and the OpenCost presets."""

from __future__ import annotations

import json
from decimal import Context, Decimal
from pathlib import Path

import pytest

import jobbudget
from conftest import DATA_DIR
from jobbudget.demo import demo_cost_model
from jobbudget.domain.cost import CostModel
from jobbudget.domain.errors import ValidationError
from jobbudget.pricing import PRESET_FILES, cost_model_from_preset, preset_names, unit_prices

PACKAGED = Path(jobbudget.__file__).resolve().parent / "data" / "pricing"
P15 = Context(prec=15)


def test_unit_prices_are_converted_to_the_model_units_exactly() -> None:
    model = CostModel.from_unit_prices(
        cpu_per_vcpu_hour=Decimal("0.036"),
        ram_per_gib_hour=Decimal("0.036864"),
        egress_per_gib=Decimal("0.1024"),
        redis_per_million_ops=Decimal("0.5"),
        base_per_job=Decimal("0.0001"),
        environment_multiplier=Decimal(2),
    )
    assert model.cpu_time_weight == Decimal("0.00001")  # 0.036 / 3600 per CPU-second
    assert model.memory_weight == Decimal("1E-8")  # 0.036864 / 1024 / 3600 per MB·s
    assert model.network_weight == Decimal("0.0001")  # 0.1024 / 1024 per MB
    assert model.payload_weight == Decimal("0.1024") / 1048576  # egress price per KB
    assert model.redis_ops_weight == Decimal("5E-7")
    assert model.base_job_weight == Decimal("0.0001")
    assert model.environment_multiplier == 2


def test_derived_weights_are_rounded_to_15_significant_digits() -> None:
    model = CostModel.from_unit_prices(cpu_per_vcpu_hour=1, ram_per_gib_hour=1, egress_per_gib=3, payload_per_gib=0)
    assert model.cpu_time_weight == Decimal("0.000277777777777778")  # 1/3600, half-even at 15 digits
    assert len(model.cpu_time_weight.as_tuple().digits) == 15
    assert model.memory_weight == P15.divide(Decimal(1), Decimal(3686400))
    assert model.network_weight == Decimal("0.0029296875")  # exact: 3/1024
    assert model.payload_weight == 0  # given explicitly
    assert model.redis_ops_weight == model.base_job_weight == 0
    assert model.environment_multiplier == 1


def test_bad_unit_prices_are_rejected_naming_the_price() -> None:
    with pytest.raises(ValidationError) as info:
        CostModel.from_unit_prices(cpu_per_vcpu_hour=-1, ram_per_gib_hour=1, egress_per_gib=1)
    assert info.value.field == "unit_prices.cpu_per_vcpu_hour"
    with pytest.raises(ValidationError) as info:
        CostModel.from_unit_prices(cpu_per_vcpu_hour=1, ram_per_gib_hour=1, egress_per_gib=1, environment_multiplier=0)
    assert info.value.field == "cost_model.environment_multiplier"


def test_gcp_default_prices() -> None:
    model = cost_model_from_preset("gcp")
    assert model.cpu_time_weight == P15.divide(Decimal("0.031611"), Decimal(3600))
    assert model.cpu_time_weight == Decimal("0.00000878083333333333")
    assert model.memory_weight == P15.divide(Decimal("0.004237"), Decimal(3686400))
    assert model.network_weight == Decimal("0.12") / 1024 == Decimal("0.0001171875")
    assert model.payload_weight == Decimal("0.12") / 1048576
    assert cost_model_from_preset("opencost-default") == model


def test_the_demo_model_is_the_gcp_preset_without_payload_prices() -> None:
    prices = unit_prices("opencost-default")
    assert demo_cost_model() == CostModel.from_unit_prices(
        cpu_per_vcpu_hour=prices.cpu_per_vcpu_hour,
        ram_per_gib_hour=prices.ram_per_gib_hour,
        egress_per_gib=prices.egress_per_gib,
        payload_per_gib=0,
    )


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_loads_and_equals_its_json_prices(name: str) -> None:
    data = json.loads((PACKAGED / PRESET_FILES[name]).read_text(encoding="utf-8"))
    expected = CostModel.from_unit_prices(
        cpu_per_vcpu_hour=Decimal(data["CPU"]),
        ram_per_gib_hour=Decimal(data["RAM"]),
        egress_per_gib=Decimal(data["internetNetworkEgress"]),
    )
    assert cost_model_from_preset(name) == expected
    prices = unit_prices(name)
    assert prices.cpu_per_vcpu_hour == Decimal(data["CPU"])
    assert prices.provider == data["provider"]


def test_preset_names() -> None:
    assert preset_names() == ("opencost-default", "gcp", "aws", "azure", "alibaba", "oracle")
    assert unit_prices("azure").cpu_per_vcpu_hour == Decimal("0.03900")
    assert unit_prices("oracle").egress_per_gib == Decimal("0.0085")
    with pytest.raises(ValidationError, match="unknown pricing preset") as info:
        cost_model_from_preset("ibm")
    assert info.value.field == "preset"


def test_packaged_price_tables_are_the_published_files() -> None:
    assert (PACKAGED / "NOTICE").read_text(encoding="utf-8").count("Apache License") == 1
    shared = DATA_DIR / "pricing"
    if not shared.is_dir():
        pytest.skip(f"shared data not found at {shared}")
    for file in PRESET_FILES.values():
        assert (PACKAGED / file).read_bytes() == (shared / file).read_bytes()
