r"""Win rates, the win-fraction matrix and the predicted win-rate matrix.

- Win rate of model i: (wins + 0.5 * ties) / battles over every battle i took part in.
- Against a reference model: the same over battles with the reference only, with a Wilson 95%
  interval on the share (ties counted half); and the paper's headline form, the share rated
  equal or better: (wins + ties) / battles.
- Win-fraction matrix: W_ij = (wins of i over j + 0.5 * ties) / battles between i and j (NaN if none).
- Predicted matrix from Elo ratings: P_ij = 1 / (1 + 10 ** ((R_j - R_i) / 400)).
- Majority battles (PRD's notebook): the votes on one (question, ordered pair) become one battle
  whose outcome is the sign of the mean of +1 (A), -1 (B), 0 (tie).
"""

from dataclasses import dataclass

import numpy as np

from stats.intervals import wilson_interval


def win_rates(model_a: np.ndarray, model_b: np.ndarray, outcome: np.ndarray, n_models: int) -> np.ndarray:
    """(wins + 0.5 ties) / battles per model; NaN for a model with no battles."""
    a = np.asarray(model_a, dtype=np.int64)
    b = np.asarray(model_b, dtype=np.int64)
    y = np.asarray(outcome, dtype=np.float64)
    score = np.bincount(a, weights=y, minlength=n_models) + np.bincount(b, weights=1 - y, minlength=n_models)
    battles = np.bincount(a, minlength=n_models) + np.bincount(b, minlength=n_models)
    return np.divide(score, battles, out=np.full(n_models, np.nan), where=battles > 0)


def battle_counts(model_a: np.ndarray, model_b: np.ndarray, n_models: int) -> np.ndarray:
    return np.bincount(np.asarray(model_a), minlength=n_models) + np.bincount(np.asarray(model_b), minlength=n_models)


def win_fraction_matrix(model_a: np.ndarray, model_b: np.ndarray, outcome: np.ndarray, n_models: int) -> np.ndarray:
    """W_ij = share of i's score against j (ties half); NaN where i and j never met."""
    a = np.asarray(model_a, dtype=np.int64)
    b = np.asarray(model_b, dtype=np.int64)
    y = np.asarray(outcome, dtype=np.float64)
    size = n_models * n_models
    score = np.bincount(a * n_models + b, weights=y, minlength=size) + np.bincount(
        b * n_models + a, weights=1 - y, minlength=size
    )
    n = np.bincount(a * n_models + b, minlength=size) + np.bincount(b * n_models + a, minlength=size)
    return np.divide(score, n, out=np.full(size, np.nan), where=n > 0).reshape(n_models, n_models)


def predicted_win_matrix(ratings: np.ndarray) -> np.ndarray:
    """P_ij = 1 / (1 + 10 ** ((R_j - R_i) / 400)); the diagonal is 0.5."""
    r = np.asarray(ratings, dtype=np.float64)
    return 1.0 / (1.0 + 10.0 ** ((r[None, :] - r[:, None]) / 400.0))


@dataclass(frozen=True)
class ReferenceWinRate:
    battles: int
    win_rate: float
    lower: float
    upper: float
    equal_or_better: float


def win_rate_against(
    model_a: np.ndarray, model_b: np.ndarray, outcome: np.ndarray, model: int, reference: int
) -> ReferenceWinRate:
    """Model's win rate (ties half) and equal-or-better share in its battles with the reference."""
    a = np.asarray(model_a, dtype=np.int64)
    b = np.asarray(model_b, dtype=np.int64)
    y = np.asarray(outcome, dtype=np.float64)
    as_a = (a == model) & (b == reference)
    as_b = (b == model) & (a == reference)
    score = np.concatenate([y[as_a], 1 - y[as_b]])
    n = len(score)
    if n == 0:
        return ReferenceWinRate(0, float("nan"), float("nan"), float("nan"), float("nan"))
    share = float(score.mean())
    lo, hi = wilson_interval(share * n, n)
    return ReferenceWinRate(n, share, lo, hi, float((score >= 0.5).mean()))


def majority_battles(
    group: np.ndarray, model_a: np.ndarray, model_b: np.ndarray, outcome: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One battle per group (a question and ordered pair): outcome = sign of the mean of 2y - 1, mapped back."""
    g = np.asarray(group)
    keys, first, inverse = np.unique(g, return_index=True, return_inverse=True)
    total = np.bincount(inverse, weights=2 * np.asarray(outcome, dtype=np.float64) - 1, minlength=len(keys))
    sign = np.sign(total)
    return np.asarray(model_a)[first], np.asarray(model_b)[first], (sign + 1) / 2
