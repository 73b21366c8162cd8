"""Non-negative least squares: ``min ‖A x − b‖₂`` subject to ``x ≥ 0``.

Lawson & Hanson's active-set algorithm (*Solving Least Squares Problems*, 1974,
ch. 23).  The variables are split into a passive set ``P`` (free, positive) and an
active set ``Z`` (held at zero).  Starting from ``x = 0, P = ∅`` it repeats:

1. the gradient of ``½‖A x − b‖²`` is ``−w`` with ``w = Aᵀ (b − A x)``.  If no
   variable in ``Z`` has ``w_j > tol``, the Karush-Kuhn-Tucker conditions hold
   (``w_P = 0``, ``w_Z ≤ 0``, ``x ≥ 0``) and ``x`` is optimal;
2. otherwise the variable of ``Z`` with the largest ``w_j`` moves to ``P``;
3. inner loop: solve the unconstrained problem on the columns of ``P``
   (``s_P = argmin ‖A_P s − b‖``, ``s_Z = 0``).  If every ``s_P > 0`` accept it;
   otherwise step from ``x`` towards ``s`` as far as feasibility allows,
   ``α = min over P with s_j ≤ 0 of x_j / (x_j − s_j)``, ``x ← x + α (s − x)``, move
   the variables that reached zero back to ``Z`` and solve again.

Each outer step strictly lowers the residual, so the algorithm ends in finitely many
steps; an iteration cap guards against round-off cycling.  The problem is convex, so
the answer is the global optimum (unique when ``A`` has full column rank).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["nnls"]

FloatArray = NDArray[np.float64]


def nnls(
    a: FloatArray, b: FloatArray, *, tolerance: float | None = None, max_iterations: int | None = None
) -> FloatArray:
    """The ``x ≥ 0`` minimising ``‖a x − b‖₂`` (Lawson-Hanson active set).

    ``tolerance`` is the threshold on the dual ``w`` below which a variable stays at
    zero (default ``10 · machine-ε · ‖a‖₁ · max(m, n)``, as in Lawson-Hanson's
    reference code); ``max_iterations`` caps the outer loop (default ``3 n``).
    Columns should be of comparable norm (scale them first) for a well-conditioned
    inner solve.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 1 or a.shape[0] != b.shape[0]:
        raise ValueError(f"shapes do not match: a {a.shape}, b {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("a and b must be finite")
    m, n = a.shape
    x = np.zeros(n)
    if n == 0 or m == 0:
        return x
    tol = tolerance if tolerance is not None else 10 * np.finfo(np.float64).eps * np.linalg.norm(a, 1) * max(m, n)
    passive = np.zeros(n, dtype=bool)
    w = a.T @ (b - a @ x)
    for _ in range(max_iterations if max_iterations is not None else 3 * n):
        candidates = np.where(passive, -np.inf, w)
        j = int(np.argmax(candidates))
        if passive.all() or candidates[j] <= tol:
            break
        passive[j] = True
        for _inner in range(n + 1):  # each pass returns at least one variable to Z
            s = np.zeros(n)
            s[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (s[passive] > 0).all():
                x = s
                break
            # Step towards s until the first passive variable reaches zero.
            blocking = passive & (s <= 0)
            gap = x - s
            ratios = np.full(n, np.inf)
            safe_gap = np.where(gap > 0, gap, 1.0)
            ratios[blocking] = np.where(gap[blocking] > 0, x[blocking] / safe_gap[blocking], 0.0)
            k = int(np.argmin(ratios))
            x = x + ratios[k] * (s - x)
            x[k] = 0.0
            passive &= x > 0
            x[~passive] = 0.0
            if not passive.any():
                break
        w = a.T @ (b - a @ x)
    x[x < 0] = 0.0
    return x
