import krippendorff
import numpy as np
import pytest

from stats.accuracy import human_accuracy, human_automatic_agreement, response_scores
from stats.agreement import krippendorff_alpha_ordinal


def test_ordinal_alpha_equals_the_krippendorff_package_on_the_same_verdicts():
    rng = np.random.default_rng(7)
    n_raters, n_units = 5, 80
    truth = rng.integers(0, 3, n_units)
    noise = rng.integers(-1, 2, (n_raters, n_units))
    data = np.clip(truth + np.where(rng.random((n_raters, n_units)) < 0.3, noise, 0), 0, 2).astype(float)
    data[rng.random((n_raters, n_units)) < 0.4] = np.nan
    rater, unit = np.nonzero(~np.isnan(data))
    counts = np.zeros((n_units, 3))
    np.add.at(counts, (unit, data[rater, unit].astype(int)), 1)
    ours = krippendorff_alpha_ordinal(counts)
    assert ours == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal"), abs=1e-12)
    assert 0.5 < ours < 1
    # Ordinal alpha punishes wrong-vs-correct more than partly-vs-correct.
    agreeing = [[2, 0, 0], [0, 2, 0], [0, 0, 2], [2, 0, 0], [0, 2, 0], [0, 0, 2]]
    near = np.array(agreeing + [[0, 1, 1], [0, 1, 1]])  # partly against correct
    far = np.array(agreeing + [[1, 0, 1], [1, 0, 1]])  # wrong against correct
    assert krippendorff_alpha_ordinal(far) < krippendorff_alpha_ordinal(near) < 1


def test_accuracy_averages_raters_per_answer_then_answers_per_model():
    # Model 0 answers prompts 10, 11, 12; model 1 only prompt 10 and 11 (one answer judged three times).
    response = np.array([1, 1, 2, 2, 3, 4, 4, 4, 5])
    model = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1])
    prompt = np.array([10, 10, 11, 11, 12, 10, 10, 10, 11])
    score = np.array([1, 0.5, 0, 0, 1, 1, 1, 0, 0.5])
    scores = response_scores(response, model, prompt, score)
    assert scores.mean.tolist() == [0.75, 0.0, 1.0, pytest.approx(2 / 3), 0.5]
    assert scores.n_verdicts.tolist() == [2, 2, 1, 3, 1]
    first, second = human_accuracy(scores, 3, rounds=500, seed=1)[:2]
    assert first.accuracy == pytest.approx((0.75 + 0 + 1) / 3)
    assert first.strict == pytest.approx((0.5 + 0 + 1) / 3)
    assert second.accuracy == pytest.approx((2 / 3 + 0.5) / 2) and second.strict == pytest.approx((2 / 3 + 0) / 2)
    assert (first.n_items, first.n_verdicts, second.n_items, second.n_verdicts) == (3, 5, 2, 4)
    assert first.lower <= first.accuracy <= first.upper and 0 <= first.lower < first.upper <= 1
    assert human_accuracy(scores, 3)[2] is None
    # Seeded: the same draw gives the same interval.
    again = human_accuracy(scores, 3, rounds=500, seed=1)[0]
    assert (again.lower, again.upper) == (first.lower, first.upper)


def test_a_wider_sample_of_prompts_narrows_the_interval():
    rng = np.random.default_rng(3)

    def width(n_prompts):
        score = (rng.random(n_prompts) < 0.6).astype(float)
        ids = np.arange(n_prompts)
        (result,) = human_accuracy(response_scores(ids, np.zeros(n_prompts, dtype=int), ids, score), 1, seed=0)
        return result.upper - result.lower

    assert width(400) < width(25) / 2


def test_agreement_with_the_automatic_match_and_kappa():
    human = np.array([1, 0.75, 0.25, 0, 0.75, 0, 0, 0.25])
    automatic = np.array([1, 1, 1, 0, 1, 0, 0, 0], dtype=bool)
    result = human_automatic_agreement(human, automatic)
    assert (result.both_correct, result.human_only, result.automatic_only, result.both_wrong) == (3, 0, 1, 4)
    assert result.agreement == 0.875 and result.kappa == pytest.approx(0.75)
    assert human_automatic_agreement(np.array([]), np.array([], dtype=bool)) is None
