"""Fact-check results: human-judged accuracy per model from verdicts, beside automatic and benchmark accuracy.

The verdicts below are built by hand, so every number the worker computes is checked against a
number worked out here.
"""

import csv
import io
import json
import re

import krippendorff
import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.authtoken.models import Token

from inference_workers.models import Benchmark, BenchmarkRun, JobStatus
from ratings.actions.snapshots import do_compute_snapshots
from ratings.analysis.battles import export_battles
from ratings.analysis.payload import leaderboard_json
from ratings.analysis.quality import study_quality
from ratings.analysis.schema import LEADERBOARD_RANK_KEYS, LEADERBOARD_ROW_KEYS
from ratings.analysis.snapshots import latest_snapshot
from ratings.analysis.votes import study_votes
from ratings.models import Vote, VoteSource
from tests import factories
from tests.analysis.snapshots import wait_for_snapshots
from tests.ratings.rating_setup import fact_check_study, rating_study

# Prompt i: (A's verdict, B's verdict) from rater 1, then rater 2. A is the first model, B the second.
VERDICTS = [
    (("correct", "correct"), ("correct", "partly")),
    (("correct", "wrong"), ("partly", "wrong")),
    (("partly", "wrong"), ("wrong", "wrong")),
    (("wrong", "wrong"), ("wrong", "partly")),
]
# Worked out by hand: per-answer means A 1, .75, .25, 0 and B .75, 0, 0, .25.
EXPECTED = {
    "zyx-imitator-13b": {"accuracy": 0.5, "strict": 0.375, "automatic": 0.75},
    "zyx-proprietary": {"accuracy": 0.25, "strict": 0.125, "automatic": 0.25},
}


def right_answer(i: int, j: int) -> bool:
    """The first model answers questions 0-2 rightly, the second only question 0."""
    return (j == 0 and i < 3) or (j == 1 and i == 0)


def judged_study():
    study = fact_check_study(
        n_prompts=4,
        n_gold=1,
        answers=lambda i, j: f"It is Canberra {i}." if right_answer(i, j) else f"Perhaps Sydney {i}.",
    )
    raters = [factories.rater(study, external_id=f"r{n}") for n in (1, 2)]
    excluded = factories.rater(study, external_id="r3", excluded=True)
    comparisons = list(study.comparisons.filter(is_gold=False).order_by("prompt_id"))
    assert len(comparisons) == 4
    for c, per_rater in zip(comparisons, VERDICTS, strict=True):
        assert c.response_a.model.name == "zyx-imitator-13b"
        for rater, (verdict_a, verdict_b) in zip(raters, per_rater, strict=True):
            vote(c, rater, verdict_a, verdict_b)
        # An excluded rater's verdicts are kept but left out.
        vote(c, excluded, "correct", "correct")
    # So are attention-check verdicts.
    vote(study.comparisons.get(is_gold=True), raters[0], "correct", "correct")
    BenchmarkRun.objects.create(
        model=comparisons[0].response_a.model,
        benchmark=Benchmark.NQ_OPEN,
        status=JobStatus.SUCCEEDED,
        n_items=200,
        n_correct=30,
        accuracy=0.15,
    )
    return study


