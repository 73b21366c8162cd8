"""What jobbudget adds to ``sbatch``, and how soon a finished job is metered, on the real
one-node Slurm of ``scripts/slurm/cluster.sh`` (slurmctld, slurmd, slurmdbd on MariaDB)
with ``jobbudget serve`` on SQLite.

- **Submission**: wall time of ``sbatch --hold`` (held: nothing runs, every job takes
  the same path), one after another, with the cluster's pass-through ``job_submit.lua``
  (the floor: the same Lua plugin doing nothing) and with jobbudget's (a budget in force,
  so each job is priced and holds its estimate).  Also with jobbudget unreachable
  (fail open: the connection is refused at once).
- **Metering delay**: short jobs run one after another; the time from slurmctld first
  showing a job ended (``squeue``, polled every 10 ms) to ``jobbudget serve`` having it
  (``GET /v1/jobs/...``, polled every 10 ms).

Holds the tests' lock on the cluster (/tmp/jobbudget-slurm-tests.lock) while it runs.

    .venv/bin/python benchmarks/bench_slurm.py [--submits 100] [--jobs 20]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from _common import free_port, jobbudget_cli, percentile, report

CONF_DIR = Path("/etc/slurm")
CLUSTER = Path(__file__).resolve().parents[1] / "scripts" / "slurm" / "cluster.sh"
LOCK = Path("/tmp/jobbudget-slurm-tests.lock")
PASS_THROUGH = """\
function slurm_job_submit(job_desc, part_list, submit_uid) return slurm.SUCCESS end
function slurm_job_modify(job_desc, job_rec, part_list, modify_uid) return slurm.SUCCESS end
return slurm.SUCCESS
"""
CONFIG = {
    "slurm": {"tenants": {"root": "bench"}},
    "cost_model": {"preset": "default", "cpu_time_weight": "0.01", "memory_weight": "0", "base_job_weight": "0"},
}


def plain() -> None:
    (CONF_DIR / "job_submit.lua").write_text(PASS_THROUGH, encoding="utf-8")
    (CONF_DIR / "jobbudget-jobcomp.sh").write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")


def submit_times(count: int, out: Path) -> tuple[list[float], list[str]]:
    """Milliseconds per ``sbatch --hold``, and the ids of the jobs it made."""
    times, ids = [], []
    for _ in range(count):
        started = time.perf_counter()
        done = subprocess.run(
            ["sbatch", "--parsable", "--hold", "-p", "debug", "-c", "1", "-t", "1", "-o", str(out / "j-%j.out"),
             "--wrap", "true"], capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        times.append((time.perf_counter() - started) * 1000)
        if done.returncode == 0:
            ids.append(done.stdout.strip().split(";")[0])
    if ids:
        subprocess.run(["scancel", *ids], check=False, timeout=60)
    return times, ids


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "n": len(ordered),
        "p50_ms": round(percentile(ordered, 0.5), 1),
        "p99_ms": round(percentile(ordered, 0.99), 1),
    }


def metering_delays(count: int, base: str, key: str, out: Path) -> list[float]:
    delays = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
        for _ in range(count):
            done = subprocess.run(
                ["sbatch", "--parsable", "-p", "debug", "-c", "1", "-t", "1", "-o", str(out / "j-%j.out"),
                 "--wrap", "true"], capture_output=True, text=True, timeout=60, check=True,
            )  # fmt: skip
            job = done.stdout.strip().split(";")[0]
            ended: float | None = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                state = subprocess.run(
                    ["squeue", "-h", "-t", "all", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=30
                ).stdout.strip()
                if ended is None and state in ("COMPLETED", "FAILED", "CANCELLED", ""):
                    ended = time.monotonic()
                if client.get(f"/v1/jobs/bench/slurm-{job}").status_code == 200:
                    delays.append((time.monotonic() - (ended or time.monotonic())) * 1000)
                    break
                time.sleep(0.01)
            else:
                raise RuntimeError(f"job {job} was not metered within 60 s")
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--submits", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--locked", action="store_true", help="the caller holds the cluster's lock already")
    args = parser.parse_args()
    if shutil.which("sbatch") is None:
        print("slurm: skipped, Slurm is not installed (.ci/run installs it)")
        report("slurm", {"skipped": "Slurm is not installed"})
        return
    with LOCK.open("a") as lock, tempfile.TemporaryDirectory() as tmp:
        if not args.locked:
            fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(["bash", str(CLUSTER), "start"], check=True, capture_output=True, timeout=180)
        work = Path(tmp)
        (work / "jobbudget.yaml").write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
        common = ["--database-url", f"sqlite:///{work / 'bench.db'}", "--config", str(work / "jobbudget.yaml")]
        created = subprocess.run(
            [*jobbudget_cli(), "apikey", "create", "--role", "admin", "--json", *common],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        key = json.loads(created.stdout)["key"]
        subprocess.run(
            [*jobbudget_cli(), "budget", "create", "--tenant", "bench", "--queue", "debug", "--amount", "1000000",
             *common], capture_output=True, check=True,
        )  # fmt: skip
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [*jobbudget_cli(), "serve", "--port", str(port), *common],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        results: dict[str, Any] = {}
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            plain()
            submit_times(3, work)  # warm-up
            floor, _ = submit_times(args.submits, work)
            install = [*jobbudget_cli(), "slurm", "install", "--url", base, "--dir", str(CONF_DIR), "--key", key,
                       "--force"]  # fmt: skip
            subprocess.run(install, check=True, capture_output=True)
            submit_times(3, work)
            with_plugin, ids = submit_times(args.submits, work)
            if len(ids) != args.submits:
                raise RuntimeError(f"jobbudget admitted {len(ids)} of {args.submits} jobs")
            delays = metering_delays(args.jobs, base, key, work)
            unreachable = [*install[:4], f"http://127.0.0.1:{free_port()}", *install[5:]]
            subprocess.run(unreachable, check=True, capture_output=True)
            fail_open, _ = submit_times(max(10, args.submits // 5), work)
            results = {
                "submits": args.submits,
                "sbatch_floor": summary(floor),
                "sbatch_with_jobbudget": summary(with_plugin),
                "sbatch_jobbudget_unreachable_fail_open": summary(fail_open),
                "metering_delay": summary(delays),
                "metering_delays_ms": [round(d, 1) for d in delays],
            }
            results["added_p50_ms"] = round(
                results["sbatch_with_jobbudget"]["p50_ms"] - results["sbatch_floor"]["p50_ms"], 1
            )
            results["added_p99_ms"] = round(
                results["sbatch_with_jobbudget"]["p99_ms"] - results["sbatch_floor"]["p99_ms"], 1
            )
            results["with_over_floor_p50"] = round(
                results["sbatch_with_jobbudget"]["p50_ms"] / results["sbatch_floor"]["p50_ms"], 2
            )
        finally:
            plain()
            server.terminate()
            server.wait(timeout=30)
            if not args.locked:
                fcntl.flock(lock, fcntl.LOCK_UN)
    report("slurm", results)
    f, w, d = results["sbatch_floor"], results["sbatch_with_jobbudget"], results["metering_delay"]
    print(
        f"slurm sbatch: p50 {f['p50_ms']} ms / p99 {f['p99_ms']} ms without jobbudget, p50 {w['p50_ms']} ms / "
        f"p99 {w['p99_ms']} ms with it; metered {d['p50_ms']} ms (p50) / {d['p99_ms']} ms (p99) after the job ended"
    )


if __name__ == "__main__":
    main()
