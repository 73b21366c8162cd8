"""The report renderers: JSON round-trips money exactly, CSV has one row per queue per
day, HTML is one self-contained escaped file with SVG charts, Markdown has its
tables, text fits 80 columns."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest

from jobbudget.domain.cost import COMPONENTS
from jobbudget.domain.errors import ValidationError
from jobbudget.domain.periods import BudgetPeriod
from jobbudget.domain.reporting import BudgetReport, build_report
from jobbudget.render import FORMATS, render, render_csv, render_html, render_json, render_markdown, render_text
from jobbudget.render.common import chart_series
from jobbudget.render.svg import nice_top
from test_reporting import NOV, day, fake_forecast, line, row

D = Decimal
EVIL = "<script>alert(1)</script>"


def sample(*, forecast: bool = True, tenant: str = EVIL, budgets: bool = True) -> BudgetReport:
    rows = [
        row(day(d), q, jobs=7 + d, tenant=tenant, cpu=f"{d}.123456789", memory=f"{3 * i}.000000001", base="0.007")
        for d in range(1, 21)
        for i, q in enumerate(("ml", "etl|x", "<b>web</b>"))
        if (d + i) % 4
    ]
    projection = tuple((day(21) + timedelta(days=i), D("30.5")) for i in range(10))
    f = fake_forecast(
        predicted_spend=D("1100"),
        budget_utilization=D("0.55"),
        lower_80=D("1000"),
        upper_80=D("1200"),
        daily_projection=projection,
        recommendation=f"Watch {EVIL}",
    )
    return build_report(
        tenant_id=tenant,
        period=NOV,
        daily_costs=rows,
        budgets=(line("", "2000"), line("etl|x", "300", scope="etl|x")) if budgets else (),
        forecast=f if forecast else None,
        today=day(20),
    )


def test_json_parses_and_round_trips_money_exactly() -> None:
    report = sample()
    data = json.loads(render_json(report))
    assert data["tenant_id"] == EVIL
    assert D(data["total_spend"]) == report.total_spend
    assert {q: D(v) for q, v in data["queue_breakdown"].items()} == dict(report.queue_breakdown)
    assert list(data["queue_breakdown"]) == [q for q, _ in report.queue_breakdown]  # cost order kept
    assert sum(D(d["total"]) for d in data["daily"]) == report.total_spend
    assert {c: D(data["component_breakdown"][c]) for c in COMPONENTS} == {
        c: getattr(report.component_breakdown, c) for c in COMPONENTS
    }
    for got, driver in zip(data["top_drivers"], report.top_drivers, strict=True):
        assert D(got["total_cost"]) == driver.total_cost and D(got["avg_cost_per_job"]) == driver.avg_cost_per_job
    assert data["period"]["start_date"] == "2026-11-01" and data["period_days"] == 30
    assert D(data["forecast"]["upper_80"]) == D(1200) and data["budgets"][0]["scope"] == "(all queues)"
    assert D(data["budget_amount"]) == D(2000) and data["currency"] == "USD"


def test_csv_has_one_exact_row_per_queue_per_day_with_data() -> None:
    report = sample()
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    cells = {(d.date.isoformat(), c.queue_name) for d in report.daily for c in d.queues}
    assert len(rows) == len(cells) and {(r["date"], r["queue"]) for r in rows} == cells
    assert list(rows[0]) == ["date", "queue", "jobs", "total_cost", *COMPONENTS]
    assert sum(D(r["total_cost"]) for r in rows) == report.total_spend
    for r in rows:
        assert sum(D(r[c]) for c in COMPONENTS) == D(r["total_cost"])
        assert "E" not in r["total_cost"]  # plain notation
    assert any(r["queue"] == "etl|x" for r in rows)


def test_html_is_one_self_contained_escaped_file() -> None:
    page = render_html(sample())
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("<svg") - page.count('<svg class="meter') == 2 and "<style>" in page
    assert not re.search(r"https?://", page)
    for external in ("<script", "<link", "<img", "src=", "href=", "url(", "@import", "<iframe"):
        assert external not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;web&lt;/b&gt;" in page
    assert 'class="band"' in page and 'class="pace"' in page and 'class="budget"' in page
    assert "Content-Security-Policy" in page


def test_html_without_forecast_or_budget_has_no_band_or_budget_lines() -> None:
    page = render_html(sample(forecast=False, budgets=False, tenant="acme"))
    assert 'class="band"' not in page and 'class="pace"' not in page and 'class="budget"' not in page
    assert page.count("<svg") - page.count('<svg class="meter') == 2 and "no budget for this period" in page


def test_forecast_band_runs_from_spend_before_today_to_the_forecast_range() -> None:
    base = sample(forecast=False)
    before_today = sum((d.total for d in base.daily[:19]), D(0))  # Nov 1..19; the 20th is today, partial
    projection = tuple((day(20) + timedelta(days=i), D("10")) for i in range(11))
    f = fake_forecast(
        as_of=day(20),
        current_spend=before_today,
        predicted_spend=before_today + 110,
        lower_80=before_today + 90,
        upper_80=before_today + 130,
        daily_projection=projection,
    )
    s = chart_series(replace(base, forecast=f))
    assert len(s.days) == 30 and len(s.actual) == 20 and s.projected_start == 19
    assert s.projected == (10.0,) * 11 and len(s.band) == 11
    assert s.band_origin() == pytest.approx(float(before_today))
    assert s.band[-1] == pytest.approx(tuple(float(before_today + x) for x in (90, 110, 130)))
    assert s.band[0] == pytest.approx(tuple(float(before_today) + x / 11 for x in (90, 110, 130)))
    assert s.pace == pytest.approx(2000 / 30)
    other = chart_series(replace(base, forecast=replace(f, period_end=day(22))))  # another period: no band
    assert other.band == () and other.projected == ()


@pytest.mark.parametrize(("value", "top"), [(0, 1.0), (9.6, 12.0), (34.1, 40.0), (1100, 1200.0), (0.9, 1.0)])
def test_chart_axis_tops_are_round(value: float, top: float) -> None:
    assert nice_top(value) == pytest.approx(top)


def test_markdown_has_the_tables_and_escapes_user_text() -> None:
    text = render_markdown(sample())
    for heading in ("## Top cost drivers", "## Queue breakdown", "## Cost components", "## Daily spend", "## Budgets"):
        assert heading in text
    assert "| Queue | Cost (USD) | Share |" in text and "|:---|---:|---:|" in text
    assert "etl\\|x" in text and "&lt;b&gt;web&lt;/b&gt;" in text and "<script>" not in text
    daily = text.split("## Daily spend")[1].split("## Forecast")[0]
    daily_rows = [ln for ln in daily.splitlines() if re.match(r"\| 2026-11-\d\d \|", ln)]
    assert len(daily_rows) == 20


@pytest.mark.parametrize("report", [sample(), sample(forecast=False, budgets=False)], ids=["full", "bare"])
def test_text_renders_at_80_columns(report: BudgetReport) -> None:
    out = render_text(report, width=80)
    assert all(len(ln) <= 80 for ln in out.splitlines())
    assert EVIL in out and "Top cost drivers" in out and "Daily spend" in out
    assert "Recommendations" in out or "nothing in the data calls for action" in out


def test_text_of_an_empty_report_and_a_long_period() -> None:
    year = BudgetPeriod("yearly", start_date=date(2026, 1, 1), end_date=date(2026, 12, 31))
    rows = [row(date(2026, 1, 1) + timedelta(days=d), "q", cost=str(d + 1)) for d in range(300)]
    for report in (
        build_report(tenant_id="t", period=NOV, daily_costs=[], budgets=(), forecast=None, today=day(1)),
        build_report(
            tenant_id="acme", period=year, daily_costs=rows, budgets=(), forecast=None, today=date(2026, 12, 1)
        ),
    ):
        out = render_text(report, width=80)
        assert all(len(ln) <= 80 for ln in out.splitlines())


def test_render_dispatches_every_format_and_rejects_others() -> None:
    report = sample()
    for fmt in FORMATS:
        assert render(report, fmt=fmt)
    with pytest.raises(ValidationError, match="format"):
        render(report, fmt="pdf")


def test_csv_neutralises_formula_like_queue_names() -> None:
    from jobbudget.render.tabular import csv_text

    assert csv_text("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert csv_text("@SUM(A1)") == "'@SUM(A1)"
    assert csv_text("-2+3") == "'-2+3"
    assert csv_text("q_2w") == "q_2w"
