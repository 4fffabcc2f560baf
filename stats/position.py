r"""Position bias: how often the answer shown on the left wins.

Over decisive votes (ties and both-bad left out), left share = #left wins / #decisive votes,
with a Wilson 95% interval; 0.5 means no position bias. Per study and per rater.
"""

from dataclasses import dataclass

import numpy as np

from stats.intervals import wilson_interval


@dataclass(frozen=True)
class LeftShare:
    decisive: int
    left_share: float
    lower: float
    upper: float


def left_share(left_won: np.ndarray) -> LeftShare:
    """From a boolean per decisive vote (True when the left answer won)."""
    won = np.asarray(left_won, dtype=bool)
    n = len(won)
    if n == 0:
        return LeftShare(0, float("nan"), float("nan"), float("nan"))
    share = float(won.mean())
    lo, hi = wilson_interval(float(won.sum()), n)
    return LeftShare(n, share, lo, hi)
