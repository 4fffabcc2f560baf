r"""Style-controlled Bradley-Terry: the rating a model would have if answers did not differ in style.

Chatbot Arena's style control. For a vote between answers A (model i) and B (model j):

    logit P(A > B) = theta_i - theta_j + sum_s gamma_s * z_s,
    d_s = (f_s(A) - f_s(B)) / (f_s(A) + f_s(B))        (0 when both are 0)
    z_s = d_s / sqrt(mean(d_s^2))                      (scaled, not centred)

for style features f_s: answer length (words), markdown headers, list items and bold spans.
z is scaled but not centred, so swapping A and B flips its sign exactly and no side of the pair
gets a free intercept. gamma_s is the change in log-odds of winning per unit of z_s; theta is the
model's strength with style held equal. Ties count half a win, as in the plain model.

Fitted by Newton's method on the votes; every Hessian block is a weighted bincount, so one
iteration costs O(N * S) for N votes and S features. 95% intervals from the sandwich estimator
Cov = H^-1 B H^-1 (H = sum p(1-p) x x^T, B = sum (y-p)^2 x x^T), or from a bootstrap over votes
(each round a weighted refit started from the full-data estimate); for a model with little data or
one that won or lost every vote, the profile likelihood (``stats/profile.py``).
"""

from dataclasses import dataclass

import numpy as np

from stats.bradley_terry import ELO_BASE, ELO_SCALE, PROFILE_MAX_SHIFT, RIDGE, Z95, elo_transform, to_elo
from stats.profile import profile_interval

STYLE_FEATURES = ("length", "headers", "lists", "bold")


def normalized_style_differences(features_a: np.ndarray, features_b: np.ndarray) -> np.ndarray:
    """z_s per vote from raw features of shape (N, S): (a - b) / (a + b), scaled to unit root mean square."""
    fa = np.asarray(features_a, dtype=np.float64)
    fb = np.asarray(features_b, dtype=np.float64)
    total = fa + fb
    d = np.divide(fa - fb, total, out=np.zeros_like(total), where=total > 0)
    rms = np.sqrt(np.mean(d * d, axis=0))
    return np.divide(d, rms, out=np.zeros_like(d), where=rms > 0)


@dataclass(frozen=True)
class StyleControlled:
    """Style-controlled Elo ratings with sandwich 95% intervals, and the style coefficients."""

    rating: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    coefficients: np.ndarray
    coefficient_lower: np.ndarray
    coefficient_upper: np.ndarray


def _blocks(a, b, z, w, k):
    """X^T diag(w) X for x = [e_a - e_b, z], as a dense (k + S) square matrix."""
    s = z.shape[1]
    key = a * k + b
    pair_w = np.bincount(key, weights=w, minlength=k * k).reshape(k, k)
    sym = pair_w + pair_w.T
    mm = np.diag(sym.sum(axis=1)) - sym
    wz = z * w[:, None]
    ms = np.empty((k, s))
    for c in range(s):
        ms[:, c] = np.bincount(a, weights=wz[:, c], minlength=k) - np.bincount(b, weights=wz[:, c], minlength=k)
    ss = z.T @ wz
    out = np.empty((k + s, k + s))
    out[:k, :k], out[:k, k:], out[k:, :k], out[k:, k:] = mm, ms, ms.T, ss
    return out


def _newton(
    a: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    k: int,
    free: np.ndarray,
    weight: np.ndarray | None = None,
    start: np.ndarray | None = None,
    max_iter: int = 50,
    tol: float = 1e-9,
) -> np.ndarray:
    """(theta, gamma) maximising the (vote-weighted) log-likelihood; parameters outside ``free`` stay at start."""
    w = np.ones(len(y)) if weight is None else weight
    params = np.zeros(k + z.shape[1]) if start is None else start.copy()
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(params[a] - params[b] + z @ params[k:])))
        r = w * (y - p)
        grad = np.concatenate(
            [np.bincount(a, weights=r, minlength=k) - np.bincount(b, weights=r, minlength=k), z.T @ r]
        )
        hess = _blocks(a, b, z, w * p * (1 - p), k)[np.ix_(free, free)] + RIDGE * np.eye(len(free))
        step = np.linalg.solve(hess, grad[free] - RIDGE * params[free])
        params[free] += step
        if np.max(np.abs(step)) < tol:
            break
    return params


def _votes(model_a, model_b, outcome, z, n_models: int, reference: int | None):
    """Typed arrays, and the free parameters: every model but the anchor (reference or last), every style feature."""
    z = np.asarray(z, dtype=np.float64)
    anchor = n_models - 1 if reference is None else reference
    free = np.array([m for m in range(n_models + z.shape[1]) if m != anchor], dtype=np.int64)
    a, b = np.asarray(model_a, dtype=np.int64), np.asarray(model_b, dtype=np.int64)
    return a, b, np.asarray(outcome, dtype=np.float64), z, free