def vote(comparison, rater, verdict_a, verdict_b):
    a = factories.assignment(comparison, rater, status="voted", left_is_a=bool(rater.pk % 2))
    return Vote.objects.create(
        comparison=comparison,
        assignment=a,
        rater=rater,
        source=VoteSource.LIVE,
        verdict_a=verdict_a,
        verdict_b=verdict_b,
    )


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_computes_human_accuracy_equal_to_the_hand_computed_one(worker, researcher_client, researcher):
    study = judged_study()
    response = researcher_client.post(reverse("dashboard:compute", args=[study.slug]))
    assert response.status_code == 302
    wait_for_snapshots(study)
    snap = latest_snapshot(study)
    assert snap is not None and snap.n_votes == 8
    results = snap.payload["fact_check"]
    assert (results["n_votes"], results["n_verdicts"]) == (8, 16)
    rows = {r["model"]: r for r in results["models"]}
    assert list(rows) == ["zyx-imitator-13b", "zyx-proprietary"]  # best first
    for name, expected in EXPECTED.items():
        human = rows[name]["human_accuracy"]
        assert human["accuracy"] == pytest.approx(expected["accuracy"])
        assert human["strict"] == pytest.approx(expected["strict"])
        assert (human["n_items"], human["n_verdicts"]) == (4, 8)
        assert 0 <= human["ci"][0] <= expected["accuracy"] <= human["ci"][1] <= 1 and human["ci"][0] < human["ci"][1]
        assert human["strict_ci"][0] <= expected["strict"] <= human["strict_ci"][1]
        auto = rows[name]["automatic_accuracy"]
        assert auto["accuracy"] == pytest.approx(expected["automatic"]) and auto["n_items"] == 4
        assert auto["ci"][0] < expected["automatic"] < auto["ci"][1]
    assert rows["zyx-imitator-13b"]["benchmark"]["accuracy"] == 0.15
    assert rows["zyx-imitator-13b"]["benchmark"]["ci"][0] < 0.15 < rows["zyx-imitator-13b"]["benchmark"]["ci"][1]
    assert rows["zyx-proprietary"]["benchmark"] is None

    # Raters against the automatic match (mean score >= 0.5 counts as correct), worked out by hand:
    # A: raters T T F F, automatic T T T F; B: raters T F F F, automatic T F F F.
    assert results["human_vs_automatic"] == {
        "n": 8,
        "agreement": 0.875,
        "kappa": 0.75,
        "both_correct": 3,
        "human_only": 0,
        "automatic_only": 1,
        "both_wrong": 4,
    }
    # Inter-rater agreement equals the krippendorff package's ordinal alpha on the same verdicts.
    rank = {"wrong": 0, "partly": 1, "correct": 2}
    data = np.array([[rank[p[r][side]] for p in VERDICTS for side in (0, 1)] for r in (0, 1)], dtype=float)
    theirs = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal")
    assert results["agreement"]["alpha"] == pytest.approx(theirs, abs=1e-6)
    assert (results["agreement"]["units"], results["agreement"]["judgements"]) == (8, 16)

    # The dashboard shows the table and the chart; the leaderboard JSON carries human_accuracy.
    html = researcher_client.get(reverse("dashboard:overview", args=[study.slug])).content.decode()
    assert "Human-judged accuracy" in html and "8 fact-check votes" in html
    assert "<svg" in html and "human-judged, 95% interval" in html and "automatic, 95% interval" in html
    assert "0.500" in html and "0.375" in html and "0.750" in html and "0.875" in html
    assert "Bradley-Terry" not in html
    downloaded = json.loads(
        researcher_client.get(reverse("dashboard:download", args=[study.slug, "leaderboard.json"])).content
    )
    token = Token.objects.create(user=researcher)
    from django.test import Client

    api = Client().get(reverse("api:leaderboard", args=[study.slug]), HTTP_AUTHORIZATION=f"Token {token.key}").json()
    for board in (downloaded, api):
        by_model = {r["model"]: r for r in board["models"]}
        assert set(by_model) == set(EXPECTED)
        for name, expected in EXPECTED.items():
            human = by_model[name]["human_accuracy"]
            assert set(human) == {"accuracy", "ci", "n_items"}
            assert human["accuracy"] == pytest.approx(expected["accuracy"]) and human["n_items"] == 4
            assert human["ci"] == rows[name]["human_accuracy"]["ci"]
            # No preference votes: no rating.
            assert by_model[name]["rating"] is None and by_model[name]["votes"] == 0
        assert by_model["zyx-imitator-13b"]["substance"]["accuracy"] == 0.15
    table = researcher_client.get(reverse("dashboard:download", args=[study.slug, "fact_check.csv"]))
    assert table["Content-Disposition"].endswith('-fact_check.csv"')
    lines = list(csv.DictReader(io.StringIO(table.content.decode())))
    assert [(r["model"], float(r["human_accuracy"]), float(r["automatic_accuracy"])) for r in lines] == [
        ("zyx-imitator-13b", 0.5, 0.75),
        ("zyx-proprietary", 0.25, 0.25),
    ]
    assert lines[0]["benchmark"] == "nq_open" and lines[1]["benchmark"] == ""
    # The quality page reads the same verdicts: rater r1 failed the one attention check.
    quality = researcher_client.get(reverse("quality:study-quality", args=[study.slug])).content.decode()
    assert "0 / 1" in quality


