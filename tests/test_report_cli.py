"""``jobbudget report``: every format, --output, periods, and errors (exit 2 naming the
option) through Typer's CliRunner on a SQLite file."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import Result

from cli_support import Run, as_json, cli_on, runner
from jobbudget import Budget, BudgetPeriod, BudgetService, Config, JobMetrics
from jobbudget.cli import app
from test_reporting import fake_forecast

AT = "2026-11-20T12:00:00Z"
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


pytestmark = pytest.mark.usefixtures("cli_env")


@pytest.fixture
def spent(db: str) -> Iterator[Decimal]:
    """acme: three queues, jobs on Oct 25 .. Nov 19, a tenant-wide and a queue budget;
    globex: one job.  Yields acme's November spend."""
    with BudgetService(Config(database_url=db), clock=lambda: NOW) as service:
        jobs = [
            JobMetrics(
                f"{q}-{d}",
                "acme",
                q,
                cpu_time=Decimal(100 + 10 * d),
                memory_mb_seconds=Decimal(20_000 * (i + 1)),
                payload_bytes=Decimal(2048),
                redis_ops=Decimal(10),
                network_bytes=Decimal(1_000_000),
                timestamp=datetime(2026, 10, 25, 9, tzinfo=UTC) + timedelta(days=d),
            )
            for d in range(26)
            for i, q in enumerate(("ml", "etl", "web"))
        ]
        costs = service.process_job_costs(jobs)
        service.process_job_costs([JobMetrics("g", "globex", "secret", 9, 9, 9, 9, 9, timestamp=NOW)])
        service.create_budget(Budget(tenant_id="acme", amount=Decimal(50), period=BudgetPeriod("monthly")))
        service.create_budget(
            Budget(tenant_id="acme", queue_name="ml", amount=Decimal(10), period=BudgetPeriod("monthly"))
        )
    yield sum((c.total_cost for c in costs if c.timestamp and c.timestamp.month == 11), Decimal(0))


@pytest.fixture
def run(db: str, spent: Decimal, monkeypatch: pytest.MonkeyPatch) -> Run:
    """The CLI on the test database at 2026-11-20 12:00 UTC.  The forecast is a fixed
    stand-in (the forecasting use case is tested on its own)."""
    forecast = fake_forecast(daily_projection=tuple((date(2026, 11, 20 + i), Decimal("1.5")) for i in range(11)))
    monkeypatch.setattr(BudgetService, "get_forecast", lambda self, tenant_id, queue_name="": forecast)
    cli = cli_on(db, init=False)

    def invoke(*args: str, at: str | None = AT) -> Result:
        return cli("report", *args, *(["--at", at] if at else []))

    return invoke


def test_text_is_the_default(run: Run) -> None:
    result = run("acme")
    assert result.exit_code == 0, result.output
    for part in ("Budget report: acme", "Top cost drivers", "Daily spend", "Forecast", "Budgets (current status"):
        assert part in result.stdout
    assert "secret" not in result.stdout


def test_json_with_the_flag_or_the_format_is_exact(run: Run, spent: Decimal) -> None:
    data = as_json(run("acme", "--json"))
    assert as_json(run("acme", "--format", "json")) == data
    assert Decimal(data["total_spend"]) == spent
    assert data["period"]["start_date"] == "2026-11-01" and data["period"]["end_date"] == "2026-11-30"
    assert len(data["daily"]) == 20 and set(data["queue_breakdown"]) == {"ml", "etl", "web"}
    assert Decimal(data["budget_amount"]) == 50 and data["forecast"]["method"] == "test"


