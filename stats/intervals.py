r"""The Wilson score interval of a proportion, the one every page and payload uses.

For s successes in n trials (s may be fractional: a tie counts half), p = s / n and

    (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n),

clipped to [0, 1]; z = 1.96 gives 95%. With n = 0 there is no interval: (nan, nan).
"""

import math

Z95 = 1.959963984540054


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of ``successes / n``; (nan, nan) when ``n`` is 0."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(max(p * (1 - p), 0.0) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
