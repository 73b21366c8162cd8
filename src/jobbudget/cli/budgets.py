"""``jobbudget budget ...``: create, list, show, update and deactivate budgets."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ..domain.budget import Budget, EnforcementPolicy, NotificationChannel, parse_channel_spec
from ..domain.codec import channel_from_mapping
from ..domain.errors import ValidationError
from ..domain.periods import BudgetPeriod
from .budget_options import (
    BUDGET_OPTIONS,
    Amount,
    Block,
    BlockJobs,
    BudgetId,
    BudgetLabels,
    BypassFraction,
    CarryCap,
    CarryOver,
    Currency,
    Emergency,
    EmergencyPriority,
    End,
    GraceHours,
    Notify,
    Period,
    PeriodType,
    Queue,
    Start,
    Throttle,
    ThrottleFactor,
    Timezone,
    Warn,
    WarnOnly,
)
from .common import (
    AtOption,
    ConfigOption,
    DatabaseOption,
    JsonOption,
    Settings,
    cli_errors,
    emit_json,
    fixed_clock,
    open_service,
    out_console,
    parse_date,
    parse_number,
)
from .platform_cmd import parse_labels
from .render import action_text, budget_table, money, percent, policy_text, status_label, thresholds_text

__all__ = ["budget_app"]

budget_app = typer.Typer(
    help="Create, list, inspect, change and deactivate budgets.", no_args_is_help=True, add_completion=False
)


ACTOR = "cli"


def _channel(spec: str) -> NotificationChannel:
    """``TYPE:TARGET``, or a channel as the API takes it (a JSON object with
    ``metadata``: a webhook's signing ``secret``, ``auth_header``, ``timeout``, ...).
    Errors never repeat the value: it may hold a secret."""
    if not spec.lstrip().startswith("{"):
        return parse_channel_spec(spec, field="--notify")
    try:
        data = json.loads(spec)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            "--notify", None, f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(data, dict):
        raise ValidationError("--notify", None, "must be TYPE:TARGET or a JSON object")
    return channel_from_mapping(data)


def _period(
    old: BudgetPeriod | None, kind: PeriodType | None, start: str | None, end: str | None, timezone: str | None
) -> BudgetPeriod:
    """A new period from the options; on update, unchanged parts come from ``old``.
    Errors name the options (``--start``, ``--end``), not the fields behind them."""
    start_date = parse_date("--start", start) if start is not None else None
    end_date = parse_date("--end", end) if end is not None else None
    custom = kind is PeriodType.custom or (kind is None and old is not None and old.type == "custom")
    if custom and old is None and (start_date is None or end_date is None):
        missing = "--start" if start is None else "--end"
        raise ValidationError(missing, None, "is required with --period custom (a date YYYY-MM-DD)")
    if start_date is not None and end_date is not None and end_date < start_date:
        raise ValidationError("--end", end_date, f"must not be before --start {start_date.isoformat()}")
    if old is None:
        return BudgetPeriod(
            type=(kind or PeriodType.monthly).value,
            start_date=start_date,
            end_date=end_date,
            timezone=timezone or "UTC",
        )
    if kind is None and start is None and end is None and timezone is None:
        return old
    new_type = kind.value if kind is not None else old.type
    same_type = new_type == old.type
    if start_date is None and same_type:
        start_date = old.start_date
    if end_date is None and same_type and start is None:
        end_date = old.end_date
    return BudgetPeriod(
        type=new_type,
        start_date=start_date,
        end_date=end_date,
        timezone=timezone or old.timezone,
        recurring=old.recurring if same_type else None,
    )


def _policy(
    old: EnforcementPolicy,
    *,
    warn_only: bool | None,
    throttle_factor: str | None,
    block_jobs: bool | None,
    emergency: bool | None,
    emergency_priority: int | None,
    grace_hours: int | None,
    max_bypass: str | None,
    carry_over: str | None = None,
    carry_cap: str | None = None,
) -> EnforcementPolicy:
    """``old`` with the options given (None: unchanged)."""
    factor = old.throttle_factor
    if throttle_factor is not None:
        factor = float(parse_number("enforcement_policy.throttle_factor", throttle_factor))
    fraction = old.max_bypass_fraction
    if max_bypass is not None:
        fraction = parse_number("enforcement_policy.max_bypass_fraction", max_bypass)
    return EnforcementPolicy(
        warn_only=old.warn_only if warn_only is None else warn_only,
        throttle_factor=factor,
        block_new_jobs=old.block_new_jobs if block_jobs is None else block_jobs,
        allow_emergency=old.allow_emergency if emergency is None else emergency,
        emergency_priority=old.emergency_priority if emergency_priority is None else emergency_priority,
        grace_period_hours=old.grace_period_hours if grace_hours is None else grace_hours,
        max_bypass_fraction=fraction,
        carry_over=old.carry_over if carry_over is None else carry_over,
        carry_over_cap=(
            old.carry_over_cap if carry_cap is None else parse_number("enforcement_policy.carry_over_cap", carry_cap)
        ),
    )


def _thresholds(base: Budget, warn: str | None, throttle: str | None, block: str | None) -> Budget:
    def pick(name: str, text: str | None, old: Decimal) -> Decimal:
        return old if text is None else parse_number(name, text)

    return replace(
        base,
        warning_threshold=pick("warning_threshold", warn, base.warning_threshold),
        throttle_threshold=pick("throttle_threshold", throttle, base.throttle_threshold),
        block_threshold=pick("block_threshold", block, base.block_threshold),
    )


def _print_budget(budget: Budget, verb: str, settings: Settings) -> None:
    if settings.json:
        emit_json(budget.redacted())
        return
    p = budget.period
    text = Text(f"{verb} budget ")
    text.append(str(budget.id), style="bold")
    text.append(f" for {budget.scope}: {money(budget.amount, budget.currency)} {p.type} {p.start_date}..{p.end_date}")
    text.append(f" ({p.timezone})")
    if not budget.active:
        text.append(" (inactive)", style="dim")
    out_console().print(text)


@budget_app.command("create")
def create(
    tenant: Annotated[
        str,
        typer.Option(
            help="Tenant the budget belongs to, or a team or organisation of the tree (it then covers every "
            "tenant below).",
            show_default=False,
        ),
    ],
    amount: Annotated[
        str, typer.Option(metavar="NUMBER", help="Amount per period, read exactly, e.g. 5000 or 1234.56.")
    ],
    queue: Queue = None,
    period: Period = PeriodType.monthly,
    start: Start = None,
    end: End = None,
    timezone: Timezone = None,
    warn: Warn = None,
    throttle: Throttle = None,
    block: Block = None,
    warn_only: WarnOnly = None,
    throttle_factor: ThrottleFactor = None,
    block_jobs: BlockJobs = None,
    emergency: Emergency = None,
    emergency_priority: EmergencyPriority = None,
    grace_hours: GraceHours = None,
    max_bypass: BypassFraction = None,
    carry_over: CarryOver = None,
    carry_cap: CarryCap = None,
    label: BudgetLabels = None,
    currency: Currency = None,
    notify: Notify = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Create a budget for a tenant (or one of its queues) and print its id."""
    settings = Settings(config, database_url, json)
    with cli_errors(BUDGET_OPTIONS):
        budget = Budget(
            tenant_id=tenant,
            queue_name=queue or "",
            amount=parse_number("amount", amount),
            period=_period(None, period, start, end, timezone),
            currency=(currency or "USD").upper(),
            enforcement_policy=_policy(
                EnforcementPolicy(),
                warn_only=warn_only,
                throttle_factor=throttle_factor,
                block_jobs=block_jobs,
                emergency=emergency,
                emergency_priority=emergency_priority,
                grace_hours=grace_hours,
                max_bypass=max_bypass,
                carry_over=carry_over,
                carry_cap=carry_cap,
            ),
            notifications=tuple(_channel(n) for n in notify or ()),
            labels=parse_labels(label),
        )
        budget = _thresholds(budget, warn, throttle, block)
        with open_service(settings, creates=True) as service:
            created = service.create_budget(budget, actor=ACTOR)
        _print_budget(created, "Created", settings)


@budget_app.command("update")
def update(
    budget_id: BudgetId,
    amount: Amount = None,
    queue: Queue = None,
    period: Period = None,
    start: Start = None,
    end: End = None,
    timezone: Timezone = None,
    warn: Warn = None,
    throttle: Throttle = None,
    block: Block = None,
    warn_only: WarnOnly = None,
    throttle_factor: ThrottleFactor = None,
    block_jobs: BlockJobs = None,
    emergency: Emergency = None,
    emergency_priority: EmergencyPriority = None,
    grace_hours: GraceHours = None,
    max_bypass: BypassFraction = None,
    carry_over: CarryOver = None,
    carry_cap: CarryCap = None,
    currency: Currency = None,
    notify: Notify = None,
    clear_notify: Annotated[bool, typer.Option("--clear-notify", help="Remove every alert channel.")] = False,
    activate: Annotated[bool, typer.Option("--activate", help="Re-activate a deactivated budget.")] = False,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Change a budget; only the options given change.

    The tenant cannot change.  Spend is recounted when the queue or the period
    changes; --queue "" makes the budget tenant-wide.
    """
    settings = Settings(config, database_url, json)
    with cli_errors(BUDGET_OPTIONS), open_service(settings) as service:
        old = service.get_budget(budget_id)
        channels = old.notifications
        if clear_notify:
            channels = ()
        if notify:
            channels = tuple(_channel(n) for n in notify)
        budget = replace(
            old,
            queue_name=old.queue_name if queue is None else queue,
            amount=old.amount if amount is None else parse_number("amount", amount),
            period=_period(old.period, period, start, end, timezone),
            currency=old.currency if currency is None else currency.upper(),
            enforcement_policy=_policy(
                old.enforcement_policy,
                warn_only=warn_only,
                throttle_factor=throttle_factor,
                block_jobs=block_jobs,
                emergency=emergency,
                emergency_priority=emergency_priority,
                grace_hours=grace_hours,
                max_bypass=max_bypass,
                carry_over=carry_over,
                carry_cap=carry_cap,
            ),
            notifications=channels,
            active=True if activate else old.active,
        )
        budget = _thresholds(budget, warn, throttle, block)
        updated = service.update_budget(budget, actor=ACTOR)
    _print_budget(updated, "Updated", settings)


@budget_app.command("deactivate")
def deactivate(
    budget_id: BudgetId,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Stop enforcing a budget (it is kept, with its history; `update --activate` undoes it)."""
    settings = Settings(config, database_url, json)
    with cli_errors(BUDGET_OPTIONS), open_service(settings) as service:
        budget = service.deactivate_budget(budget_id, actor=ACTOR)
    _print_budget(budget, "Deactivated", settings)


@budget_app.command("list")
def list_budgets(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's budgets.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include deactivated budgets.")] = False,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """List budgets (active ones unless --all), with their policy and redacted alert channels."""
    settings = Settings(config, database_url, json)
    with cli_errors(BUDGET_OPTIONS), open_service(settings) as service:
        budgets = service.list_budgets(tenant, include_inactive=all_)
    if json:
        emit_json([b.redacted() for b in budgets])
    elif not budgets:
        out_console().print("No budgets." + ("" if all_ else " (deactivated ones are shown with --all)"))
    else:
        console = out_console()
        console.print(budget_table(budgets, width=console.width))


@budget_app.command("show")
def show(
    budget_id: BudgetId,
    at: AtOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Show a budget's settings and status now.

    Status: spend in the current period, utilization and the action a new job
    would get at normal priority.
    """
    settings = Settings(config, database_url, json)
    with cli_errors(), open_service(settings, clock=fixed_clock(at)) as service:
        status = service.get_budget_status(budget_id)
    budget = status.budget.redacted()
    if json:
        emit_json(replace(status, budget=budget))
        return
    label, style = status_label(status)
    p = budget.period
    table = Table(show_header=False, box=None, title=f"Budget {budget.id}", title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    period_now = f"{status.period_start}..{status.period_end}" if status.period_start else "not in force now"
    rows: list[tuple[str, str | Text]] = [
        ("Scope", budget.scope),
        ("Status", Text(label, style=style)),
        ("Period", f"{p.type} from {p.start_date} ({p.timezone}, {'recurring' if p.recurring else 'once'})"),
        ("Current period", period_now),
        ("Spend", money(status.current_spend, budget.currency)),
        ("Amount", money(budget.amount, budget.currency)),
        ("Utilization", percent(status.utilization)),
        ("Warn / Throttle / Block", thresholds_text(budget)),
        ("Policy", policy_text(budget.enforcement_policy)),
        ("Notify", ", ".join(f"{c.type}:{c.target} ({'/'.join(c.events)})" for c in budget.notifications) or "-"),
        ("Active", "yes" if budget.active else "no"),
        ("Created", f"{budget.created_at:%Y-%m-%d %H:%M} UTC by {budget.created_by}" if budget.created_at else "-"),
        ("Action", action_text(status.action)),
    ]
    if status.amount != budget.amount:  # rollover or a raise changes this period's amount
        extra = [
            ("Amount in force", f"{money(status.amount, budget.currency)} (carried over {money(status.carried)}, "
                                f"raised {money(status.raised)})"),
        ]  # fmt: skip
        rows[6:6] = extra
    for key, value in rows:
        table.add_row(key, Text(value) if isinstance(value, str) else value)
    out_console().print(table)