def fit_style_controlled(
    model_a: np.ndarray,
    model_b: np.ndarray,
    outcome: np.ndarray,
    z: np.ndarray,
    n_models: int,
    reference: int | None = None,
) -> StyleControlled:
    """Newton MLE of (theta, gamma) with theta[anchor] = 0; Elo ratings centred or pinned, sandwich intervals."""
    a, b, y, z, free = _votes(model_a, model_b, outcome, z, n_models, reference)
    k, s = n_models, z.shape[1]
    params = _newton(a, b, y, z, k, free)
    p = 1.0 / (1.0 + np.exp(-(params[a] - params[b] + z @ params[k:])))
    hess = _blocks(a, b, z, p * (1 - p), k)[np.ix_(free, free)] + RIDGE * np.eye(len(free))
    meat = _blocks(a, b, z, (y - p) ** 2, k)[np.ix_(free, free)]
    h_inv = np.linalg.inv(hess)
    cov = np.zeros((k + s, k + s))
    cov[np.ix_(free, free)] = h_inv @ meat @ h_inv
    theta, gamma = params[:k], params[k:]
    t = elo_transform(k, reference)
    rating = to_elo(theta, reference)
    se = np.sqrt(np.clip(np.diag(t @ cov[:k, :k] @ t.T), 0, None))
    gamma_se = np.sqrt(np.clip(np.diag(cov[k:, k:]), 0, None))
    return StyleControlled(
        rating, rating - Z95 * se, rating + Z95 * se, gamma, gamma - Z95 * gamma_se, gamma + Z95 * gamma_se
    )


def bootstrap_style_controlled(
    model_a: np.ndarray,
    model_b: np.ndarray,
    outcome: np.ndarray,
    z: np.ndarray,
    n_models: int,
    reference: int | None = None,
    rounds: int = 100,
    seed: int = 0,
) -> StyleControlled:
    """Style-controlled fit with bootstrap 95% intervals: votes resampled with replacement (as counts per
    vote, fixed seed), each round refitted from the full-data estimate, 2.5% and 97.5% percentiles.
    z is the full data's normalised difference and is not re-scaled per round."""
    a, b, y, z, free = _votes(model_a, model_b, outcome, z, n_models, reference)
    k, s, n = n_models, z.shape[1], len(y)
    full = _newton(a, b, y, z, k, free)
    rng = np.random.default_rng(seed)
    ratings = np.empty((rounds, k))
    gammas = np.empty((rounds, s))
    for r in range(rounds):
        counts = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        params = _newton(a, b, y, z, k, free, weight=counts, start=full, tol=1e-6)
        ratings[r], gammas[r] = to_elo(params[:k], reference), params[k:]
    lo, hi = np.percentile(ratings, [2.5, 97.5], axis=0)
    glo, ghi = np.percentile(gammas, [2.5, 97.5], axis=0)
    return StyleControlled(to_elo(full[:k], reference), lo, hi, full[k:], glo, ghi)


def profile_style_controlled(
    model_a: np.ndarray,
    model_b: np.ndarray,
    outcome: np.ndarray,
    z: np.ndarray,
    n_models: int,
    models: list[int],
    reference: int | None = None,
) -> tuple[dict[int, tuple[float, float]], np.ndarray, np.ndarray]:
    """95% profile-likelihood intervals of the style-controlled Elo ratings of ``models``, and of every
    style coefficient (lower, upper arrays); +-inf where the data set no bound. Each interval costs a
    few hundred passes over the votes: meant for small data, or the few models with little of it."""
    a, b, y, z, free = _votes(model_a, model_b, outcome, z, n_models, reference)
    k, s = n_models, z.shape[1]
    params = _newton(a, b, y, z, k, free)

    def objective(theta):
        x = theta[a] - theta[b] + z @ theta[k:]
        p = 1.0 / (1.0 + np.exp(-x))
        ll = -np.sum(y * np.logaddexp(0, -x) + (1 - y) * np.logaddexp(0, x)) - RIDGE / 2 * theta @ theta
        r = y - p
        grad = np.concatenate(
            [np.bincount(a, weights=r, minlength=k) - np.bincount(b, weights=r, minlength=k), z.T @ r]
        )
        return ll, grad - RIDGE * theta, -_blocks(a, b, z, p * (1 - p), k) - RIDGE * np.eye(k + s)

    t = elo_transform(k, reference)
    out = {}
    for i in models:
        d = np.concatenate([t[i], np.zeros(s)])
        lo, hi = profile_interval(objective, params, free, d, PROFILE_MAX_SHIFT)
        out[i] = (ELO_BASE + lo, ELO_BASE + hi)
    coef = np.array(
        [
            profile_interval(objective, params, free, np.eye(k + s)[k + c], PROFILE_MAX_SHIFT / ELO_SCALE)
            for c in range(s)
        ]
    ).reshape(s, 2)
    return out, coef[:, 0], coef[:, 1]
