"""Renderers of budget reports (adapters): text (Rich), JSON, CSV, Markdown and a
self-contained HTML page.  Each takes a :class:`jobbudget.domain.reporting.BudgetReport`
and returns a string; none reads a clock or the database."""

from __future__ import annotations

from ..domain.errors import ValidationError
from ..domain.reporting import BudgetReport
from .html import render_html
from .tabular import render_csv, render_json, render_markdown, report_to_json
from .text import render_text, report_renderable

__all__ = [
    "FORMATS",
    "render",
    "render_csv",
    "render_html",
    "render_json",
    "render_markdown",
    "render_text",
    "report_renderable",
    "report_to_json",
]

FORMATS = ("text", "json", "csv", "markdown", "html")


def render(report: BudgetReport, *, fmt: str, width: int = 100) -> str:
    """The report in format ``fmt`` (one of :data:`FORMATS`); ``width`` is for text."""
    if fmt == "text":
        return render_text(report, width=width)
    if fmt == "json":
        return render_json(report)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "markdown":
        return render_markdown(report)
    if fmt == "html":
        return render_html(report)
    raise ValidationError("format", fmt, f"must be one of {', '.join(FORMATS)}")
