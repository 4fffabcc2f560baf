r"""Bradley-Terry ratings on the Elo scale, fitted by maximum likelihood.

Model: the probability that model i beats model j is

    P(i > j) = 1 / (1 + 10 ** ((R_j - R_i) / 400)) = sigmoid(theta_i - theta_j),  R = 1000 + 400 / ln(10) * theta

A vote with outcome y (1 win, 0.5 tie, 0 loss for i) adds y log p + (1 - y) log(1 - p) to the
log-likelihood, so a tie is half a win for each side. The maximum is found by Newton's method
on counts aggregated per model pair (sufficient statistics: n_ij, sum y, sum y^2), so the cost
after one pass over the votes depends only on the number of models.

Identification: theta is defined up to a constant; the fit pins theta of the last model (or the
reference) at 0, then ratings are centred to a mean of 1000, or the reference is pinned at 1000.

Intervals (95%):
- sandwich: Cov = H^-1 B H^-1 with H = sum_v p(1-p) x x^T (the Fisher information) and
  B = sum_v (y - p)^2 x x^T (robust to ties, which the two-outcome model does not describe);
- bootstrap: votes resampled with replacement (a multinomial draw over the vote cells, which is
  the same distribution), refitted, 2.5% and 97.5% percentiles, fixed seed;
- profile likelihood (``stats/profile.py``): for little data or a model that won or lost every
  vote, where both of the above are over-confident (the MLE is then infinite, and only the ridge
  keeps it finite); such an end is unbounded (+-inf).

Ranks respect the intervals: rank_i = 1 + #{j : lower_j > upper_i}.
"""

from dataclasses import dataclass

import numpy as np

from stats.intervals import Z95
from stats.profile import profile_interval

ELO_SCALE = 400.0 / np.log(10.0)
ELO_BASE = 1000.0
# A tiny ridge keeps the MLE finite when a model wins (or loses) every battle.
RIDGE = 1e-6
# A profile-likelihood end further than this from the estimate (Elo points) is unbounded. Far: with
# separation the estimate itself sits where the ridge stops it, some 2000 points out.
PROFILE_MAX_SHIFT = 5000.0


@dataclass(frozen=True)
class PairCounts:
    """Votes aggregated per ordered-free model pair i < j: battles, score of i, and score squared."""

    n_models: int
    i: np.ndarray
    j: np.ndarray
    n: np.ndarray
    score: np.ndarray
    score_sq: np.ndarray


def pair_counts(model_a: np.ndarray, model_b: np.ndarray, outcome: np.ndarray, n_models: int) -> PairCounts:
    """Aggregate votes per unordered pair; the outcome is turned to the lower index's side."""
    a = np.asarray(model_a, dtype=np.int64)
    return weighted_pair_counts(
        a, np.asarray(model_b, dtype=np.int64), np.asarray(outcome, float), np.ones(len(a)), n_models
    )


def _laplacian(k: int, i: np.ndarray, j: np.ndarray, w: np.ndarray) -> np.ndarray:
    """sum over pairs of w * (e_i - e_j)(e_i - e_j)^T."""
    m = np.zeros((k, k))
    np.add.at(m, (i, i), w)
    np.add.at(m, (j, j), w)
    np.add.at(m, (i, j), -w)
    np.add.at(m, (j, i), -w)
    return m


def fit_theta(counts: PairCounts, anchor: int | None = None, max_iter: int = 100, tol: float = 1e-10) -> np.ndarray:
    """Maximum-likelihood theta (natural log-odds scale) with theta[anchor] = 0 (default: last model)."""
    k = counts.n_models
    anchor = k - 1 if anchor is None else anchor
    free = np.array([m for m in range(k) if m != anchor], dtype=np.int64)
    theta = np.zeros(k)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(theta[counts.i] - theta[counts.j])))
        resid = counts.score - counts.n * p
        grad = np.bincount(counts.i, weights=resid, minlength=k) - np.bincount(counts.j, weights=resid, minlength=k)
        hess = _laplacian(k, counts.i, counts.j, counts.n * p * (1 - p))
        g = grad[free] - RIDGE * theta[free]
        h = hess[np.ix_(free, free)] + RIDGE * np.eye(len(free))
        step = np.linalg.solve(h, g)
        theta[free] += step
        if np.max(np.abs(step)) < tol:
            break
    return theta


