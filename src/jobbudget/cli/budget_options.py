"""Options shared by ``budget create`` and ``budget update``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

__all__ = [
    "Amount",
    "BlockJobs",
    "Block",
    "BudgetId",
    "BypassFraction",
    "Currency",
    "Emergency",
    "EmergencyPriority",
    "End",
    "GraceHours",
    "Notify",
    "Period",
    "PeriodType",
    "Queue",
    "Start",
    "Throttle",
    "ThrottleFactor",
    "Timezone",
    "Warn",
    "WarnOnly",
]


class PeriodType(StrEnum):
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"
    quarterly = "quarterly"
    yearly = "yearly"
    custom = "custom"


#: The option behind each budget field, for errors in the words the user typed.
BUDGET_OPTIONS = {
    "tenant_id": "--tenant",
    "queue_name": "--queue",
    "amount": "--amount",
    "currency": "--currency",
    "period": "--period",
    "period.start_date": "--start",
    "period.end_date": "--end",
    "period.timezone": "--timezone",
    "warning_threshold": "--warn",
    "throttle_threshold": "--throttle",
    "block_threshold": "--block",
    "enforcement_policy.throttle_factor": "--throttle-factor",
    "enforcement_policy.emergency_priority": "--emergency-priority",
    "enforcement_policy.max_bypass_fraction": "--max-bypass-fraction",
    "enforcement_policy.grace_period_hours": "--grace-hours",
    "enforcement_policy.carry_over": "--carry-over",
    "enforcement_policy.carry_over_cap": "--carry-over-cap",
    "labels": "--label",
    "notifications": "--notify",
    "notify": "--notify",
}
_P = "Period"
_T = "Thresholds"
_E = "Enforcement policy"

Queue = Annotated[
    str | None, typer.Option(metavar="QUEUE", help="Limit the budget to one queue (default: tenant-wide).")
]
Amount = Annotated[
    str | None, typer.Option(metavar="NUMBER", help="Amount per period, read exactly, e.g. 5000 or 1234.56.")
]
Period = Annotated[
    PeriodType | None,
    typer.Option(
        metavar="PERIOD",
        help="daily, weekly, monthly, quarterly, yearly or custom; periods recur except custom.",
        rich_help_panel=_P,
    ),
]
Start = Annotated[
    str | None,
    typer.Option(
        metavar="YYYY-MM-DD", help="First day YYYY-MM-DD (default: start of the current period).", rich_help_panel=_P
    ),
]
End = Annotated[
    str | None,
    typer.Option(
        metavar="YYYY-MM-DD", help="Last day YYYY-MM-DD, inclusive (required for custom).", rich_help_panel=_P
    ),
]
Timezone = Annotated[
    str | None,
    typer.Option(metavar="ZONE", help="IANA timezone of the period's days (default UTC).", rich_help_panel=_P),
]
Warn = Annotated[
    str | None,
    typer.Option(metavar="SHARE", help="Warn at this share of the amount (default 0.75).", rich_help_panel=_T),
]
Throttle = Annotated[
    str | None, typer.Option(metavar="SHARE", help="Throttle at this share (default 0.9).", rich_help_panel=_T)
]
Block = Annotated[
    str | None, typer.Option(metavar="SHARE", help="Block at this share (default 1.0; at most 10).", rich_help_panel=_T)
]
WarnOnly = Annotated[
    bool | None,
    typer.Option("--warn-only/--no-warn-only", help="Only warn, never throttle or block.", rich_help_panel=_E),
]
ThrottleFactor = Annotated[
    str | None,
    typer.Option(metavar="SHARE", help="Capacity share while throttled, in (0, 1] (default 0.5).", rich_help_panel=_E),
]
BlockJobs = Annotated[
    bool | None,
    typer.Option(
        "--block-jobs/--no-block",
        help="Block new jobs over the block threshold (default), or only throttle them.",
        rich_help_panel=_E,
    ),
]
Emergency = Annotated[
    bool | None,
    typer.Option(
        "--emergency/--no-emergency",
        help="Let jobs at or above --emergency-priority bypass throttling and blocking (default: yes).",
        rich_help_panel=_E,
    ),
]
EmergencyPriority = Annotated[
    int | None, typer.Option(min=0, max=10, help="Lowest bypassing priority (default 9).", rich_help_panel=_E)
]
BypassFraction = Annotated[
    str | None,
    typer.Option(
        "--max-bypass-fraction",
        metavar="FRACTION",
        help="Emergency jobs may spend at most this fraction of the amount past the block threshold "
        "per period, 0 to 1 (default 0.1; 0 ends every bypass at the block threshold).",
        rich_help_panel=_E,
    ),
]
GraceHours = Annotated[
    int | None,
    typer.Option(
        min=0, help="Only warn for this many hours after the budget is created (default 0).", rich_help_panel=_E
    ),
]
Currency = Annotated[str | None, typer.Option(metavar="CODE", help="ISO 4217 currency code (default USD).")]
Notify = Annotated[
    list[str] | None,
    typer.Option(
        metavar="TYPE:TARGET",
        help="Alert channel, repeatable: email:ops@example.com, slack:https://hooks.slack.com/..., "
        "webhook:https://... (shown redacted), or a JSON object as in the API, with metadata "
        "such as a webhook's signing secret (docs/webhooks.md).",
    ),
]
BudgetId = Annotated[str, typer.Argument(help="The budget's id (see `jobbudget budget list`).", show_default=False)]

CarryOver = Annotated[
    str | None,
    typer.Option(
        "--carry-over",
        metavar="MODE",
        help="Rollover into the next period: unused (what was left), overage (what was overspent), both, "
        "or none (default).",
        rich_help_panel=_E,
    ),
]
CarryCap = Annotated[
    str | None,
    typer.Option(
        "--carry-over-cap",
        metavar="FRACTION",
        help="At most this fraction of the amount is carried either way (default 1).",
        rich_help_panel=_E,
    ),
]
BudgetLabels = Annotated[
    list[str] | None,
    typer.Option(
        "--label",
        metavar="KEY=VALUE",
        help="Count only jobs carrying this label (repeat for more), e.g. --label project=llm.",
    ),
]
