"""Agreement with the crowd, kappa, position bias and self-consistency on a case computed by hand."""

import pytest

from judges.actions import do_import_verdicts
from judges.analysis import study_judges
from judges.formats import ImportedVerdict
from ratings.models import Comparison, Vote, VoteSource
from stats.intervals import wilson_interval
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def case():
    """Four questions, models m1 (answer A) and m2 (answer B); human votes and one judge's verdicts in both orders."""
    ps = factories.prompt_set()
    prompts = [factories.prompt(ps, external_id=f"q{i}") for i in range(1, 5)]
    m1, m2 = factories.model(name="m1"), factories.model(name="m2")
    study = factories.study(ps, [m1, m2])
    for p in prompts:
        a = factories.response(m1, p, f"A longer answer to {p.external_id}, with more words in it.")
        b = factories.response(m2, p, f"Short {p.external_id}.")
        Comparison.objects.create(study=study, prompt=p, response_a=a, response_b=b)
    human = {"q1": ["a", "a"], "q2": ["b"], "q3": ["tie"], "q4": ["a"]}
    for c in Comparison.objects.filter(study=study).select_related("prompt"):
        for winner in human[c.prompt.external_id]:
            Vote.objects.create(comparison=c, source=VoteSource.IMPORTED, winner=winner)

    def v(q, first, second, outcome, repeat=0):
        return ImportedVerdict("judge-x", q, first, second, outcome, text=f"verdict {outcome}", repeat=repeat)

    verdicts = [
        v("q1", "m1", "m2", "first"),  # A first: A wins
        v("q1", "m2", "m1", "second"),  # B first: A wins -> combined A
        v("q2", "m1", "m2", "first"),  # A wins
        v("q2", "m2", "m1", "first"),  # B wins -> combined tie (the position decided)
        v("q3", "m1", "m2", "tie"),
        v("q3", "m2", "m1", "tie"),  # -> tie
        v("q4", "m1", "m2", "first"),
        v("q4", "m2", "m1", "unparsed"),  # -> unparsed: left out, never a tie
        v("q1", "m1", "m2", "second", repeat=1),  # asked again: changed its mind
        v("q3", "m1", "m2", "tie", repeat=1),  # asked again: the same
    ]
    do_import_verdicts(study, verdicts)
    return study


def test_agreement_position_bias_and_consistency_by_hand(case):
    payload = study_judges(case)
    (judge,) = payload["judges"]
    assert judge["verdicts"] == 10 and judge["unparsed"] == 1
    assert judge["combined"] == {"a": 1, "b": 0, "tie": 2, "unparsed": 1}
    agreement = judge["agreement"]
    # Human votes against combined verdicts: q1 a,a vs A (2 agree), q2 b vs tie (no), q3 tie vs tie (yes);
    # q4's verdict is unparsed, so its vote is left out.
    assert agreement["votes_matched"] == 5
    with_ties = agreement["with_ties"]
    assert with_ties["n"] == 4 and with_ties["agreement"] == pytest.approx(0.75)
    # kappa: p_o = 3/4; human (A, A, B, T), judge (A, A, T, T): p_e = 1/2 * 1/2 + 1/4 * 0 + 1/4 * 1/2 = 3/8.
    assert with_ties["kappa"] == pytest.approx((0.75 - 0.375) / (1 - 0.375))
    lo, hi = with_ties["ci"]
    assert 0 <= lo <= 0.75 <= hi <= 1
    without = agreement["without_ties"]
    assert without["n"] == 2 and without["agreement"] == pytest.approx(1.0)
    # Decisive single-order verdicts (repeat 0): q1 first, q1 second, q2 first, q2 first, q4 first: 4 of 5 first.
    bias = judge["position_bias"]
    assert bias["decisive"] == 5 and bias["first_share"] == pytest.approx(0.8)
    assert bias["ci"] == pytest.approx(list(wilson_interval(4, 5)), abs=1e-6)
    # Judged twice in the same order: q1 (first, then second) and q3 (tie, tie): 1 of 2 the same.
    assert judge["self_consistency"]["n"] == 2 and judge["self_consistency"]["share"] == pytest.approx(0.5)
    by_pair = {tuple(p["models"]): p for p in agreement["per_model_pair"]}
    assert by_pair[("m1", "m2")]["n"] == 4 and by_pair[("m1", "m2")]["agreement"] == pytest.approx(0.75)
    # The judge's own leaderboard: one vote per parsed pair (q1 A wins, q2 and q3 ties).
    assert judge["leaderboard"]["n_votes"] == 3
    assert [r["model"] for r in judge["leaderboard"]["models"]] == ["m1", "m2"]


def test_judge_votes_never_become_votes(case):
    assert Vote.objects.filter(comparison__study=case).count() == 5


def test_judge_against_judge_by_hand(case):
    """A second judge on q1-q3 in both orders: combined A, tie, A. Against judge-x's combined A, tie, tie (q4 is
    unparsed for judge-x and unjudged by judge-y, so it is left out)."""

    def v(q, first, second, outcome):
        return ImportedVerdict("judge-y", q, first, second, outcome, text=f"y says {outcome}")

    do_import_verdicts(
        case,
        [
            v("q1", "m1", "m2", "first"),
            v("q1", "m2", "m1", "second"),
            v("q2", "m1", "m2", "tie"),
            v("q2", "m2", "m1", "tie"),
            v("q3", "m1", "m2", "first"),
            v("q3", "m2", "m1", "second"),
        ],
    )
    payload = study_judges(case)
    x, y = payload["judges"]
    assert (x["judge"], y["judge"]) == ("judge-x", "judge-y")
    assert x["combined"] == {"a": 1, "b": 0, "tie": 2, "unparsed": 1}  # as before: judges never mix
    assert y["combined"] == {"a": 2, "b": 0, "tie": 1, "unparsed": 0}
    (versus,) = payload["judge_vs_judge"]
    assert versus["judges"] == ["judge-x", "judge-y"] and versus["n"] == 3
    # q1 A = A, q2 tie = tie, q3 tie != A: 2 of 3. Kappa: x (A, T, T), y (A, T, A):
    # p_e = (1 * 2 + 2 * 1) / 9 = 4/9, kappa = (2/3 - 4/9) / (5/9) = 0.4.
    assert versus["agreement"] == pytest.approx(2 / 3) and versus["kappa"] == pytest.approx(0.4)
    # Both named a winner only on q1, and agreed.
    assert versus["n_without_ties"] == 1 and versus["agreement_without_ties"] == pytest.approx(1.0)
    # judge-y against the crowd: q1 a, a vs A (2 agree), q2 b vs tie, q3 tie vs A: 2 of 4; without ties 2 of 2.
    assert y["agreement"]["with_ties"]["n"] == 4 and y["agreement"]["with_ties"]["agreement"] == pytest.approx(0.5)
    assert y["agreement"]["without_ties"]["n"] == 2
    assert y["agreement"]["without_ties"]["agreement"] == pytest.approx(1.0)
    # Its decisive single-order verdicts: q1 first, q1 second, q3 first, q3 second: no position bias.
    assert y["position_bias"]["decisive"] == 4 and y["position_bias"]["first_share"] == pytest.approx(0.5)
    assert y["self_consistency"] is None
