"""``jobbudget report TENANT``: a tenant's spend over a period, as text, JSON, CSV,
Markdown or a self-contained HTML page."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..domain.errors import ValidationError
from ..domain.periods import PERIOD_SYNTAX, BudgetPeriod, parse_period
from ..render import render, report_renderable
from .common import (
    AtOption,
    ConfigOption,
    DatabaseOption,
    JsonOption,
    Settings,
    cli_errors,
    err_console,
    fixed_clock,
    open_service,
    out_console,
    parse_date,
)

__all__ = ["ReportFormat", "report"]

_P = "Period"


class ReportFormat(StrEnum):
    text = "text"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    html = "html"


def _period(period: str | None, start: str | None, end: str | None) -> BudgetPeriod:
    if period is not None:
        if start is not None or end is not None:
            raise ValidationError("--period", period, "cannot be combined with --from/--to")
        return parse_period(period, field="--period")
    if start is None and end is None:
        return BudgetPeriod("monthly")  # the current calendar month (UTC)
    if start is None or end is None:
        missing, given = ("--to", start) if end is None else ("--from", end)
        raise ValidationError(missing, given, "--from and --to go together (both dates are included)")
    first, last = parse_date("--from", start), parse_date("--to", end)
    if last < first:
        raise ValidationError("--to", end, f"must not be before --from {first}")
    return BudgetPeriod("custom", start_date=first, end_date=last)


def _format(fmt: ReportFormat | None, json: bool) -> ReportFormat:
    if json and fmt not in (None, ReportFormat.json):
        raise ValidationError("--json", True, f"cannot be combined with --format {fmt}; use one of them")
    return fmt or (ReportFormat.json if json else ReportFormat.text)


def report(
    tenant: Annotated[str, typer.Argument(help="The tenant to report on.", show_default=False)],
    period: Annotated[
        str | None,
        typer.Option(
            "--period",
            metavar="PERIOD",
            help=f"Calendar period: {PERIOD_SYNTAX}. Default: the current month (UTC).",
            rich_help_panel=_P,
            show_default=False,
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--from", metavar="YYYY-MM-DD", help="First day of a custom period (with --to).", rich_help_panel=_P
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", metavar="YYYY-MM-DD", help="Last day of a custom period, included.", rich_help_panel=_P),
    ] = None,
    fmt: Annotated[
        ReportFormat | None,
        typer.Option(
            "--format", help="Output format (default text; json with --json).", case_sensitive=False, show_default=False
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", dir_okay=False, metavar="FILE", help="Write the report to FILE instead of stdout."
        ),
    ] = None,
    at: AtOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Report a tenant's spend over a period: drivers, breakdowns, forecast, advice.

    Total against the budget, top cost drivers, queue and component breakdowns,
    daily spend, the forecast and recommendations that name their numbers.

    Days are UTC days.  The HTML format is one self-contained file (inline CSS and
    SVG charts, no scripts or external assets); CSV has one row per queue per day.
    """
    settings = Settings(config, database_url, json)
    with cli_errors():
        chosen = _format(fmt, json)
        wanted = _period(period, start, end)
        with open_service(settings, clock=fixed_clock(at)) as service:
            result = service.generate_report(tenant, wanted)
        if output is None and chosen is ReportFormat.text:
            console = out_console()
            console.print(report_renderable(result, width=console.width))
            return
        text = render(result, fmt=chosen.value)
        if output is None:
            typer.echo(text, nl=False)
            return
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ValidationError("--output", str(output), f"cannot be written ({exc.strerror or exc})") from None
        err_console().print(f"Wrote the {chosen.value} report for {tenant} to {output}.", markup=False)
