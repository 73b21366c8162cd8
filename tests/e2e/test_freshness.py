"""Spend written by another process counts at the next admission check of a running
``jobbudget serve`` with the default configuration (no Redis): a real ``jobbudget
ingest`` beside it on SQLite, a second process's service on PostgreSQL."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

from conftest import POSTGRES_URL, require_postgres
from jobbudget import BudgetService, Config, JobMetrics

from .conftest import StartServer
from .server import LiveServer

PRICES = {"cost_model": {"cpu_time_weight": "1", "base_job_weight": "0"}}  # a job costs its CPU seconds


def check(server: LiveServer) -> dict[str, str]:
    with server.client() as client:
        answer = client.post("/v1/check", json={"tenant_id": "acme", "queue_name": "ml"})
    assert answer.status_code == 200, answer.text
    body: dict[str, str] = answer.json()
    return body


def budget(server: LiveServer) -> None:
    with server.client() as client:
        made = client.post("/v1/budgets", json={"tenant_id": "acme", "amount": "100", "period": {"type": "monthly"}})
    assert made.status_code == 201, made.text


def test_a_job_ingested_by_another_process_counts_at_the_next_check(start_server: StartServer, tmp_path: Path) -> None:
    server = start_server(config=PRICES)
    budget(server)
    assert check(server)["type"] == "allow"
    jobs = tmp_path / "jobs.jsonl"
    record = {"job_id": "big", "tenant_id": "acme", "queue_name": "ml", "cpu_time": 102, "memory_mb_seconds": 0}
    jobs.write_text(json.dumps({**record, "payload_bytes": 0, "redis_ops": 0, "network_bytes": 0}) + "\n")
    server.cli("ingest", str(jobs), "--no-notify")  # `jobbudget ingest`, its own process
    after = check(server)  # the very next check, no waiting
    assert after["type"] == "block", after
    assert Decimal(after["current_spend"]) == Decimal(102) and Decimal(after["utilization"]) == Decimal("1.02")
    with server.client() as client:  # what `tui --url` shows: the month's total and the budget rows agree
        board = client.get("/v1/dashboard").json()
    (row,) = board["budgets"]
    assert Decimal(row["spend"]) == Decimal(board["total_spend"]) == Decimal(102) and row["status"] == "Block"


def test_postgres_spend_of_another_process_counts_within_100_ms(start_server: StartServer, pg_schema: str) -> None:
    require_postgres()
    config = {**PRICES, "database_url": POSTGRES_URL, "database_schema": pg_schema}
    server = start_server(config=config)
    budget(server)
    assert check(server)["type"] == "allow"
    zero = Decimal(0)
    with BudgetService(Config(**config)) as writer:  # this test process is the other process
        writer.process_job_cost(JobMetrics("big", "acme", "ml", Decimal(102), zero, zero, zero, zero))
        committed = time.monotonic()
        while (answer := check(server))["type"] != "block":
            assert time.monotonic() - committed < 0.1, f"not seen within 100 ms: {answer}"
    assert Decimal(answer["current_spend"]) == Decimal(102)
