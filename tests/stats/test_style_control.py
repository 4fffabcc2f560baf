import numpy as np

from stats.bradley_terry import bradley_terry
from stats.style_control import (
    bootstrap_style_controlled,
    fit_style_controlled,
    normalized_style_differences,
)
from tests.stats.simulate import simulate_votes


def test_style_control_recovers_planted_ratings_under_a_length_bias_that_fools_raw_ratings():
    sim = simulate_votes(8, 40_000, np.random.default_rng(21), length_bias=3.0)
    raw = bradley_terry(sim.model_a, sim.model_b, sim.outcome, 8)
    z = normalized_style_differences(sim.features_a, sim.features_b)
    controlled = fit_style_controlled(sim.model_a, sim.model_b, sim.outcome, z, 8)

    raw_error = np.abs(raw.rating - sim.true_rating)
    controlled_error = np.abs(controlled.rating - sim.true_rating)
    assert raw_error.max() > 60
    assert controlled_error.max() < 30
    # The planted intervals hold the truth; the raw ones miss it for the wordiest models.
    assert np.mean((controlled.lower <= sim.true_rating) & (sim.true_rating <= controlled.upper)) >= 0.75
    assert np.mean((raw.lower <= sim.true_rating) & (sim.true_rating <= raw.upper)) <= 0.5

    # Length coefficient: 3 per unit of d, and z = d / rms(d); the other features carry nothing.
    d = (sim.features_a[:, 0] - sim.features_b[:, 0]) / (sim.features_a[:, 0] + sim.features_b[:, 0])
    planted = 3.0 * np.sqrt(np.mean(d * d))
    assert controlled.coefficient_lower[0] <= planted <= controlled.coefficient_upper[0]
    assert np.abs(controlled.coefficients[1:]).max() < 0.1 * controlled.coefficients[0]


def test_without_style_differences_style_control_equals_the_plain_fit():
    sim = simulate_votes(5, 4000, np.random.default_rng(22))
    z = np.zeros((len(sim.outcome), 4))
    controlled = fit_style_controlled(sim.model_a, sim.model_b, sim.outcome, z, 5)
    raw = bradley_terry(sim.model_a, sim.model_b, sim.outcome, 5)
    assert np.allclose(controlled.rating, raw.rating, atol=1e-4)
    assert np.allclose(controlled.coefficients, 0)


def test_style_differences_flip_sign_when_a_and_b_swap_and_both_zero_counts_give_zero():
    fa = np.array([[100, 0, 3, 1], [50, 0, 0, 0]])
    fb = np.array([[300, 0, 1, 1], [50, 0, 0, 2]])
    z = normalized_style_differences(fa, fb)
    assert np.allclose(z, -normalized_style_differences(fb, fa))
    assert np.all(z[:, 1] == 0) and z[1, 0] == 0
    assert z[0, 0] < 0 < z[0, 2]


def test_style_controlled_intervals_cover_the_planted_rating_at_about_the_nominal_rate():
    rng = np.random.default_rng(23)
    covered = total = 0
    for _ in range(150):
        sim = simulate_votes(5, 2000, rng, length_bias=2.0)
        z = normalized_style_differences(sim.features_a, sim.features_b)
        fit = fit_style_controlled(sim.model_a, sim.model_b, sim.outcome, z, 5)
        covered += int(((fit.lower <= sim.true_rating) & (sim.true_rating <= fit.upper)).sum())
        total += 5
    assert 0.91 <= covered / total <= 0.98


def test_bootstrap_intervals_of_style_control_agree_with_the_sandwich_and_repeat_with_the_seed():
    sim = simulate_votes(6, 6000, np.random.default_rng(24), length_bias=2.0, tie_rate=0.1)
    z = normalized_style_differences(sim.features_a, sim.features_b)
    args = (sim.model_a, sim.model_b, sim.outcome, z, 6)
    sandwich = fit_style_controlled(*args)
    boot = bootstrap_style_controlled(*args, rounds=200, seed=3)
    assert np.allclose(boot.rating, sandwich.rating) and np.allclose(boot.coefficients, sandwich.coefficients)
    widths = (boot.upper - boot.lower) / (sandwich.upper - sandwich.lower)
    assert np.all((widths > 0.75) & (widths < 1.3))
    coef_widths = (boot.coefficient_upper - boot.coefficient_lower) / (
        sandwich.coefficient_upper - sandwich.coefficient_lower
    )
    assert np.all((coef_widths > 0.75) & (coef_widths < 1.3))
    again = bootstrap_style_controlled(*args, rounds=200, seed=3)
    assert np.array_equal(again.lower, boot.lower)
