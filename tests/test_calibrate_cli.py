"""``jobbudget calibrate`` and ``jobbudget costmodel``, on SQLite files, and the
calibration records the metrics read back."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cli_support import Run, json_of
from jobbudget.analytics.calibration import latest_calibration, run_calibration
from jobbudget.cli.calibrate_cmd import _ACTION_STYLES
from jobbudget.config import Config
from jobbudget.domain.calibration import APPLY, COLLECT_MORE, WEIGHTS, BenchmarkResult
from jobbudget.domain.codec import cost_model_to_mapping
from jobbudget.domain.cost import CostModel, JobMetrics, default_cost_model
from jobbudget.domain.errors import ValidationError
from jobbudget.pricing import cost_model_from_preset
from jobbudget.service import BudgetService
from test_calibration import TRUE, make_benchmarks

COLUMNS = (
    "job_type",
    "actual_cost",
    "cpu_time",
    "memory_mb_seconds",
    "payload_bytes",
    "redis_ops",
    "network_bytes",
    "timestamp",
)


pytestmark = pytest.mark.usefixtures("cli_env")


@pytest.fixture
def service(db: str) -> Iterator[Callable[[], BudgetService]]:
    """Opens the test database like a separate process would (closed afterwards)."""
    opened: list[BudgetService] = []

    def open_() -> BudgetService:
        opened.append(BudgetService(Config(database_url=db)))
        return opened[-1]

    yield open_
    for s in opened:
        s.close()


def write_csv(path: Path, items: list[BenchmarkResult]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for b in items:
            writer.writerow([b.timestamp.isoformat() if c == "timestamp" else getattr(b, c) for c in COLUMNS])
    return path


@pytest.fixture
def benchmarks_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "benchmarks.csv", make_benchmarks(2024, 60))


def test_calibrate_reports_without_changing_the_model(run: Run, benchmarks_csv: Path, service: Any) -> None:
    result = run("calibrate", str(benchmarks_csv))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Calibrated against 60 benchmarks" in out
    assert "cross-validated (5-fold)" in out
    assert "The current model charges 0.01× (-99." in out  # uncapped: what a person can check
    assert "Recommendation: apply the calibrated model." in out
    assert "CPU" in out and "$/CPU-second" in out and "%" in out
    assert "run again with --apply" in out
    s = service()
    assert s.get_cost_model() == default_cost_model() and s.get_cost_model_version() == 1
    record = latest_calibration(s.store)
    assert record is not None and not record.applied and record.benchmarks == 60 and record.cost_model_version == 1
    assert record.drift < 0 and record.drift_percent == pytest.approx(record.drift * 100)


def test_calibrate_apply_stores_a_new_version_and_old_jobs_keep_their_cost(
    run: Run, benchmarks_csv: Path, service: Any
) -> None:
    before = service()
    job = JobMetrics("job-1", "acme", "ml", Decimal(100), Decimal(2048), Decimal(51200), Decimal(25), Decimal(10240))
    old = before.process_job_cost(job.with_timestamp(datetime.now(UTC) - timedelta(hours=1)))
    before.close()

    result = run("calibrate", str(benchmarks_csv), "--apply", "--json")
    assert result.exit_code == 0, result.output
    data = json_of(result)
    assert data["applied"] is True and data["cost_model_version"] == 2
    assert data["report"]["recommended_action"] == APPLY
    assert [c["name"] for c in data["report"]["weight_changes"]] == list(WEIGHTS)

    after = service()
    assert after.get_cost_model_version() == 2
    calibrated = after.get_cost_model()
    assert cost_model_to_mapping(calibrated) == data["calibrated_model"]
    assert calibrated != default_cost_model()
    assert all(abs(getattr(calibrated, w) / getattr(TRUE, w) - 1) < Decimal("0.05") for w in WEIGHTS)
    assert [(v.version, v.created_by) for v in after.list_cost_models()] == [(1, "config"), (2, "calibrate")]
    stored = after.get_job_cost("acme", "job-1")
    assert stored is not None and stored.total_cost == old.total_cost and stored.cost_model_version == 1
    record = latest_calibration(after.store)
    assert record is not None and record.applied and record.cost_model_version == 2
    assert record.accuracy_after == pytest.approx(data["report"]["accuracy_after"])


def test_calibrate_json_report(run: Run, benchmarks_csv: Path) -> None:
    data = json_of(run("calibrate", str(benchmarks_csv), "--json"))
    report = data["report"]
    assert report["benchmarks"] == 60 and report["folds"] == 5
    assert 0 <= report["accuracy_before"] < report["accuracy_after"] <= 1
    assert report["unidentified_components"] == []
    assert data["applied"] is False and data["cost_model_version"] == 1
    assert Decimal(data["calibrated_model"]["cpu_time_weight"]) > 0


def test_calibrate_reports_components_it_kept(run: Run, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "b.csv", make_benchmarks(5, 40, fixed={"redis_ops": 0}))
    result = run("calibrate", str(path))
    assert result.exit_code == 0, result.output
    assert "Kept the current Redis weight: always zero in the benchmarks." in result.stdout


def test_calibrate_refuses_too_few_benchmarks(run: Run, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "few.csv", make_benchmarks(1, 9))
    result = run("calibrate", str(path))
    assert result.exit_code == 2
    assert "error [VALIDATION_FAILED]: benchmarks: at least 10 benchmarks" in result.stderr


def test_calibrate_names_bad_lines(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(",".join(COLUMNS) + "\nml,-1,1,0,0,0,0,2024-01-01T00:00:00Z\nml,1,1,0,0,0,0,yesterday\n")
    result = run("calibrate", str(path))
    assert result.exit_code == 2
    assert "line 2: actual_cost: must not be negative" in result.stderr
    assert "line 3: timestamp" in result.stderr
    missing = run("calibrate", str(tmp_path / "missing.csv"))
    assert missing.exit_code == 2 and "cannot read file" in missing.stderr


def test_costmodel_show_the_stored_model(run: Run) -> None:
    text = run("costmodel", "show")
    assert text.exit_code == 0, text.output
    assert "Cost model version 1" in text.stdout and "0.0001" in text.stdout and "$/MB·second" in text.stdout
    data = json_of(run("costmodel", "show", "--json"))
    assert data["source"] == "database" and data["version"] == 1 and data["created_by"] == "config"
    assert data["weights"] == cost_model_to_mapping(default_cost_model())


def test_costmodel_show_a_preset_needs_no_database(run: Run, tmp_path: Path) -> None:
    result = run("costmodel", "show", "--preset", "gcp", "--json", database=None)
    data = json_of(result)
    assert data["source"] == "preset" and data["name"] == "gcp"
    assert data["unit_prices"] == {
        "cpu_per_vcpu_hour": "0.031611",
        "ram_per_gib_hour": "0.004237",
        "egress_per_gib": "0.12",
    }
    assert CostModel.from_mapping({k: Decimal(v) for k, v in data["weights"].items()}) == cost_model_from_preset("gcp")
    text = run("costmodel", "show", "--preset", "azure", database=None)
    assert "0.0000108333333333333" in text.stdout and "E-" not in text.stdout  # positional notation
    assert not (tmp_path / "jobbudget.db").exists()
    unknown = run("costmodel", "show", "--preset", "ibm")
    assert unknown.exit_code == 2 and "unknown cost model; choose one of default, production" in unknown.stderr


def test_costmodel_presets(run: Run) -> None:
    names = ["default", "production", "staging", "seed", "opencost-default", "gcp", "aws", "azure", "alibaba", "oracle"]
    text = run("costmodel", "presets", database=None)
    assert text.exit_code == 0, text.output
    for name in names:
        assert name in text.stdout
    data = json_of(run("costmodel", "presets", "--json", database=None))
    assert [p["name"] for p in data] == names  # every name `costmodel set` and `import --cost-model` take
    assert data[6]["unit_prices"]["egress_per_gib"] == "0.143"
    assert data[0]["unit_prices"]["cpu_per_vcpu_hour"] == "0.036"  # the default, per core-hour
    assert run("costmodel", "presets", "--database-url", "sqlite:///x.db").exit_code == 0  # as every command
    production = run("costmodel", "set", "--preset", "production")  # the README's preset names work
    assert production.exit_code == 0, production.output


def test_costmodel_set_applies_a_preset_as_a_new_version(run: Run, service: Any) -> None:
    result = run("costmodel", "set", "--preset", "aws")
    assert result.exit_code == 0, result.output
    assert "Cost model version 2 (preset aws)" in result.stdout
    data = json_of(run("costmodel", "set", "--preset", "oracle", "--json"))
    assert data["version"] == 3 and data["weights"] == cost_model_to_mapping(cost_model_from_preset("oracle"))
    s = service()
    assert s.get_cost_model() == cost_model_from_preset("oracle") and s.get_cost_model_version() == 3
    assert s.list_cost_models()[1].created_by == "preset:aws"
    missing = run("costmodel", "set")
    assert missing.exit_code == 2


def test_run_calibration_on_a_memory_store_records_every_run() -> None:
    with BudgetService(Config(database_url="memory://")) as service:
        assert latest_calibration(service.store) is None
        first = run_calibration(service, make_benchmarks(3, 12, active=0.6), apply=False)
        assert first.report.recommended_action == COLLECT_MORE and first.cost_model_version == 1
        second = run_calibration(service, make_benchmarks(3, 50), apply=True, actor="nightly")
        assert second.applied and service.get_cost_model() == second.model
        record = latest_calibration(service.store)
        assert record == second.record and record.actor == "nightly" and record.cost_model_version == 2
        assert len(service.list_audit(kind="calibration")) == 2
        with pytest.raises(ValidationError):
            run_calibration(service, make_benchmarks(3, 5), apply=True)
        assert service.get_cost_model_version() == 2  # a refused calibration changes nothing


def test_the_action_styles_match_the_recommendations() -> None:
    assert set(_ACTION_STYLES) == {APPLY, COLLECT_MORE}