def sandwich_cov(counts: PairCounts, theta: np.ndarray, anchor: int | None = None) -> np.ndarray:
    """Sandwich covariance of theta (anchor row and column zero): H^-1 B H^-1 on the free parameters."""
    k = counts.n_models
    anchor = k - 1 if anchor is None else anchor
    free = np.array([m for m in range(k) if m != anchor], dtype=np.int64)
    p = 1.0 / (1.0 + np.exp(-(theta[counts.i] - theta[counts.j])))
    # sum over the pair's votes of (y - p)^2 = sum y^2 - 2 p sum y + n p^2
    sq_resid = counts.score_sq - 2 * p * counts.score + counts.n * p * p
    hess = _laplacian(k, counts.i, counts.j, counts.n * p * (1 - p))[np.ix_(free, free)]
    meat = _laplacian(k, counts.i, counts.j, sq_resid)[np.ix_(free, free)]
    h_inv = np.linalg.pinv(hess + RIDGE * np.eye(len(free)))
    cov = np.zeros((k, k))
    cov[np.ix_(free, free)] = h_inv @ meat @ h_inv
    return cov


def to_elo(theta: np.ndarray, reference: int | None = None) -> np.ndarray:
    """Elo-scale ratings: mean 1000, or the reference model pinned at 1000."""
    shift = theta[reference] if reference is not None else theta.mean()
    return ELO_BASE + ELO_SCALE * (theta - shift)


def elo_transform(n_models: int, reference: int | None = None) -> np.ndarray:
    """The linear map theta -> (R - 1000), to carry covariances over to the Elo scale."""
    if reference is None:
        centre = np.eye(n_models) - np.full((n_models, n_models), 1.0 / n_models)
    else:
        centre = np.eye(n_models)
        centre[:, reference] -= 1.0
    return ELO_SCALE * centre


@dataclass(frozen=True)
class Ratings:
    """Elo-scale ratings with 95% intervals (lower, upper) and interval-respecting ranks."""

    rating: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    method: str

    @property
    def rank(self) -> np.ndarray:
        return ranks_from_intervals(self.lower, self.upper)


