"""benchmarks/bench_shared.py keeps working: a quick run against the real Redis and
PostgreSQL (the figures come from running it in full, not from here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from conftest import IN_CI, require_postgres

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_shared.py"


def _require_redis() -> None:
    client: redis.Redis = redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"Redis is required in CI but unreachable: {exc}")
        pytest.skip(f"Redis unreachable: {exc}")
    finally:
        client.close()


@pytest.mark.slow
def test_bench_shared_quick(tmp_path: Path) -> None:
    require_postgres()
    _require_redis()
    env = {**os.environ, "JOBBUDGET_BENCH_RESULTS": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads((tmp_path / "shared.json").read_text())
    assert figures["quick"] is True
    check = figures["check"]
    assert check["checks"] == 2000
    for name in ("check", "redis_get", "admit", "release", "admit_plus_release"):
        assert 0 < check[name]["p50_us"] <= check[name]["p99_us"]
    assert check["ratio_p99"] > 0 and check["ratio_p50"] > 0
    ingest = figures["ingest_postgres"]
    assert ingest["stored_jobs"] == ingest["processes"] * ingest["jobs_per_process"] == 4000
    assert ingest["jobs_per_s"] > 0
    for part in ("admit_ingest", "admit_release"):
        assert figures[part]["admitted"] > 0
        assert figures[part]["open_reservations"] == 0
    # every exactness check is recorded, and passed
    exact = figures["exactness"]
    for key in (
        "ingest_postgres.ledger_exact",
        "ingest_postgres.redis_exact",
        "ingest_postgres.count_exact",
        "admit_ingest.ledger_exact",
        "admit_ingest.redis_exact",
        "admit_ingest.count_exact",
        "admit_ingest.reservations_closed",
        "admit_release.reservations_closed",
    ):
        assert exact[key] is True, key
    assert figures["all_exact"] is True
    assert figures["redis_keys_deleted"] > 0
    assert "all exactness checks passed: True" in done.stdout
