"""The one-node Slurm cluster of ``scripts/slurm/cluster.sh`` for the tests that use it
(``.ci/run`` starts it; without Slurm the tests skip, and fail in CI).

The cluster is one per machine and its ``job_submit.lua`` and jobcomp script are global,
so a test module holds :func:`cluster` (an exclusive lock on a file) for its whole run:
modules on other pytest workers wait for it, and each installs the files it needs."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import IN_CI

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "scripts" / "slurm" / "cluster.sh"
CONF_DIR = Path("/etc/slurm")
LOCK = Path("/tmp/jobbudget-slurm-tests.lock")
PASS_THROUGH_LUA = """\
function slurm_job_submit(job_desc, part_list, submit_uid) return slurm.SUCCESS end
function slurm_job_modify(job_desc, job_rec, part_list, modify_uid) return slurm.SUCCESS end
return slurm.SUCCESS
"""
NO_JOBCOMP = "#!/bin/sh\nexit 0\n"


def _unavailable(why: str) -> None:
    if IN_CI:
        pytest.fail(why)
    pytest.skip(why)


@contextmanager
def cluster() -> Iterator[None]:
    """The cluster up, idle, held for this module alone, with a pass-through
    ``job_submit.lua`` and no jobcomp script (put back at the end)."""
    if shutil.which("sbatch") is None or shutil.which("slurmctld") is None:
        _unavailable(
            "Slurm is not installed: apt-get install --no-install-recommends slurmctld slurmd slurm-client slurmdbd munge"
        )
    with LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            done = subprocess.run(["bash", str(CLUSTER), "start"], capture_output=True, text=True, timeout=180)
            if done.returncode != 0:
                _unavailable(f"the Slurm cluster did not start:\n{done.stdout}\n{done.stderr}")
            install_plain()
            yield
        finally:
            install_plain()
            fcntl.flock(lock, fcntl.LOCK_UN)


def install_plain() -> None:
    (CONF_DIR / "job_submit.lua").write_text(PASS_THROUGH_LUA, encoding="utf-8")
    jobcomp = CONF_DIR / "jobbudget-jobcomp.sh"
    jobcomp.write_text(NO_JOBCOMP, encoding="utf-8")
    jobcomp.chmod(0o755)


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
        ended = bool(fields) and fields[1].split(" ")[0] in ENDED and fields[2] != "Unknown"
        if ended and fields[3] and fields[4].rstrip("KMGT").isdigit():
            return lines[0]
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} not finished in accounting within {timeout} s: {lines}")


ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY")


def squeue_state(job_id: str) -> str:
    """The job's state as slurmctld knows it now ("" once it is forgotten)."""
    done = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=30
    )
    return done.stdout.strip()
