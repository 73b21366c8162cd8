"""Cost model calibration: NNLS, the weight fit, scores, recommendations, CSV input."""

from __future__ import annotations

import io
import itertools
import math
import random
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from jobbudget.domain.calibration import (
    APPLY,
    COLLECT_MORE,
    KEEP,
    WEIGHTS,
    BenchmarkResult,
    ModelCalibrator,
    accuracy_score,
    calibrate,
    recommend_action,
    relative_errors,
    signed_drift,
)
from jobbudget.domain.calibration_fit import round_weight
from jobbudget.domain.calibration_io import BenchmarkFileError, read_benchmarks_csv
from jobbudget.domain.cost import CostCalculationEngine, CostModel, default_cost_model
from jobbudget.domain.errors import ValidationError
from jobbudget.domain.nnls import nnls

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
USAGES = ("cpu_time", "memory_mb_seconds", "payload_bytes", "redis_ops", "network_bytes")
UNITS = (1, 1, 1024, 1, 1048576)
#: The "real" prices the benchmarks are generated from (unlike the default model's).
TRUE = CostModel(
    cpu_time_weight=Decimal("0.00015"),
    memory_weight=Decimal("0.000008"),
    payload_weight=Decimal("0.00003"),
    redis_ops_weight=Decimal("0.000002"),
    network_weight=Decimal("0.02"),
    base_job_weight=Decimal("0.002"),
)


def bench(actual: Any = "0.01", **usage: Any) -> BenchmarkResult:
    values: dict[str, Any] = {name: 0 for name in USAGES} | usage
    return BenchmarkResult(
        job_type="t",
        actual_cost=Decimal(actual),
        calculated_cost=Decimal(0),
        infrastructure_cost=Decimal(actual),
        timestamp=T0,
        **values,
    )


def make_benchmarks(
    seed: int,
    n: int,
    *,
    model: CostModel = TRUE,
    noise: float = 0.02,
    active: float = 0.3,
    fixed: dict[str, int] | None = None,
) -> list[BenchmarkResult]:
    """``n`` jobs priced by ``model`` with Gaussian multiplicative noise (σ = ``noise``).

    Each component is used by a job with probability ``active`` (a benchmark suite of
    varied job types); when used, its cost is 0.5-2 times the per-job base cost, so
    every weight matters.  ``fixed`` sets a usage to the same value in every job."""
    rng = random.Random(seed)
    engine = CostCalculationEngine(model)
    base = float(model.base_job_weight) or 0.002
    out = []
    for _ in range(n):
        usage: dict[str, Decimal] = {}
        for name, weight, unit in zip(USAGES, WEIGHTS, UNITS, strict=False):
            w = float(getattr(model, weight)) or float(getattr(TRUE, weight))
            used = rng.random() < active
            usage[name] = Decimal(round(rng.uniform(0.5, 2.0) * base / w * unit)) if used else Decimal(0)
        usage |= {k: Decimal(v) for k, v in (fixed or {}).items()}
        exact = engine.calculate_breakdown(**usage).total
        actual = (exact * Decimal(repr(1 + rng.gauss(0, noise)))).quantize(Decimal("1e-9"))
        out.append(
            BenchmarkResult(
                job_type="batch",
                actual_cost=max(actual, Decimal(0)),
                calculated_cost=exact,
                infrastructure_cost=max(actual, Decimal(0)),
                timestamp=T0,
                **usage,
            )
        )
    return out


def relative_weight_errors(model: CostModel, truth: CostModel = TRUE) -> dict[str, float]:
    return {w: abs(float(getattr(model, w) / getattr(truth, w)) - 1) for w in WEIGHTS}


# -- recovering known weights -------------------------------------------------------
def test_fifty_benchmarks_with_fixed_seed_recover_every_weight_within_5_percent() -> None:
    model = calibrate(make_benchmarks(2024, 50), default_cost_model()).model
    errors = relative_weight_errors(model)
    assert max(errors.values()) < 0.05, errors
    assert model.environment_multiplier == 1


