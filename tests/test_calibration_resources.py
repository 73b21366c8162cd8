"""Calibration fits the prices of named resources (GPUs) like the built-in weights,
from benchmarks in Python or in CSV (``resources.NAME`` columns)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from jobbudget.domain.calibration import BenchmarkResult, calibrate
from jobbudget.domain.calibration_io import BenchmarkFileError, read_benchmarks_csv
from jobbudget.domain.cost import CostModel

D = Decimal
TRUE_CPU = D("0.00002")
TRUE_A100 = D("0.0009")
TRUE_H100 = D("0.0014")
AT = datetime(2026, 11, 1, tzinfo=UTC)


def benchmarks(n: int = 40) -> list[BenchmarkResult]:
    rng = random.Random(7)
    out = []
    for i in range(n):
        cpu, a100, h100 = D(rng.randrange(100, 100_000)), D(rng.randrange(0, 50_000)), D(rng.randrange(0, 20_000))
        cost = cpu * TRUE_CPU + a100 * TRUE_A100 + h100 * TRUE_H100 + D("0.00001")
        out.append(
            BenchmarkResult(
                job_type=f"train-{i % 3}",
                actual_cost=cost.quantize(D("1e-9")),
                calculated_cost=D(0),
                cpu_time=cpu,
                memory_mb_seconds=D(rng.randrange(0, 10**6)),
                payload_bytes=D(0),
                redis_ops=D(0),
                network_bytes=D(0),
                infrastructure_cost=cost,
                timestamp=AT,
                resources={"gpu:a100": a100, "gpu:h100": h100},
            )
        )
    return out


def test_gpu_prices_are_fitted_and_reported() -> None:
    result = calibrate(benchmarks(), CostModel(resources={"gpu": D("0.0005")}))
    model = result.model
    assert abs(model.resources["gpu:a100"] - TRUE_A100) / TRUE_A100 < D("0.001")
    assert abs(model.resources["gpu:h100"] - TRUE_H100) / TRUE_H100 < D("0.001")
    assert model.resources["gpu"] == D("0.0005")  # the family price stays for other types
    assert abs(model.cpu_time_weight - TRUE_CPU) / TRUE_CPU < D("0.001")
    changes = {c.name: c for c in result.report.weight_changes}
    assert changes["resources.gpu:a100"].old == D("0.0005")  # priced by its family before
    assert result.report.accuracy_after > 0.99 > result.report.accuracy_before


def test_a_resource_no_benchmark_varies_keeps_its_price() -> None:
    flat = [b.__class__(**{**{f: getattr(b, f) for f in b.__slots__}, "resources": {"gpu:a100": D(100)}})
            for b in benchmarks()]  # fmt: skip
    report = calibrate(flat, CostModel(resources={"gpu:a100": D("0.001")})).report
    assert "resources.gpu:a100" in {u.name for u in report.unidentified_components}


def test_csv_resource_columns() -> None:
    text = "actual_cost,cpu_time,memory_mb_seconds,payload_bytes,redis_ops,network_bytes,timestamp,resources.gpu:a100\n"
    text += "1.5,10,0,0,0,0,2026-11-01T00:00:00Z,1000\n"
    [b] = read_benchmarks_csv(text.splitlines(keepends=True), model=CostModel(resources={"gpu": D("0.001")}))
    assert b.resources == {"gpu:a100": D(1000)} and b.calculated_cost == D("1.0001") + D("0.00001")
    bad = text.replace("resources.gpu:a100", "resources.GPU A100")
    with pytest.raises(BenchmarkFileError) as err:
        read_benchmarks_csv(bad.splitlines(keepends=True))
    assert "resource name" in str(err.value)
