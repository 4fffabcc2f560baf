"""The NQ-open scorer and the benchmark data, on hand-written cases."""

import pytest

from inference_workers.substance.datasets import (
    nq_open_dev,
    random_guess_accuracy,
    seeded_subset,
    truthfulqa_mc1,
    truthfulqa_open,
)
from inference_workers.substance.scoring import contains_match, exact_match, normalize


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("The Beatles", "beatles"),
        ("  an   Apple a day ", "apple day"),
        ("U.S.A.!", "usa"),
        ("Theatre and the Thesis", "theatre and thesis"),  # only whole-word articles go
    ],
)
def test_normalize_lowercases_strips_punctuation_articles_and_spaces(raw, normalised):
    assert normalize(raw) == normalised


def test_exact_match_against_any_gold_answer():
    golds = ["Barack Obama", "Obama", "Barack Hussein Obama II"]
    assert exact_match("obama.", golds)
    assert exact_match("The Barack Obama", golds)
    assert not exact_match("Michelle Obama", golds)
    assert not exact_match("", golds)


def test_contains_match_finds_the_answer_inside_a_sentence():
    assert contains_match("The capital of Australia is Canberra.", ["Canberra"])
    assert not exact_match("The capital of Australia is Canberra.", ["Canberra"])
    # Whole words only: "Obama" is not found inside "Obamacare".
    assert not contains_match("It was Obamacare.", ["Obama"])
    assert contains_match("In 1969, on July 20.", ["July 20, 1969", "1969"])
    # An empty gold answer (after normalisation) never matches.
    assert not contains_match("the", ["The"])


def test_benchmark_files_hold_the_published_counts():
    nq = nq_open_dev()
    assert len(nq) == 3610
    assert all(item.answers for item in nq)
    mc = truthfulqa_mc1()
    assert len(mc) == 817
    assert all(0 <= item.correct_index < len(item.choices) for item in mc)
    assert len(truthfulqa_open()) == 817
    # Random guessing on MC1 is the mean of 1 / number of choices.
    assert 0.2 < random_guess_accuracy(mc) < 0.3


def test_seeded_subset_is_reproducible_and_keeps_order():
    nq = nq_open_dev()
    a = seeded_subset(nq, 200, seed=7)
    assert a == seeded_subset(nq, 200, seed=7)
    assert a != seeded_subset(nq, 200, seed=8)
    assert len(a) == 200 and len({i.item_id for i in a}) == 200
    assert [i.item_id for i in a] == sorted(i.item_id for i in a)
    assert seeded_subset(nq, None, seed=7) == list(nq)
