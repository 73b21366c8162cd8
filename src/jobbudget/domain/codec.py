"""Plain JSON-ready forms of domain objects (money as exact decimal strings)."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from .budget import Budget, EnforcementPolicy, NotificationChannel
from .cost import CostModel
from .errors import ValidationError
from .money import parse_decimal, plain
from .periods import BudgetPeriod

__all__ = ["budget_from_mapping", "channel_from_mapping", "from_jsonable", "policy_from_mapping", "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Dataclasses, Decimals (as strings, exact), dates and tuples to JSON types."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def _known(kind: str, data: Any, cls: type) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError(kind, data, "must be a mapping")
    names = {f.name for f in fields(cls)}
    for key in data:
        if key not in names:
            # the value is not echoed: under a misspelt key it may be a secret
            raise ValidationError(f"{kind}.{key}", f"<{type(data[key]).__name__}>", f"unknown {kind} key")
    return dict(data)


def policy_from_mapping(data: Any) -> EnforcementPolicy:
    values = _known("enforcement_policy", data, EnforcementPolicy)
    _numbers_from_text("enforcement_policy.", values, ("max_bypass_fraction", "carry_over_cap"))
    return EnforcementPolicy(**values)


def channel_from_mapping(data: Any) -> NotificationChannel:
    values = _known("notifications", data, NotificationChannel)
    if "events" in values and isinstance(values["events"], list):
        values["events"] = tuple(values["events"])
    try:
        return NotificationChannel(**values)
    except TypeError as exc:
        raise ValidationError("notifications", "<channel>", str(exc)) from None


def period_from_mapping(data: Any) -> BudgetPeriod:
    values = _known("period", data, BudgetPeriod)
    for name in ("start_date", "end_date"):
        if isinstance(values.get(name), str):
            try:
                values[name] = date.fromisoformat(values[name])
            except ValueError:
                raise ValidationError(f"period.{name}", values[name], "must be a date YYYY-MM-DD") from None
    return BudgetPeriod(**values)


def budget_from_mapping(data: Any) -> Budget:
    """Inverse of ``to_jsonable(budget)``."""
    values = _known("budget", data, Budget)
    if "period" in values:
        values["period"] = period_from_mapping(values["period"])
    if "enforcement_policy" in values:
        values["enforcement_policy"] = policy_from_mapping(values["enforcement_policy"])
    if "notifications" in values:
        values["notifications"] = tuple(channel_from_mapping(c) for c in values["notifications"] or ())
    _numbers_from_text("", values, ("amount", "warning_threshold", "throttle_threshold", "block_threshold"))
    for name in ("created_at", "updated_at"):
        if isinstance(values.get(name), str):
            values[name] = datetime.fromisoformat(values[name])
    try:
        return Budget(**values)
    except TypeError as exc:
        raise ValidationError("budget", "<budget>", str(exc)) from None


def _numbers_from_text(kind: str, values: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if isinstance(values.get(name), str):
            try:
                values[name] = parse_decimal(values[name])
            except (TypeError, ValueError):
                raise ValidationError(f"{kind}{name}", values[name], "must be a number") from None


def cost_model_from_mapping(data: Any) -> CostModel:
    values = _known("cost_model", data, CostModel)
    _numbers_from_text("cost_model.", values, tuple(k for k in values if k not in _NESTED))
    for name in ("resources", "qos"):
        if isinstance(values.get(name), dict):
            values[name] = dict(values[name])
            _numbers_from_text(f"cost_model.{name}.", values[name], tuple(values[name]))
    if isinstance(values.get("queues"), dict):
        queues: dict[str, Any] = {}
        for queue, rates in values["queues"].items():
            if isinstance(rates, dict):
                rates = dict(rates)
                _numbers_from_text(f"cost_model.queues.{queue}.", rates, ("multiplier",))
                if isinstance(rates.get("weights"), dict):
                    rates["weights"] = dict(rates["weights"])
                    where = f"cost_model.queues.{queue}.weights."
                    _numbers_from_text(where, rates["weights"], tuple(rates["weights"]))
            elif isinstance(rates, str):
                holder = {"multiplier": rates}
                _numbers_from_text(f"cost_model.queues.{queue}.", holder, ("multiplier",))
                rates = holder["multiplier"]
            queues[queue] = rates
        values["queues"] = queues
    if isinstance(values.get("max_tres"), list):
        values["max_tres"] = tuple(values["max_tres"])
    return CostModel.from_mapping(values)


_NESTED = ("resources", "queues", "qos", "max_tres")


def cost_model_to_mapping(model: CostModel) -> dict[str, Any]:
    """Plain decimal text for every number; nested maps for resources, queues, QoS."""

    def text(value: Any) -> Any:
        if isinstance(value, Decimal):
            return plain(value)
        if isinstance(value, dict):
            return {k: text(v) for k, v in value.items()}
        if isinstance(value, list):
            return [text(v) for v in value]
        return value

    return {k: text(v) for k, v in model.to_mapping().items()}


def from_jsonable(cls: Any, data: Any) -> Any:
    """The inverse of :func:`to_jsonable` for a dataclass type (or any annotated type
    built of dataclasses, Decimals, dates, tuples, lists, dicts and optionals): used
    by clients of the HTTP API to get back the same typed objects.  No validation
    beyond the types: the data comes from a jobbudget server."""
    return _decode(cls, data, "value")


def _decode(tp: Any, data: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return data
    if origin in (Union, UnionType):
        args = get_args(tp)
        if data is None and type(None) in args:
            return None
        for arg in args:
            if arg is not type(None):
                return _decode(arg, data, where)
    if data is None:
        raise ValidationError(where, None, "is missing")
    if isinstance(tp, type) and is_dataclass(tp):
        if not isinstance(data, dict):
            raise ValidationError(where, type(data).__name__, "must be an object")
        hints = get_type_hints(tp)
        values = {
            f.name: _decode(hints[f.name], data[f.name], f"{where}.{f.name}") for f in fields(tp) if f.name in data
        }
        return tp(**values)
    if tp is Decimal:
        return parse_decimal(str(data))
    if tp is datetime:
        return datetime.fromisoformat(data)
    if tp is date:
        return date.fromisoformat(data)
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], item, f"{where}[]") for item in data)
        return tuple(_decode(arg, item, f"{where}[]") for arg, item in zip(args, data, strict=True))
    if origin is list:
        return [_decode(get_args(tp)[0], item, f"{where}[]") for item in data]
    if origin is dict:
        key_tp, value_tp = get_args(tp)
        return {_decode(key_tp, k, where): _decode(value_tp, v, f"{where}.{k}") for k, v in data.items()}
    if tp is float and isinstance(data, int | float):
        return float(data)
    if isinstance(tp, type) and not isinstance(data, tp):
        raise ValidationError(where, type(data).__name__, f"must be {tp.__name__}")
    return data