def ranks_from_intervals(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """rank_i = 1 + number of models whose lower bound is above model i's upper bound."""
    return 1 + (lower[None, :] > upper[:, None]).sum(axis=1)


def bradley_terry(
    model_a: np.ndarray,
    model_b: np.ndarray,
    outcome: np.ndarray,
    n_models: int,
    reference: int | None = None,
    interval: str = "sandwich",
    rounds: int = 100,
    seed: int = 0,
    profile: list[int] | None = None,
) -> Ratings:
    """Bradley-Terry MLE on the Elo scale with 95% intervals ("sandwich", "bootstrap" or "profile"); the models
    in ``profile`` get profile-likelihood intervals whatever the method."""
    counts = pair_counts(model_a, model_b, outcome, n_models)
    theta = fit_theta(counts, anchor=reference)
    rating = to_elo(theta, reference)
    if interval == "sandwich":
        t = elo_transform(n_models, reference)
        se = np.sqrt(np.clip(np.diag(t @ sandwich_cov(counts, theta, reference) @ t.T), 0, None))
        lower, upper, method = rating - Z95 * se, rating + Z95 * se, "sandwich"
    elif interval == "profile":
        lower, upper = profile_ratings(counts, theta, reference)
        method = "profile likelihood"
    elif interval == "bootstrap":
        samples = bootstrap_ratings(model_a, model_b, outcome, n_models, reference, rounds, seed)
        lower, upper = np.percentile(samples, [2.5, 97.5], axis=0)
        method = f"bootstrap ({rounds} rounds, seed {seed})"
    else:
        raise ValueError(f"unknown interval method {interval!r}")
    if profile and interval != "profile":
        plo, phi = profile_ratings(counts, theta, reference, profile)
        lower, upper = lower.copy(), upper.copy()
        lower[profile], upper[profile] = plo[profile], phi[profile]
        method += "; profile likelihood for some models"
    return Ratings(rating, lower, upper, method)


def bootstrap_ratings(
    model_a: np.ndarray,
    model_b: np.ndarray,
    outcome: np.ndarray,
    n_models: int,
    reference: int | None = None,
    rounds: int = 100,
    seed: int = 0,
) -> np.ndarray:
    """Ratings refitted on ``rounds`` resamples of the votes; shape (rounds, n_models).

    Resampling N votes with replacement draws each distinct (pair, outcome) cell's count from
    Multinomial(N, cell share), so the resample is drawn on the cells, not on the votes.
    """
    a = np.asarray(model_a, dtype=np.int64)
    b = np.asarray(model_b, dtype=np.int64)
    y = np.asarray(outcome, dtype=np.float64)
    y_code = np.rint(y * 2).astype(np.int64)
    cells, cell_count = np.unique((a * n_models + b) * 3 + y_code, return_counts=True)
    cell_pair, cell_y = cells // 3, (cells % 3) / 2.0
    cell_a, cell_b = cell_pair // n_models, cell_pair % n_models
    rng = np.random.default_rng(seed)
    total = int(cell_count.sum())
    out = np.empty((rounds, n_models))
    for r in range(rounds):
        draw = rng.multinomial(total, cell_count / total).astype(np.float64)
        keep = draw > 0
        counts = weighted_pair_counts(cell_a[keep], cell_b[keep], cell_y[keep], draw[keep], n_models)
        out[r] = to_elo(fit_theta(counts, anchor=reference), reference)
    return out


def weighted_pair_counts(a: np.ndarray, b: np.ndarray, y: np.ndarray, w: np.ndarray, n_models: int) -> PairCounts:
    """Aggregate weighted votes per unordered pair."""
    swap = a > b
    lo, hi = np.where(swap, b, a), np.where(swap, a, b)
    y_lo = np.where(swap, 1.0 - y, y)
    key = lo * n_models + hi
    size = n_models * n_models
    n = np.bincount(key, weights=w, minlength=size)
    s = np.bincount(key, weights=w * y_lo, minlength=size)
    s2 = np.bincount(key, weights=w * y_lo * y_lo, minlength=size)
    present = np.nonzero(n)[0]
    return PairCounts(n_models, present // n_models, present % n_models, n[present], s[present], s2[present])


def log_likelihood(counts: PairCounts, theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(log-likelihood with the ridge, gradient, Hessian) of theta, from the pair counts."""
    k = counts.n_models
    x = theta[counts.i] - theta[counts.j]
    p = 1.0 / (1.0 + np.exp(-x))
    ll = -np.sum(counts.score * np.logaddexp(0, -x) + (counts.n - counts.score) * np.logaddexp(0, x))
    resid = counts.score - counts.n * p
    grad = np.bincount(counts.i, weights=resid, minlength=k) - np.bincount(counts.j, weights=resid, minlength=k)
    hess = -_laplacian(k, counts.i, counts.j, counts.n * p * (1 - p)) - RIDGE * np.eye(k)
    return ll - RIDGE / 2 * theta @ theta, grad - RIDGE * theta, hess


def profile_ratings(
    counts: PairCounts, theta: np.ndarray, reference: int | None = None, models: list[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """95% profile-likelihood intervals of the Elo ratings of ``models`` (default: all; NaN for the others),
    +-inf where the data set no bound."""
    k = counts.n_models
    anchor = k - 1 if reference is None else reference
    free = np.array([m for m in range(k) if m != anchor], dtype=np.int64)
    t = elo_transform(k, reference)
    lower, upper = np.full(k, np.nan), np.full(k, np.nan)
    for i in range(k) if models is None else models:
        lo, hi = profile_interval(lambda th: log_likelihood(counts, th), theta, free, t[i], PROFILE_MAX_SHIFT)
        lower[i], upper[i] = ELO_BASE + lo, ELO_BASE + hi
    return lower, upper
