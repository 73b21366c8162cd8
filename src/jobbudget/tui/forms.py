"""The Controls form's text, without widgets: a budget as form values, form values as
a :class:`~jobbudget.tui.source.BudgetDraft` (read exactly, never through float), and
which form field a :class:`~jobbudget.domain.errors.ValidationError` belongs to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ..domain.budget import Budget, EnforcementPolicy, NotificationChannel, parse_channel_spec, validate_budget
from ..domain.errors import ValidationError
from ..domain.money import parse_decimal
from ..domain.periods import BudgetPeriod
from ..domain.resources import labels_from_pairs, labels_text
from .source import BudgetDraft

__all__ = [
    "FIELDS",
    "FORM_FIELDS",
    "SWITCHES",
    "Field",
    "budget_values",
    "channel_index",
    "check_form",
    "channels_text",
    "form_field",
    "labels_text",
    "new_values",
    "parse_channels",
    "parse_draft",
]


@dataclass(frozen=True, slots=True)
class Field:
    """One text field of the form."""

    key: str
    label: str
    placeholder: str = ""


FIELDS = (
    Field("tenant_id", "Tenant", "e.g. acme"),
    Field("queue_name", "Queue", "empty = all queues"),
    Field("amount", "Amount per period", "e.g. 5000 or 1234.56"),
    Field("currency", "Currency", "ISO 4217 code, e.g. USD"),
    Field("start_date", "Start date", "YYYY-MM-DD (empty = current period)"),
    Field("end_date", "End date (custom only)", "YYYY-MM-DD, inclusive"),
    Field("timezone", "Timezone", "IANA name, e.g. UTC or Europe/Berlin"),
    Field("warning_threshold", "Warn at (fraction)", "e.g. 0.75 = 75%"),
    Field("throttle_threshold", "Throttle at (fraction)", "e.g. 0.90 = 90%"),
    Field("block_threshold", "Block at (fraction)", "e.g. 1.00 = 100% (at most 10)"),
    Field("throttle_factor", "Throttle factor", "capacity share in (0, 1], e.g. 0.5"),
    Field("emergency_priority", "Emergency priority", "0-10; jobs at or above it bypass"),
    Field("max_bypass_fraction", "Bypass allowance", "of the amount past block, 0-1, e.g. 0.1"),
    Field("grace_period_hours", "Grace period (hours)", "only warn for this long, e.g. 0"),
    Field("labels", "Job labels", "key=value, ... (empty = every job)"),
    Field("carry_over", "Carry over", "none, unused, overage or both"),
    Field("carry_over_cap", "Carry-over cap", "fraction of the amount, e.g. 1"),
)
SWITCHES = (
    ("warn_only", "Warn only (never throttle or block)"),
    ("block_new_jobs", "Block new jobs over the block threshold"),
    ("allow_emergency", "Let emergency jobs bypass"),
)
FORM_FIELDS = frozenset({f.key for f in FIELDS} | {key for key, _ in SWITCHES} | {"period_type", "notifications"})
_PERIOD_FIELDS = {"type": "period_type", "recurring": "period_type"}
_NEW_VALUES = {
    "currency": "USD",
    "timezone": "UTC",
    "warning_threshold": "0.75",
    "throttle_threshold": "0.90",
    "block_threshold": "1.00",
    "throttle_factor": "0.5",
    "emergency_priority": "9",
    "max_bypass_fraction": "0.1",
    "grace_period_hours": "0",
    "carry_over": "none",
    "carry_over_cap": "1",
    "period_type": "monthly",
}


def form_field(name: str) -> str | None:
    """The form field a validation error's ``field`` names, or None (shown at the top):
    ``enforcement_policy.throttle_factor`` -> ``throttle_factor``, ``period.end_date``
    -> ``end_date``, ``notifications[0].target`` -> ``notifications``."""
    head = name.split("[", 1)[0]
    if head.startswith("enforcement_policy."):
        head = head.split(".", 1)[1]
    elif head.startswith("period.") or head == "period":
        sub = head.partition(".")[2] or "type"
        head = _PERIOD_FIELDS.get(sub, sub)
    head = head.split(".", 1)[0]
    if head == "notify":
        head = "notifications"
    return head if head in FORM_FIELDS else None


def parse_labels_text(text: str) -> dict[str, str]:
    """``project=llm, team=vision`` as a mapping (errors name ``labels``)."""
    return labels_from_pairs("labels", text.split(","))


def channels_text(channels: Iterable[NotificationChannel]) -> str:
    """One ``type:target`` line per channel (pass redacted channels)."""
    return "\n".join(f"{c.type}:{c.target}" for c in channels)


def parse_channels(text: str) -> tuple[NotificationChannel, ...]:
    """Channels from ``type:target`` lines (blank lines skipped).  Errors name the
    channel (``notifications[1]``) and never repeat the target."""
    channels: list[NotificationChannel] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        index = len(channels)
        try:
            channels.append(parse_channel_spec(line, field=f"notifications[{index}]"))
        except ValidationError as exc:
            raise ValidationError(f"notifications[{index}]", "<hidden>", f"line {index + 1}: {exc.reason}") from None
    return tuple(channels)


def channel_index(text: str, row: int) -> int | None:
    """The channel number (0-based) of line ``row`` of the channels text."""
    lines = text.splitlines()
    if not 0 <= row < len(lines) or not lines[row].strip():
        return None
    return sum(1 for line in lines[:row] if line.strip())


def new_values(tenant_id: str | None = None) -> tuple[dict[str, str], dict[str, bool]]:
    """The form of a new budget: text values and switches."""
    values = {f.key: "" for f in FIELDS} | _NEW_VALUES | {"notifications": ""}
    values["tenant_id"] = tenant_id or ""
    policy = EnforcementPolicy()
    return values, {"warn_only": policy.warn_only, "block_new_jobs": True, "allow_emergency": True}


def budget_values(budget: Budget) -> tuple[dict[str, str], dict[str, bool]]:
    """The form of an existing (redacted) budget."""
    period, policy = budget.period, budget.enforcement_policy
    values = {
        "tenant_id": budget.tenant_id,
        "queue_name": budget.queue_name,
        "amount": str(budget.amount),
        "currency": budget.currency,
        "period_type": period.type,
        "start_date": period.start_date.isoformat() if period.start_date else "",
        "end_date": period.end_date.isoformat() if period.end_date else "",
        "timezone": period.timezone,
        "warning_threshold": str(budget.warning_threshold),
        "throttle_threshold": str(budget.throttle_threshold),
        "block_threshold": str(budget.block_threshold),
        "throttle_factor": str(policy.throttle_factor),
        "emergency_priority": str(policy.emergency_priority),
        "max_bypass_fraction": str(policy.max_bypass_fraction),
        "grace_period_hours": str(policy.grace_period_hours),
        "labels": labels_text(budget.labels),
        "carry_over": policy.carry_over,
        "carry_over_cap": str(policy.carry_over_cap),
        "notifications": channels_text(budget.notifications),
    }
    switches = {
        "warn_only": policy.warn_only,
        "block_new_jobs": policy.block_new_jobs,
        "allow_emergency": policy.allow_emergency,
    }
    return values, switches


def _number(values: Mapping[str, str], key: str, default: str | None = None) -> Decimal:
    text = values.get(key, "").strip() or (default or "")
    if not text:
        raise ValidationError(key, text, "is required")
    try:
        return parse_decimal(text)
    except (TypeError, ValueError):
        raise ValidationError(key, text, "must be a number such as 1500 or 0.75") from None


def _whole(values: Mapping[str, str], key: str, default: int) -> int:
    text = values.get(key, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise ValidationError(f"enforcement_policy.{key}", text, "must be a whole number") from None


def _date(values: Mapping[str, str], key: str) -> date | None:
    text = values.get(key, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"period.{key}", text, "must be a date YYYY-MM-DD") from None


def parse_draft(
    values: Mapping[str, str],
    switches: Mapping[str, bool],
    *,
    original: Budget | None = None,
    original_channels: str | None = None,
) -> BudgetDraft:
    """The draft the form describes.  Editing (``original`` given), channels text equal
    to ``original_channels`` keeps the stored channels (``notifications=None``).  A
    recurring period's end date follows from its start, so only custom periods read it."""
    amount = _number(values, "amount")
    thresholds = [
        _number(values, key, default)
        for key, default in (("warning_threshold", "0.75"), ("throttle_threshold", "0.90"), ("block_threshold", "1.00"))
    ]
    kind = values.get("period_type", "monthly") or "monthly"
    start, end = _date(values, "start_date"), _date(values, "end_date")
    recurring = original.period.recurring if original is not None and original.period.type == kind else None
    period = BudgetPeriod(
        type=kind,
        start_date=start,
        end_date=end if kind == "custom" else None,
        timezone=values.get("timezone", "").strip() or "UTC",
        recurring=recurring,
    )
    factor = _number(values, "throttle_factor", "0.5")
    policy = EnforcementPolicy(
        warn_only=bool(switches.get("warn_only", False)),
        throttle_factor=float(factor),  # EnforcementPolicy keeps the factor as a float
        block_new_jobs=bool(switches.get("block_new_jobs", True)),
        allow_emergency=bool(switches.get("allow_emergency", True)),
        emergency_priority=_whole(values, "emergency_priority", 9),
        max_bypass_fraction=_number(values, "max_bypass_fraction", "0.1"),
        grace_period_hours=_whole(values, "grace_period_hours", 0),
        carry_over=values.get("carry_over", "").strip() or "none",
        carry_over_cap=_number(values, "carry_over_cap", "1"),
    )
    text = values.get("notifications", "")
    keep = original is not None and original_channels is not None and text.strip() == original_channels.strip()
    return BudgetDraft(
        tenant_id=values.get("tenant_id", "").strip(),
        queue_name=values.get("queue_name", "").strip(),
        amount=amount,
        period=period,
        currency=values.get("currency", "").strip().upper() or "USD",
        warning_threshold=thresholds[0],
        throttle_threshold=thresholds[1],
        block_threshold=thresholds[2],
        enforcement_policy=policy,
        notifications=None if keep else parse_channels(text),
        labels=parse_labels_text(values.get("labels", "")),
    )


def check_form(
    values: Mapping[str, str],
    switches: Mapping[str, bool],
    *,
    original: Budget | None = None,
    original_channels: str | None = None,
) -> ValidationError | None:
    """The first error a save would be refused with that the form finds by itself
    (the budget's own rules: no database, no network), or None.  Stored channels left
    unchanged are not checked again: they were when stored."""
    try:
        draft = parse_draft(values, switches, original=original, original_channels=original_channels)
        validate_budget(draft.to_budget())
    except ValidationError as exc:
        return exc
    return None
