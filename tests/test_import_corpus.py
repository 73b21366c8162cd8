"""Real public exports (``data/sacct``, ``data/swf``; provenance and licences in
``data/PROVENANCE.md``) imported as a user would, with the counts computed by
``awk`` from the files themselves (the commands are in PROVENANCE.md), never by the
importer."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import DATA_DIR
from jobbudget.cli.importing import ImportFormat, ImportResult, import_file
from jobbudget.config import Config
from jobbudget.importers import ParsedJob, SacctOptions, open_input, parse_sacct, sacct_columns
from jobbudget.service import BudgetService

SACCT = DATA_DIR / "sacct"
SWF = DATA_DIR / "swf"
SLYME = (
    "User,JobID,JobName,State,Partition,NCPUS,NNodes,CPUTime,TotalCPU,UserCPU,SystemCPU,ReqMem,MaxRSS,"
    "Submit,Start,End,NodeList"
)


def run_import(tmp_path: Path, file: Path, fmt: ImportFormat, **options: object) -> ImportResult:
    with BudgetService(
        Config(database_url=f"sqlite:///{tmp_path / 'corpus.db'}", cost_model={"preset": "default"})
    ) as service:
        return import_file(service, str(file), fmt, **options)  # type: ignore[arg-type]


def test_xdmod_reference_export_without_a_header(tmp_path: Path) -> None:
    """4,285 jobs of XDMoD's reference cluster (gzip, no header, XDMoD's 26 columns
    with NCPUS): 239 never started (``None assigned``), 4,046 billed, of which 2 held
    GPUs (AllocTRES ``gres/gpu=2``), which the default model does not price: they are
    refused, naming the resource, until a price for ``gpu`` is given."""
    columns = sacct_columns("xdmod")
    result = run_import(tmp_path, SACCT / "xdmod_phillips.log.gz", ImportFormat.sacct, columns=columns)
    assert (result.summary.stored, result.skipped, result.summary.rejected) == (4044, 239, 2)
    assert result.skipped_reasons == {"never started": 239}
    assert result.summary.rejected_reasons == {"no price for gpu": 2}
    assert {(e.line, e.field) for e in result.summary.errors} == {(1, "resources.gpu"), (4269, "resources.gpu")}
    assert all("no price for gpu" in e.message and "--price gpu=DOLLARS" in e.message for e in result.summary.errors)
    assert result.summary.total_cost > 0
    again = run_import(
        tmp_path, SACCT / "xdmod_phillips.log.gz", ImportFormat.sacct, columns=columns, prices={"gpu": Decimal("0.001")}
    )
    assert (again.summary.stored, again.summary.duplicates, again.summary.rejected) == (2, 4044, 0)
    # 1,824,886 GPU-seconds (awk, PROVENANCE.md) at 0.001 $, on top of their CPU and memory
    assert again.summary.total_cost > Decimal("1824.886")


def test_xdmod_reference_gpu_seconds_match_awk() -> None:
    """The GPU-seconds the parser reads equal those computed with awk (PROVENANCE.md):
    jobs 163485 (10-13:27:06 × 2 GPUs) and 196835 (17 s × 2), 1,824,886 in all."""
    options = SacctOptions(columns=sacct_columns("xdmod"))
    with open_input(str(SACCT / "xdmod_phillips.log.gz")) as lines:
        jobs = [item.metrics for item in parse_sacct(lines, options) if isinstance(item, ParsedJob)]
    gpu = {m.job_id: m.resources["gpu"] for m in jobs if m.resources}
    assert gpu == {"slurm-163485": Decimal(1824852), "slurm-196835": Decimal(34)}
    assert sum(gpu.values()) == Decimal(1824886)
    assert {m.exit_state for m in jobs} >= {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}
    assert all(m.qos for m in jobs)  # XDMoD's 5th column


def test_xdmod_unit_exports(tmp_path: Path) -> None:
    columns = sacct_columns("xdmod")
    logs = run_import(tmp_path, SACCT / "xdmod_accounting-logs.log", ImportFormat.sacct, columns=columns)
    assert (logs.summary.stored, logs.summary.rejected) == (3, 1)
    (error,) = logs.summary.errors
    assert (error.line, error.field) == (4, "Partition") and "empty" in error.message  # hand-edited row
    arrays = run_import(
        tmp_path, SACCT / "xdmod_accounting-logs-with-job-arrays.log", ImportFormat.sacct, columns=columns
    )
    assert (arrays.summary.stored, arrays.summary.rejected, arrays.skipped) == (6, 0, 0)


def test_aalto_export_with_a_header(tmp_path: Path) -> None:
    result = run_import(tmp_path, SACCT / "slurm2sql_test-data1.csv", ImportFormat.sacct)
    assert (result.summary.stored, result.summary.rejected, result.skipped) == (1, 0, 1)  # one End is Unknown
    assert result.skipped_reasons == {"not finished": 1}


@pytest.mark.parametrize(("name", "cpu"), [("parallel", Decimal(189)), ("serial", None)])
def test_harvard_slurm_14_exports_with_their_columns(tmp_path: Path, name: str, cpu: Decimal | None) -> None:
    file = SACCT / f"slyme_sacct_single_{name}_COMPLETED_parsable.out"
    result = run_import(tmp_path, file, ImportFormat.sacct, columns=sacct_columns(SLYME))
    assert (result.summary.stored, result.summary.rejected) == (1, 0)
    without = run_import(tmp_path / "..", file, ImportFormat.sacct)  # no --columns: a clear first-line error
    assert without.summary.rejected == 1 and "--columns" in without.summary.errors[0].message


def test_an_export_without_end_times_is_refused_by_name(tmp_path: Path) -> None:
    result = run_import(tmp_path, SACCT / "slurmio_sacct.txt", ImportFormat.sacct)
    (error,) = result.summary.errors
    assert error.line == 1 and error.field == "End" and result.summary.stored == 0


def test_parallel_workloads_archive_logs(tmp_path: Path) -> None:
    nasa = run_import(tmp_path, SWF / "cloudsimplus_NASA-iPSC-1993-3.1-cln.swf.gz", ImportFormat.swf)
    assert (nasa.summary.stored, nasa.skipped, nasa.summary.rejected) == (18066, 173, 0)
    hpc2n = run_import(tmp_path, SWF / "alea_hpc2n.swf.gz", ImportFormat.swf, queue_from="partition")
    assert (hpc2n.summary.stored, hpc2n.skipped, hpc2n.summary.rejected) == (3145, 25, 0)
    with BudgetService(Config(database_url=f"sqlite:///{tmp_path / 'corpus.db'}")) as service:
        start, end = date(2002, 7, 1), date(2002, 12, 31)
        tenants = {f"user-{n}" for n in range(1, 300)}
        queues = {row.queue_name for t in tenants for row in service.get_daily_costs(t, start=start, end=end)}
        assert queues == {"DEFAULT"}  # every HPC2N job ran in partition 1, named by the header


def test_the_installed_command_reads_a_compressed_export(tmp_path: Path) -> None:
    """``jobbudget import`` as a user runs it, on the gzip file as published."""
    db = f"sqlite:///{tmp_path / 'cmd.db'}"
    exe = Path(sys.executable).with_name("jobbudget")
    subprocess.run([str(exe), "init", "--database-url", db], check=True, capture_output=True)
    done = subprocess.run(
        [str(exe), "import", "--format", "sacct", "--columns", "xdmod", "--json", "--database-url", db,
         "--price", "gpu=0.0008", str(SACCT / "xdmod_phillips.log.gz")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["stored"], data["skipped"], data["rejected"]) == (4046, 239, 0)
    assert data["prices"] == {"gpu": "0.0008"} and data["cost_model_version"] == 2
