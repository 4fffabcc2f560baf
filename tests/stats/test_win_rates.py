import numpy as np
import pytest

from stats.bradley_terry import bradley_terry
from stats.position import left_share
from stats.win_rates import (
    majority_battles,
    predicted_win_matrix,
    win_fraction_matrix,
    win_rate_against,
    win_rates,
)

A = np.array([0, 0, 0, 1, 2])
B = np.array([1, 1, 2, 2, 0])
Y = np.array([1.0, 0.5, 0.0, 1.0, 1.0])


def test_win_rate_counts_ties_as_half():
    # Model 0: win, tie, loss (to 2), loss (2 won as A): 1.5 / 4.
    assert win_rates(A, B, Y, 3) == pytest.approx([1.5 / 4, 1.5 / 3, 2 / 3])


def test_win_fraction_matrix_is_complementary_and_empty_pairs_are_nan():
    w = win_fraction_matrix(A, B, Y, 3)
    assert w[0, 1] == pytest.approx(0.75) and w[1, 0] == pytest.approx(0.25)
    assert w[0, 2] == 0 and w[2, 0] == 1
    assert np.isnan(w[0, 0])


def test_predicted_matrix_follows_the_elo_formula_and_matches_observed_shares():
    p = predicted_win_matrix(np.array([1000.0, 1400.0]))
    assert p[1, 0] == pytest.approx(10 / 11) and p[0, 0] == 0.5
    a, b = np.zeros(400, int), np.ones(400, int)
    y = np.r_[np.ones(300), np.zeros(100)]
    fit = bradley_terry(a, b, y, 2)
    assert predicted_win_matrix(fit.rating)[0, 1] == pytest.approx(0.75, abs=1e-6)


def test_win_rate_against_reference_and_the_equal_or_better_share():
    # Model 1 against reference 0: loses, ties, wins (as A), wins (as B when 0 loses).
    a, b, y = np.array([1, 1, 1, 0]), np.array([0, 0, 0, 1]), np.array([0.0, 0.5, 1.0, 0.0])
    result = win_rate_against(a, b, y, model=1, reference=0)
    assert result.battles == 4
    assert result.win_rate == pytest.approx(2.5 / 4)
    assert result.equal_or_better == pytest.approx(3 / 4)
    assert result.lower < result.win_rate < result.upper


def test_majority_battles_take_the_sign_of_the_mean_vote():
    group = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    y = np.array([1, 1, 0, 0.5, 0.5, 0, 1, 0])
    a, b, out = majority_battles(group, np.zeros(8, int), np.ones(8, int), y)
    assert list(out) == [1.0, 0.0, 0.5]


def test_left_share_with_its_interval():
    share = left_share(np.array([True] * 60 + [False] * 40))
    assert share.decisive == 100 and share.left_share == 0.6
    assert share.lower < 0.6 < share.upper
