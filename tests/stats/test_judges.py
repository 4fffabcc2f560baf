import numpy as np
import pytest

from stats.judges import TIE, UNPARSED, A, B, agreement, cohen_kappa, combine_orders, position_bias, self_consistency


def test_two_orders_combine_by_the_stated_rule():
    a_first = np.array([A, A, B, TIE, A, UNPARSED])
    b_first = np.array([A, B, B, A, TIE, A])
    assert combine_orders(a_first, b_first).tolist() == [A, TIE, B, TIE, TIE, UNPARSED]


def test_kappa_of_perfect_and_chance_agreement():
    x = np.array([0, 1, 2, 0, 1, 2])
    assert cohen_kappa(x, x) == pytest.approx(1.0)
    # Independent marginals give kappa 0: every class pairs with every class equally often.
    x = np.array([0, 0, 1, 1])
    y = np.array([0, 1, 0, 1])
    assert cohen_kappa(x, y, 2) == pytest.approx(0.0)


def test_agreement_leaves_out_unparsed_and_without_ties_drops_ties():
    human = np.array([A, B, TIE, A, B])
    judge = np.array([A, A, TIE, UNPARSED, B])
    r = agreement(human, judge, rounds=200)
    assert r.n == 4 and r.agreement == pytest.approx(0.75)
    assert r.lower <= 0.75 <= r.upper
    r = agreement(human, judge, with_ties=False, rounds=200)
    assert r.n == 3 and r.agreement == pytest.approx(2 / 3)


def test_position_bias_and_self_consistency():
    bias = position_bias(np.array([True, True, True, False]))
    assert bias.decisive == 4 and bias.left_share == pytest.approx(0.75)
    c = self_consistency(np.array([A, B, TIE, UNPARSED]), np.array([A, A, TIE, A]))
    assert c.n == 3 and c.share == pytest.approx(2 / 3)
