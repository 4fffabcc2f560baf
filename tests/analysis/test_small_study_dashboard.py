"""A study with a reference and few votes (the demo's live study at first): its pages state its real set-up.

Issue 18: the live study's style-vs-substance page said "This study has no reference model ... Set one
on the study." because its snapshot was computed on 0 votes, and an empty snapshot carried no reference.
"""

import pytest
from django.urls import reverse

from inference_workers.models import Benchmark, BenchmarkRun
from ratings.actions.snapshots import do_compute_snapshots
from ratings.actions.votes import do_record_vote
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
    # One vote: singular everywhere.
    rater = factories.rater(study)
    do_record_vote(rater, lease_next_comparison(rater).token, "right")
    assert "The study now has 6 votes" in page(researcher_client, study, "overview")