def test_fifty_benchmarks_recover_every_weight_within_5_percent_for_20_seeds() -> None:
    worst = dict.fromkeys(WEIGHTS, 0.0)
    for seed in range(20):
        model = calibrate(make_benchmarks(seed, 50), default_cost_model()).model
        for name, error in relative_weight_errors(model).items():
            worst[name] = max(worst[name], error)
    assert max(worst.values()) < 0.05, worst


def test_more_benchmarks_give_tighter_weights() -> None:
    model = calibrate(make_benchmarks(7, 400), default_cost_model()).model
    assert max(relative_weight_errors(model).values()) < 0.025


def test_the_environment_multiplier_is_divided_out_and_kept() -> None:
    priced = replace(TRUE, environment_multiplier=Decimal(2))  # real costs include the ×2
    current = replace(default_cost_model(), environment_multiplier=Decimal(2))
    model = calibrate(make_benchmarks(3, 60, model=priced), current).model
    assert model.environment_multiplier == 2
    assert max(relative_weight_errors(model).values()) < 0.05


def test_noise_free_benchmarks_are_fitted_almost_exactly() -> None:
    result = calibrate(make_benchmarks(11, 30, noise=0.0), default_cost_model())
    assert max(relative_weight_errors(result.model).values()) < 1e-4
    assert result.report.accuracy_after > 0.9999
    assert result.report.cross_validated_accuracy > 0.9999


def test_weights_have_at_most_12_significant_digits() -> None:
    model = calibrate(make_benchmarks(5, 50), default_cost_model()).model
    for name in WEIGHTS:
        assert len(getattr(model, name).as_tuple().digits) <= 12
    assert round_weight(1 / 3) == Decimal("0.333333333333")
    assert round_weight(2.5e-7) == Decimal("2.5E-7")
    assert round_weight(120.0) == Decimal(120)
    assert round_weight(0.0) == round_weight(-1e-30) == 0


# -- NNLS -------------------------------------------------------------------------------
def brute_force_nnls(a: np.ndarray, b: np.ndarray) -> float:
    """The smallest residual over every support whose least-squares solution is ≥ 0
    (the NNLS optimum is the unconstrained solution on its own support)."""
    n = a.shape[1]
    best = math.inf
    for size in range(n + 1):
        for support in itertools.combinations(range(n), size):
            x = np.zeros(n)
            if support:
                x[list(support)] = np.linalg.lstsq(a[:, list(support)], b, rcond=None)[0]
            if (x >= -1e-12).all():
                best = min(best, float(np.linalg.norm(a @ np.maximum(x, 0) - b)))
    return best


def test_nnls_matches_brute_force_on_small_problems() -> None:
    rng = np.random.default_rng(42)
    for trial in range(400):
        m, n = int(rng.integers(1, 9)), int(rng.integers(1, 6))
        a = rng.standard_normal((m, n))
        if trial % 4 == 0 and n > 1:
            a[:, 0] = 2 * a[:, -1]  # rank-deficient
        b = rng.standard_normal(m)
        x = nnls(a, b)
        assert (x >= 0).all()
        assert np.linalg.norm(a @ x - b) <= brute_force_nnls(a, b) + 1e-9


def test_nnls_satisfies_the_kkt_conditions() -> None:
    rng = np.random.default_rng(7)
    for _ in range(100):
        a = rng.standard_normal((12, 5))
        b = rng.standard_normal(12)
        x = nnls(a, b)
        w = a.T @ (b - a @ x)  # minus the gradient
        assert (x >= 0).all()
        assert np.all(w <= 1e-9)  # no variable would lower the residual by growing
        assert np.allclose(w[x > 0], 0, atol=1e-9)


def test_nnls_returns_the_unconstrained_solution_when_it_is_positive() -> None:
    a = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    truth = np.array([0.5, 3.0])
    assert np.allclose(nnls(a, a @ truth), truth)


