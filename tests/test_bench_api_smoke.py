"""benchmarks/bench_api.py keeps working: a quick run against SQLite only (the
figures come from running it in full, not from here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_api.py"


@pytest.mark.slow
def test_bench_api_quick_sqlite(tmp_path: Path) -> None:
    env = {**os.environ, "JOBBUDGET_BENCH_RESULTS": str(tmp_path)}
    args = ["--backend", "sqlite", "--quick", "--seconds", "1", "--batches", "2", "--rate", "200"]
    done = subprocess.run(
        [sys.executable, str(BENCH), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads((tmp_path / "api.json").read_text())
    result = figures["sqlite"]
    assert result["budgets"] == 1000
    for client in ("httpx", "raw"):
        run = result[client]
        check = run["check_open_loop"]
        assert check["requests"] == 200
        assert check["errors"] == 0
        assert 0 < check["p50_ms"] <= check["p99_ms"] <= check["max_ms"]
        assert run["check_max_rate"]["workers_1"]["checks_per_s"] > 0
        assert run["check_max_rate"]["workers_1"]["errors"] == 0
        jobs = run["jobs"]
        assert jobs["errors"] == 0
        assert jobs["duplicates"] > 0
        assert jobs["inserted"] + jobs["duplicates"] == jobs["jobs_submitted"] == 2000
        assert jobs["jobs_per_s"] > 0
    assert "p99 target met" in done.stdout
