"""Named resources beyond the six built-in ones, and the rates that vary by queue and
QoS: GPU-seconds per GPU type, licences, energy, storage or any name an operator
defines, like Slurm's trackable resources (TRES) and ``TRESBillingWeights``.

A resource name is a family, optionally with a type after a colon: ``gpu``,
``gpu:a100``, ``gpu:a100_1g.10gb`` (a MIG slice), ``license:matlab``, ``energy_kwh``.
A job reports a quantity per name in the unit its price is given in (GPU-seconds for
``gpu:*``, kWh for ``energy_kwh``...).  The cost model prices a typed name with its own
weight or, when it has none, with its family's (``gpu:h100`` falls back to ``gpu``);
a name priced by neither is an error, never free.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .errors import ValidationError
from .validation import check_non_negative

__all__ = [
    "BUILTIN_RATES",
    "MAX_RESOURCES",
    "QueueRates",
    "check_resource_name",
    "check_resources",
    "family",
]

#: The built-in components a queue may re-price (the cost model's field names).
BUILTIN_RATES = (
    "cpu_time_weight",
    "memory_weight",
    "payload_weight",
    "redis_ops_weight",
    "network_weight",
    "base_job_weight",
)
#: What a job may report, and a cost model price, at most.
MAX_RESOURCES = 64
_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,39}(?::[A-Za-z0-9][A-Za-z0-9_.+-]{0,59})?$")
_MAX_MULTIPLIER = Decimal(1000)


def check_resource_name(field_name: str, name: Any) -> str:
    """``family`` or ``family:type``: lower-case family of letters, digits, ``_ . -``
    (at most 40), an optional type of at most 60 (``gpu:a100``, ``gpu:a100_3g.40gb``)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(
            field_name,
            name,
            "must be a resource name such as gpu, gpu:a100 or energy_kwh (a lower-case family, "
            "optionally ':' and a type)",
        )
    if name in BUILTIN_RATES:
        raise ValidationError(field_name, name, "is a built-in rate, not a resource name")
    return name


def family(name: str) -> str:
    """``gpu`` for ``gpu:a100`` and for ``gpu``."""
    return name.partition(":")[0]


def check_resources(field_name: str, values: Any) -> dict[str, Decimal]:
    """A mapping of resource names to non-negative exact quantities (or weights)."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ValidationError(field_name, type(values).__name__, "must map resource names to numbers")
    if len(values) > MAX_RESOURCES:
        raise ValidationError(field_name, len(values), f"must name at most {MAX_RESOURCES} resources")
    checked: dict[str, Decimal] = {}
    for name in sorted(values):
        check_resource_name(f"{field_name}.name", name)
        checked[name] = check_non_negative(f"{field_name}.{name}", values[name])
    return checked


def check_multipliers(field_name: str, values: Any, *, key: str) -> dict[str, Decimal]:
    """Names (queues, QoS) to multipliers from 0 (free) to 1000."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ValidationError(field_name, type(values).__name__, f"must map {key} names to multipliers")
    checked: dict[str, Decimal] = {}
    for name in sorted(values):
        if not isinstance(name, str) or not name or len(name) > 100 or not name.isprintable():
            raise ValidationError(f"{field_name}.name", name, f"must be a {key} name of at most 100 characters")
        checked[name] = check_non_negative(f"{field_name}.{name}", values[name], maximum=_MAX_MULTIPLIER)
    return checked


@dataclass(frozen=True, slots=True)
class QueueRates:
    """What one queue (a Slurm partition) charges differently: a multiplier on every
    component (0: the queue is free) and weights that replace the model's for this
    queue, built-in (``cpu_time_weight``...) or named (``gpu:a100``)."""

    multiplier: Decimal = Decimal(1)
    weights: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "multiplier", check_non_negative("queues.multiplier", self.multiplier, maximum=_MAX_MULTIPLIER)
        )
        if not isinstance(self.weights, Mapping):
            raise ValidationError("queues.weights", type(self.weights).__name__, "must map rate names to weights")
        weights: dict[str, Decimal] = {}
        for name in sorted(self.weights):
            if name not in BUILTIN_RATES:
                check_resource_name("queues.weights.name", name)
            weights[name] = check_non_negative(f"queues.weights.{name}", self.weights[name], maximum=_MAX_MULTIPLIER)
        object.__setattr__(self, "weights", weights)

    @classmethod
    def from_value(cls, queue: str, value: Any) -> QueueRates:
        """From a mapping ``{"multiplier": ..., "weights": {...}}`` or a bare multiplier."""
        if isinstance(value, QueueRates):
            return value
        where = f"cost_model.queues.{queue}"
        try:
            if isinstance(value, Mapping):
                unknown = set(value) - {"multiplier", "weights"}
                if unknown:
                    raise ValidationError(where, sorted(unknown)[0], "unknown queue rate key")
                return cls(multiplier=value.get("multiplier", Decimal(1)), weights=value.get("weights") or {})
            return cls(multiplier=value)
        except ValidationError as exc:
            if exc.field.startswith("queues."):
                raise ValidationError(where + exc.field[len("queues") :], exc.value, exc.reason) from None
            raise

    def to_mapping(self) -> dict[str, Any]:
        return {"multiplier": self.multiplier, "weights": dict(self.weights)}


_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$")
MAX_LABELS = 16


def check_labels(field_name: str, values: Any) -> dict[str, str]:
    """At most 16 labels: keys of letters, digits and ``_ . : / -`` (at most 63),
    printable values of at most 200 characters."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ValidationError(field_name, type(values).__name__, "must map label names to strings")
    if len(values) > MAX_LABELS:
        raise ValidationError(field_name, len(values), f"must hold at most {MAX_LABELS} labels")
    checked: dict[str, str] = {}
    for key in sorted(values):
        if not isinstance(key, str) or not _LABEL_KEY.match(key):
            raise ValidationError(
                f"{field_name}.name", key, "must be a label name of letters, digits and _ . : / - (at most 63)"
            )
        value = values[key]
        if not isinstance(value, str) or not value or len(value) > 200 or not value.isprintable():
            raise ValidationError(f"{field_name}.{key}", value, "must be a printable string of 1 to 200 characters")
        checked[key] = value
    return checked


def labels_text(labels: Mapping[str, str]) -> str:
    """``project=llm, team=vision`` (sorted): how labels are shown and typed."""
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def labels_from_pairs(field_name: str, pairs: Iterable[str]) -> dict[str, str]:
    """``["project=llm", "team=vision"]`` as a mapping (blank items skipped); an item
    without ``=`` or a name is an error naming ``field_name``."""
    labels: dict[str, str] = {}
    for pair in pairs:
        if not pair.strip():
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValidationError(field_name, pair.strip(), "must be key=value such as project=llm")
        labels[key.strip()] = value.strip()
    return labels