def test_nnls_clamps_weights_that_would_be_negative() -> None:
    a = np.array([[1.0], [2.0], [3.0]])
    assert nnls(a, np.array([-1.0, -2.0, -3.0])).tolist() == [0.0]
    assert nnls(np.zeros((3, 0)), np.zeros(3)).shape == (0,)
    with pytest.raises(ValueError, match="shapes"):
        nnls(a, np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        nnls(a, np.array([1.0, math.nan, 0.0]))


def test_fitted_weights_are_never_negative() -> None:
    # Costs that fall as CPU grows: the least-squares CPU weight would be negative.
    items = [
        bench(actual=Decimal("0.1") - Decimal(i) / 1000, cpu_time=i, memory_mb_seconds=(i * 7) % 11) for i in range(30)
    ]
    model = calibrate(items, default_cost_model()).model
    assert all(getattr(model, name) >= 0 for name in WEIGHTS)
    assert model.cpu_time_weight == 0


# -- what the data cannot identify --------------------------------------------------------
def test_a_component_never_used_keeps_its_current_weight_and_is_reported() -> None:
    items = make_benchmarks(1, 60, fixed={"redis_ops": 0})
    current = default_cost_model()
    result = calibrate(items, current)
    assert result.model.redis_ops_weight == current.redis_ops_weight
    [missing] = result.report.unidentified_components
    assert missing.name == "redis_ops_weight" and "always zero" in missing.reason
    errors = relative_weight_errors(result.model)
    assert max(v for k, v in errors.items() if k != "redis_ops_weight") < 0.05


def test_a_component_that_never_varies_keeps_its_weight_and_the_base_absorbs_it() -> None:
    items = make_benchmarks(2, 60, fixed={"cpu_time": 30})
    current = default_cost_model()
    result = calibrate(items, current)
    assert result.model.cpu_time_weight == current.cpu_time_weight
    assert [m.name for m in result.report.unidentified_components] == ["cpu_time_weight"]
    assert "never varies" in result.report.unidentified_components[0].reason
    # Prices stay right: the base cost took over the CPU difference (30 s × Δweight).
    expected_base = TRUE.base_job_weight + 30 * (TRUE.cpu_time_weight - current.cpu_time_weight)
    assert abs(result.model.base_job_weight / expected_base - 1) < 0.05
    assert result.report.accuracy_after > 0.97


def test_collinear_components_keep_the_later_weight() -> None:
    items = [replace(b, network_bytes=b.payload_bytes * 4) for b in make_benchmarks(4, 60)]
    result = calibrate(items, default_cost_model())
    [missing] = result.report.unidentified_components
    assert missing.name == "network_weight" and "combination" in missing.reason
    assert result.model.network_weight == default_cost_model().network_weight


def test_benchmarks_with_no_usage_at_all_are_refused() -> None:
    items = [bench(actual="0.002") for _ in range(20)]
    with pytest.raises(ValidationError, match="nothing can be calibrated") as info:
        calibrate(items, default_cost_model())
    assert info.value.field == "benchmarks"


def test_benchmarks_that_all_cost_nothing_are_refused() -> None:
    items = [bench(actual=0, cpu_time=i) for i in range(20)]
    with pytest.raises(ValidationError, match="every actual cost is zero"):
        calibrate(items, default_cost_model())


def test_fewer_than_ten_benchmarks_are_refused() -> None:
    with pytest.raises(ValidationError, match="at least 10") as info:
        calibrate(make_benchmarks(0, 9), default_cost_model())
    assert info.value.field == "benchmarks"
    assert calibrate(make_benchmarks(0, 10, active=0.6), default_cost_model()).report.benchmarks == 10


# -- scores -------------------------------------------------------------------------------
def test_accuracy_is_one_minus_the_mean_absolute_percentage_error() -> None:
    assert accuracy_score([Decimal(1), Decimal(2)], [Decimal("1.1"), Decimal("1.8")]) == pytest.approx(0.9)
    assert accuracy_score([1.0], [1.0]) == 1.0
    assert accuracy_score([], []) == 1.0


def test_accuracy_is_well_defined_when_a_job_cost_nothing() -> None:
    assert accuracy_score([0, 0], [0, 0]) == 1.0  # free and charged nothing: exact
    assert accuracy_score([0, 1], [0.5, 1]) == pytest.approx(0.5)  # charged for a free job: 100 % wrong
    assert accuracy_score([0], [1e-10]) == pytest.approx(0.9)  # below a nano-dollar: ε = 1e-9


def test_each_error_is_capped_so_the_accuracy_stays_in_0_1() -> None:
    assert accuracy_score([1, 1], [10, 1]) == pytest.approx(0.5)
    assert accuracy_score([1], [100]) == 0.0
    assert relative_errors([1, 2], [0, 4]).tolist() == [-1.0, 1.0]
    with pytest.raises(ValueError, match="2 actual costs but 1"):
        relative_errors([1, 2], [1])


def test_drift_is_positive_when_the_model_overcharges() -> None:
    assert signed_drift([1, 1], [1.2, 1.1]) == pytest.approx(0.15)
    assert signed_drift([1, 1], [0.8, 0.9]) == pytest.approx(-0.15)
    overcharging = replace(TRUE, environment_multiplier=Decimal("1.5"))
    undercharging = replace(TRUE, environment_multiplier=Decimal("0.5"))
    items = make_benchmarks(9, 40, noise=0.0)
    assert calibrate(items, overcharging).report.drift == pytest.approx(0.5, abs=1e-3)
    assert calibrate(items, undercharging).report.drift == pytest.approx(-0.5, abs=1e-3)


def test_cross_validated_accuracy_prices_each_fold_with_a_model_fitted_on_the_others() -> None:
    items = make_benchmarks(13, 50, noise=0.05)
    current = default_cost_model()
    report = calibrate(items, current).report
    predicted: dict[int, Decimal] = {}
    for fold in range(5):
        train = [b for i, b in enumerate(items) if i % 5 != fold]
        engine = CostCalculationEngine(calibrate(train, current).model)
        for i, b in enumerate(items):
            if i % 5 == fold:
                predicted[i] = engine.calculate_breakdown(**{u: getattr(b, u) for u in USAGES}).total
    expected = accuracy_score([b.actual_cost for b in items], [predicted[i] for i in range(50)])
    assert report.folds == 5
    assert report.cross_validated_accuracy == pytest.approx(expected, abs=1e-12)
    assert report.cross_validated_accuracy <= report.accuracy_after + 0.01


def test_the_report_lists_every_weight_change() -> None:
    report = calibrate(make_benchmarks(21, 50), default_cost_model()).report
    assert [c.name for c in report.weight_changes] == list(WEIGHTS)
    cpu = report.weight_changes[0]
    assert cpu.old == default_cost_model().cpu_time_weight
    assert cpu.relative_change == pytest.approx(float((cpu.new - cpu.old) / cpu.old))
    zero_base = replace(default_cost_model(), base_job_weight=Decimal(0))
    base = calibrate(make_benchmarks(21, 50), zero_base).report.weight_changes[-1]
    assert base.old == 0 and base.new > 0 and base.relative_change is None


# -- recommendations -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("numbers", "expected"),
    [
        ({"accuracy_before": 0.95}, KEEP),  # already within 5 % (so is the drift)
        ({"accuracy_before": 0.95, "benchmarks": 10, "cross_validated_accuracy": 0.5}, KEEP),
        ({"accuracy_before": 0.93}, APPLY),  # e.g. every job undercharged by 7 %
        ({"accuracy_before": 0.80, "benchmarks": 20}, APPLY),
        ({"accuracy_before": 0.80, "benchmarks": 19}, COLLECT_MORE),  # too few to apply
        ({"accuracy_before": 0.80, "cross_validated_accuracy": 0.929}, COLLECT_MORE),  # overfits: 5.1 points worse
        ({"accuracy_before": 0.80, "cross_validated_accuracy": 0.931}, APPLY),
        ({"accuracy_before": 0.94, "cross_validated_accuracy": 0.959}, KEEP),  # gain < 2 points
        ({"accuracy_before": 0.94, "cross_validated_accuracy": 0.961}, APPLY),
        ({"accuracy_before": 0.94, "cross_validated_accuracy": 0.95, "unidentified": 1}, COLLECT_MORE),
    ],
)
def test_recommended_action_thresholds(numbers: dict[str, Any], expected: str) -> None:
    values = {"benchmarks": 50, "accuracy_after": 0.98, "cross_validated_accuracy": 0.97, **numbers}
    assert recommend_action(**values) == expected


