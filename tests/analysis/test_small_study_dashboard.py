"""A study with a reference and few votes (the demo's live study at first): its pages state its real set-up.

Issue 18: the live study's style-vs-substance page said "This study has no reference model ... Set one
on the study." because its snapshot was computed on 0 votes, and an empty snapshot carried no reference.
"""

import re

import pytest
from django.urls import reverse

from inference_workers.models import Benchmark, BenchmarkRun, Response
from ratings.actions.snapshots import do_compute_snapshots
from ratings.actions.votes import do_record_vote
from ratings.analysis.battle_files import answer_digest
from ratings.engine.assignment import VoteOutcome, lease_next_comparison
from tests import factories
from tests.analysis.test_dashboard import PAGES
from tests.ratings.rating_setup import rating_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def reference_study():
    """Two models, the second the reference; the first measured on NQ-open, the reference published."""
    study = rating_study(n_prompts=8, votes_per_comparison=3, min_seconds_on_page=0)
    model, reference = study.language_models.order_by("pk")
    study.reference_model = reference
    study.save(update_fields=["reference_model"])
    BenchmarkRun.objects.create(
        model=model, benchmark=Benchmark.NQ_OPEN, status="succeeded", n_items=10, n_correct=1, accuracy=0.1
    )
    BenchmarkRun.objects.create(
        model=reference,
        benchmark=Benchmark.NQ_OPEN,
        status="succeeded",
        accuracy=0.31,
        published=True,
        citation="A paper.",
    )
    return study, model, reference


def page(client, study, name: str) -> str:
    response = client.get(reverse(f"dashboard:{name}", args=[study.slug]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("name", PAGES)
def test_an_empty_snapshot_says_no_votes_yet_and_never_claims_a_missing_reference(
    researcher_client, reference_study, name
):
    study, model, reference = reference_study
    do_compute_snapshots(study)
    html = page(researcher_client, study, name)
    assert "no reference model" not in html.lower()
    assert "No votes yet" in html
    assert f"compared with the reference, {reference}" in html  # the study's set-up, whatever the snapshot holds
    assert "0 votes" not in html


def test_a_few_votes_put_the_model_on_the_chart_with_its_interval_and_the_votes_it_rests_on(
    researcher_client, reference_study
):
    study, model, reference = reference_study
    for _ in range(5):
        rater = factories.rater(study)
        lease = lease_next_comparison(rater)
        assert do_record_vote(rater, lease.token, "left") == VoteOutcome.RECORDED
    do_compute_snapshots(study)
    html = page(researcher_client, study, "substance")
    assert "no reference model" not in html.lower()
    assert f'class="interval" data-point="{model}"' in html
    assert f"{model}: 5 votes" in html and "5 votes so far" in html
    # Per category, too few votes for the sandwich: the profile likelihood, marked, its reason on the mark.
    activity = page(researcher_client, study, "activity")
    assert "fewer than 30 votes in the category" in activity
    assert re.search(r'<td class="num" title="[^"]*(every one of its|fewer than 30)[^"]*">[^<]* \*</td>', activity)
    # One vote: singular everywhere.
    rater = factories.rater(study)
    do_record_vote(rater, lease_next_comparison(rater).token, "right")
    assert "The study now has 6 votes" in page(researcher_client, study, "overview")


def vote_on_every_comparison(study) -> None:
    while True:
        rater = factories.rater(study)
        lease = lease_next_comparison(rater)
        if lease is None:
            return
        assert do_record_vote(rater, lease.token, "left") == VoteOutcome.RECORDED


def test_the_leaderboard_says_why_style_control_is_missing_or_partial_and_never_guesses(researcher_client):
    """The page said "some answers' texts are unknown" whenever there were no style coefficients: on a study with
    no votes yet, and on one whose texts were all known. It shows the snapshot's own reason instead."""
    study = rating_study(n_prompts=8, n_models=3, votes_per_comparison=1, min_seconds_on_page=0)
    do_compute_snapshots(study)
    empty = page(researcher_client, study, "overview")
    assert "No votes yet" in empty and "texts are unknown" not in empty and "style control" not in empty

    # Answers imported without a text or counts: the third model's, on 16 of the 24 comparisons.
    textless = study.language_models.order_by("pk").last()
    Response.objects.filter(model=textless).update(text="", text_digest=answer_digest(None, None))
    vote_on_every_comparison(study)
    do_compute_snapshots(study)
    refused = page(researcher_client, study, "overview")
    assert "Only 8 of 24 votes (33%) have style features, below the 50% needed: no style control." in refused
    assert "texts are unknown" not in refused and "Style coefficients" not in refused


def test_votes_left_out_of_the_style_fit_are_counted_on_the_leaderboard(researcher_client):
    study = rating_study(n_prompts=8, n_models=2, votes_per_comparison=1, min_seconds_on_page=0)
    first = study.language_models.order_by("pk").first()
    # Two of the first model's eight answers were imported without a text or counts.
    for response in Response.objects.filter(model=first).order_by("pk")[:2]:
        Response.objects.filter(pk=response.pk).update(text="", text_digest=answer_digest(None, None))
    vote_on_every_comparison(study)
    do_compute_snapshots(study)
    html = page(researcher_client, study, "overview")
    assert "Style coefficients" in html
    assert (
        "2 of 8 votes have no style features for both answers and are left out of the style-controlled fit "
        "(kept in the raw ratings)." in html
    )


def test_one_decisive_vote_is_one_vote_on_the_raters_page(researcher_client):
    study = rating_study(n_prompts=4, votes_per_comparison=1, min_seconds_on_page=0)
    rater = factories.rater(study)
    assert do_record_vote(rater, lease_next_comparison(rater).token, "left") == VoteOutcome.RECORDED
    do_compute_snapshots(study)
    html = page(researcher_client, study, "raters")
    assert "from <strong>1 vote</strong>; 0.5 is no bias" in html