@pytest.mark.django_db
def test_fact_check_votes_never_reach_preference_ratings_exports_or_quality():
    study = judged_study()
    # No preference vote: the preference side of the analysis sees nothing.
    assert study_votes(study).n_votes == 0
    assert export_battles(study, io.StringIO()) == 0
    (snapshot, _) = do_compute_snapshots(study)
    assert snapshot.payload["leaderboard"]["n_votes"] == 0 and snapshot.payload["fact_check"]["n_votes"] == 8
    # Quality figures read verdicts in their own terms: the attention check was passed (off-topic called
    # "correct" fails it), majority agreement compares pairs of verdicts.
    quality = {q.rater_id: q for q in study_quality(study)}
    first = study.raters.get(external_id="r1")
    assert (quality[first.pk].checks_passed, quality[first.pk].checks_failed) == (0, 1)
    assert quality[first.pk].n_votes == 5


@pytest.mark.django_db
def test_a_preference_study_with_stray_verdicts_counts_only_its_preference_votes():
    study = rating_study(n_prompts=3)
    rater, checker = factories.rater(study), factories.rater(study)
    for c in study.comparisons.all():
        a = factories.assignment(c, rater, status="voted")
        Vote.objects.create(comparison=c, assignment=a, rater=rater, winner="a")
        vote(c, checker, "wrong", "correct")
    table = study_votes(study)
    assert table.n_votes == 3 and set(table.winner) == {"a"}
    out = io.StringIO()
    assert export_battles(study, out) == 3
    assert {json.loads(line)["winner"] for line in out.getvalue().splitlines()} == {"model_a"}
    snapshot, _ = do_compute_snapshots(study)
    assert "fact_check" not in snapshot.payload and snapshot.n_votes == 3
    board = leaderboard_json(snapshot.payload["leaderboard"])
    assert board["n_votes"] == 3
    assert set(board["models"][0]) == {*LEADERBOARD_ROW_KEYS, "substance", *LEADERBOARD_RANK_KEYS}


@pytest.mark.django_db
def test_the_leaderboard_command_gives_human_accuracy_for_a_fact_check_study():
    study = judged_study()
    out = io.StringIO()
    call_command("leaderboard", "--study", study.slug, "--json", stdout=out)
    board = json.loads(out.getvalue())
    assert board["n_votes"] == 0
    by_model = {r["model"]: r["human_accuracy"] for r in board["models"]}
    assert {name: h["accuracy"] for name, h in by_model.items()} == {
        name: e["accuracy"] for name, e in EXPECTED.items()
    }
    assert all(h["n_items"] == 4 and h["ci"][0] < h["accuracy"] < h["ci"][1] for h in by_model.values())
    out = io.StringIO()
    call_command("leaderboard", "--study", study.slug, stdout=out)
    text = out.getvalue()
    assert "8 fact-check votes, 16 verdicts" in text
    assert re.search(r"zyx-imitator-13b\s+0\.500 \[.*\]\s+4\s+0\.750", text)


@pytest.mark.django_db
def test_researchers_download_every_verdict_as_csv_with_hostile_text_defused(researcher_client):
    from django.test import Client

    study = judged_study()
    hostile = Vote.objects.filter(comparison__study=study).exclude(verdict_a="").first()
    hostile.reason = '=HYPERLINK("https://evil.example")'
    hostile.save()
    url = reverse("dashboard:verdicts_csv", args=[study.slug])
    anonymous = Client().get(url)  # not for anonymous visitors: they are sent to the login page
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/")

    response = researcher_client.get(url)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    # 8 verdict pairs from the two raters, 4 from the excluded one, 1 on the attention check: all kept here.
    assert len(rows) == 13
    assert sum(r["rater_excluded"] == "True" for r in rows) == 4
    assert sum(r["attention_check"] == "True" for r in rows) == 1
    by_vote = {int(r["vote_id"]): r for r in rows}
    for v in Vote.objects.filter(comparison__study=study).select_related("comparison__response_a__model"):
        r = by_vote[v.pk]
        assert (r["verdict_a"], r["verdict_b"], r["model_a"]) == (
            v.verdict_a,
            v.verdict_b,
            v.comparison.response_a.model.name,
        )
    assert by_vote[hostile.pk]["reason"].startswith("'=")
    preference = factories.study(factories.prompt_set())
    assert researcher_client.get(reverse("dashboard:verdicts_csv", args=[preference.slug])).status_code == 404
