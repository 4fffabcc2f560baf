r"""Profile-likelihood intervals, for data too small or too lopsided for the sandwich or the bootstrap.

For a linear quantity q = d . params of a fitted log-likelihood l (a rating on the Elo scale is
one: R_i = 1000 + row i of the Elo transform times theta), the 95% interval is

    { v : 2 * (l_max - max_{params : d . params = v} l(params)) <= z^2 },   z = 1.96,

the values a likelihood-ratio test does not reject. Each inner maximum is found by Newton's method
under the linear constraint (a step solves the KKT system [H -d; d^T 0] [step; lambda] = [-g; r]);
each end of the interval by stepping out from the estimate (doubling) and then bisecting. An end
that is not reached within ``max_shift`` of the estimate is unbounded (+-inf): the data cannot bound
it, as for a model that won (or lost) every vote, whose maximum-likelihood rating is infinite.
"""

from collections.abc import Callable

import numpy as np

from stats.intervals import Z95

# objective(params) -> (log-likelihood, gradient, Hessian), both over all parameters.
Objective = Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]]


def _constrained_max(
    objective: Objective, start: np.ndarray, free: np.ndarray, d: np.ndarray, value: float, max_iter: int = 60
) -> tuple[float, np.ndarray]:
    """max l(params) subject to d . params = value, moving only ``free``; (maximum, params)."""
    params = start.copy()
    n = len(free)
    dfree = d[free]
    for _ in range(max_iter):
        ll, grad, hess = objective(params)
        system = np.zeros((n + 1, n + 1))
        system[:n, :n] = hess[np.ix_(free, free)]
        system[:n, n] = -dfree
        system[n, :n] = dfree
        rhs = np.concatenate([-grad[free], [value - d @ params]])
        try:
            step = np.linalg.solve(system, rhs)[:n]
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(system, rhs, rcond=None)[0][:n]
        params[free] += step
        if np.max(np.abs(step)) < 1e-9:
            break
    return objective(params)[0], params


def profile_interval(
    objective: Objective,
    params: np.ndarray,
    free: np.ndarray,
    d: np.ndarray,
    max_shift: float,
    z: float = Z95,
    steps: int = 40,
    tolerance: float | None = None,
) -> tuple[float, float]:
    """The profile-likelihood interval of d . params around the maximum ``params``; +-inf for an end the
    data do not bound within ``max_shift``."""
    estimate = float(d @ params)
    tolerance = max_shift * 1e-6 if tolerance is None else tolerance
    if not np.any(d[free]):
        return estimate, estimate  # pinned: the reference model's rating is fixed by definition
    l_max = objective(params)[0]
    drop = z * z / 2

    def deviance_at(v: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        ll, fitted = _constrained_max(objective, start, free, d, v)
        return l_max - ll, fitted

    ends = []
    for sign in (-1.0, 1.0):
        ends.append(estimate + sign * _reach(deviance_at, estimate, sign, params, drop, max_shift, steps, tolerance))
    return float(ends[0]), float(ends[1])


def _reach(deviance_at, estimate, sign, params, drop, max_shift, steps, tolerance) -> float:
    """How far from the estimate, on one side, the deviance reaches ``drop``; inf when not within max_shift."""
    near, shift, start = 0.0, max_shift / 2**8, params
    while True:
        dev, fitted = deviance_at(estimate + sign * shift, start)
        if dev > drop:
            break
        if shift >= max_shift:
            return np.inf
        near, start, shift = shift, fitted, min(2 * shift, max_shift)
    far = shift
    for _ in range(steps):
        if far - near < tolerance:
            break
        mid = (near + far) / 2
        dev, fitted = deviance_at(estimate + sign * mid, start)
        if dev > drop:
            far = mid
        else:
            near, start = mid, fitted
    return (near + far) / 2