def test_csv_markdown_and_html_formats(run: Run, spent: Decimal) -> None:
    result = run("acme", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 3 * 19 and sum(Decimal(r["total_cost"]) for r in rows) == spent  # 3 queues, Nov 1..19
    markdown = run("acme", "--format", "markdown").stdout
    assert markdown.startswith("# Budget report: acme") and "| Queue | Cost (USD) | Share |" in markdown
    html = run("acme", "--format", "HTML").stdout
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 2 + html.count('<svg class="meter')


@pytest.mark.parametrize("fmt", ["text", "json", "csv", "markdown", "html"])
def test_output_writes_the_file(run: Run, tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"report.{fmt}"
    result = run("acme", "--format", fmt, "--output", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and f"to {target}" in result.stderr
    text = target.read_text(encoding="utf-8")
    assert "acme" in text or fmt == "csv"
    assert "\x1b[" not in text  # no terminal colours in files
    if fmt == "json":
        assert json.loads(text)["tenant_id"] == "acme"


def test_periods_calendar_and_custom(run: Run, spent: Decimal) -> None:
    october = as_json(run("acme", "--period", "2026-10", "--json"))
    assert october["period"]["type"] == "monthly" and len(october["daily"]) == 31 and october["forecast"] is None
    assert as_json(run("acme", "--period", "2026-q4", "--json"))["period"]["start_date"] == "2026-10-01"
    week = as_json(run("acme", "--period", "2026-W46", "--json"))["period"]
    assert (week["type"], week["start_date"], week["end_date"]) == ("weekly", "2026-11-09", "2026-11-15")
    assert as_json(run("acme", "--period", "2026", "--json"))["period"]["end_date"] == "2026-12-31"
    assert len(as_json(run("acme", "--period", "2026-11-05", "--json"))["daily"]) == 1
    custom = as_json(run("acme", "--from", "2026-11-01", "--to", "2026-11-30", "--json"))
    assert custom["period"]["type"] == "custom" and Decimal(custom["total_spend"]) == spent
    assert custom["budget_amount"] is not None  # the monthly budget's window is exactly these dates


def test_default_period_follows_the_clock(run: Run) -> None:
    data = as_json(run("acme", "--json", at="2026-10-31T23:00:00-02:00"))  # already November 1 in UTC
    assert data["period"]["start_date"] == "2026-11-01" and data["generated_at"] == "2026-11-01T01:00:00+00:00"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--period", "2026-13"], "--period"),
        (["--period", "november"], "--period"),
        (["--period", "2026-Q5"], "--period"),
        (["--period", "2026-11", "--from", "2026-11-01"], "--period"),
        (["--from", "2026-11-01"], "--to"),
        (["--to", "2026-11-01"], "--from"),
        (["--from", "2026-11-31", "--to", "2026-12-01"], "--from"),
        (["--from", "2026-11-10", "--to", "2026-11-01"], "--to"),
        (["--format", "csv", "--json"], "--json"),
    ],
)
def test_bad_options_exit_2_naming_the_option(run: Run, args: list[str], option: str) -> None:
    result = run("acme", *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error [VALIDATION_FAILED]: {option}:")
    assert result.stdout == ""


def test_unknown_format_is_a_usage_error(run: Run) -> None:
    result = run("acme", "--format", "pdf")
    assert result.exit_code == 2 and "--format" in result.output


def test_unknown_tenant_and_unwritable_output(run: Run, tmp_path: Path) -> None:
    missing = run("nobody")
    assert missing.exit_code == 1 and "error [TENANT_NOT_FOUND]" in missing.stderr
    bad = run("acme", "--format", "csv", "--output", str(tmp_path / "no" / "such" / "dir.csv"))
    assert bad.exit_code == 2 and "error [VALIDATION_FAILED]: --output:" in bad.stderr


def test_html_escapes_a_hostile_tenant(db: str, run: Run) -> None:
    with BudgetService(Config(database_url=db), clock=lambda: NOW) as service:
        service.process_job_costs([JobMetrics("x", "<script>", "<q>", 9, 9, 9, 9, 9, timestamp=NOW)])
    page = run("<script>", "--format", "html").stdout
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;q&gt;" in page


@pytest.mark.parametrize("fmt", ["text", "json", "csv", "markdown", "html"])
def test_every_format_with_the_real_forecast(db: str, spent: Decimal, fmt: str) -> None:
    result = runner.invoke(app, ["report", "acme", "--format", fmt, "--database-url", db, "--at", AT])
    assert result.exit_code == 0, result.output
    if fmt == "json":
        forecast = json.loads(result.stdout)["forecast"]
        assert forecast["period_end"] == "2026-11-30" and Decimal(forecast["predicted_spend"]) >= spent
