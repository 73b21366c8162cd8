"""A real Slurm (issue 21, first step): the one-node cluster ``scripts/slurm/cluster.sh``
brings up (munge, slurmdbd on MariaDB, slurmctld, slurmd; ``.ci/run`` starts it) runs
jobs end to end, and what its accounting says of them is imported by ``jobbudget
import --format sacct`` once: the same export imported again is all duplicates.

Without Slurm on the machine these tests are skipped, and they fail in CI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import IN_CI

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "scripts" / "slurm" / "cluster.sh"
FIELDS = (
    "JobID,User,Account,Partition,Submit,Start,End,ElapsedRaw,TotalCPU,CPUTimeRAW,MaxRSS,ReqMem,AllocCPUS,"
    "AllocTRES,NNodes,NodeList,State"
)


@pytest.fixture(scope="module")
def slurm() -> Iterator[None]:
    if shutil.which("sbatch") is None or shutil.which("slurmctld") is None:
        why = "Slurm is not installed: apt-get install --no-install-recommends slurmctld slurmd slurm-client slurmdbd munge"
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)
    done = subprocess.run(["bash", str(CLUSTER), "start"], capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        message = f"the Slurm cluster did not start:\n{done.stdout}\n{done.stderr}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    yield


def run(*command: str, timeout: float = 60) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stdout}\n{done.stderr}"
    return done.stdout


def finished(job_id: str, timeout: float = 60) -> str:
    """The job's sacct line once slurmdbd holds its whole record.  Found here: for a
    second or so after a short job ends, its record can lack the partition and show a
    garbled ReqMem (the start message lands after the end); the importer rejects such
    a line, and a later backfill stores it."""
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = run(
            "sacct", "-X", "-n", "-j", job_id, "--parsable2", "-o", "JobID,State,End,Partition,ReqMem"
        ).splitlines()
        fields = lines[0].split("|") if lines else []
        ended = bool(fields) and fields[1] in ("COMPLETED", "FAILED", "CANCELLED") and fields[2] != "Unknown"
        if ended and fields[3] and fields[4].rstrip("KMGT").isdigit():
            return lines[0]
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} not finished in accounting within {timeout} s: {lines}")


def test_a_job_runs_and_its_accounting_is_imported_once(slurm: None, tmp_path: Path) -> None:
    out = tmp_path / "job-%j.out"  # each job its own output path
    job_id = run("sbatch", "--parsable", "-p", "debug", "-c", "1", "--mem", "100M", "-o", str(out),
                 "--wrap", "sleep 2; echo done").strip().split(";")[0]  # fmt: skip
    state = finished(job_id)
    assert state.split("|")[1] == "COMPLETED", state
    assert (tmp_path / f"job-{job_id}.out").read_text().strip() == "done"
    export = tmp_path / "sacct.txt"
    export.write_text(run("sacct", "-a", "-j", job_id, "--parsable2", "-o", FIELDS))
    database = f"sqlite:///{tmp_path / 'jb.db'}"
    jobbudget = str(Path(sys.executable).with_name("jobbudget"))
    first = json.loads(run(jobbudget, "import", "--format", "sacct", str(export), "--database-url", database, "--json"))
    again = json.loads(run(jobbudget, "import", "--format", "sacct", str(export), "--database-url", database, "--json"))
    assert first["stored"] == 1 and first["duplicates"] == 0, first
    assert again["stored"] == 0 and again["duplicates"] == 1, again  # a backfill run twice counts the job once


def test_a_typed_gpu_job_is_billed_for_its_gpu_seconds(slurm: None, tmp_path: Path) -> None:
    """A real Slurm's own record of a GPU job (AllocTRES gres/gpu:a100=1, from GPUs the
    node declares without hardware), imported at two prices of an A100-second: the
    difference is that price times the GPU-seconds sacct gives (ElapsedRaw x 1 GPU)."""
    job_id = run("sbatch", "--parsable", "-p", "gpu", "--gres=gpu:a100:1", "-c", "1", "--mem", "100M",
                 "-o", str(tmp_path / "gpu-%j.out"), "--wrap", "sleep 2").strip().split(";")[0]  # fmt: skip
    assert finished(job_id).split("|")[1] == "COMPLETED"
    export = tmp_path / "sacct.txt"
    export.write_text(run("sacct", "-a", "-j", job_id, "--parsable2", "-o", FIELDS))
    line = export.read_text().splitlines()[1].split("|")
    record = dict(zip(FIELDS.split(","), line, strict=True))
    assert "gres/gpu:a100=1" in record["AllocTRES"], record
    elapsed = int(record["ElapsedRaw"])
    jobbudget = str(Path(sys.executable).with_name("jobbudget"))
    totals = []
    for price in ("0", "0.5"):
        database = f"sqlite:///{tmp_path / f'gpu-{price}.db'}"
        done = json.loads(run(jobbudget, "import", "--format", "sacct", str(export), "--price", f"gpu:a100={price}",
                              "--database-url", database, "--json"))  # fmt: skip
        assert done["stored"] == 1, done
        totals.append(Decimal(done["total_cost"]))
    assert totals[1] - totals[0] == Decimal("0.5") * elapsed * 1
