"""The benchmark scripts keep working (tiny sizes; the figures come from `make bench`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_postgres

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.slow
def test_benchmarks_run_and_report(tmp_path: Path) -> None:
    require_postgres()
    env = {**os.environ, "JOBBUDGET_BENCH_RESULTS": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(BENCH / "run_all.py"), "--quick"], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    cost = json.loads((tmp_path / "cost.json").read_text())
    check = json.loads((tmp_path / "check.json").read_text())
    ingest = json.loads((tmp_path / "ingest.json").read_text())
    assert cost["calculate_job_cost_jobs_per_s"] > 0
    assert check["budgets"] == 1000
    # every state of the ladder, and the odd bypass, really occur in the check benchmark
    assert {"allow", "warn", "throttle", "block"} <= set(check["outcomes"])
    for backend in ("sqlite", "postgres"):
        result = ingest[backend]
        assert result["budgets"] == 500
        assert result["duplicates"] > 0
        assert result["jobs_stored"] + result["duplicates"] == result["jobs_submitted"]
    assert "calculate_job_cost" in done.stdout and "generate_report" in done.stdout
    assert "forecast on 90 days" in done.stdout
    dashboard = json.loads((tmp_path / "dashboard.json").read_text())  # Chromium, as the browser tests
    assert dashboard["budgets"] == 50 and dashboard["painted_ms"] > 0 and "dashboard overview painted" in done.stdout
    fleet = json.loads((tmp_path / "fleet.json").read_text())  # admit -> meter cycles, both modes, exact
    assert fleet["exact"] is True
    assert fleet["postgres_redis"]["cycles_per_s"] > 0 and fleet["postgres_redis"]["cycles_journal_per_s"] > 0
    assert fleet["sqlite"]["cycles_local_per_s"] > 0 and "admit -> meter" in done.stdout
    for backend in ("sqlite", "postgres"):  # raw inserts of the same rows, beside the ingest rate
        assert ingest[backend]["floor_raw_inserts_per_s"] > ingest[backend]["jobs_per_s"] > 0
