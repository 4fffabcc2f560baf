r"""Inter-rater agreement: Krippendorff's alpha for nominal and ordinal data.

With n_uc the number of values c given to unit u and m_u = sum_c n_uc (units with m_u < 2 are
dropped), the coincidence matrix is

    o_ck = sum_u (n_uc * n_uk - [c = k] * n_uc) / (m_u - 1),   n_c = sum_k o_ck,   n = sum_c n_c

and alpha = 1 - D_o / D_e with D_o = sum_{c != k} o_ck / n and
D_e = sum_{c != k} n_c n_k / (n (n - 1)). alpha = 1 is perfect agreement, 0 is chance.

Ordinal data (categories in rank order) weigh each disagreement by the ordinal distance

    delta_ck^2 = (sum_{g=c}^{k} n_g - (n_c + n_k) / 2)^2

so alpha = 1 - (n - 1) sum_ck o_ck delta_ck^2 / sum_ck n_c n_k delta_ck^2.
"""

import numpy as np


def value_counts(unit: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Units x categories count matrix n_uc from one (unit, value) pair per judgement."""
    _, u = np.unique(np.asarray(unit), return_inverse=True)
    _, v = np.unique(np.asarray(value), return_inverse=True)
    counts = np.zeros((u.max() + 1 if len(u) else 0, v.max() + 1 if len(v) else 0))
    np.add.at(counts, (u, v), 1)
    return counts


def coincidences(counts: np.ndarray) -> np.ndarray | None:
    """The coincidence matrix o_ck of a units x categories count matrix; None when no unit has two values."""
    n_uc = np.asarray(counts, dtype=np.float64)
    m = n_uc.sum(axis=1)
    n_uc, m = n_uc[m >= 2], m[m >= 2]
    if len(m) == 0:
        return None
    o = (n_uc[:, :, None] * n_uc[:, None, :] / (m - 1)[:, None, None]).sum(axis=0)
    return o - np.diag((n_uc / (m - 1)[:, None]).sum(axis=0))


def krippendorff_alpha_nominal(counts: np.ndarray) -> float:
    """Alpha from a units x categories count matrix; NaN when fewer than two pairable values or one category."""
    return _alpha(counts, lambda n_c: 1.0 - np.eye(len(n_c)))


def krippendorff_alpha_ordinal(counts: np.ndarray) -> float:
    """Ordinal alpha from a units x categories count matrix whose columns are in rank order; NaN as above."""
    return _alpha(counts, _ordinal_delta2)


def _ordinal_delta2(n_c: np.ndarray) -> np.ndarray:
    cumulative = np.concatenate([[0.0], np.cumsum(n_c)])
    lo = np.minimum.outer(np.arange(len(n_c)), np.arange(len(n_c)))
    hi = np.maximum.outer(np.arange(len(n_c)), np.arange(len(n_c)))
    return (cumulative[hi + 1] - cumulative[lo] - (n_c[:, None] + n_c[None, :]) / 2) ** 2


def _alpha(counts: np.ndarray, delta2_of) -> float:
    """alpha = 1 - (n - 1) sum_ck o_ck delta_ck^2 / sum_ck n_c n_k delta_ck^2 (nominal: delta^2 = [c != k])."""
    o = coincidences(counts)
    if o is None:
        return float("nan")
    n_c = o.sum(axis=1)
    delta2 = delta2_of(n_c)
    expected = (np.outer(n_c, n_c) * delta2).sum()
    if expected == 0:
        return float("nan")
    return float(1 - (n_c.sum() - 1) * (o * delta2).sum() / expected)
