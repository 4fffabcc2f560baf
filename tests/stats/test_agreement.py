import krippendorff
import numpy as np
import pytest

from stats.agreement import krippendorff_alpha_nominal, value_counts


def test_alpha_equals_the_krippendorff_package_on_the_same_votes():
    rng = np.random.default_rng(31)
    n_raters, n_units = 7, 60
    truth = rng.integers(0, 4, n_units)
    data = np.where(rng.random((n_raters, n_units)) < 0.6, truth, rng.integers(0, 4, (n_raters, n_units))).astype(float)
    data[rng.random((n_raters, n_units)) < 0.5] = np.nan  # each rater sees about half the items
    rater, unit = np.nonzero(~np.isnan(data))
    ours = krippendorff_alpha_nominal(value_counts(unit, data[rater, unit]))
    theirs = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert ours == pytest.approx(theirs, abs=1e-12)
    assert 0.2 < ours < 0.8


def test_perfect_agreement_is_one_and_a_unit_with_one_vote_is_ignored():
    counts = np.array([[3, 0, 0], [0, 2, 0], [0, 0, 1]])
    assert krippendorff_alpha_nominal(counts) == pytest.approx(1.0)
    assert np.isnan(krippendorff_alpha_nominal(np.array([[1, 0], [0, 1]])))
