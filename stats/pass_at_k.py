"""pass@k for code benchmarks: the unbiased estimator of Chen et al. (2021), averaged over problems."""

from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c of them correct) is correct.

    The unbiased estimator 1 - C(n-c, k) / C(n, k), computed as a running product so that it is
    stable for large n. ``k`` may not exceed ``n``.
    """
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got c={c}, n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(samples: Sequence[tuple[int, int]], k: int) -> float:
    """Mean pass@k over problems, each given as (n samples, c correct); nan with no problems."""
    if not samples:
        return float("nan")
    return float(np.mean([pass_at_k(n, c, k) for n, c in samples]))
