"""The style-substance gap of one model against the reference, with a parametric-bootstrap interval.

Both sides are put on the reference's scale, where 1 means "as good as the reference":

    preference  P = w / 0.5 = 2w          (w: win rate against the reference, ties half)
    substance   S = a / a_ref             (a, a_ref: benchmark accuracies on the same benchmark)
    gap         G = P − S

G > 0: raters like the model more than its facts would justify (the imitation pattern).
The 95% interval is the 2.5th–97.5th percentile of G over draws that resample each count
independently: w* = Binomial(battles, w) / battles, a* = Binomial(n, a) / n, a_ref* likewise
(a published score with no item count is held fixed). Pure numpy; no ORM.
"""

from dataclasses import dataclass

import numpy as np

DRAWS = 4000
SEED = 0


@dataclass(frozen=True)
class Gap:
    preference: float
    relative_accuracy: float
    gap: float
    ci: tuple[float, float]


def _resample(rng: np.random.Generator, p: float, n: int | None, draws: int) -> np.ndarray:
    if not n:
        return np.full(draws, p)
    return rng.binomial(n, min(max(p, 0.0), 1.0), size=draws) / n


def style_substance_gap(
    win_rate: float,
    battles: int,
    accuracy: float,
    n_items: int | None,
    reference_accuracy: float,
    reference_n_items: int | None,
    *,
    draws: int = DRAWS,
    seed: int = SEED,
) -> Gap | None:
    """The gap G = 2w − a / a_ref with its interval; None when the reference's accuracy is 0."""
    if reference_accuracy <= 0 or battles <= 0:
        return None
    rng = np.random.default_rng(seed)
    w = _resample(rng, win_rate, battles, draws)
    a = _resample(rng, accuracy, n_items, draws)
    a_ref = _resample(rng, reference_accuracy, reference_n_items, draws)
    # A draw where the reference scores 0 has no ratio; it is left out of the percentiles.
    ok = a_ref > 0
    g = 2 * w[ok] - a[ok] / a_ref[ok]
    lo, hi = np.percentile(g, [2.5, 97.5])
    relative = accuracy / reference_accuracy
    return Gap(
        preference=2 * win_rate, relative_accuracy=relative, gap=2 * win_rate - relative, ci=(float(lo), float(hi))
    )
