import numpy as np
import pytest

from stats.bradley_terry import bootstrap_ratings, bradley_terry, ranks_from_intervals
from tests.stats.simulate import simulate_votes


def test_ratings_recover_planted_strengths():
    sim = simulate_votes(8, 20_000, np.random.default_rng(3))
    fit = bradley_terry(sim.model_a, sim.model_b, sim.outcome, 8)
    assert np.abs(fit.rating - sim.true_rating).max() < 30
    assert list(np.argsort(fit.rating)) == list(np.argsort(sim.true_rating))
    assert fit.rating.mean() == pytest.approx(1000)


def test_a_tie_counts_half_a_win_for_each_side():
    # One win each way is the same evidence as two ties: equal ratings either way.
    wins = bradley_terry(np.array([0, 0]), np.array([1, 1]), np.array([1.0, 0.0]), 2)
    ties = bradley_terry(np.array([0, 0]), np.array([1, 1]), np.array([0.5, 0.5]), 2)
    assert wins.rating == pytest.approx([1000, 1000])
    assert ties.rating == pytest.approx([1000, 1000])
    # 3 wins and 1 tie out of 4 is a score of 3.5 / 4: odds 7, so 400 * log10(7) Elo apart.
    fit = bradley_terry(np.zeros(4, int), np.ones(4, int), np.array([1, 1, 1, 0.5]), 2)
    assert fit.rating[0] - fit.rating[1] == pytest.approx(400 * np.log10(7), abs=1e-3)


def test_a_pinned_reference_sits_at_1000():
    sim = simulate_votes(5, 3000, np.random.default_rng(4))
    free = bradley_terry(sim.model_a, sim.model_b, sim.outcome, 5)
    pinned = bradley_terry(sim.model_a, sim.model_b, sim.outcome, 5, reference=2)
    assert pinned.rating[2] == pytest.approx(1000)
    assert pinned.upper[2] - pinned.lower[2] == pytest.approx(0, abs=1e-6)
    assert pinned.rating - pinned.rating[2] == pytest.approx(free.rating - free.rating[2])


def test_bootstrap_is_reproducible_with_its_seed_and_agrees_with_the_sandwich():
    sim = simulate_votes(6, 5000, np.random.default_rng(5))
    args = (sim.model_a, sim.model_b, sim.outcome, 6)
    first = bootstrap_ratings(*args, rounds=50, seed=7)
    assert np.array_equal(first, bootstrap_ratings(*args, rounds=50, seed=7))
    boot = bradley_terry(*args, interval="bootstrap", rounds=200)
    sandwich = bradley_terry(*args)
    widths = (boot.upper - boot.lower) / (sandwich.upper - sandwich.lower)
    assert np.all((widths > 0.75) & (widths < 1.3))


def test_ranks_respect_the_intervals():
    lower = np.array([1100.0, 1090.0, 950.0, 900.0])
    upper = np.array([1150.0, 1120.0, 1000.0, 960.0])
    # The top two overlap and share rank 1; the third is beaten by both; the fourth overlaps the third.
    assert list(ranks_from_intervals(lower, upper)) == [1, 1, 3, 3]


def test_a_model_that_wins_every_battle_gets_a_finite_rating():
    fit = bradley_terry(np.array([0, 0, 1, 1]), np.array([1, 2, 2, 2]), np.array([1.0, 1.0, 1.0, 0.0]), 3)
    assert np.all(np.isfinite(fit.rating)) and fit.rating[0] == fit.rating.max()


@pytest.mark.parametrize("interval,runs", [("sandwich", 300), ("bootstrap", 80)])
def test_intervals_cover_the_planted_rating_at_about_the_nominal_rate(interval, runs):
    rng = np.random.default_rng(11)
    covered = total = 0
    for run in range(runs):
        sim = simulate_votes(5, 1500, rng, tie_rate=0.0)
        fit = bradley_terry(sim.model_a, sim.model_b, sim.outcome, 5, interval=interval, rounds=100, seed=run)
        covered += int(((fit.lower <= sim.true_rating) & (sim.true_rating <= fit.upper)).sum())
        total += 5
    assert 0.91 <= covered / total <= 0.98
