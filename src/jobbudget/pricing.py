"""Cost model presets from public cloud list prices (OpenCost's default tables).

The packaged files ``jobbudget/data/pricing/opencost_configs_*.json`` are copied
unchanged from opencost/opencost ``configs/`` (Apache-2.0, see the ``NOTICE`` there).
Each gives, as decimal strings, ``CPU`` in USD per vCPU-hour, ``RAM`` in USD per
GiB-hour and ``internetNetworkEgress`` in USD per GiB; they are converted with
:meth:`jobbudget.domain.cost.CostModel.from_unit_prices` (payload priced as egress,
no Redis or per-job base price, multiplier 1).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

from .domain.cost import CostModel, default_cost_model, production_cost_model, seed_cost_model, staging_cost_model
from .domain.errors import ValidationError
from .domain.money import parse_decimal

__all__ = [
    "BUILT_IN",
    "PRESET_FILES",
    "UnitPrices",
    "cost_model_from_preset",
    "model_names",
    "named_model",
    "preset_names",
    "unit_prices",
]

#: The named models that are not a cloud's price table.
BUILT_IN: dict[str, Callable[[], CostModel]] = {
    "default": default_cost_model,
    "production": production_cost_model,
    "staging": staging_cost_model,
    "seed": seed_cost_model,
}

#: Preset name -> packaged OpenCost file.  ``opencost-default`` is OpenCost's
#: provider-neutral default (GCP us-central1 list prices).
PRESET_FILES = {
    "opencost-default": "opencost_configs_default.json",
    "gcp": "opencost_configs_gcp.json",
    "aws": "opencost_configs_aws.json",
    "azure": "opencost_configs_azure.json",
    "alibaba": "opencost_configs_alibaba.json",
    "oracle": "opencost_configs_oracle.json",
}
_KEYS = {"cpu_per_vcpu_hour": "CPU", "ram_per_gib_hour": "RAM", "egress_per_gib": "internetNetworkEgress"}


@dataclass(frozen=True, slots=True)
class UnitPrices:
    """A preset's list prices in USD, as published."""

    name: str
    provider: str
    description: str
    cpu_per_vcpu_hour: Decimal
    ram_per_gib_hour: Decimal
    egress_per_gib: Decimal

    def cost_model(self) -> CostModel:
        return CostModel.from_unit_prices(
            cpu_per_vcpu_hour=self.cpu_per_vcpu_hour,
            ram_per_gib_hour=self.ram_per_gib_hour,
            egress_per_gib=self.egress_per_gib,
        )


def preset_names() -> tuple[str, ...]:
    return tuple(PRESET_FILES)


def unit_prices(name: str) -> UnitPrices:
    """The list prices of preset ``name`` (see :func:`preset_names`)."""
    file = PRESET_FILES.get(name) if isinstance(name, str) else None
    if file is None:
        raise ValidationError("preset", name, f"unknown pricing preset; choose one of {', '.join(PRESET_FILES)}")
    text = resources.files("jobbudget").joinpath("data", "pricing", file).read_text(encoding="utf-8")
    data: Any = json.loads(text)
    if not isinstance(data, dict):
        raise ValidationError(f"preset.{name}", file, "is not a JSON object")
    prices: dict[str, Decimal] = {}
    for field, key in _KEYS.items():
        value = data.get(key)
        try:
            prices[field] = parse_decimal(str(value))
        except (TypeError, ValueError):
            raise ValidationError(f"preset.{name}.{key}", value, "must be a number") from None
    return UnitPrices(
        name=name,
        provider=str(data.get("provider", "")),
        description=str(data.get("description", "")),
        **prices,
    )


def cost_model_from_preset(name: str) -> CostModel:
    """The :class:`CostModel` of preset ``name``."""
    return unit_prices(name).cost_model()


def model_names() -> tuple[str, ...]:
    """Every named cost model: the built-in ones, then the cloud price tables."""
    return (*BUILT_IN, *preset_names())


def named_model(name: str, *, field: str = "preset") -> CostModel:
    """The cost model called ``name`` (``default``, ``production``, ``staging``,
    ``seed``, or a cloud table such as ``gcp``)."""
    if name in BUILT_IN:
        return BUILT_IN[name]()
    if name in PRESET_FILES:
        return cost_model_from_preset(name)
    raise ValidationError(field, name, f"unknown cost model; choose one of {', '.join(model_names())}")
