"""Helpers shared by the benchmark scripts (not a test: run them, read the figures)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(os.environ.get("JOBBUDGET_BENCH_RESULTS", Path(__file__).parent / "results"))
POSTGRES_URL = os.environ.get("JOBBUDGET_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def jobbudget_cli() -> list[str]:
    """The ``jobbudget`` console script next to this interpreter (else ``-m``)."""
    script = Path(sys.executable).with_name("jobbudget")
    if script.exists():
        return [str(script)]
    found = shutil.which("jobbudget")
    return [found] if found else [sys.executable, "-m", "jobbudget.cli.app"]


def machine() -> str:
    return (
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}"
    )


def best_of(runs: int, fn: Callable[[], float]) -> float:
    """Run ``fn`` (returning a rate) ``runs`` times and keep the best."""
    return max(fn() for _ in range(runs))


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def summarize_latencies(ns: list[int]) -> dict[str, float]:
    values = sorted(v / 1000 for v in ns)
    return {
        "n": len(values),
        "mean_us": statistics.fmean(values),
        "p50_us": percentile(values, 0.50),
        "p99_us": percentile(values, 0.99),
        "p999_us": percentile(values, 0.999),
        "max_us": values[-1],
    }


def report(name: str, figures: dict[str, Any]) -> None:
    figures = {"benchmark": name, "machine": machine(), "at": time.strftime("%Y-%m-%d %H:%M:%S"), **figures}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
