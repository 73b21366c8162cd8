"""Plain JSON-ready forms of domain objects (money as exact decimal strings)."""

from __future__ import annotations

from dataclasses import asdict, fields, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .budget import Budget, EnforcementPolicy, NotificationChannel
from .cost import CostModel
from .errors import ValidationError
from .money import parse_decimal
from .periods import BudgetPeriod

__all__ = ["budget_from_mapping", "channel_from_mapping", "policy_from_mapping", "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Dataclasses, Decimals (as strings, exact), dates and tuples to JSON types."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Decimal):
        return str(value)
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
    return EnforcementPolicy(**_known("enforcement_policy", data, EnforcementPolicy))


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
    _numbers_from_text("cost_model.", values, tuple(values))
    return CostModel.from_mapping(values)


def cost_model_to_mapping(model: CostModel) -> dict[str, str]:
    return {k: str(v) for k, v in asdict(model).items()}
