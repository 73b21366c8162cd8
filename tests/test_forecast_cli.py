"""``jobbudget forecast`` and ``jobbudget forecast-accuracy`` through Typer's CliRunner."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from cli_support import Run, as_json, runner
from jobbudget.cli import app

pytestmark = pytest.mark.usefixtures("cli_env", "seed_prices")
AT = "2013-03-20T12:00:00Z"
#: Under the default cost model a job costs cpu_time × 0.0001 + 0.001.
DAILY_COST = Decimal("100.001")


def ingest_history(run: Run, tmp_path: Path) -> None:
    """One job a day on acme/ml from 2013-01-19 to 2013-03-19 (after the budgets are
    created: jobs count toward the periods of the budgets that exist when stored)."""
    first = date(2013, 1, 19)
    days = [first + timedelta(days=i) for i in range(60)]
    lines = [
        json.dumps(
            {
                "job_id": f"j{d}",
                "tenant_id": "acme",
                "queue_name": "ml",
                "cpu_time": 1_000_000,
                "memory_mb_seconds": 0,
                "payload_bytes": 0,
                "redis_ops": 0,
                "network_bytes": 0,
                "timestamp": f"{d}T10:00:00Z",
            }
        )
        for d in days
    ]
    path = tmp_path / "jobs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert run("ingest", str(path)).exit_code == 0


def budget(run: Run, tmp_path: Path, *extra: str) -> None:
    result = run("budget", "create", "--tenant", "acme", "--amount", "3000", "--start", "2013-03-01", *extra, "--json")
    assert result.exit_code == 0, result.output
    ingest_history(run, tmp_path)


def test_forecast_json_has_every_figure(run: Run, tmp_path: Path) -> None:
    budget(run, tmp_path, "--queue", "ml")
    data = as_json(run("forecast", "acme", "ml", "--at", AT, "--json"))
    assert data["tenant_id"] == "acme" and data["queue_name"] == "ml"
    assert data["as_of"] == "2013-03-20" and data["period_end"] == "2013-03-31"
    assert Decimal(data["current_spend"]) == 19 * DAILY_COST
    assert Decimal(data["predicted_spend"]) == Decimal("30.5") * DAILY_COST  # at 12:00 half of the 20th is left
    assert Decimal(data["budget_amount"]) == 3000
    assert Decimal(data["lower_95"]) <= Decimal(data["lower_80"]) <= Decimal(data["predicted_spend"])
    assert Decimal(data["predicted_spend"]) <= Decimal(data["upper_80"]) <= Decimal(data["upper_95"])
    assert data["days_until_overrun"] == 11 and data["trend_direction"] == "stable"
    assert len(data["day_of_week_factors"]) == 7 and len(data["daily_projection"]) == 12
    assert data["daily_projection"][0][0] == "2013-03-20"
    assert "Cut spend by" in data["recommendation"] and data["method"]


def test_forecast_text_shows_a_table_and_the_recommendation(run: Run, tmp_path: Path) -> None:
    budget(run, tmp_path)  # tenant-wide
    result = run("forecast", "acme", "--at", AT)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "acme (all queues)" in text and "as of 2013-03-20" in text
    for words in ("Predicted spend", "3,050.03 of 3,000.00", "80 % interval", "95 % interval", "Trend", "stable"):
        assert words in text, words
    assert "Days until overrun" in text and "Recommendation" in text and "Cut spend by" in text
    assert "Mon" in text and "Sun" in text


def test_forecast_without_a_budget_is_not_found(run: Run, tmp_path: Path) -> None:
    ingest_history(run, tmp_path)
    result = run("forecast", "acme", "ml", "--at", AT)
    assert result.exit_code == 1
    assert result.stderr.startswith("error [BUDGET_NOT_FOUND]: budget not found: 'acme/ml'")
    assert result.stdout == ""


def test_forecast_rejects_a_naive_time(run: Run) -> None:
    result = run("forecast", "acme", "--at", "2013-03-20T12:00:00")
    assert result.exit_code == 2 and "error [VALIDATION_FAILED]: at:" in result.stderr


def test_forecast_accuracy_json_and_text(run: Run, tmp_path: Path) -> None:
    ingest_history(run, tmp_path)
    data = as_json(run("forecast-accuracy", "acme", "ml", "--at", AT, "--json"))
    assert data["tenant_id"] == "acme" and data["queue_name"] == "ml"
    assert (data["months"], data["forecasts"]) == (1, 5)  # February 2013: January started on the 19th
    assert data["mape"] == pytest.approx(0, abs=1e-9) and data["coverage_95"] == 1
    assert {p["as_of"] for p in data["points"]} == {f"2013-02-{d:02d}" for d in (5, 10, 15, 20, 25)}
    text = run("forecast-accuracy", "acme", "--at", AT)
    assert text.exit_code == 0
    assert "5 forecasts over 1 month " in text.stdout and "Mean absolute % error" in text.stdout
    assert "Run rate" in text.stdout and "In the 95 % interval" in text.stdout


def test_forecast_accuracy_without_history_says_so(run: Run) -> None:
    result = run("forecast-accuracy", "nobody")
    assert result.exit_code == 0 and "nothing to backtest" in result.stdout


@pytest.mark.parametrize("command", ["forecast", "forecast-accuracy"])
def test_help_explains_the_options(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--json", "--at", "--config", "--database-url", "TENANT"):
        assert option in result.stdout, option
