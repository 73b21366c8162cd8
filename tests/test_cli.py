"""The ``jobbudget`` command line, driven through Typer's CliRunner on SQLite files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import jobbudget.demo
from cli_support import Run, json_of, runner
from jobbudget.cli import app
from jobbudget.demo import PACKAGED_TRACE
from jobbudget.domain.cost import CostCalculationEngine, JobMetrics, seed_cost_model

pytestmark = pytest.mark.usefixtures("cli_env", "seed_prices")
TRACE = PACKAGED_TRACE
HEADER = "job_id,tenant_id,queue_name,cpu_time,memory_mb_seconds,payload_bytes,redis_ops,network_bytes,timestamp"


def job(job_id: str, cpu: str = "100", tenant: str = "acme", queue: str = "ml", **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "job_id": job_id,
        "tenant_id": tenant,
        "queue_name": queue,
        "cpu_time": cpu,
        "memory_mb_seconds": "2048",
        "payload_bytes": "51200",
        "redis_ops": "25",
        "network_bytes": "10240",
        **extra,
    }
    return record


def jsonl(path: Path, *records: dict[str, Any]) -> Path:
    # Numbers are written as JSON numbers (not strings) from their exact text.
    lines = []
    for r in records:
        parts = []
        for key, value in r.items():
            numeric = key in ("cpu_time", "memory_mb_seconds", "payload_bytes", "redis_ops", "network_bytes")
            parts.append(f'"{key}": {value if numeric else json.dumps(value)}')
        lines.append("{" + ", ".join(parts) + "}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def price(*records: dict[str, Any]) -> Decimal:
    engine = CostCalculationEngine(seed_cost_model())
    total = Decimal(0)
    for r in records:
        numbers = {k: Decimal(r[k]) for k in ("cpu_time", "memory_mb_seconds", "payload_bytes", "redis_ops")}
        m = JobMetrics(
            r["job_id"], r["tenant_id"], r["queue_name"], network_bytes=Decimal(r["network_bytes"]), **numbers
        )
        total += engine.calculate_job_cost(m).total_cost
    return total


def cpu_job(job_id: str, cpu: str, **extra: Any) -> dict[str, Any]:
    """A job whose cost is ``cpu × 0.0001 + 0.001`` under the default model."""
    zeros = {"memory_mb_seconds": "0", "payload_bytes": "0", "redis_ops": "0", "network_bytes": "0"}
    return job(job_id, cpu=cpu, **{**zeros, **extra})


def create_budget(run: Run, *args: str) -> dict[str, Any]:
    result = run("budget", "create", *args, "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json_of(result)
    return data


# -- database commands ----------------------------------------------------------------


def test_init_creates_the_database_and_says_where(run: Run, tmp_path: Path) -> None:
    result = run("init")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli.db").is_file()
    assert str(tmp_path / "cli.db") in result.stdout and "cost model version 1" in result.stdout
    data = json_of(run("init", "--json"))
    assert data == {"database": f"sqlite:///{tmp_path / 'cli.db'}", "cost_model_version": 1, "ready": True}


def test_default_database_is_jobbudget_db_in_the_current_directory(run: Run, tmp_path: Path) -> None:
    assert run("init", database=None).exit_code == 0
    assert (tmp_path / "jobbudget.db").is_file()


def test_db_upgrade_is_repeatable(run: Run) -> None:
    for _ in range(2):
        result = run("db", "upgrade")
        assert result.exit_code == 0 and "up to date" in result.stdout
    assert json_of(run("db", "upgrade", "--json"))["upgraded"] is True


def test_db_prune_deletes_old_rows_and_prints_counts(run: Run, tmp_path: Path) -> None:
    old = job("ancient", timestamp="2000-01-03T00:00:00Z")
    assert run("ingest", str(jsonl(tmp_path / "old.jsonl", old, job("recent")))).exit_code == 0
    data = json_of(run("db", "prune", "--json"))
    assert data == {"jobs_deleted": 1, "daily_rows_deleted": 1}
    text = run("db", "prune")
    assert text.exit_code == 0 and "Deleted 0 job rows" in text.stdout and "0 daily rows" in text.stdout


# -- configuration and errors -------------------------------------------------------------


def test_config_file_and_environment_choose_the_database(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_file = tmp_path / "from-file.db"
    config = tmp_path / "budget.yaml"
    config.write_text(f"database_url: sqlite:///{from_file}\nlog_level: WARNING\nretention_days: 400\n")
    assert json_of(run("init", "--config", str(config), "--json", database=None))["database"].endswith("from-file.db")
    assert from_file.is_file()
    override = json_of(run("init", "--config", str(config), "--json", database=f"sqlite:///{tmp_path / 'flag.db'}"))
    assert override["database"].endswith("flag.db")
    monkeypatch.setenv("JOBBUDGET_CONFIG", str(config))
    assert json_of(run("init", "--json", database=None))["database"].endswith("from-file.db")
    monkeypatch.setenv("JOBBUDGET_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    assert json_of(run("init", "--json", database=None))["database"].endswith("env.db")


def test_bad_config_key_is_a_validation_error(run: Run, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("databse_url: sqlite:///x.db\n")
    result = run("init", "--config", str(config))
    assert result.exit_code == 2
    assert result.stderr.startswith("error [VALIDATION_FAILED]: databse_url: unknown configuration key")
    assert result.stdout == ""


def test_bad_database_url_is_rejected_without_traceback(run: Run) -> None:
    result = run("status", database="mysql://root:pw@localhost/db")
    assert result.exit_code == 2
    assert "error [VALIDATION_FAILED]: --database-url" in result.stderr
    assert "pw" not in result.output
    plain = run("status", database="/tmp/try.db")  # a path, not a URL: say which URL it means
    assert plain.exit_code == 2 and "sqlite:////tmp/try.db" in plain.stderr and "://..." not in plain.stderr


def test_database_password_is_never_printed(run: Run) -> None:
    result = run("init", database="postgresql://user:hunter2@127.0.0.1:1/nothing")
    assert result.exit_code == 1
    assert result.stderr.startswith("error [STORAGE_UNAVAILABLE]: ")
    assert "hunter2" not in result.output


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["init"],
        ["db"],
        ["db", "upgrade"],
        ["db", "prune"],
        ["budget"],
        ["budget", "create"],
        ["budget", "list"],
        ["budget", "show"],
        ["budget", "update"],
        ["budget", "deactivate"],
        ["ingest"],
        ["check"],
        ["status"],
        ["demo"],
    ],
)
def test_help_explains_every_command_and_option(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = result.stdout
    if command and command[-1] not in ("db", "budget"):
        assert "--json" in text and "machine-readable" in text
        assert "--config" in text and "YAML configuration" in text
        assert "--database-url" in text
    expected = {
        "create": [
            "--amount",
            "--warn-only",
            "--no-block",
            "--no-emergency",
            "--max-bypass-fraction",
            "--grace-hours",
            "--notify",
            "redacted",
        ],
        "ingest": ["--format", "--batch-size", "--strict", "rejected"],
        "check": ["--priority", "Exit status", "block"],
        "demo": ["--fresh", "--keep", "synthetic"],
        "update": ["--clear-notify", "tenant cannot change"],
    }
    for word in expected.get(command[-1] if command else "", []):
        assert word in text, word


# -- budgets ------------------------------------------------------------------------


def test_budget_create_reads_amounts_exactly_and_shows_them(run: Run) -> None:
    budget = create_budget(
        run,
        "--tenant", "acme", "--queue", "ml", "--amount", "1234.567890123", "--warn", "0.7",
        "--throttle", "0.85", "--block", "1.05", "--throttle-factor", "0.25", "--emergency-priority", "8",
        "--grace-hours", "24", "--currency", "eur", "--timezone", "Europe/Prague", "--max-bypass-fraction", "0.05",
    )  # fmt: skip
    assert budget["amount"] == "1234.567890123"
    assert (budget["warning_threshold"], budget["throttle_threshold"], budget["block_threshold"]) == (
        "0.7",
        "0.85",
        "1.05",
    )
    assert budget["queue_name"] == "ml" and budget["currency"] == "EUR"
    assert budget["period"]["type"] == "monthly" and budget["period"]["timezone"] == "Europe/Prague"
    policy = budget["enforcement_policy"]
    assert policy == {
        "warn_only": False,
        "throttle_factor": 0.25,
        "block_new_jobs": True,
        "allow_emergency": True,
        "emergency_priority": 8,
        "grace_period_hours": 24,
        "max_bypass_fraction": "0.05",
        "carry_over": "none",
        "carry_over_cap": "1",
    }
    shown = json_of(run("budget", "show", budget["id"], "--json"))
    assert Decimal(shown["budget"]["amount"]) == Decimal("1234.567890123")
    assert Decimal(shown["current_spend"]) == 0 and shown["action"]["type"] == "allow"
    text = run("budget", "show", budget["id"])
    assert text.exit_code == 0 and "acme/ml" in text.stdout and "OK" in text.stdout


def test_budget_create_flags_and_custom_period(run: Run) -> None:
    budget = create_budget(
        run, "--tenant", "acme", "--amount", "10", "--period", "custom", "--start", "2013-03-01",
        "--end", "2013-03-31", "--warn-only", "--no-block", "--no-emergency",
    )  # fmt: skip
    assert budget["period"] == {
        "type": "custom",
        "start_date": "2013-03-01",
        "end_date": "2013-03-31",
        "timezone": "UTC",
        "recurring": False,
    }
    p = budget["enforcement_policy"]
    assert (p["warn_only"], p["block_new_jobs"], p["allow_emergency"]) == (True, False, False)
    text = run("budget", "create", "--tenant", "acme", "--amount", "10", "--period", "weekly")
    assert text.exit_code == 0 and text.stdout.startswith("Created budget ") and "weekly" in text.stdout


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--amount", "ten"], "--amount"),
        (["--amount", "0"], "--amount"),
        (["--amount", "5", "--warn", "0.95"], "--throttle"),
        (["--amount", "5", "--throttle-factor", "0"], "--throttle-factor"),
        (["--amount", "5", "--currency", "XYZ"], "--currency"),
        (["--amount", "5", "--period", "custom", "--start", "2024-01-01"], "--end: is required with --period custom"),
        (["--amount", "5", "--start", "2024-13-01"], "--start"),
        (["--amount", "5", "--timezone", "Mars/Olympus"], "--timezone"),
        (["--amount", "5", "--notify", "email:not-an-address"], "--notify"),
        (["--amount", "5", "--notify", "pager:123"], "--notify"),
    ],
)
def test_budget_create_rejects_bad_input_with_exit_2(run: Run, args: list[str], field: str) -> None:
    result = run("budget", "create", "--tenant", "acme", *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error [VALIDATION_FAILED]: {field}")
    assert json_of(run("budget", "list", "--all", "--json")) == []


def test_notification_secrets_are_redacted_everywhere(run: Run) -> None:
    secret = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"
    budget = create_budget(run, "--tenant", "acme", "--amount", "5", "--notify", f"slack:{secret}", "--notify",
                           "email:ops.lead@example.com")  # fmt: skip
    outputs = [
        json.dumps(budget),
        run("budget", "create", "--tenant", "acme", "--amount", "7", "--notify", f"webhook:{secret}").output,
        run("budget", "list").output,
        run("budget", "list", "--json").output,
        run("budget", "show", budget["id"]).output,
        run("budget", "show", budget["id"], "--json").output,
        run("budget", "update", budget["id"], "--amount", "6").output,
        run("budget", "update", budget["id"], "--amount", "6", "--json").output,
        run("status", "--json").output,
    ]
    for out in outputs:
        assert "XXXXSECRET" not in out and "ops.lead" not in out
    for shown in (outputs[3], outputs[4]):  # list --json, show
        assert "hooks.slack.com/services/T000/****" in shown and "o***@example.com" in shown


def test_budget_list_filters_by_tenant_and_all(run: Run) -> None:
    a = create_budget(run, "--tenant", "acme", "--amount", "5")
    create_budget(run, "--tenant", "globex", "--amount", "6")
    assert {b["tenant_id"] for b in json_of(run("budget", "list", "--json"))} == {"acme", "globex"}
    assert [b["id"] for b in json_of(run("budget", "list", "--tenant", "acme", "--json"))] == [a["id"]]
    deactivated = run("budget", "deactivate", a["id"])
    assert deactivated.exit_code == 0 and "Deactivated" in deactivated.stdout
    assert [b["tenant_id"] for b in json_of(run("budget", "list", "--json"))] == ["globex"]
    everything = json_of(run("budget", "list", "--all", "--json"))
    assert {(b["tenant_id"], b["active"]) for b in everything} == {("acme", False), ("globex", True)}
    text = run("budget", "list", "--tenant", "nobody")
    assert text.exit_code == 0 and "No budgets" in text.stdout
    table = run("budget", "list", "--all")
    assert a["id"] in table.stdout and "globex" in table.stdout


def test_budget_update_changes_only_what_is_given(run: Run, tmp_path: Path) -> None:
    budget = create_budget(run, "--tenant", "acme", "--amount", "1", "--notify", "email:ops@example.com")
    # --no-notify: the block alert must not be sent to an SMTP server the test did not start
    assert run("ingest", str(jsonl(tmp_path / "j.jsonl", job("big", cpu="20000"))), "--no-notify").exit_code == 0
    assert run("check", "acme", "ml").exit_code == 3
    updated = json_of(run("budget", "update", budget["id"], "--no-block", "--throttle-factor", "0.3", "--json"))
    assert updated["enforcement_policy"]["block_new_jobs"] is False
    assert updated["enforcement_policy"]["throttle_factor"] == 0.3
    assert Decimal(updated["amount"]) == 1 and len(updated["notifications"]) == 1
    check = run("check", "acme", "ml", "--json")
    assert check.exit_code == 0 and json_of(check)["type"] == "throttle" and json_of(check)["factor"] == 0.3
    updated = json_of(run("budget", "update", budget["id"], "--amount", "100.5", "--clear-notify", "--json"))
    assert updated["amount"] == "100.5" and updated["notifications"] == []
    assert json_of(run("check", "acme", "ml", "--json"))["type"] == "allow"
    weekly = json_of(run("budget", "update", budget["id"], "--period", "weekly", "--json"))
    start = datetime.fromisoformat(weekly["period"]["start_date"])
    assert weekly["period"]["type"] == "weekly" and start.weekday() == 0
    missing = run("budget", "update", "no-such-id", "--amount", "3")
    assert missing.exit_code == 1 and missing.stderr.startswith("error [BUDGET_NOT_FOUND]: ")


def test_deactivated_budget_stops_blocking_and_can_be_reactivated(run: Run, tmp_path: Path) -> None:
    budget = create_budget(run, "--tenant", "acme", "--amount", "1")
    assert run("ingest", str(jsonl(tmp_path / "j.jsonl", job("big", cpu="20000")))).exit_code == 0
    assert run("check", "acme", "ml").exit_code == 3
    assert json_of(run("budget", "deactivate", budget["id"], "--json"))["active"] is False
    assert run("check", "acme", "ml").exit_code == 0
    assert json_of(run("budget", "update", budget["id"], "--activate", "--json"))["active"] is True
    assert run("check", "acme", "ml").exit_code == 3


# -- check and status -----------------------------------------------------------------


def test_check_without_budgets_allows(run: Run) -> None:
    result = run("check", "acme", "ml", "--json")
    assert result.exit_code == 0
    assert json_of(result)["type"] == "allow" and json_of(result)["message"] == "no budget applies"
    assert run("check", "acme").stdout.startswith("OK: no budget applies")


@pytest.mark.parametrize(
    ("amount", "kind", "code"),
    [("3", "allow", 0), ("2.5", "warn", 0), ("2.1", "throttle", 0), ("2.001", "block", 3), ("1", "block", 3)],
)
def test_check_follows_the_ladder_and_exits_3_on_block(
    run: Run, tmp_path: Path, amount: str, kind: str, code: int
) -> None:
    budget = create_budget(run, "--tenant", "acme", "--amount", amount)
    records = [cpu_job("a", "20000")]
    assert run("ingest", str(jsonl(tmp_path / "j.jsonl", *records))).exit_code == 0
    result = run("check", "acme", "ml", "--json")
    assert result.exit_code == code
    data = json_of(result)
    assert set(data) == {
        "type", "factor", "message", "budget_id", "utilization", "current_spend", "budget_amount", "bypass", "tenant_id"
    }  # fmt: skip
    assert data["type"] == kind and data["budget_id"] == budget["id"] and data["bypass"] is False
    assert isinstance(data["current_spend"], str) and Decimal(data["current_spend"]) == Decimal("2.001")
    assert Decimal(data["budget_amount"]) == Decimal(amount)
    assert Decimal(data["utilization"]) == (Decimal("2.001") / Decimal(amount)).quantize(Decimal("0.000001"))
    assert data["factor"] == (0.5 if kind == "throttle" else 1.0)
    text = run("check", "acme", "ml")  # people read the same words as every status: OK, Warning, ...
    word = {"allow": "OK", "warn": "Warning", "throttle": "Throttle", "block": "Block"}[kind]
    assert text.exit_code == code and text.stdout.startswith(word)


def test_check_emergency_priority_bypasses_a_block(run: Run, tmp_path: Path) -> None:
    budget = create_budget(run, "--tenant", "acme", "--amount", "1.9", "--max-bypass-fraction", "0")
    assert run("ingest", str(jsonl(tmp_path / "j.jsonl", job("a", cpu="20000")))).exit_code == 0
    spend = Decimal(json_of(run("budget", "show", budget["id"], "--json"))["current_spend"])
    assert Decimal("1.9") < spend < Decimal("2.09")  # past the block threshold, within 10 % of the amount
    refused = run("check", "acme", "ml", "--priority", "9", "--json")  # no bypass allowance
    assert refused.exit_code == 3 and "bypass allowance" in json_of(refused)["message"]
    assert run("budget", "update", budget["id"], "--max-bypass-fraction", "0.1").exit_code == 0
    result = run("check", "acme", "ml", "--priority", "9", "--json")
    assert result.exit_code == 0
    assert json_of(result)["type"] == "allow" and json_of(result)["bypass"] is True
    assert run("check", "acme", "ml", "--priority", "8").exit_code == 3
    assert run("check", "acme", "ml", "--priority", "11").exit_code == 2  # out of range
    assert run("budget", "update", budget["id"], "--max-bypass-fraction", "1.5").exit_code == 2


def test_check_and_status_at_another_instant(run: Run, tmp_path: Path) -> None:
    create_budget(run, "--tenant", "acme", "--amount", "1", "--period", "monthly", "--start", "2013-03-01")
    records = [job("march", cpu="20000", timestamp="2013-03-15T10:00:00Z")]
    assert run("ingest", str(jsonl(tmp_path / "j.jsonl", *records))).exit_code == 0
    assert run("check", "acme", "ml", "--at", "2013-03-20T00:00:00Z").exit_code == 3
    assert run("check", "acme", "ml", "--at", "2013-04-02T00:00:00+02:00").exit_code == 0  # April: new period
    assert run("check", "acme", "ml").exit_code == 0  # today
    march = json_of(run("status", "--at", "2013-03-31T23:59:59Z", "--json"))
    assert march[0]["status"] == "Block" and march[0]["period_start"] == "2013-03-01"
    naive = run("check", "acme", "ml", "--at", "2013-03-20T00:00:00")
    assert naive.exit_code == 2 and "error [VALIDATION_FAILED]: at:" in naive.stderr


def test_status_table_shows_every_active_budget(run: Run, tmp_path: Path) -> None:
    assert run("status").stdout.startswith("No active budgets")
    create_budget(run, "--tenant", "acme", "--amount", "1")
    create_budget(run, "--tenant", "globex", "--queue", "etl", "--amount", "2.5")
    create_budget(run, "--tenant", "initech", "--amount", "100")
    records = [cpu_job("a", "20000"), cpu_job("b", "20000", tenant="globex", queue="etl")]
    assert run("ingest", str(jsonl(tmp_path / "j.jsonl", *records))).exit_code == 0
    result = run("status")
    assert result.exit_code == 0
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 5}
    assert "Block" in rows["acme"] and "(all queues)" in rows["acme"]
    assert "Warning" in rows["globex"] and "etl" in rows["globex"]
    assert "OK" in rows["initech"]
    assert "█" in rows["acme"] and "200.1%" in rows["acme"]
    data = json_of(run("status", "--json"))
    assert {(d["tenant_id"], d["status"]) for d in data} == {("acme", "Block"), ("globex", "Warning"),
                                                             ("initech", "OK")}  # fmt: skip
    acme = next(d for d in data if d["tenant_id"] == "acme")
    assert Decimal(acme["current_spend"]) == Decimal("2.001") and Decimal(acme["amount"]) == 1
    only = json_of(run("status", "--tenant", "globex", "--json"))
    assert [d["tenant_id"] for d in only] == ["globex"]


# -- ingest ---------------------------------------------------------------------------


def test_ingest_jsonl_stores_prices_exactly_and_counts_duplicates_once(run: Run, tmp_path: Path) -> None:
    records = [job("a", cpu="15.2"), job("b", cpu="0.1"), job("c", cpu="3", tenant="globex")]
    path = jsonl(tmp_path / "jobs.jsonl", *records, records[0])
    result = run("ingest", str(path), "--json")
    assert result.exit_code == 0, result.output
    data = json_of(result)
    assert (data["read"], data["stored"], data["duplicates"], data["rejected"]) == (4, 3, 1, 0)
    assert data["format"] == "jsonl" and data["errors"] == []
    assert Decimal(data["total_cost"]) == price(*records)
    again = json_of(run("ingest", str(path), "--json", "--batch-size", "1"))
    assert (again["stored"], again["duplicates"], again["total_cost"]) == (0, 4, "0")
    text = run("ingest", str(path))
    assert text.exit_code == 0
    assert text.stdout.startswith("4 jobs read: 0 stored, 4 duplicates, 0 rejected")


def test_ingest_duplicates_across_batches(run: Run, tmp_path: Path) -> None:
    path = jsonl(tmp_path / "dups.jsonl", job("x"), job("y"), job("x"), job("x", tenant="other"))
    data = json_of(run("ingest", str(path), "--batch-size", "1", "--json"))
    assert (data["stored"], data["duplicates"]) == (3, 1)  # job ids are unique per tenant
    assert Decimal(data["total_cost"]) == price(job("x"), job("y"), job("x", tenant="other"))


def test_ingest_csv_reports_bad_lines_with_numbers(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text(
        f"{HEADER}\n"
        "a,acme,ml,1.5,0,0,0,0,2024-01-01T00:00:00Z\n"
        "b,acme,ml,-1,0,0,0,0,\n"
        "c,acme,ml,1,0,0,0,0,2024-01-01T00:00:00\n"
        "d,acme,ml,2,0,0,0,0,\n",
        encoding="utf-8",
    )
    result = run("ingest", str(path))
    assert result.exit_code == 1
    assert "line 3: cpu_time: must not be negative" in result.stderr
    assert "line 4: timestamp: must include a UTC offset" in result.stderr
    assert "4 jobs read: 2 stored, 0 duplicates, 2 rejected" in result.stdout
    data = json_of(run("ingest", str(path), "--json"))
    assert [(e["line"], e["field"]) for e in data["errors"]] == [(3, "cpu_time"), (4, "timestamp")]
    assert (data["stored"], data["duplicates"], data["rejected"]) == (0, 2, 2)


def test_ingest_strict_stores_nothing_if_any_line_is_bad(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text(f"{HEADER}\na,acme,ml,1,0,0,0,0,\nb,acme,ml,oops,0,0,0,0,\nc,acme,ml,2,0,0,0,0,\n")
    strict = run("ingest", str(path), "--strict", "--json")
    assert strict.exit_code == 1
    data = json_of(strict)
    assert (data["read"], data["stored"], data["rejected"], data["strict"]) == (3, 0, 1, True)
    assert data["errors"][0]["line"] == 3 and data["errors"][0]["field"] == "cpu_time"
    text = run("ingest", str(path), "--strict")
    assert "Nothing was stored (--strict)" in text.stdout and "line 3: cpu_time" in text.stderr
    # The good lines were really not stored: a lenient run stores them as new jobs.
    lenient = json_of(run("ingest", str(path), "--json"))
    assert (lenient["stored"], lenient["duplicates"]) == (2, 0)
    path.write_text(f"{HEADER}\na,acme,ml,1,0,0,0,0,\nz,acme,ml,2,0,0,0,0,\n")
    ok = json_of(run("ingest", str(path), "--strict", "--json"))
    assert (ok["stored"], ok["duplicates"], ok["rejected"]) == (1, 1, 0)


def test_ingest_from_stdin_and_format_choice(run: Run, tmp_path: Path) -> None:
    line = json.dumps({**job("s1"), "cpu_time": 1, "memory_mb_seconds": 0, "payload_bytes": 0, "redis_ops": 0,
                       "network_bytes": 0})  # fmt: skip
    piped = run("ingest", "-", "--json", input=line + "\n")
    assert piped.exit_code == 0 and json_of(piped)["stored"] == 1
    odd = tmp_path / "jobs.txt"
    odd.write_text(f"{HEADER}\nt1,acme,ml,1,0,0,0,0,\n")
    unknown = run("ingest", str(odd))
    assert unknown.exit_code == 2 and "error [VALIDATION_FAILED]: format" in unknown.stderr
    assert json_of(run("ingest", str(odd), "--format", "csv", "--json"))["stored"] == 1
    missing = run("ingest", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2 and "error [VALIDATION_FAILED]: file" in missing.stderr
    swf = tmp_path / "trace.swf"
    swf.write_text("1 100 0 60 2 -1 -1 2 60 1048576 1 7 1 -1 2 -1 -1 -1\n")
    assert json_of(run("ingest", str(swf), "--json"))["stored"] == 1


def test_ingest_rejects_future_and_bad_json_lines_but_keeps_the_rest(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    good = jsonl(tmp_path / "g.jsonl", job("ok1"), job("future", timestamp="2999-01-01T00:00:00Z")).read_text()
    path.write_text(good + "{not json}\n\n" + '{"job_id": "x", "colour": 1}\n')
    data = json_of(run("ingest", str(path), "--json"))
    assert data["stored"] == 1
    assert [(e["line"], e["field"]) for e in data["errors"]] == [(2, "timestamp"), (3, "record"), (5, "colour")]
    assert "future" in data["errors"][0]["message"]


# -- demo ------------------------------------------------------------------------------


def test_demo_replays_the_real_trace(run: Run, tmp_path: Path) -> None:
    started = time.perf_counter()
    result = run("demo", "--json", database=f"sqlite:///{tmp_path / 'demo.db'}")
    assert result.exit_code == 0, result.output
    assert time.perf_counter() - started < 60
    data = json_of(result)
    assert data["synthetic"] is False and data["source"] == str(TRACE)
    assert data["jobs"] == 17898 and data["skipped"] == 2
    outcomes = data["outcomes"]
    assert sum(outcomes.values()) == data["jobs"]
    assert outcomes["warn"] >= 1 and outcomes["throttle"] >= 1 and outcomes["block"] >= 1
    assert data["billed"] + data["still_running"] + outcomes["block"] == data["jobs"]
    assert data["month"] == {"start": "2013-03-01", "end": "2013-03-31"}
    budgets = data["budgets"]
    assert len(budgets) == 5
    assert {b["status"] for b in budgets} >= {"Warning", "Block"}
    assert all(b["period_start"] == "2013-03-01" for b in budgets)
    top = data["top_spender"]
    assert top.startswith("user-") and sum(1 for b in budgets if b["tenant_id"] == top) == 3
    # The per-queue spend comes from the stored daily costs and matches the tenant budget's spend.
    tenant_wide = next(b for b in budgets if b["tenant_id"] == top and b["queue_name"] == "")
    assert sum(Decimal(q["cost"]) for q in data["queue_spend"]) == Decimal(tenant_wide["current_spend"])
    # The database is left for the hinted next commands.
    status = json_of(
        run("status", "--at", "2013-03-31T23:59:59Z", "--json", database=f"sqlite:///{tmp_path / 'demo.db'}")
    )
    assert [s["status"] for s in status] and {s["status"] for s in status} == {b["status"] for b in budgets}


def test_demo_falls_back_to_a_labelled_synthetic_workload(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobbudget.demo, "find_trace", lambda cwd=None: None)
    url = f"sqlite:///{tmp_path / 'synthetic.db'}"
    result = run("demo", database=url)
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC WORKLOAD" in result.stdout and "Budgets at the end of March 2013" in result.stdout
    assert "jobbudget status --database-url" in result.stdout
    # the top spender's report, and how to open the TUI and the HTML report on the same data
    assert "Top cost drivers" in result.stdout and "Recommendations" in result.stdout
    assert f"jobbudget tui --database-url {url} --at 2013-03-31T23:59:59Z" in result.stdout
    assert "--period 2013-03 --format html" in result.stdout
    data = json_of(run("demo", "--json", database=url))  # --fresh (default): same result again
    assert data["synthetic"] is True and data["jobs"] == 5000
    assert sum(data["outcomes"].values()) == 5000 and data["billed"] > 4000
    assert len(json_of(run("budget", "list", "--json", database=url))) == 5
    kept = json_of(run("demo", "--keep", "--json", database=url))
    assert kept["billed"] == 0  # every job was already stored: counted once
    assert len(json_of(run("budget", "list", "--json", database=url))) == 5  # the earlier ones were replaced
    assert len(json_of(run("budget", "list", "--all", "--json", database=url))) == 10


def test_demo_default_database_and_refusing_to_wipe_non_sqlite(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobbudget.demo, "find_trace", lambda cwd=None: None)
    monkeypatch.setenv("JOBBUDGET_DATABASE_URL", f"sqlite:///{tmp_path / 'precious.db'}")
    assert run("demo", "--json", database=None).exit_code == 0
    assert (tmp_path / "jobbudget-demo.db").is_file() and not (tmp_path / "precious.db").exists()
    refused = run("demo", database="postgresql://u:secret@127.0.0.1:1/x")
    assert refused.exit_code == 2 and "needs a SQLite" in refused.stderr and "secret" not in refused.output


def test_console_script_entry_point(tmp_path: Path) -> None:
    script = "from jobbudget.cli import main; main()"
    version = subprocess.run([sys.executable, "-c", script, "--version"], capture_output=True, text=True, check=False)
    assert version.returncode == 0 and version.stdout.strip() == "jobbudget 0.1.0"
    url = f"sqlite:///{tmp_path / 'sub.db'}"
    subprocess.run([sys.executable, "-c", script, "init", "--database-url", url], capture_output=True, check=True)
    args = [sys.executable, "-c", script, "check", "acme", "--database-url", url, "--json"]
    check = subprocess.run(args, capture_output=True, text=True, check=False)
    assert check.returncode == 0 and json.loads(check.stdout)["type"] == "allow"
    bad = subprocess.run([*args[:5], "--database-url", "oracle://x"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error [VALIDATION_FAILED]") and "Traceback" not in bad.stderr


def test_a_mistyped_database_is_refused_not_created(tmp_path: Path) -> None:
    """Reads refuse a SQLite file that is not there, naming it; init and writes create
    it and say so."""
    typo = tmp_path / "tyr.db"
    for args in (["status"], ["budget", "list"], ["check", "acme"], ["report", "acme"], ["alerts", "list"]):
        result = runner.invoke(app, [*args, "--database-url", f"sqlite:///{typo}"])
        assert result.exit_code == 2, (args, result.output)
        assert str(typo) in result.stderr and "jobbudget init" in result.stderr
        assert not typo.exists()
    made = runner.invoke(
        app, ["budget", "create", "--tenant", "acme", "--amount", "5", "--database-url", f"sqlite:///{typo}"]
    )
    assert made.exit_code == 0 and "Creating a new database" in made.stderr and typo.exists()
    again = runner.invoke(app, ["status", "--database-url", f"sqlite:///{typo}"])
    assert again.exit_code == 0 and "Creating" not in again.stderr


def test_the_demo_prints_commands_that_run_as_typed(tmp_path: Path) -> None:
    """After `make demo`, without the venv activated, `jobbudget` is not on the PATH:
    the follow-up commands the demo prints start with the path that works."""
    exe = Path(sys.executable).with_name("jobbudget")
    env = {**os.environ, "PATH": "/usr/bin:/bin"}  # the venv is not activated
    done = subprocess.run(
        [str(exe), "demo", "--database-url", f"sqlite:///{tmp_path / 'demo.db'}"],
        capture_output=True, text=True, cwd=exe.parents[2], env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = [line.strip() for line in done.stdout.splitlines() if line.strip().startswith(".venv/bin/jobbudget ")]
    assert len(shown) == 5, done.stdout[-800:]
    assert shown[4].split()[1] == "serve" and "--at 2013-03-31T12:00:00Z" in shown[4]  # the web dashboard's server
    assert re.search(r"^  jb_\S+$", done.stdout, flags=re.M), "the dashboard's key"
    status = shown[2].split()  # ".venv/bin/jobbudget status --database-url ... --at ..."
    again = subprocess.run(status, capture_output=True, text=True, cwd=exe.parents[2], env=env, check=False)
    assert again.returncode == 0 and "Budgets" in again.stdout, again.stderr


def test_tui_refuses_at_with_url() -> None:
    """A server shows its own now: ``--at`` with ``--url`` was ignored without a word."""
    result = runner.invoke(
        app, ["tui", "--url", "http://127.0.0.1:9", "--api-key", "k", "--at", "2013-03-31T23:59:59Z"]
    )
    assert result.exit_code == 2
    assert "--at works on the local database only" in result.stderr
