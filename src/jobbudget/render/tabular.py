"""Reports as JSON (exact), CSV (one row per queue per day) and Markdown tables."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from ..domain.codec import to_jsonable
from ..domain.cost import COMPONENTS
from ..domain.money import ZERO, plain
from ..domain.reporting import BudgetReport, component_shares, share
from .common import (
    COMPONENT_NAMES,
    budget_label,
    extra_sections,
    money,
    overrun_label,
    percent,
    period_label,
    ratio_percent,
)

__all__ = ["CSV_HEADER", "render_csv", "render_json", "render_markdown", "report_to_json"]

CSV_HEADER = ("date", "queue", "jobs", "total_cost", *COMPONENTS)
_MD_SPECIAL = str.maketrans(
    {
        "\\": "\\\\",
        "|": "\\|",
        "*": "\\*",
        "_": "\\_",
        "`": "\\`",
        "[": "\\[",
        "]": "\\]",
        "#": "\\#",
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",
        "$": "\\$",
    }
)


def report_to_json(report: BudgetReport) -> dict[str, Any]:
    """The report as JSON types: money as exact decimal strings, the queue breakdown
    as an object in cost order, plus ``currency`` and ``period_days``."""
    data: dict[str, Any] = to_jsonable(report)
    data["queue_breakdown"] = {name: plain(cost) for name, cost in report.queue_breakdown}
    data["currency"] = report.currency
    data["period_days"] = report.period_days
    return data


def render_json(report: BudgetReport) -> str:
    return json.dumps(report_to_json(report), indent=2, ensure_ascii=False) + "\n"


def render_csv(report: BudgetReport) -> str:
    """``date,queue,jobs,total_cost,<components>``: one row per queue per day with
    jobs, exact amounts."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for day in report.daily:
        for cell in day.queues:
            writer.writerow(
                (
                    day.date.isoformat(),
                    csv_text(cell.queue_name),
                    cell.jobs,
                    f"{cell.total_cost:f}",
                    *(f"{getattr(cell.breakdown, c):f}" for c in COMPONENTS),
                )
            )
    return out.getvalue()


def csv_text(text: str) -> str:
    """A user string safe to open in a spreadsheet: one starting like a formula
    (``= + - @``, tab, CR) gets a leading apostrophe (OWASP's CSV-injection advice)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def md(text: str) -> str:
    """User text safe inside Markdown (tables included): no markup, no HTML."""
    return text.translate(_MD_SPECIAL)


def _table(header: Sequence[str], align: str, rows: Sequence[Sequence[str]]) -> list[str]:
    marks = {"l": ":---", "r": "---:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return [*lines, ""]


def render_markdown(report: BudgetReport) -> str:
    cur = md(report.currency)
    lines = [
        f"# Budget report: {md(report.tenant_id)}",
        "",
        f"Period: {md(period_label(report))}; {len(report.daily)} of {report.period_days} days reported; "
        f"generated {report.generated_at:%Y-%m-%d %H:%M} UTC.",
        "",
    ]
    lines += _table(
        ("Total spend", "Budget", "Utilization", "Jobs"),
        "rrrr",
        [
            (
                f"{money(report.total_spend)} {cur}"
                + (f" (net {money(report.net_spend)})" if report.adjustments else ""),
                md(budget_label(report)),
                ratio_percent(report.utilization),
                f"{report.total_jobs:,}",
            )
        ],
    )
    lines += ["## Top cost drivers", ""]
    lines += _table(
        ("#", "Queue", f"Cost ({cur})", "Share", "Jobs", "Avg per job"),
        "rlrrrr",
        [
            (
                str(i),
                md(d.queue_name),
                money(d.total_cost),
                percent(d.percentage),
                f"{d.job_count:,}",
                money(d.avg_cost_per_job, 4),
            )
            for i, d in enumerate(report.top_drivers[:5], 1)
        ],
    )
    lines += ["## Queue breakdown", ""]
    lines += _table(
        ("Queue", f"Cost ({cur})", "Share"),
        "lrr",
        [(md(q), money(c), percent(share(c, report.total_spend))) for q, c in report.queue_breakdown],
    )
    lines += ["## Cost components", ""]
    lines += _table(
        ("Component", f"Cost ({cur})", "Share"),
        "lrr",
        [(COMPONENT_NAMES[n], money(c), percent(p)) for n, c, p in component_shares(report.component_breakdown)],
    )
    for s in extra_sections(report):
        lines += [f"## {s.title}", ""]
        lines += _table(s.header, "".join("r" if i in s.numeric else "l" for i in range(len(s.header))),
                        [tuple(md(cell) for cell in row) for row in s.rows])  # fmt: skip
        if s.note:
            lines += [md(s.note), ""]
    lines += ["## Daily spend", ""]
    running = ZERO
    rows = []
    for day in report.daily:
        running += day.total
        rows.append((day.date.isoformat(), f"{day.jobs:,}", money(day.total), money(running)))
    lines += _table(("Date", "Jobs", f"Spend ({cur})", "Cumulative"), "lrrr", rows)
    lines += ["## Forecast", ""]
    f = report.forecast
    if f is None:
        lines += ["No forecast (only for the current period of a tenant-wide budget).", ""]
    else:
        lines += _table(
            ("Period end", "Predicted", "Utilization", "80% range", "95% range", "Trend", "Overrun"),
            "lrrrrll",
            [
                (
                    str(f.period_end),
                    money(f.predicted_spend),
                    ratio_percent(f.budget_utilization),
                    f"{money(f.lower_80)} to {money(f.upper_80)}",
                    f"{money(f.lower_95)} to {money(f.upper_95)}",
                    md(f.trend_direction),
                    overrun_label(f),
                )
            ],
        )
        lines += [
            f"{md(f.recommendation)} Method: {md(f.method)}." if f.recommendation else f"Method: {md(f.method)}.",
            "",
        ]
    lines += ["## Budgets (current status)", ""]
    if report.budgets:
        lines += _table(
            ("Scope", "Period", "Spend", "Amount", "Utilization", "Status"),
            "llrrrl",
            [
                (
                    md(b.scope),
                    f"{b.period_type} {b.period_start or '-'} to {b.period_end or '-'}",
                    money(b.spend),
                    f"{money(b.amount)} {md(b.currency)}",
                    ratio_percent(b.utilization),
                    b.action,
                )
                for b in report.budgets
            ],
        )
    else:
        lines += ["No active budgets.", ""]
    lines += ["## Recommendations", ""]
    lines += [f"- {md(r)}" for r in report.recommendations] or ["Nothing in the data calls for action."]
    return "\n".join(lines).rstrip("\n") + "\n"
