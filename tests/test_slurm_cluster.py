"""A real Slurm (issue 21, first step): the one-node cluster ``scripts/slurm/cluster.sh``
brings up (munge, slurmdbd on MariaDB, slurmctld, slurmd; ``.ci/run`` starts it) runs
jobs end to end, and what its accounting says of them is imported by ``jobbudget
import --format sacct`` once: the same export imported again is all duplicates.

Without Slurm on the machine these tests are skipped, and they fail in CI."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from slurm_support import cluster, finished, run

pytestmark = pytest.mark.slow
FIELDS = (
    "JobID,User,Account,Partition,Submit,Start,End,ElapsedRaw,TotalCPU,CPUTimeRAW,MaxRSS,ReqMem,AllocCPUS,"
    "AllocTRES,NNodes,NodeList,State"
)


@pytest.fixture(scope="module")
def slurm() -> Iterator[None]:
    with cluster():
        yield


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