def test_recommendations_on_real_fits() -> None:
    assert calibrate(make_benchmarks(1, 50, noise=0.01), TRUE).report.recommended_action == KEEP
    assert calibrate(make_benchmarks(1, 50), default_cost_model()).report.recommended_action == APPLY
    assert calibrate(make_benchmarks(1, 12, active=0.6), default_cost_model()).report.recommended_action == COLLECT_MORE


# -- benchmarks and the calibrator -------------------------------------------------------------
@pytest.mark.parametrize("name", ["actual_cost", "calculated_cost", "infrastructure_cost", *USAGES])
@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, Decimal("NaN"), True, "5"])
def test_benchmark_numbers_are_validated_naming_the_field(name: str, bad: Any) -> None:
    with pytest.raises(ValidationError) as info:
        replace(bench(), **{name: bad})
    assert info.value.field == name


def test_benchmark_values_are_stored_as_decimals() -> None:
    b = bench(actual=Decimal("0.45"), cpu_time=30.5, payload_bytes=102400)
    assert b.cpu_time == Decimal("30.5") and isinstance(b.payload_bytes, Decimal)
    with pytest.raises(ValidationError) as info:
        replace(b, timestamp=datetime(2024, 1, 1))
    assert info.value.field == "timestamp"
    with pytest.raises(ValidationError):
        replace(b, actual_cost=Decimal("1e7"))


