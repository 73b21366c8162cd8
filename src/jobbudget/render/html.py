"""The report as ONE self-contained HTML file: inline CSS and inline SVG charts, no
scripts, no external assets (a Content-Security-Policy forbids loading any), every
user string escaped."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from ..domain.money import ZERO
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
from .svg import cumulative_chart, daily_chart

__all__ = ["REPORT_CSS", "render_html"]

REPORT_CSS = """
:root { --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --accent:#2f6fdf; --warn:#d97706; --bad:#c2262e; }
* { box-sizing:border-box; }
body { font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg); margin:0;
  background:#f7f8fa; }
main { max-width:980px; margin:0 auto; padding:24px; }
h1 { font-size:22px; margin:0 0 4px; } h2 { font-size:16px; margin:28px 0 8px; }
.muted { color:var(--muted); }
.cards { display:flex; flex-wrap:wrap; gap:12px; margin:16px 0; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 16px; min-width:200px; flex:1; }
.card b { display:block; font-size:20px; }
.meter { display:block; width:100%; height:10px; margin-top:6px; }
.meter .track { fill:var(--line); } .meter .fill { fill:var(--accent); }
.meter.warn .fill { fill:var(--warn); } .meter.bad .fill { fill:var(--bad); }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); }
th, td { padding:6px 10px; border-bottom:1px solid var(--line); text-align:left; }
th { background:#f2f4f7; font-weight:600; } td.n, th.n { text-align:right; font-variant-numeric:tabular-nums; }
.grid2 { display:grid; grid-template-columns:1fr 1fr; gap:16px; }
@media (max-width:720px) { .grid2 { grid-template-columns:1fr; } }
figure { margin:12px 0; background:#fff; border:1px solid var(--line); border-radius:8px; padding:8px; }
figcaption { color:var(--muted); font-size:12px; padding:4px 8px; }
svg text { font:11px system-ui,sans-serif; fill:var(--muted); } svg .label { fill:var(--fg); }
svg .axis { stroke:#98a2b3; } svg .grid { stroke:var(--line); }
svg .bar { fill:var(--accent); } svg .proj { fill:#b8cdf5; }
svg .pace { stroke:#9b2fae; stroke-dasharray:6 4; stroke-width:1.5; } svg .pace-label { fill:#9b2fae; }
svg .budget { stroke:var(--bad); stroke-dasharray:6 4; stroke-width:1.5; } svg .budget-label { fill:var(--bad); }
svg .spend { fill:none; stroke:var(--accent); stroke-width:2; } svg .dot { fill:var(--accent); }
svg .band { fill:#2f6fdf22; stroke:none; } svg .projection { fill:none; stroke:var(--accent); stroke-dasharray:4 3; }
ol.recs li { margin:6px 0; }
.status-allow { color:#15803d; } .status-warn { color:var(--warn); } .status-throttle { color:#c2410c; }
.status-block { color:var(--bad); font-weight:600; }
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    """``header`` and ``rows`` are already-escaped HTML; ``numeric`` columns align right."""
    head = "".join(f'<th class="n">{h}</th>' if i in numeric else f"<th>{h}</th>" for i, h in enumerate(header))
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _meter(report: BudgetReport) -> str:
    u = report.utilization
    if u is None:
        return ""
    level = "bad" if u >= 1 else "warn" if u >= 0.75 else ""
    width = f"{min(100.0, float(u) * 100):.1f}"  # an SVG attribute: no inline style (the dashboard's CSP)
    return (
        f'<svg class="meter {level}" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">'
        f'<rect class="track" width="100" height="10" rx="5"/><rect class="fill" width="{width}" height="10" rx="5"/></svg>'
    )


def _cards(report: BudgetReport) -> str:
    cur = escape(report.currency)
    return (
        '<section class="cards">'
        + (
            f'<div class="card"><span class="muted">Net spend</span><b>{money(report.net_spend)} {cur}</b>'
            f"jobs {money(report.total_spend)}, adjustments {money(report.adjustments_total)}</div>"
            if report.adjustments
            else ""
        )
        + f'<div class="card"><span class="muted">Total spend</span><b>{money(report.total_spend)} {cur}</b>'
        f"{report.total_jobs:,} jobs</div>"
        f'<div class="card"><span class="muted">Budget</span><b>{escape(budget_label(report))}</b></div>'
        f'<div class="card"><span class="muted">Utilization</span><b>{ratio_percent(report.utilization)}</b>'
        f"{_meter(report)}</div></section>"
    )


def _forecast(report: BudgetReport) -> str:
    f = report.forecast
    if f is None:
        return '<p class="muted">No forecast: only for the current period of a tenant-wide budget.</p>'
    rows = [
        ("Predicted spend", f"{money(f.predicted_spend)} by {f.period_end}"),
        ("Budget utilization", ratio_percent(f.budget_utilization)),
        ("80% range", f"{money(f.lower_80)} to {money(f.upper_80)}"),
        ("95% range", f"{money(f.lower_95)} to {money(f.upper_95)}"),
        ("Trend", escape(f.trend_direction)),
        ("Budget overrun", overrun_label(f)),
        ("Method", escape(f.method)),
    ]
    if f.recommendation:
        rows.append(("Forecast says", escape(f.recommendation)))
    return _table(("", ""), rows, set())


def _budgets(report: BudgetReport) -> str:
    if not report.budgets:
        return '<p class="muted">No active budgets.</p>'
    rows = [
        (
            escape(b.scope),
            f"{escape(b.period_type)} {b.period_start or '-'} to {b.period_end or '-'}",
            money(b.spend),
            f"{money(b.amount)} {escape(b.currency)}",
            ratio_percent(b.utilization),
            f'<span class="status-{escape(b.action.replace(" ", "-"))}">{escape(b.action)}</span>',
        )
        for b in report.budgets
    ]
    return _table(("Scope", "Period", "Spend", "Amount", "Utilization", "Status"), rows, {2, 3, 4})


def _daily(report: BudgetReport) -> str:
    running = ZERO
    rows = []
    for day in report.daily:
        running += day.total
        rows.append((day.date.isoformat(), f"{day.jobs:,}", money(day.total), money(running)))
    table = _table(("Date", "Jobs", "Spend", "Cumulative"), rows, {1, 2, 3})
    return f"<details><summary>Daily figures ({len(rows)} days)</summary>{table}</details>"


def _extras(report: BudgetReport) -> str:
    parts = []
    for s in extra_sections(report):
        rows = [tuple(escape(cell) for cell in row) for row in s.rows]
        note = f'<p class="muted">{escape(s.note)}</p>' if s.note else ""
        parts.append(f"<h2>{escape(s.title)}</h2>\n{_table(s.header, rows, set(s.numeric))}{note}")
    return "\n".join(parts)


def render_html(report: BudgetReport) -> str:
    cur = escape(report.currency)
    tenant = escape(report.tenant_id)
    series = chart_series(report)
    drivers = [
        (
            str(i),
            escape(d.queue_name),
            money(d.total_cost),
            percent(d.percentage),
            f"{d.job_count:,}",
            money(d.avg_cost_per_job, 4),
        )
        for i, d in enumerate(report.top_drivers[:5], 1)
    ]
    queues = [(escape(q), money(c), percent(share(c, report.total_spend))) for q, c in report.queue_breakdown]
    components = [
        (COMPONENT_NAMES[n], money(c), percent(p)) for n, c, p in component_shares(report.component_breakdown)
    ]
    recs = (
        '<ol class="recs">' + "".join(f"<li>{escape(r)}</li>" for r in report.recommendations) + "</ol>"
        if report.recommendations
        else '<p class="muted">Nothing in the data calls for action.</p>'
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<title>Budget report: {tenant}, {report.period.start_date} to {report.period.end_date}</title>
<style>{REPORT_CSS}</style>
</head>
<body>
<main>
<h1>Budget report: {tenant}</h1>
<p class="muted">{escape(period_label(report))}; {len(report.daily)} of {report.period_days} days reported;
generated {report.generated_at:%Y-%m-%d %H:%M} UTC.</p>
{_cards(report)}
<h2>Daily spend</h2>
<figure>{daily_chart(series, report.currency)}
<figcaption>Bars: spend per UTC day (light: forecast); dashed line: the budget spread evenly over the
period.</figcaption></figure>
<figure>{cumulative_chart(series, report.currency)}
<figcaption>Line: cumulative spend; dashed red: the budget; shaded: the forecast's 80% range to the end of the
period.</figcaption></figure>
<h2>Recommendations</h2>
{recs}
<h2>Top cost drivers</h2>
{_table(("#", "Queue", f"Cost ({cur})", "Share", "Jobs", "Avg per job"), drivers, {0, 2, 3, 4, 5})}
<div class="grid2">
<section><h2>Queues</h2>{_table(("Queue", f"Cost ({cur})", "Share"), queues, {1, 2})}</section>
<section><h2>Cost components</h2>{_table(("Component", f"Cost ({cur})", "Share"), components, {1, 2})}</section>
</div>
{_extras(report)}
<h2>Forecast</h2>
{_forecast(report)}
<h2>Budgets (current status)</h2>
{_budgets(report)}
<h2>Daily figures</h2>
{_daily(report)}
</main>
</body>
</html>
"""
