"""Cost models from cloud list prices: unit conversions and the OpenCost presets."""

from __future__ import annotations

import hashlib
import json
from decimal import Context, Decimal
from pathlib import Path

import pytest

import jobbudget
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


#: SHA-256 of OpenCost's published configs/*.json (opencost/opencost), as copied.
PUBLISHED = {
    "opencost_configs_alibaba.json": "fd14576760ce28fa97ce7765ecc8a401869a6a082eae35c927e6354bdccb819c",
    "opencost_configs_aws.json": "dbd3b6989377347a2c95541104a1d1a1222e2a828e8c5ab614082de66a3122fc",
    "opencost_configs_azure.json": "dd6ffc1422832b190d90da247a3a3e4b619152c1e522c151ccef5c3d6d33d00a",
    "opencost_configs_default.json": "00be9e8bfcb757063c576a6433e3307de6cd88e428273c0df9afa3cd28441f65",
    "opencost_configs_gcp.json": "e464ce90e55354f8af61a91dbce0a60ba3c961a199159c9a9fe0ab57702df174",
    "opencost_configs_oracle.json": "1288f23df948c671339d7c024a9d824a9d0893bf6aee017d1bb8e6954efe90df",
}


def test_packaged_price_tables_are_the_published_files() -> None:
    assert (PACKAGED / "NOTICE").read_text(encoding="utf-8").count("Apache License") == 1
    assert set(PRESET_FILES.values()) == set(PUBLISHED)
    for file, digest in PUBLISHED.items():
        assert hashlib.sha256((PACKAGED / file).read_bytes()).hexdigest() == digest, file


def test_the_default_model_is_within_public_cloud_list_prices() -> None:
    """Per core-hour, per GiB-hour and per GiB sent, the default weights lie within
    the range of the packaged OpenCost tables (read from the JSON, not the code)."""
    tables = [json.loads((PACKAGED / file).read_text(encoding="utf-8")) for file in PUBLISHED]
    model = CostModel()
    per_core_hour = model.cpu_time_weight * 3600
    per_gib_hour = model.memory_weight * 1024 * 3600
    per_gib_sent = model.network_weight * 1024
    for value, key in ((per_core_hour, "CPU"), (per_gib_hour, "RAM"), (per_gib_sent, "internetNetworkEgress")):
        prices = [Decimal(t[key]) for t in tables]
        assert min(prices) <= value <= max(prices), (key, value, min(prices), max(prices))


def test_the_design_documents_weights_stay_available_by_name() -> None:
    from jobbudget.config import PRESETS
    from jobbudget.domain.cost import seed_cost_model

    seed = PRESETS["seed"]()
    assert seed == seed_cost_model()
    assert (seed.cpu_time_weight, seed.memory_weight, seed.network_weight) == (
        Decimal("0.0001"),
        Decimal("0.00001"),
        Decimal("0.01"),
    )