def test_the_calibrator_follows_the_design_document() -> None:
    calibrator = ModelCalibrator()
    with pytest.raises(ValidationError, match="calibrate_model first"):
        calibrator.get_calibration_report()
    with pytest.raises(ValidationError):
        calibrator.add_benchmark("not a benchmark")  # type: ignore[arg-type]
    items = make_benchmarks(8, 50)
    calibrator.add_benchmark(items[0])
    calibrator.add_benchmarks(items[1:])
    model = calibrator.calibrate_model(default_cost_model())
    report = calibrator.get_calibration_report()
    assert len(calibrator.benchmarks) == report.benchmarks == 50
    assert report.accuracy == report.accuracy_after > report.accuracy_before
    assert max(relative_weight_errors(model).values()) < 0.05


# -- CSV -------------------------------------------------------------------------------------------
HEADER = "job_type,actual_cost,cpu_time,memory_mb_seconds,payload_bytes,redis_ops,network_bytes,timestamp"


def test_csv_benchmarks_are_read_exactly_with_defaults_for_optional_columns() -> None:
    text = f"{HEADER}\nml,0.45,30,4096,102400,50,20480,2024-03-01T12:00:00Z\n\netl,0.1,1.5,0,0,0,0,2024-03-01T13:00:00+01:00\n"
    model = TRUE
    first, second = read_benchmarks_csv(io.StringIO(text), model=model)
    assert (
        first.job_type == "ml"
        and first.actual_cost == Decimal("0.45")
        and first.infrastructure_cost == first.actual_cost
    )
    engine = CostCalculationEngine(model)
    assert first.calculated_cost == engine.calculate_breakdown(**{u: getattr(first, u) for u in USAGES}).total
    assert second.cpu_time == Decimal("1.5") and second.timestamp.utcoffset() is not None


