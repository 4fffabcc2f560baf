"""Live votes: excluded raters are left out, careless raters found, trusted-only analysis, position bias."""

import numpy as np
import pytest

from ratings.actions.snapshots import do_compute_snapshots
from ratings.actions.studies import do_create_comparisons
from ratings.analysis.payload import rater_reliability, trusted_subset
from ratings.analysis.votes import study_votes
from ratings.models import Vote, VoteSource
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def rated_study():
    """3 models (the first strongest), 10 prompts, every pair; 4 careful raters, 1 left-clicker, 1 excluded."""
    rng = np.random.default_rng(51)
    ps = factories.prompt_set()
    prompts = [factories.prompt(ps, category="writing" if i % 2 else "knowledge") for i in range(10)]
    models = [factories.model() for _ in range(3)]
    for m in models:
        for p in prompts:
            factories.response(m, p, f"Answer of {m.name} to {p.external_id}. " * (1 + m.pk % 3))
    study = factories.study(ps, models, follow_up_questions=[{"key": "factual", "text": "Which is more accurate?"}])
    do_create_comparisons(study)
    comparisons = list(study.comparisons.all())
    kinds = {"careful": 4, "left-clicker": 1, "excluded": 1}
    raters = {}
    for kind, n in kinds.items():
        for i in range(n):
            raters[f"{kind}-{i}"] = factories.rater(study, excluded=kind == "excluded", external_id=f"{kind}-{i}")
    for name, rater in raters.items():
        for c in comparisons:
            left_is_a = bool(rng.random() < 0.5)
            a = factories.assignment(c, rater, left_is_a=left_is_a, status="voted")
            if name.startswith("careful"):
                winner = "a" if rng.random() < 0.85 else str(rng.choice(["b", "tie"]))
            elif name.startswith("left"):
                winner = "a" if left_is_a else "b"
            else:
                winner = "b"
            Vote.objects.create(
                comparison=c,
                assignment=a,
                rater=rater,
                source=VoteSource.LIVE,
                winner=winner,
                answers={"factual": winner},
            )
    return study, raters


def test_excluded_raters_votes_are_kept_but_left_out_of_analysis(rated_study):
    study, raters = rated_study
    assert Vote.objects.filter(comparison__study=study).count() == 6 * 30
    table = study_votes(study)
    assert table.n_votes == 5 * 30
    assert raters["excluded-0"].pk not in set(table.rater.tolist())


def test_dawid_skene_marks_the_left_clicker_untrusted_and_trusted_analysis_drops_it(rated_study):
    study, raters = rated_study
    table = study_votes(study)
    quality = {row["rater"]: row for row in rater_reliability(table)["raters"]}
    clicker = quality[raters["left-clicker-0"].pk]
    assert clicker["left_share"] == 1.0 and not clicker["trusted"]
    assert all(quality[raters[f"careful-{i}"].pk]["trusted"] for i in range(4))
    assert trusted_subset(table).n_votes == 4 * 30


def test_snapshots_hold_all_and_trusted_analyses_with_agreement_per_question(rated_study):
    study, _ = rated_study
    snaps = {s.key: s for s in do_compute_snapshots(study)}
    assert snaps["analysis"].n_votes == 150 and snaps["analysis:trusted"].n_votes == 120
    payload = snaps["analysis:trusted"].payload
    assert payload["leaderboard"]["models"][0]["model"] == study.language_models.order_by("pk").first().name
    assert payload["agreement"]["questions"][0]["key"] == "factual"
    assert payload["agreement"]["choice"]["units"] == 30
    # Careful raters agree well beyond chance once the left-clicker is gone.
    assert payload["agreement"]["choice"]["alpha"] > snaps["analysis"].payload["agreement"]["choice"]["alpha"]
    assert {c["category"] for c in payload["categories"]} == {"writing", "knowledge"}
    assert sum(c["n_votes"] for c in payload["categories"]) == 120


def test_the_periodic_refresh_recomputes_only_studies_whose_votes_changed(rated_study):
    from ratings.analysis.snapshots import latest_snapshot, studies_needing_snapshots
    from ratings.tasks import refresh_analysis_snapshots

    study, raters = rated_study
    assert study in studies_needing_snapshots()
    assert refresh_analysis_snapshots() == {"refreshed": [study.slug]}
    assert studies_needing_snapshots() == []
    # A new vote makes the snapshot stale, and so does excluding a rater (the same votes, fewer analysed).
    late = factories.rater(study)
    comparison = study.comparisons.first()
    Vote.objects.create(
        comparison=comparison,
        assignment=factories.assignment(comparison, late, status="voted"),
        rater=late,
        source=VoteSource.LIVE,
        winner="a",
    )
    assert studies_needing_snapshots() == [study]
    refresh_analysis_snapshots()
    assert latest_snapshot(study).n_votes == 151
    late.excluded = True
    late.save()
    assert studies_needing_snapshots() == [study]
    refresh_analysis_snapshots()
    assert latest_snapshot(study).n_votes == 150


def test_only_the_newest_snapshots_are_kept(rated_study):
    from ratings.analysis.snapshots import SNAPSHOTS_KEPT
    from ratings.models import AnalysisSnapshot

    study, _ = rated_study
    for _ in range(SNAPSHOTS_KEPT + 2):
        newest = do_compute_snapshots(study)
    kept = AnalysisSnapshot.objects.filter(study=study, key="analysis")
    assert kept.count() == SNAPSHOTS_KEPT and newest[0] in kept


def test_the_raters_page_plots_accuracy_against_left_share(rated_study, researcher_client):
    from django.urls import reverse

    study, raters = rated_study
    do_compute_snapshots(study)
    html = researcher_client.get(reverse("dashboard:raters", args=[study.slug])).content.decode()
    assert "Rater accuracy against left share, 5 raters, 150 votes" in html and ">not trusted<" in html
    assert f"#{raters['left-clicker-0'].pk}" in html and f"#{raters['excluded-0'].pk}" not in html


def test_every_page_renders_when_every_vote_is_excluded(rated_study, researcher_client):
    from django.urls import reverse

    study, _ = rated_study
    study.raters.update(excluded=True)
    snaps = {s.key: s for s in do_compute_snapshots(study)}
    assert snaps["analysis"].n_votes == 0
    for page in ("overview", "substance", "matrix", "activity", "raters"):
        response = researcher_client.get(reverse(f"dashboard:{page}", args=[study.slug]))
        assert response.status_code == 200 and "0 votes" in response.content.decode()
