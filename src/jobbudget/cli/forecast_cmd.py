"""``jobbudget forecast`` and ``jobbudget forecast-accuracy``: where a budget period's
spend is heading, and how well the forecast did on the scope's own history."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..domain.codec import to_jsonable
from ..domain.forecast_backtest import BacktestResult
from ..domain.forecasting import Forecast
from .common import (
    AtOption,
    ConfigOption,
    DatabaseOption,
    JsonOption,
    Settings,
    cli_errors,
    emit_json,
    fixed_clock,
    out_console,
)
from .common import open_service as _open_service
from .render import money, percent

__all__ = ["forecast", "forecast_accuracy"]

TenantArg = Annotated[str, typer.Argument(help="Tenant of the budget.", show_default=False)]
QueueArg = Annotated[str, typer.Argument(help="Queue of the budget (omit for the tenant-wide budget).")]
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_TREND_STYLES = {"increasing": "red", "decreasing": "green", "stable": ""}


def _scope(tenant: str, queue: str) -> str:
    return f"{tenant}/{queue}" if queue else f"{tenant} (all queues)"


def forecast_table(f: Forecast, *, title: str) -> Group:
    """The forecast as a two-column table and the recommendation in a panel."""
    over = f.predicted_spend > f.budget_amount
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("What", style="bold")
    table.add_column("Value")
    table.add_row("Spent before today", money(f.current_spend))
    table.add_row(
        "Predicted spend",
        Text(
            f"{money(f.predicted_spend)} of {money(f.budget_amount)} ({percent(f.budget_utilization)})",
            style="bold red" if over else "green",
        ),
    )
    table.add_row("80 % interval", f"{money(f.lower_80)} – {money(f.upper_80)}")
    table.add_row("95 % interval", f"{money(f.lower_95)} – {money(f.upper_95)}")
    table.add_row("Trend", Text(f.trend_direction, style=_TREND_STYLES.get(f.trend_direction, "")))
    if f.days_until_overrun is None:
        table.add_row("Overrun", "none projected this period")
    else:
        table.add_row("Days until overrun", Text(str(f.days_until_overrun), style="bold red"))
    table.add_row(
        "Day-of-week factors", "  ".join(f"{d} {v:.2f}" for d, v in zip(_WEEKDAYS, f.day_of_week_factors, strict=True))
    )
    table.add_row("Method", Text(f.method))
    panel = Panel(
        Text(f.recommendation), title="Recommendation", title_align="left", border_style="red" if over else "green"
    )
    return Group(table, panel)


def forecast(
    tenant: TenantArg,
    queue: QueueArg = "",
    at: AtOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Forecast the current period of the active budget of TENANT (and QUEUE).

    Projects the rest of the period from up to 120 days of daily spend (learned
    day-of-week pattern, robust recent level), with 80 % and 95 % intervals, the
    trend, the days until the budget would be exceeded and what to do about it.
    """
    settings = Settings(config, database_url, json)
    with cli_errors(), _open_service(settings, clock=fixed_clock(at)) as service:
        result = service.get_forecast(tenant, queue)
    if json:
        emit_json({"tenant_id": tenant, "queue_name": queue, **to_jsonable(result)})
        return
    title = f"Forecast for {escape(_scope(tenant, queue))}, as of {result.as_of} (period ends {result.period_end})"
    out_console().print(forecast_table(result, title=title))


def accuracy_json(tenant: str, queue: str, r: BacktestResult) -> dict[str, Any]:
    return {"tenant_id": tenant, "queue_name": queue, **to_jsonable(r)}


def forecast_accuracy(
    tenant: TenantArg,
    queue: QueueArg = "",
    at: AtOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Backtest the forecast on TENANT's (and QUEUE's) own spend of the last year.

    Each fully covered calendar month is forecast on the 5th, 10th, 15th, 20th and
    25th from the days before only, and compared with what was spent and with the
    run rate (spend so far + mean of the last 7 days × days left).
    """
    settings = Settings(config, database_url, json)
    with cli_errors(), _open_service(settings, clock=fixed_clock(at)) as service:
        result = service.forecast_accuracy(tenant, queue)
    if json:
        emit_json(accuracy_json(tenant, queue, result))
        return
    console = out_console()
    if result.forecasts == 0:
        console.print(
            f"No full calendar month of spend for {escape(_scope(tenant, queue))} in the last year: nothing to backtest."
        )
        return
    console.print(
        f"Forecast accuracy for {escape(_scope(tenant, queue))}: {result.forecasts} forecasts over "
        f"{result.months} month{'s' if result.months != 1 else ''} (each month forecast on the 5th, 10th, 15th, 20th and 25th)."
    )
    table = Table()
    table.add_column("")
    table.add_column("Forecast", justify="right")
    table.add_column("Run rate", justify="right")
    table.add_row("Mean absolute % error", f"{100 * result.mape:.1f}%", f"{100 * result.run_rate_mape:.1f}%")
    table.add_row("Within ±10 %", f"{100 * result.within_10:.0f}%", f"{100 * result.run_rate_within_10:.0f}%")
    table.add_row("In the 80 % interval", f"{100 * result.coverage_80:.0f}%", "-")
    table.add_row("In the 95 % interval", f"{100 * result.coverage_95:.0f}%", "-")
    console.print(table)
