"""``jobbudget import`` end to end on a SQLite file (Typer's CliRunner)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import Result

from cli_support import Run, cli_on, json_of, runner
from jobbudget.cli import app
from jobbudget.cli.import_cmd import ImportFormat, import_file, resolve_cost_model
from jobbudget.config import Config
from jobbudget.demo import PACKAGED_TRACE
from jobbudget.domain.errors import ValidationError
from jobbudget.service import BudgetService

TRACE = PACKAGED_TRACE  # shipped in the package, gzip-compressed

SWF = """\
; UnixStartTime: 1000000000
; Queues: 1 = batch, 2 = express
1 0 10 100 4 -1 -1 4 200 1024 1 7 3 1 1 1 -1 -1
2 50 0 3600 2 -1 -1 2 4000 2048 1 8 3 1 2 2 -1 -1
3 60 5 -1 4 -1 -1 4 200 1024 5 7 3 1 1 1 -1 -1
4 70 5 10 oops -1 -1 4 200 1024 1 7 3 1 1 1 -1 -1
"""
SACCT = """\
JobID|User|Group|Account|Partition|QOS|Start|End|ElapsedRaw|TotalCPU|MaxRSS|AllocCPUS|State
10|alice|physics|p1|cpu|normal|2024-01-10T10:00:00|2024-01-10T11:00:00|3600|01:00:00||4|COMPLETED
10.batch|||p1|||2024-01-10T10:00:00|2024-01-10T11:00:00|3600|00:59:00|2048K|4|COMPLETED
11|bob|chem|p2|gpu|high|2024-01-10T10:00:00|Unknown|600|||2|RUNNING
12|carol|chem|p2|gpu|high|2024-01-10T10:00:00|2024-01-10T10:10:00|600|10 min||2|COMPLETED
"""


pytestmark = pytest.mark.usefixtures("cli_env")


@pytest.fixture
def run(db: str) -> Run:
    """``jobbudget import ARGS --no-notify`` on ``db`` (no `jobbudget init` first)."""
    cli = cli_on(db, init=False)

    def invoke(*args: str) -> Result:
        return cli("import", *args, "--no-notify")

    return invoke


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_swf_import_is_idempotent_and_reports_lines(run: Run, tmp_path: Path) -> None:
    path = write(tmp_path, "small.swf", SWF)
    first = run("--format", "swf", path)
    assert first.exit_code == 1  # line 6 rejected
    assert "rejected line 6: allocated_processors: field 5 must be a number" in first.stderr
    assert "3 jobs read: 2 stored, 0 duplicates, 1 rejected; 1 skipped (1 never ran)" in first.stdout
    data = json_of(run("--format", "swf", path, "--json"))
    assert (data["read"], data["stored"], data["duplicates"], data["rejected"], data["skipped"]) == (3, 0, 2, 1, 1)
    assert data["errors"] == [
        {
            "line": 6,
            "field": "allocated_processors",
            "message": "allocated_processors: field 5 must be a number (got 'oops')",
        }
    ]
    assert data["skipped_reasons"] == {"never ran": 1}
    assert data["cost_model"] is None


def test_strict_stores_nothing(run: Run, tmp_path: Path) -> None:
    path = write(tmp_path, "small.swf", SWF)
    data = json_of(run("--format", "swf", path, "--strict", "--json"))
    assert (data["stored"], data["rejected"]) == (0, 1)
    fixed = write(tmp_path, "small.swf", SWF.replace(" oops ", " 4 "))
    data = json_of(run("--format", "swf", fixed, "--strict", "--json"))
    assert (data["stored"], data["rejected"]) == (3, 0)


def test_tenant_and_queue_sources(tmp_path: Path) -> None:
    path = write(tmp_path, "small.swf", SWF.replace(" oops ", " 4 "))
    with BudgetService(Config(database_url=f"sqlite:///{tmp_path / 'x.db'}")) as service:
        by_user = import_file(service, path, ImportFormat.swf)
        by_group = import_file(service, path, ImportFormat.swf, tenant_from="group", queue_from="partition")
        assert by_user.summary.stored == by_group.summary.stored == 3  # another tenant: new jobs
        assert service.get_job_cost("user-7", "small-1") is not None
        assert service.get_job_cost("group-3", "small-1") is not None
        assert service.get_job_cost("group-3", "small-2") is not None


def test_sacct_import_with_account_qos_and_timezone(run: Run, tmp_path: Path) -> None:
    path = write(tmp_path, "sacct.txt", SACCT)
    result = run("--format", "sacct", path, "--tenant-from", "account", "--queue-from", "qos", "--json")
    assert result.exit_code == 1
    data = json_of(result)
    assert (data["read"], data["stored"], data["rejected"], data["skipped"]) == (2, 1, 1, 1)
    assert data["errors"][0]["line"] == 5 and data["errors"][0]["field"] == "TotalCPU"
    assert data["skipped_reasons"] == {"not finished": 1}
    again = json_of(run("--format", "sacct", path, "--tenant-from", "account", "--queue-from", "qos", "--json"))
    assert (again["stored"], again["duplicates"]) == (0, 1)
    other = json_of(run("--format", "sacct", path, "--timezone", "Europe/Prague", "--id-prefix", "c2", "--json"))
    assert other["stored"] == 1


def test_cost_model_switch_is_reported(run: Run, tmp_path: Path) -> None:
    path = write(tmp_path, "sacct.txt", SACCT.replace("10 min", "00:10:00"))
    result = run("--format", "sacct", path, "--cost-model", "gcp")
    assert result.exit_code == 0, result.output
    assert "Cost model switched to 'gcp' (version 2)." in result.stdout
    data = json_of(run("--format", "sacct", path, "--cost-model", "production", "--json"))
    assert data["cost_model"] == "production" and data["cost_model_version"] == 3
    bad = run("--format", "sacct", path, "--cost-model", "cheap")
    assert bad.exit_code == 2 and "unknown cost model" in bad.stderr


def test_jsonl_and_csv_work_as_with_ingest(run: Run, tmp_path: Path) -> None:
    record = {
        "job_id": "j1",
        "tenant_id": "acme",
        "queue_name": "q",
        "cpu_time": 10,
        "memory_mb_seconds": 0,
        "payload_bytes": 0,
        "redis_ops": 0,
        "network_bytes": 0,
        "timestamp": "2024-01-10T10:00:00Z",
    }
    path = write(tmp_path, "a.jsonl", json.dumps(record) + "\n")
    data = json_of(run("--format", "jsonl", path, "--json"))
    assert data["stored"] == 1 and Decimal(data["total_cost"]) > 0
    csv_path = write(tmp_path, "a.csv", ",".join(record) + "\n" + ",".join(str(v) for v in record.values()) + "\n")
    assert json_of(run("--format", "csv", csv_path, "--json"))["duplicates"] == 1
    refused = run("--format", "csv", csv_path, "--tenant-from", "group")
    assert refused.exit_code == 2 and "swf and sacct only" in refused.stderr


def test_unknown_format_and_missing_file(run: Run, tmp_path: Path) -> None:
    assert run("--format", "xml", "a.xml").exit_code == 2
    missing = run("--format", "swf", str(tmp_path / "nope.swf"))
    assert missing.exit_code == 2 and "cannot read" in missing.stderr


def test_help_names_the_options() -> None:
    result = runner.invoke(app, ["import", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for word in (
        "--format",
        "--tenant-from",
        "--queue-from",
        "--cost-model",
        "--swf-memory-unit",
        "--timezone",
        "--strict",
    ):
        assert word in result.stdout, word


def test_resolve_cost_model_names() -> None:
    assert resolve_cost_model("staging").environment_multiplier == Decimal("0.5")
    assert resolve_cost_model("aws").cpu_time_weight > 0
    with pytest.raises(ValidationError):
        resolve_cost_model("nope")


def test_real_trace_end_to_end(tmp_path: Path) -> None:
    with BudgetService(Config(database_url=f"sqlite:///{tmp_path / 't.db'}")) as service:
        first = import_file(service, str(TRACE), ImportFormat.swf, cost_model="gcp")
        assert (first.summary.stored, first.summary.rejected, first.skipped) == (17898, 0, 2)
        again = import_file(service, str(TRACE), ImportFormat.swf)
        assert (again.summary.stored, again.summary.duplicates) == (0, 17898)


def test_a_real_log_with_no_flags_stores_every_job_that_ran_at_believable_prices(run: Run) -> None:
    """A fresh database, `jobbudget import --format swf` of the MetaCentrum trace with
    no other flag: all 17,898 jobs that ran are stored, none over the per-job limit."""
    data = json_of(run("--format", "swf", str(TRACE), "--json"))
    assert (data["stored"], data["rejected"], data["skipped"]) == (17898, 0, 2)
    # 306 core-years and 10.4 million GiB-hours held: about 135,000 $ at list prices
    assert Decimal(100_000) < Decimal(data["total_cost"]) < Decimal(200_000)
