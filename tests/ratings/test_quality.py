"""Quality control: per-rater figures, exclusion rules that keep votes, and a researcher's undo."""

import pytest
from django.urls import reverse

from ratings.actions.quality import do_apply_exclusion_rules
from ratings.actions.votes import do_record_vote
from ratings.analysis.quality import VoteRow, exclusion_reason, rater_quality
from ratings.engine.assignment import lease_next_comparison
from ratings.models import Rater, Vote
from tests import factories
from tests.ratings.rating_setup import rating_study


def row(rater, comparison, winner, left_is_a=True, seconds=10.0, gold=False, gold_answer=""):
    return VoteRow(rater, comparison, winner, left_is_a, seconds, gold, gold_answer)


def test_figures_per_rater():
    rows = [
        # Three raters on comparison 1: 1 and 2 say a, 3 says b.
        row(1, 1, "a", seconds=4),
        row(2, 1, "a", seconds=20),
        row(3, 1, "b", left_is_a=False, seconds=30),
        # Comparison 2: a tie between a and b among the others of rater 1, so it is not compared.
        row(1, 2, "a", left_is_a=False, seconds=6),
        row(2, 2, "a", seconds=25),
        row(3, 2, "b", seconds=35),
        # Gold: rater 1 fails twice, rater 2 passes.
        row(1, 9, "b", gold=True, gold_answer="a", seconds=2),
        row(1, 8, "tie", gold=True, gold_answer="a", seconds=3),
        row(2, 9, "a", gold=True, gold_answer="a"),
    ]
    q = {x.rater_id: x for x in rater_quality(rows)}
    assert q[1].n_votes == 4 and q[1].median_seconds == 3.5
    assert (q[1].checks_passed, q[1].checks_failed) == (0, 2)
    assert q[2].checks_pass_rate == 1.0 and q[3].checks_pass_rate is None
    # Rater 1 chose the left side on comparison 1 (a, shown left) and the right on 2 (a, shown right);
    # on gold 9, b with b shown right; the tie does not count.
    assert q[1].left_share == pytest.approx(1 / 3)
    assert q[3].left_share == 0.5
    # Rater 1 on comparison 1: others are a, b, no unique majority; on 2: others a, b, none either.
    assert q[1].majority_agreement is None
    # Rater 3 on comparison 1: others a, a -> majority a, rater said b.
    assert q[3].majority_agreement == 0.0 and q[3].n_majority_compared == 2
    assert q[2].majority_agreement is None or q[2].n_majority_compared == 0
    assert exclusion_reason(q[1], 2, 0).startswith("Failed 2 attention checks")
    assert exclusion_reason(q[1], 0, 5).startswith("Median 3.5 s")
    assert exclusion_reason(q[3], 2, 5) == ""


@pytest.mark.django_db
def test_rules_exclude_without_deleting_votes_and_a_researcher_can_undo(researcher_client):
    study = rating_study(n_prompts=2, n_gold=2, attention_check_rate=0.5, comparisons_per_rater=4)
    careless, careful = factories.rater(study), factories.rater(study)
    for rater, wrong in ((careless, True), (careful, False)):
        while (lease := lease_next_comparison(rater)) is not None:
            c = lease.comparison
            good_side = "left" if (c.gold_answer == "a") == lease.left_is_a else "right"
            bad_side = "right" if good_side == "left" else "left"
            do_record_vote(rater, lease.token, bad_side if (wrong and c.is_gold) else good_side)
    assert do_apply_exclusion_rules(study) == 1
    careless.refresh_from_db()
    assert careless.excluded and "attention checks" in careless.exclusion_reason
    assert Vote.objects.filter(rater=careless).count() == 4

    page = researcher_client.get(reverse("quality:study-quality", args=[study.slug]))
    html = page.content.decode()
    assert page.status_code == 200 and "0 / 2" in html and "2 / 2" in html and "<svg" in html

    researcher_client.post(reverse("quality:set-exclusion", args=[study.slug, careless.token]), {"excluded": "0"})
    careless.refresh_from_db()
    assert not careless.excluded and careless.exclusion_overridden
    # The rules leave a reinstated rater alone.
    researcher_client.post(
        reverse("quality:apply-rules", args=[study.slug]),
        {"exclude_after_failed_checks": 1, "exclude_below_median_seconds": 0},
    )
    assert not Rater.objects.get(pk=careless.pk).excluded
    researcher_client.post(reverse("quality:set-exclusion", args=[study.slug, careful.token]), {"excluded": "1"})
    assert Rater.objects.get(pk=careful.pk).excluded


@pytest.mark.django_db
def test_quality_page_is_for_researchers_only(client, django_user_model):
    study = rating_study(n_prompts=1)
    url = reverse("quality:study-quality", args=[study.slug])
    assert client.get(url).status_code == 302
    client.force_login(django_user_model.objects.create_user("staffer", password="x-long-password", is_staff=True))
    assert client.get(url).status_code == 403
    assert client.post(reverse("quality:apply-rules", args=[study.slug])).status_code == 403


@pytest.mark.django_db
def test_study_page_shows_the_rater_link_by_token(researcher_client):
    study = rating_study(n_prompts=1, recruitment="prolific")
    html = researcher_client.get(reverse("ratings:study-detail", args=[study.slug])).content.decode()
    assert f"/r/{study.token}/?PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}" in html
    assert reverse("quality:study-quality", args=[study.slug]) in html
