"""Reports for the terminal (Rich): a header with the utilization bar, the drivers,
queue and component breakdowns, a daily bar chart, the forecast, the budgets and
the recommendations.  User strings are always Rich ``Text``, never markup."""

from __future__ import annotations

import io
from decimal import Decimal

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..domain.reporting import BudgetReport, component_shares, share
from .common import (
    COMPONENT_NAMES,
    budget_label,
    chart_series,
    extra_sections,
    money,
    overrun_label,
    percent,
    period_label,
    ratio_percent,
)

__all__ = ["render_text", "report_renderable"]

_STATUS_STYLES = {"allow": "green", "warn": "yellow", "throttle": "dark_orange", "block": "bold red"}
_BLOCKS = " ▁▂▃▄▅▆▇█"
_CHART_ROWS = 6


def _bar(ratio: Decimal | None, width: int = 30) -> Text:
    if ratio is None:
        return Text("no budget to compare with", style="dim")
    style = "green" if ratio < Decimal("0.75") else "yellow" if ratio < Decimal("0.9") else "bold red"
    filled = max(0, min(width, int(ratio * width)))
    bar = Text("█" * filled, style=style)
    bar.append("░" * (width - filled), style="dim")
    bar.append(f" {ratio_percent(ratio)}")
    return bar


def _header(report: BudgetReport) -> Panel:
    body = Text()
    body.append(f"{period_label(report)}\n")
    body.append(
        f"{len(report.daily)} of {report.period_days} days, generated {report.generated_at:%Y-%m-%d %H:%M} UTC\n"
    )
    if report.adjustments:
        body.append(f"Net spend {money(report.net_spend)} {report.currency}", style="bold")
        body.append(f" (jobs {money(report.total_spend)}, adjustments {money(report.adjustments_total)})")
    else:
        body.append(f"Spend {money(report.total_spend)} {report.currency}", style="bold")
    body.append(f" on {report.total_jobs:,} jobs; budget {budget_label(report)}\n")
    body.append_text(_bar(report.utilization))
    return Panel(body, title=Text(f"Budget report: {report.tenant_id}", style="bold"), title_align="left")


def _drivers(report: BudgetReport) -> Table:
    table = Table(title="Top cost drivers", title_justify="left", expand=False)
    table.add_column("#", justify="right")
    table.add_column("Queue")
    table.add_column("Cost", justify="right")
    table.add_column("Share", justify="right")
    table.add_column("Jobs", justify="right")
    table.add_column("Avg/job", justify="right")
    for i, d in enumerate(report.top_drivers[:5], 1):
        table.add_row(
            str(i),
            Text(d.queue_name, overflow="fold"),
            money(d.total_cost),
            percent(d.percentage),
            f"{d.job_count:,}",
            money(d.avg_cost_per_job, 4),
        )
    return table


def _share_bar(pct: Decimal, width: int = 12) -> Text:
    filled = max(0, min(width, int(pct * width / 100)))
    return Text("█" * filled + "░" * (width - filled), style="cyan")


def _breakdowns(report: BudgetReport, width: int) -> RenderableType:
    queues = Table(title="Queues", title_justify="left")
    queues.add_column("Queue", overflow="fold")
    queues.add_column("Cost", justify="right")
    queues.add_column("Share", justify="right")
    queues.add_column("", no_wrap=True)
    for name, cost in report.queue_breakdown:
        pct = share(cost, report.total_spend)
        queues.add_row(Text(name), money(cost), percent(pct), _share_bar(pct))
    components = Table(title="Components", title_justify="left")
    components.add_column("Component")
    components.add_column("Cost", justify="right")
    components.add_column("Share", justify="right")
    for name, cost, pct in component_shares(report.component_breakdown):
        components.add_row(COMPONENT_NAMES[name], money(cost), percent(pct))
    if width < 100:
        return Group(queues, components)
    grid = Table.grid(padding=(0, 2))
    grid.add_row(queues, components)
    return grid


