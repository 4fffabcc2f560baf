r"""Inter-rater agreement: Krippendorff's alpha for nominal data.

With n_uc the number of values c given to unit u and m_u = sum_c n_uc (units with m_u < 2 are
dropped), the coincidence matrix is

    o_ck = sum_u (n_uc * n_uk - [c = k] * n_uc) / (m_u - 1),   n_c = sum_k o_ck,   n = sum_c n_c

and alpha = 1 - D_o / D_e with D_o = sum_{c != k} o_ck / n and
D_e = sum_{c != k} n_c n_k / (n (n - 1)). alpha = 1 is perfect agreement, 0 is chance.
"""

import numpy as np


def value_counts(unit: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Units x categories count matrix n_uc from one (unit, value) pair per judgement."""
    _, u = np.unique(np.asarray(unit), return_inverse=True)
    _, v = np.unique(np.asarray(value), return_inverse=True)
    counts = np.zeros((u.max() + 1 if len(u) else 0, v.max() + 1 if len(v) else 0))
    np.add.at(counts, (u, v), 1)
    return counts


def krippendorff_alpha_nominal(counts: np.ndarray) -> float:
    """Alpha from a units x categories count matrix; NaN when fewer than two pairable values or one category."""
    n_uc = np.asarray(counts, dtype=np.float64)
    m = n_uc.sum(axis=1)
    n_uc, m = n_uc[m >= 2], m[m >= 2]
    if len(m) == 0:
        return float("nan")
    o = (n_uc[:, :, None] * n_uc[:, None, :] / (m - 1)[:, None, None]).sum(axis=0)
    o -= np.diag((n_uc / (m - 1)[:, None]).sum(axis=0))
    n_c = o.sum(axis=1)
    n = n_c.sum()
    d_o = (o.sum() - np.trace(o)) / n
    d_e = (n * n - (n_c * n_c).sum()) / (n * (n - 1))
    if d_e == 0:
        return float("nan")
    return float(1 - d_o / d_e)
