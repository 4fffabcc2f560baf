"""The one Wilson interval: counts in, the score equation's roots out; fractional counts for ties."""

import math

import pytest

from stats.intervals import wilson_interval


def test_wilson_interval_solves_the_score_equation():
    from scipy.optimize import brentq

    z, n, p_hat = 1.959963984540054, 100, 0.31
    lo, hi = wilson_interval(31, n)

    # Its ends are the p where |p_hat - p| = z * sqrt(p (1 - p) / n).
    def gap(p):
        return (p_hat - p) ** 2 - z * z * p * (1 - p) / n

    assert lo == pytest.approx(brentq(gap, 1e-9, p_hat))
    assert hi == pytest.approx(brentq(gap, p_hat, 1 - 1e-9))
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0, abs=1e-12)


def test_wilson_interval_takes_half_wins_and_has_no_interval_without_trials():
    # A share of 0.5 over 10 battles is 5 successes, whether they are wins or two half-wins each.
    assert wilson_interval(5.0, 10) == wilson_interval(5, 10)
    lo, hi = wilson_interval(2.5, 5)
    assert lo < 0.5 < hi
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
