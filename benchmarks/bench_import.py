"""``jobbudget import`` end to end into a SQLite file (target: >= 20,000 jobs/s for
SWF and sacct): the real MetaCentrum trace (17,900 jobs, repeated under different id
prefixes to reach the job count) and a generated ``sacct --parsable2`` file (every job
with its ``.batch`` and ``.extern`` steps), timed through :func:`import_file`, the
function the command runs (file reading, parsing, pricing, storing).

    .venv/bin/python benchmarks/bench_import.py [--quick] [--lines N]
"""

from __future__ import annotations

import argparse
import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import report

from jobbudget import BudgetService, Config
from jobbudget.cli.import_cmd import ImportFormat, import_file
from jobbudget.demo import PACKAGED_TRACE, find_trace
from jobbudget.importers import open_input

TRACE = find_trace() or PACKAGED_TRACE  # the package ships it (gzip); $JOBBUDGET_DATA_DIR may name another copy
SACCT_HEADER = (
    "JobID|JobIDRaw|User|Group|Account|Partition|QOS|Submit|Start|End|Elapsed|ElapsedRaw|TotalCPU|"
    "CPUTimeRAW|MaxRSS|ReqMem|AllocCPUS|AllocTRES|State|ExitCode|NNodes"
)


def write_sacct(path: Path, lines: int) -> None:
    """About ``lines`` lines: each job is its line plus .batch and .extern steps."""
    rng = random.Random(7)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    fmt = "%Y-%m-%dT%H:%M:%S"
    with path.open("w", encoding="utf-8") as out:
        out.write(SACCT_HEADER + "\n")
        written, job = 1, 1000
        while written < lines:
            job += 1
            user = f"u{rng.randrange(60):02d}"
            cpus = rng.choice((1, 2, 4, 8, 16, 32))
            elapsed = rng.randrange(10, 86_400)
            begin = start + timedelta(seconds=job * 7)
            end = begin + timedelta(seconds=elapsed)
            h, rem = divmod(elapsed, 3600)
            dur = f"{h:02d}:{rem // 60:02d}:{rem % 60:02d}"
            used = rng.randrange(1, elapsed * cpus)
            uh, urem = divmod(used, 3600)
            total_cpu = f"{uh // 24}-{uh % 24:02d}:{urem // 60:02d}:{urem % 60:02d}.{rng.randrange(1000):03d}"
            part = rng.choice(("cpu", "gpu", "bigmem", "short"))
            common = f"{begin:{fmt}}|{begin:{fmt}}|{end:{fmt}}|{dur}|{elapsed}"
            tres = f"billing={cpus},cpu={cpus},mem={cpus * 4}G,node=1"
            out.write(
                f"{job}|{job}|{user}|g{user}|acct{rng.randrange(8)}|{part}|normal|{common}|{total_cpu}|"
                f"{elapsed * cpus}||{cpus * 4}G|{cpus}|{tres}|COMPLETED|0:0|1\n"
            )
            out.write(
                f"{job}.batch|{job}.batch||||||{common}|{total_cpu}|{elapsed * cpus}|{rng.randrange(1, 4_000_000)}K|"
                f"|{cpus}|cpu={cpus},mem={cpus * 4}G,node=1|COMPLETED|0:0|1\n"
            )
            out.write(
                f"{job}.extern|{job}.extern||||||{common}|00:00:00|{elapsed * cpus}|{rng.randrange(1, 2000)}K|"
                f"|{cpus}|billing={cpus},cpu={cpus},node=1|COMPLETED|0:0|1\n"
            )
            written += 3


def write_swf(path: Path, copies: int) -> None:
    """The real trace ``copies`` times in one file: each copy's job numbers shifted so
    ids stay unique (the file's name gives the id prefix)."""
    with open_input(str(TRACE)) as fh:
        lines = [line.rstrip("\n") for line in fh]
    with path.open("w", encoding="utf-8") as out:
        for copy in range(copies):
            for line in lines:
                if line.startswith(";") or not line.strip():
                    continue
                number, rest = line.split(maxsplit=1)
                out.write(f"{copy * 1_000_000 + int(number)} {rest}\n")


def time_import(path: Path, fmt: ImportFormat) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(database_url=f"sqlite:///{Path(tmp) / 'import.db'}", notifications_in_background=False)
        with BudgetService(config) as service:
            result = import_file(service, str(path), fmt, batch_size=10_000)  # the default model, as a user would
            again = import_file(service, str(path), fmt, batch_size=10_000)
    s = result.summary
    assert s.rejected == 0, s.errors[:3]
    assert again.summary.stored == 0 and again.summary.duplicates == s.stored, "second import must store nothing"
    return {
        "jobs": s.read,
        "stored": s.stored,
        "skipped": result.skipped,
        "seconds": round(result.seconds, 3),
        "jobs_per_s": round(result.jobs_per_s),
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "reimport_jobs_per_s": round(again.jobs_per_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small files: checks the script runs, not the figures")
    parser.add_argument("--lines", type=int, default=100_000, help="lines of the generated sacct file")
    args = parser.parse_args()
    lines = 3000 if args.quick else args.lines
    figures: dict[str, object] = {"target_jobs_per_s": 20_000, "batch_size": 10_000, "backend": "sqlite file"}
    with tempfile.TemporaryDirectory() as tmp:
        sacct = Path(tmp) / "sacct.txt"
        write_sacct(sacct, lines)
        figures["sacct"] = {"lines": lines, **time_import(sacct, ImportFormat.sacct)}
        if TRACE.is_file():
            swf = Path(tmp) / "wagap.swf"
            write_swf(swf, 1 if args.quick else 6)
            figures["swf"] = time_import(swf, ImportFormat.swf)
        else:
            figures["swf"] = f"skipped: {TRACE} not found"
    report("import", figures)


if __name__ == "__main__":
    main()