def test_csv_given_calculated_and_infrastructure_costs_are_kept() -> None:
    text = "actual_cost,calculated_cost,infrastructure_cost,cpu_time,memory_mb_seconds,payload_bytes,redis_ops,network_bytes,timestamp\n"
    text += "0.45,0.42,0.5,30,4096,102400,50,20480,2024-03-01T12:00:00Z\n"
    [b] = read_benchmarks_csv(text.splitlines(keepends=True))
    assert (b.calculated_cost, b.infrastructure_cost, b.job_type) == (Decimal("0.42"), Decimal("0.5"), "")


def test_csv_errors_name_every_bad_line() -> None:
    text = "\n".join(
        [
            HEADER,
            "ml,0.45,30,4096,102400,50,20480,2024-03-01T12:00:00Z",
            "ml,abc,30,4096,102400,50,20480,2024-03-01T12:00:00Z",
            "ml,0.45,-3,4096,102400,50,20480,2024-03-01T12:00:00Z",
            "ml,0.45,30,4096,102400,50,20480,2024-03-01T12:00:00",
            "ml,0.45,30",
        ]
    )
    with pytest.raises(BenchmarkFileError) as info:
        read_benchmarks_csv(io.StringIO(text), source="b.csv")
    problems = info.value.problems
    assert [(p.line, p.field) for p in problems] == [
        (3, "actual_cost"),
        (4, "cpu_time"),
        (5, "timestamp"),
        (6, "row"),
    ]
    message = str(info.value)
    assert "4 bad line(s)" in message and "line 4: cpu_time: must not be negative" in message
    assert info.value.field == "benchmarks" and info.value.value == "b.csv"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the file is empty"),
        (HEADER + ",colour\n", "unknown column 'colour'"),
        (HEADER.replace(",timestamp", "") + "\n", "missing required column(s): timestamp"),
        (HEADER + ",cpu_time\n", "'cpu_time' appears twice"),
    ],
)
def test_csv_header_errors_are_reported_on_line_1(text: str, fragment: str) -> None:
    with pytest.raises(BenchmarkFileError) as info:
        read_benchmarks_csv(io.StringIO(text))
    assert info.value.problems[0].line == 1
    assert fragment in str(info.value)


def test_csv_with_more_bad_lines_than_shown_says_how_many_more() -> None:
    rows = [f"ml,-{i},1,0,0,0,0,2024-03-01T12:00:00Z" for i in range(1, 15)]
    with pytest.raises(BenchmarkFileError, match=r"14 bad line\(s\).*\(and 4 more\)") as info:
        read_benchmarks_csv(io.StringIO("\n".join([HEADER, *rows])))
    assert len(info.value.problems) == 14


def test_a_model_charging_four_times_the_cost_says_so_uncapped() -> None:
    """The scores cap each error at 100 %; the price ratio people read does not: a
    model charging 4× shows 4.00× (+300 %), not "+100 %" or "accuracy 0 %"."""
    from jobbudget.domain.calibration import median_price_ratio

    assert median_price_ratio([Decimal(1), Decimal(2), Decimal(0)], [Decimal(4), Decimal(8), Decimal(1)]) == 4.0
    assert median_price_ratio([Decimal(0)], [Decimal(1)]) is None
    benchmarks = make_benchmarks(21, 50)
    truth = calibrate(benchmarks, TRUE)
    dear = replace(TRUE, **{name: getattr(TRUE, name) * 4 for name in WEIGHTS if name != "environment_multiplier"})
    report = calibrate(benchmarks, dear).report
    assert report.price_ratio_before == pytest.approx(4.0, rel=0.01)
    assert report.drift == pytest.approx(1.0)  # the capped score
    assert truth.report.price_ratio_before == pytest.approx(1.0, rel=0.01)
