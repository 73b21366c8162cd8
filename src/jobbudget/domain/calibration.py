"""Cost model calibration: refit the weights to what jobs really cost.

**The model.**  A job's price is ``k · (Σ_c w_c u_c + w_base)`` where ``k`` is the
environment multiplier and ``u`` its usages in the model's units: CPU seconds, MB·s,
KB of payload (``payload_bytes / 1024``), Redis operations and MB of network
(``network_bytes / 1048576``).  Given ``n`` benchmarks with measured usages and the
actual infrastructure cost ``a_i``, the design matrix ``X`` has one row per benchmark
and the columns ``u_cpu, u_mem, u_payload, u_redis, u_net, 1`` (the constant column
carries the base cost), and the target is ``y = a / k`` (the multiplier is kept).

**The fit** is relative non-negative least squares with a fallback for the
components the data cannot identify: see :mod:`.calibration_fit`.

**Scores** (predictions are the exact prices the engine would charge, multiplier
included).  The relative error of a benchmark is ``r_i = (p_i − a_i) / max(|a_i|, ε)``
with ``ε`` = one nano-dollar (the money resolution), clipped to ``[−1, 1]``: a job
that cost nothing and is charged nothing has error 0, one charged something is
100 % wrong, and no single benchmark can move a score by more than ``1/n``.

* ``accuracy = 1 − mean |r_i|`` (1 − MAPE), in ``[0, 1]``;
* ``drift = mean r_i``: positive means the model overcharges;
* ``cross_validated_accuracy``: benchmark ``i`` goes to fold ``i mod 5``; each fold
  is priced by a model refitted on the other four (the current model when they
  cannot identify anything), and the accuracy of those held-out prices is reported.

**Recommendation** (thresholds below): keep the current model when it is already
within 5 % (accuracy ≥ 0.95, which also bounds |drift| ≤ 0.05, since
|mean r| ≤ mean |r|); apply the calibrated model when it
beats the current one out of sample by at least 2 points of accuracy, its
cross-validated accuracy is within 5 points of its in-sample accuracy (it does not
overfit) and there are at least 20 benchmarks; otherwise collect more benchmarks when
there are fewer than 20, the fit is unstable, or a component could not be identified;
otherwise keep the current model (calibration does not help enough).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

from .calibration_fit import EPSILON, UNITS, WEIGHTS, UnidentifiedComponent, WeightFit, fit_weights, round_weight
from .cost import CostCalculationEngine, CostModel
from .errors import ValidationError
from .resources import check_resources
from .validation import MAX_JOB_TYPE_LEN, check_aware, check_identifier, check_non_negative

__all__ = [
    "APPLY",
    "COLLECT_MORE",
    "KEEP",
    "WEIGHTS",
    "BenchmarkResult",
    "Calibration",
    "CalibrationReport",
    "ModelCalibrator",
    "UnidentifiedComponent",
    "WeightChange",
    "accuracy_score",
    "calibrate",
    "recommend_action",
    "relative_errors",
    "signed_drift",
]

FloatArray = NDArray[np.float64]

USAGES = ("cpu_time", "memory_mb_seconds", "payload_bytes", "redis_ops", "network_bytes")
MONEY = ("actual_cost", "calculated_cost", "infrastructure_cost")

MIN_BENCHMARKS = 10
FOLDS = 5
MAX_BENCHMARK_COST = Decimal(1_000_000)

KEEP = "keep the current model"
APPLY = "apply the calibrated model"
COLLECT_MORE = "collect more benchmarks"
ACCURATE_ENOUGH = 0.95
MIN_IMPROVEMENT = 0.02
MAX_CV_GAP = 0.05
MIN_BENCHMARKS_TO_APPLY = 20


@dataclass(frozen=True, slots=True)
class BenchmarkResult:
    """One job whose real infrastructure cost is known.  Money (USD) and usages may
    be int, float or Decimal and are stored as exact ``Decimal``; ``timestamp`` is an
    aware datetime.  ``calculated_cost`` is what the model charged at the time (kept
    for reference: calibration reprices every benchmark with the model it is given)."""

    job_type: str
    actual_cost: Decimal
    calculated_cost: Decimal
    cpu_time: Decimal
    memory_mb_seconds: Decimal
    payload_bytes: Decimal
    redis_ops: Decimal
    network_bytes: Decimal
    infrastructure_cost: Decimal
    timestamp: datetime
    #: named resources the job used (GPU-seconds per type...), fitted like the usages
    resources: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_identifier("job_type", self.job_type, max_len=MAX_JOB_TYPE_LEN, allow_empty=True)
        setter = object.__setattr__
        for name in MONEY:
            setter(self, name, check_non_negative(name, getattr(self, name), maximum=MAX_BENCHMARK_COST))
        for name in USAGES:
            setter(self, name, check_non_negative(name, getattr(self, name)))
        setter(self, "resources", check_resources("resources", self.resources))
        check_aware("timestamp", self.timestamp)


@dataclass(frozen=True, slots=True)
class WeightChange:
    """``relative_change`` is ``(new − old) / old``; 0 when both are 0 and None when
    only ``old`` is (an infinite change)."""

    name: str
    old: Decimal
    new: Decimal
    relative_change: float | None


@dataclass(frozen=True, slots=True)
class CalibrationReport:
    """How well the current and the calibrated model price the benchmarks (see the
    module documentation for the definitions)."""

    benchmarks: int
    accuracy_before: float
    accuracy_after: float
    cross_validated_accuracy: float
    drift: float
    weight_changes: tuple[WeightChange, ...]
    unidentified_components: tuple[UnidentifiedComponent, ...]
    recommended_action: str
    environment_multiplier: Decimal = Decimal(1)
    folds: int = FOLDS
    #: What each model charges as a multiple of the real cost, the median over the
    #: benchmarks that cost something (None when none did): unclipped, for people
    #: (the scores above cap each error at 100 %, so "+100 %" may mean "4×").
    price_ratio_before: float | None = None
    price_ratio_after: float | None = None

    @property
    def accuracy(self) -> float:
        """The calibrated model's accuracy (the design document's ``report.Accuracy``)."""
        return self.accuracy_after


@dataclass(frozen=True, slots=True)
class Calibration:
    model: CostModel
    report: CalibrationReport


def relative_errors(actual: Sequence[Decimal | float], predicted: Sequence[Decimal | float]) -> FloatArray:
    """``(p − a) / max(|a|, ε)`` per benchmark, clipped to ``[−1, 1]`` (ε = 1e-9 USD)."""
    a = np.asarray([float(v) for v in actual], dtype=np.float64)
    p = np.asarray([float(v) for v in predicted], dtype=np.float64)
    if a.shape != p.shape:
        raise ValueError(f"{a.size} actual costs but {p.size} predictions")
    return np.clip((p - a) / np.maximum(np.abs(a), EPSILON), -1.0, 1.0)


def accuracy_score(actual: Sequence[Decimal | float], predicted: Sequence[Decimal | float]) -> float:
    """``1 − mean |relative error|`` in ``[0, 1]`` (1 for an empty sequence)."""
    errors = relative_errors(actual, predicted)
    return float(min(1.0, max(0.0, 1.0 - float(np.mean(np.abs(errors)))))) if errors.size else 1.0


def signed_drift(actual: Sequence[Decimal | float], predicted: Sequence[Decimal | float]) -> float:
    """Mean signed relative error: positive when the prices exceed the actual costs."""
    errors = relative_errors(actual, predicted)
    return float(np.mean(errors)) if errors.size else 0.0


def median_price_ratio(actual: Sequence[Decimal | float], predicted: Sequence[Decimal | float]) -> float | None:
    """The median of price ÷ actual cost over the benchmarks whose cost is not zero."""
    a = np.asarray([float(v) for v in actual], dtype=np.float64)
    p = np.asarray([float(v) for v in predicted], dtype=np.float64)
    paid = np.abs(a) >= EPSILON
    return float(np.median(p[paid] / a[paid])) if paid.any() else None


def recommend_action(
    *,
    benchmarks: int,
    accuracy_before: float,
    accuracy_after: float,
    cross_validated_accuracy: float,
    unidentified: int = 0,
) -> str:
    """One of :data:`KEEP`, :data:`APPLY`, :data:`COLLECT_MORE` (rules in the module doc)."""
    if accuracy_before >= ACCURATE_ENOUGH:
        return KEEP
    stable = accuracy_after - cross_validated_accuracy <= MAX_CV_GAP
    better = cross_validated_accuracy - accuracy_before >= MIN_IMPROVEMENT
    enough = benchmarks >= MIN_BENCHMARKS_TO_APPLY
    if better and stable and enough:
        return APPLY
    if not enough or not stable or unidentified:
        return COLLECT_MORE
    return KEEP


def calibrate(benchmarks: Sequence[BenchmarkResult], current_model: CostModel) -> Calibration:
    """Fit the weights of ``current_model`` to ``benchmarks``; its environment
    multiplier is kept.  Raises :class:`ValidationError` (field ``benchmarks``) for
    fewer than 10 benchmarks, all-zero actual costs or data that identifies no
    resource component."""
    if not isinstance(current_model, CostModel):
        raise ValidationError("current_model", type(current_model).__name__, "must be a CostModel")
    items = list(benchmarks)
    n = len(items)
    if n < MIN_BENCHMARKS:
        raise ValidationError("benchmarks", n, f"at least {MIN_BENCHMARKS} benchmarks are needed to calibrate")
    actual = [b.actual_cost for b in items]
    if not any(actual):
        raise ValidationError("benchmarks", n, "every actual cost is zero: there is nothing to calibrate against")
    resources = tuple(sorted({name for b in items for name in b.resources}))
    names = (*WEIGHTS[:-1], *(f"resources.{r}" for r in resources), WEIGHTS[-1])
    x = _design(items, resources)
    y = np.array([float(a) for a in actual]) / float(current_model.environment_multiplier)
    current = np.array([float(_weight(current_model, name)) for name in names])
    fit = fit_weights(x, y, current, names)
    model = _to_model(fit, current_model, names)
    before = _prices(current_model, items)
    after = _prices(model, items)
    report = CalibrationReport(
        benchmarks=n,
        accuracy_before=accuracy_score(actual, before),
        accuracy_after=accuracy_score(actual, after),
        cross_validated_accuracy=_cross_validated(items, x, y, current_model, current, names),
        drift=signed_drift(actual, before),
        weight_changes=tuple(_change(name, current_model, model) for name in names),
        unidentified_components=fit.unidentified,
        recommended_action="",
        environment_multiplier=current_model.environment_multiplier,
        folds=min(FOLDS, n),
        price_ratio_before=median_price_ratio(actual, before),
        price_ratio_after=median_price_ratio(actual, after),
    )
    action = recommend_action(
        benchmarks=n,
        accuracy_before=report.accuracy_before,
        accuracy_after=report.accuracy_after,
        cross_validated_accuracy=report.cross_validated_accuracy,
        unidentified=len(fit.unidentified),
    )
    return Calibration(model, replace(report, recommended_action=action))


class ModelCalibrator:
    """Collects benchmarks and fits a :class:`CostModel` to them (the design
    document's ``ModelCalibrator``).  Not thread-safe."""

    def __init__(self) -> None:
        self._benchmarks: list[BenchmarkResult] = []
        self._report: CalibrationReport | None = None

    @property
    def benchmarks(self) -> tuple[BenchmarkResult, ...]:
        return tuple(self._benchmarks)

    def add_benchmark(self, benchmark: BenchmarkResult) -> None:
        if not isinstance(benchmark, BenchmarkResult):
            raise ValidationError("benchmark", type(benchmark).__name__, "must be a BenchmarkResult")
        self._benchmarks.append(benchmark)

    def add_benchmarks(self, benchmarks: Iterable[BenchmarkResult]) -> None:
        for benchmark in benchmarks:
            self.add_benchmark(benchmark)

    def calibrate_model(self, current_model: CostModel) -> CostModel:
        """The calibrated model; its report is then :meth:`get_calibration_report`."""
        result = calibrate(self._benchmarks, current_model)
        self._report = result.report
        return result.model

    def get_calibration_report(self) -> CalibrationReport:
        """The report of the last :meth:`calibrate_model` call."""
        if self._report is None:
            raise ValidationError("calibrator", len(self._benchmarks), "no calibration yet: call calibrate_model first")
        return self._report


# -- helpers ----------------------------------------------------------------------
def _design(benchmarks: Sequence[BenchmarkResult], resources: tuple[str, ...] = ()) -> FloatArray:
    """Columns: the usages in the model's units, each named resource, then 1 (the base)."""
    usage = np.array([[float(getattr(b, name)) for name in USAGES] for b in benchmarks], dtype=np.float64)
    named = np.array([[float(b.resources.get(r, 0)) for r in resources] for b in benchmarks], dtype=np.float64).reshape(
        len(benchmarks), len(resources)
    )
    return np.hstack([usage / UNITS, named, np.ones((len(benchmarks), 1))])


def _weight(model: CostModel, name: str) -> Decimal:
    """A weight by its report name: a field, or ``resources.NAME`` (0 when unpriced)."""
    if name.startswith("resources."):
        return model.price_of(name.removeprefix("resources.")) or Decimal(0)
    value: Decimal = getattr(model, name)
    return value


def _to_model(fit: WeightFit, current: CostModel, names: tuple[str, ...] = WEIGHTS) -> CostModel:
    values = current.to_mapping()
    prices = dict(current.resources)
    for j in fit.identified:
        weight = round_weight(float(fit.weights[j]))
        if names[j].startswith("resources."):
            prices[names[j].removeprefix("resources.")] = weight
        else:
            values[names[j]] = weight
    if prices:
        values["resources"] = prices
    return CostModel.from_mapping(values)


def _prices(model: CostModel, benchmarks: Sequence[BenchmarkResult]) -> list[Decimal]:
    engine = CostCalculationEngine(model)
    out = []
    for b in benchmarks:
        total = engine.calculate_breakdown(
            cpu_time=b.cpu_time,
            memory_mb_seconds=b.memory_mb_seconds,
            payload_bytes=b.payload_bytes,
            redis_ops=b.redis_ops,
            network_bytes=b.network_bytes,
        ).total
        if b.resources:  # a resource the model does not price counts 0 here (it is being fitted)
            priced = {k: v for k, v in b.resources.items() if model.price_of(k) is not None}
            total += sum((c.cost for c in engine.price_resources(priced, "")), Decimal(0))
        out.append(total)
    return out


def _cross_validated(
    benchmarks: Sequence[BenchmarkResult],
    x: FloatArray,
    y: FloatArray,
    current_model: CostModel,
    current: FloatArray,
    names: tuple[str, ...] = WEIGHTS,
) -> float:
    """Accuracy of prices each made by a model that did not see the benchmark."""
    n = len(benchmarks)
    folds = np.arange(n) % min(FOLDS, n)
    predicted: list[Decimal] = [Decimal(0)] * n
    for fold in np.unique(folds):
        train = folds != fold
        try:
            model = _to_model(fit_weights(x[train], y[train], current, names), current_model, names)
        except ValidationError:  # the other folds identify nothing: price with the current model
            model = current_model
        held_out = [int(i) for i in np.flatnonzero(~train)]
        for i, price in zip(held_out, _prices(model, [benchmarks[i] for i in held_out]), strict=True):
            predicted[i] = price
    return accuracy_score([b.actual_cost for b in benchmarks], predicted)


def _change(name: str, old_model: CostModel, new_model: CostModel) -> WeightChange:
    old, new = _weight(old_model, name), _weight(new_model, name)
    relative = (0.0 if new == 0 else None) if old == 0 else float((new - old) / old)
    return WeightChange(name, old, new, relative)
