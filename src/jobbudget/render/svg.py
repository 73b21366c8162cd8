"""Inline SVG charts for the HTML report: daily spend against the budget's daily pace,
and cumulative spend against the budget with the forecast's 80 % band.  No scripts,
no external references; hovering a bar or point shows its figures (SVG ``<title>``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from html import escape

from .common import ChartSeries

__all__ = ["cumulative_chart", "daily_chart", "nice_top"]

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 78, 16, 16, 40
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


def _n(value: float) -> str:
    return f"{value:.1f}"


def _points(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{_n(x)},{_n(y)}" for x, y in points)


def _amount(value: float) -> str:
    return f"{value:,.2f}"


def nice_top(value: float) -> float:
    """The axis maximum: ``value`` plus a little room, rounded up to 1, 1.2, 1.5, 2,
    2.5, 3, 4, 5, 6 or 8 times a power of ten."""
    value *= 1.05
    if value <= 0:
        return 1.0
    base = 10.0 ** math.floor(math.log10(value))
    return next(m * base for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * base >= value * (1 - 1e-12))


class _Frame:
    """Maps day indices and amounts to SVG coordinates."""

    def __init__(self, days: int, top: float) -> None:
        self.days = max(1, days)
        self.top = nice_top(top)
        self.step = PLOT_W / self.days

    def x(self, index: float) -> float:
        return LEFT + index * self.step

    def y(self, value: float) -> float:
        return TOP + PLOT_H - min(value, self.top) / self.top * PLOT_H


def _axes(frame: _Frame, days: Sequence[date], caption: str) -> list[str]:
    parts = [
        f'<line class="axis" x1="{LEFT}" y1="{TOP + PLOT_H}" x2="{LEFT + PLOT_W}" y2="{TOP + PLOT_H}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + PLOT_H}"/>',
    ]
    for share in (0.0, 0.5, 1.0):
        y = frame.y(frame.top * share)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{_n(y)}" x2="{LEFT + PLOT_W}" y2="{_n(y)}"/>')
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{_n(y + 4)}" text-anchor="end">{_amount(frame.top * share)}</text>'
        )
    if days:
        for index, anchor in ((0, "start"), (len(days) // 2, "middle"), (len(days) - 1, "end")):
            x = frame.x(index + 0.5)
            label = days[index].isoformat()
            parts.append(f'<text class="tick" x="{_n(x)}" y="{HEIGHT - 18}" text-anchor="{anchor}">{label}</text>')
    parts.append(f'<text class="caption" x="{LEFT}" y="{HEIGHT - 2}">{escape(caption)}</text>')
    return parts


def _svg(label: str, body: list[str]) -> str:
    return (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>" + "".join(body) + "</svg>"
    )


def daily_chart(s: ChartSeries, currency: str) -> str:
    """Bars of each day's spend, the forecast's days behind them (lighter; today's
    projection of the whole day behind its partial spend), and the budget's pace."""
    projected = dict(enumerate(s.projected, start=s.projected_start))
    frame = _Frame(len(s.days), max([*s.actual, *s.projected, s.pace or 0.0, 0.0]))
    body = _axes(frame, s.days, f"Daily spend ({currency})")
    width = max(1.0, frame.step * 0.8)
    cur = escape(currency)
    for kind, series in (("proj", projected), ("bar", dict(enumerate(s.actual)))):
        what = "projected" if kind == "proj" else "spent"
        for i, value in series.items():
            y = frame.y(value)
            body.append(
                f'<rect class="{kind}" x="{_n(frame.x(i) + frame.step * 0.1)}" y="{_n(y)}" width="{_n(width)}" '
                f'height="{_n(TOP + PLOT_H - y)}"><title>{s.days[i]}: {_amount(value)} {cur} {what}</title></rect>'
            )
    if s.pace is not None:
        pace_y = _n(frame.y(s.pace))
        body.append(f'<line class="pace" x1="{LEFT}" y1="{pace_y}" x2="{LEFT + PLOT_W}" y2="{pace_y}"/>')
        body.append(
            f'<text class="label pace-label" x="{LEFT + PLOT_W - 4}" y="{_n(frame.y(s.pace) - 5)}" '
            f'text-anchor="end">budget pace {_amount(s.pace)}/day</text>'
        )
    return _svg("Daily spend against the budget's daily pace", body)


def cumulative_chart(s: ChartSeries, currency: str) -> str:
    """Cumulative spend, the budget line, and the forecast's projection with its 80 %
    band from the forecast's first day (today) to the end of the period."""
    top = max([*s.cumulative, *(high for _, _, high in s.band), s.budget or 0.0, 0.0])
    frame = _Frame(len(s.days), top)
    body = _axes(frame, s.days, f"Cumulative spend ({currency})")
    first = s.projected_start
    if s.band:
        origin = (frame.x(first), frame.y(s.band_origin()))
        upper = [origin] + [(frame.x(first + i + 1), frame.y(h)) for i, (_, _, h) in enumerate(s.band)]
        lower = [(frame.x(first + i + 1), frame.y(lo)) for i, (lo, _, _) in enumerate(s.band)]
        body.append(
            f'<polygon class="band" points="{_points([*upper, *reversed(lower)])}"><title>forecast 80% range</title>'
            "</polygon>"
        )
        mid = [origin] + [(frame.x(first + i + 1), frame.y(m)) for i, (_, m, _) in enumerate(s.band)]
        body.append(f'<polyline class="projection" points="{_points(mid)}"/>')
        lo, m, hi = s.band[-1]
        body.append(
            f'<text class="label" x="{LEFT + PLOT_W - 4}" y="{_n(frame.y(hi) - 5)}" text-anchor="end">'
            f"forecast {_amount(m)} (80%: {_amount(lo)} to {_amount(hi)})</text>"
        )
    if s.cumulative:
        line = [(frame.x(0), frame.y(0.0))] + [(frame.x(i + 1), frame.y(v)) for i, v in enumerate(s.cumulative)]
        body.append(f'<polyline class="spend" points="{_points(line)}"/>')
        for i, v in enumerate(s.cumulative):
            body.append(
                f'<circle class="dot" cx="{_n(frame.x(i + 1))}" cy="{_n(frame.y(v))}" r="2">'
                f"<title>{s.days[i]}: {_amount(v)} {escape(currency)} so far</title></circle>"
            )
    if s.budget is not None:
        y = frame.y(s.budget)
        body.append(f'<line class="budget" x1="{LEFT}" y1="{_n(y)}" x2="{LEFT + PLOT_W}" y2="{_n(y)}"/>')
        body.append(
            f'<text class="label budget-label" x="{LEFT + 4}" y="{_n(y - 5)}">budget {_amount(s.budget)}</text>'
        )
    return _svg("Cumulative spend against the budget, with the forecast's 80% band", body)
