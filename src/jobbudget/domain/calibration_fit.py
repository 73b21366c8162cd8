"""The weight fit behind :mod:`.calibration`: which components the benchmarks can
determine, and their non-negative least-squares weights.

The design matrix ``X`` has one row per benchmark and the columns ``u_cpu, u_mem,
u_payload, u_redis, u_net, 1`` (usages in the model's units: CPU seconds, MB·s,
``payload_bytes / 1024``, operations, ``network_bytes / 1048576``; the constant
column carries the base cost); the target is ``y = actual cost / environment
multiplier``, so that ``X · w ≈ y``.

**The fit.**  Relative non-negative least squares::

    minimise  Σ_i ((X_i · w − y_i) / d_i)²   subject to  w ≥ 0,
    d_i = max(|y_i|, f),  f = max(ε, 1 % of the median |y|)

Dividing each row by the benchmark's own cost makes the fit minimise *relative*
errors: infrastructure noise is multiplicative (a few percent of the bill), so a
$50 job must not outweigh a hundred $0.01 jobs, and the objective then matches the
accuracy score of :mod:`.calibration`.  The floor ``f`` keeps a benchmark that cost
nothing from dominating.  Each column is then divided by its Euclidean norm before solving (the
raw columns differ by ten orders of magnitude), the problem is solved by
Lawson-Hanson (:mod:`.nnls`) and the solution is scaled back.  Weights are rounded
half-even to at most 12 significant digits.

**What the data cannot tell.**  Columns are admitted greedily in the order base,
CPU, memory, payload, Redis, network; a column is *identified* when adding it keeps
the column-normalised matrix of full rank (smallest/largest singular value above
1e-8).  A component that is always zero, never varies (then it is indistinguishable
from the base cost) or is a linear combination of the admitted ones keeps its
current weight exactly: its contribution ``X_j · w_j`` is subtracted from ``y``
before the fit and the component is reported as unidentified.  If no resource
component at all can be identified the calibration is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal

import numpy as np
from numpy.typing import NDArray

from .errors import ValidationError
from .nnls import nnls

__all__ = [
    "EPSILON",
    "UNITS",
    "WEIGHTS",
    "UnidentifiedComponent",
    "WeightFit",
    "fit_weights",
    "identify",
    "round_weight",
]

FloatArray = NDArray[np.float64]

#: Cost model weights in design-matrix column order (the base cost is last).
WEIGHTS = (
    "cpu_time_weight",
    "memory_weight",
    "payload_weight",
    "redis_ops_weight",
    "network_weight",
    "base_job_weight",
)
#: Divisors from the benchmark's usage fields to the model's units.
UNITS = np.array([1.0, 1.0, 1024.0, 1.0, 1048576.0])
BASE = len(WEIGHTS) - 1
#: Smallest cost denominator of a relative error: one nano-dollar, in USD.
EPSILON = 1e-9
#: Rows are weighted by 1 / max(|y_i|, this share of the median |y|).
ROW_FLOOR_SHARE = 0.01
RANK_TOLERANCE = 1e-8
WEIGHT_DIGITS = 12
_WEIGHT_CONTEXT = Context(prec=WEIGHT_DIGITS, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class UnidentifiedComponent:
    """A weight the benchmarks cannot determine; the current value was kept."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class WeightFit:
    """Fitted weights in :data:`WEIGHTS` order (before the multiplier; the current
    weight where unidentified) and which columns were identified."""

    weights: FloatArray
    identified: tuple[int, ...]
    unidentified: tuple[UnidentifiedComponent, ...]


def identify(
    x: FloatArray, names: tuple[str, ...] = WEIGHTS
) -> tuple[tuple[int, ...], tuple[UnidentifiedComponent, ...]]:
    """Greedy rank test: admit base (the last column), then each component that
    raises the rank.  ``names``: the weights of the columns (named resources go
    between the built-in usages and the base)."""
    base = x.shape[1] - 1
    norms = np.linalg.norm(x, axis=0)
    selected = [base]
    missing: list[UnidentifiedComponent] = []
    for j in range(base):
        column = x[:, j]
        if norms[j] == 0:
            missing.append(UnidentifiedComponent(names[j], "always zero in the benchmarks"))
            continue
        trial = [*selected, j]
        if len(trial) > x.shape[0]:
            missing.append(UnidentifiedComponent(names[j], "too few benchmarks"))
            continue
        singular = np.linalg.svd(x[:, trial] / norms[trial], compute_uv=False)
        if singular[-1] > RANK_TOLERANCE * singular[0]:
            selected.append(j)
        elif np.ptp(column) <= RANK_TOLERANCE * float(np.max(np.abs(column))):
            missing.append(UnidentifiedComponent(names[j], "never varies, so it cannot be told from the base cost"))
        else:
            missing.append(UnidentifiedComponent(names[j], "proportional to a combination of other components"))
    return tuple(sorted(selected)), tuple(missing)


def fit_weights(x: FloatArray, y: FloatArray, current: FloatArray, names: tuple[str, ...] = WEIGHTS) -> WeightFit:
    """Solve the relative NNLS problem for the identified columns of ``x`` (n × k,
    the base last), keeping ``current`` (k weights) for the others; ``y`` is cost /
    multiplier."""
    identified, missing = identify(x, names)
    if identified == (x.shape[1] - 1,):
        raise ValidationError(
            "benchmarks",
            x.shape[0],
            "no resource usage varies independently of the others (all zero, constant or collinear): "
            "nothing can be calibrated",
        )
    fixed = [j for j in range(x.shape[1]) if j not in identified]
    target = y - x[:, fixed] @ current[fixed]
    scale_y = np.abs(y)
    typical = float(np.median(scale_y)) or float(np.mean(scale_y))
    rows = 1.0 / np.maximum(scale_y, max(EPSILON, ROW_FLOOR_SHARE * typical))
    a = x[:, list(identified)] * rows[:, None]
    norms = np.linalg.norm(a, axis=0)
    solution = nnls(a / norms, target * rows)
    weights = current.copy()
    weights[list(identified)] = solution / norms
    return WeightFit(weights, identified, missing)


def round_weight(value: float) -> Decimal:
    """Half-even to at most 12 significant digits, without trailing zeros."""
    if not value > 0:
        return Decimal(0)
    rounded = _WEIGHT_CONTEXT.create_decimal_from_float(value).normalize(_WEIGHT_CONTEXT)
    exponent = rounded.as_tuple().exponent
    return rounded.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else rounded