def _chart(report: BudgetReport, width: int) -> RenderableType:
    s = chart_series(report)
    if not s.actual:
        return Text("Daily spend: no days reported yet.", style="dim")
    values = list(s.actual) + list(s.projected[max(0, len(s.actual) - s.projected_start) :])
    columns = max(1, width - 14)
    group = max(1, -(-len(values) // columns))  # days per column when the period is long
    chunks = [values[i : i + group] for i in range(0, len(values), group)]
    sums = [sum(chunk) / len(chunk) for chunk in chunks]
    known = -(-len(s.actual) // group)
    top = max([*sums, s.pace or 0.0]) or 1.0
    pace_row = None if s.pace is None else min(_CHART_ROWS - 1, int(s.pace / top * _CHART_ROWS))
    lines = []
    for row in range(_CHART_ROWS - 1, -1, -1):
        tick = top if row == _CHART_ROWS - 1 else 0.0 if row == 0 else None
        label = " " * 12 + "│" if tick is None else f"{tick:>11,.2f} ┤"
        line = Text(label, style="dim")
        for i, value in enumerate(sums):
            level = value / top * _CHART_ROWS - row
            char = _BLOCKS[max(0, min(8, round(level * 8)))]
            if char == " " and row == pace_row:
                line.append("╌", style="magenta")
            else:
                line.append(char, style="cyan" if i < known else "grey50")
        lines.append(line)
    first, last = s.days[0], s.days[len(values) - 1]
    axis = Text(" " * 13 + f"{first:%b %d}", style="dim")
    axis.append(f"{last:%b %d}".rjust(max(0, len(sums) - 6)), style="dim")
    legend = Text("  per ", style="dim")
    legend.append("day" if group == 1 else f"{group} days (average)", style="dim")
    legend.append("; forecast days in grey" if len(values) > len(s.actual) else "", style="dim")
    if s.pace is not None:
        legend.append(f"; ╌ budget pace {money(Decimal(repr(s.pace)))}/day", style="magenta")
    return Group(Text("Daily spend", style="bold italic"), *lines, axis, legend)


def _forecast(report: BudgetReport) -> RenderableType:
    f = report.forecast
    if f is None:
        return Text("Forecast: none (only for the current period of a tenant-wide budget).", style="dim")
    body = Text()
    body.append(f"Predicted {money(f.predicted_spend)} by {f.period_end} ", style="bold")
    body.append(f"({ratio_percent(f.budget_utilization)} of the budget), trend {f.trend_direction}\n")
    body.append(f"80% range {money(f.lower_80)} to {money(f.upper_80)}; ")
    body.append(f"95% range {money(f.lower_95)} to {money(f.upper_95)}\n")
    if f.days_until_overrun is not None:
        body.append(f"Budget overrun: {overrun_label(f)}\n", style="bold red")
    if f.recommendation:
        body.append(f"{f.recommendation}\n", style="italic")
    body.append(f"Method: {f.method}", style="dim")
    return Panel(body, title="Forecast", title_align="left")


def _budgets(report: BudgetReport) -> RenderableType:
    if not report.budgets:
        return Text("No active budgets.", style="dim")
    table = Table(title=f"Budgets (current status, {report.currency})", title_justify="left")
    table.add_column("Scope", overflow="fold")
    table.add_column("Period", no_wrap=True)
    table.add_column("Spend", justify="right")
    table.add_column("Amount", justify="right")
    table.add_column("Used", justify="right")
    table.add_column("Status")
    for b in report.budgets:
        window = f"{b.period_start}..{b.period_end}" if b.period_start else "none now"
        amount = money(b.amount) + ("" if b.currency == report.currency else f" {b.currency}")
        table.add_row(
            Text(b.scope),
            f"{b.period_type}\n{window}",
            money(b.spend),
            Text(amount),
            ratio_percent(b.utilization),
            Text(b.action, style=_STATUS_STYLES.get(b.action, "dim")),
        )
    return table


def _recommendations(report: BudgetReport) -> RenderableType:
    if not report.recommendations:
        return Text("Recommendations: nothing in the data calls for action.", style="dim")
    body = Text()
    for i, r in enumerate(report.recommendations, 1):
        body.append(f"{i}. ", style="bold")
        body.append(r + ("\n" if i < len(report.recommendations) else ""))
    return Panel(body, title="Recommendations", title_align="left")


def report_renderable(report: BudgetReport, *, width: int = 100) -> RenderableType:
    """Everything, top to bottom, for a console ``width`` columns wide."""
    parts: list[RenderableType] = [_header(report)]
    if report.top_drivers:
        parts += [_drivers(report), _breakdowns(report, width)]
    else:
        parts.append(Text("No jobs in this period.", style="dim"))
    parts += _extras(report)
    parts += [_chart(report, width), _forecast(report), _budgets(report), _recommendations(report)]
    return Group(*parts)


def _extras(report: BudgetReport) -> list[RenderableType]:
    parts: list[RenderableType] = []
    for s in extra_sections(report):
        table = Table(title=s.title, title_justify="left", caption=s.note or None, caption_justify="left")
        for i, name in enumerate(s.header):
            table.add_column(name, justify="right" if i in s.numeric else "left", overflow="fold")
        for row in s.rows:
            table.add_row(*(Text(cell) for cell in row))
        parts.append(table)
    return parts


def render_text(report: BudgetReport, *, width: int = 100, color: bool = False) -> str:
    """The text report as a string (ANSI colours only when ``color``)."""
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=color, color_system="standard" if color else None)
    console.print(report_renderable(report, width=width))
    return out.getvalue()
