"""Researchers read the analysis of the Vicuna-80 votes on the dashboard, as downloads and over the API."""

import csv
import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework.authtoken.models import Token

from inference_workers.models import Benchmark, BenchmarkRun, LanguageModel
from ratings.actions.snapshots import do_compute_snapshots
from ratings.analysis.schema import LEADERBOARD_BOARD_KEYS, LEADERBOARD_RANK_KEYS, LEADERBOARD_ROW_KEYS
from ratings.analysis.snapshots import latest_snapshot
from ratings.models import Vote, VoteSource
from tests import factories
from tests.analysis.snapshots import wait_for_snapshots

pytestmark = pytest.mark.django_db
PAGES = ("overview", "substance", "matrix", "activity", "raters")


@pytest.fixture(scope="module")
def analysed(vicuna80_study, django_db_blocker):
    with django_db_blocker.unblock():
        do_compute_snapshots(vicuna80_study)
    return vicuna80_study


@pytest.mark.parametrize("page", PAGES)
def test_every_dashboard_page_shows_the_snapshot_and_the_votes_it_rests_on(researcher_client, analysed, page):
    response = researcher_client.get(reverse(f"dashboard:{page}", args=[analysed.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "7040 votes" in html
    assert "No analysis yet" not in html


def test_the_leaderboard_puts_gpt4_first_with_raw_and_style_controlled_intervals(researcher_client, analysed):
    html = researcher_client.get(reverse("dashboard:overview", args=[analysed.slug])).content.decode()
    assert html.index("GPT-4") < html.index("Bard")
    assert "<svg" in html and "style-controlled, 95% interval" in html
    board = latest_snapshot(analysed).payload["leaderboard"]
    assert board["models"][0]["model"] == "gpt4"
    assert all(r["style_controlled"] and r["ci"][0] < r["rating"] < r["ci"][1] for r in board["models"])
    assert set(board["style_coefficients"]) == {"length", "headers", "lists", "bold"}


def test_style_vs_substance_says_plainly_when_there_is_no_substance_data(researcher_client, analysed):
    html = researcher_client.get(reverse("dashboard:substance", args=[analysed.slug])).content.decode()
    assert "No substance data yet" in html
    assert "Against parameters" in html


def test_style_vs_substance_plots_accuracy_once_a_benchmark_run_exists(researcher_client, vicuna80_study):
    for name, accuracy in (("gpt4", 0.4), ("vicuna-13b", 0.15)):
        BenchmarkRun.objects.create(
            model=LanguageModel.objects.get(name=name),
            benchmark=Benchmark.NQ_OPEN,
            status="succeeded",
            n_items=100,
            n_correct=int(accuracy * 100),
            accuracy=accuracy,
        )
    do_compute_snapshots(vicuna80_study)
    html = researcher_client.get(reverse("dashboard:substance", args=[vicuna80_study.slug])).content.decode()
    assert "No substance data yet" not in html
    assert "Human preference against factual accuracy" in html and "y = x" in html


def test_downloads_carry_the_same_numbers(researcher_client, analysed):
    board = latest_snapshot(analysed).payload["leaderboard"]
    url = reverse("dashboard:download", args=[analysed.slug, "leaderboard.json"])
    data = json.loads(researcher_client.get(url).content)
    assert set(data) == {"n_votes", "models", "style_coefficients", *LEADERBOARD_BOARD_KEYS}
    assert data["models"][0] == {k: board["models"][0][k] for k in data["models"][0] if k != "substance"} | {
        "substance": None
    }
    rows = list(csv.DictReader(io.StringIO(researcher_client.get(url.replace(".json", ".csv")).content.decode())))
    assert [r["model"] for r in rows] == [m["model"] for m in board["models"]]
    assert float(rows[0]["rating"]) == board["models"][0]["rating"]
    matrix = researcher_client.get(reverse("dashboard:download", args=[analysed.slug, "matrix.csv"]))
    assert matrix["Content-Disposition"].endswith('matrix.csv"')


def test_a_study_without_a_snapshot_says_so_and_offers_to_compute(researcher_client):
    study = factories.study(factories.prompt_set())
    html = researcher_client.get(reverse("dashboard:overview", args=[study.slug])).content.decode()
    assert "No analysis yet" in html and reverse("dashboard:compute", args=[study.slug]) in html
    assert researcher_client.get(reverse("dashboard:download", args=[study.slug, "leaderboard.csv"])).status_code == 404


def test_dashboards_are_for_researchers_only(client, analysed):
    url = reverse("dashboard:overview", args=[analysed.slug])
    assert client.get(url).status_code == 302
    user = get_user_model().objects.create_user("staffer", password="x-long-password-1", is_staff=True)
    client.force_login(user)
    assert client.get(url).status_code == 403


def test_the_api_serves_the_leaderboard_to_a_researchers_token_only(client, researcher, analysed):
    url = reverse("api:leaderboard", args=[analysed.slug])
    # No credentials: 401 with a Token challenge (token auth is the API's first scheme).
    anonymous = client.get(url)
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Token"
    token = Token.objects.create(user=researcher)
    response = client.get(url, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    data = response.json()
    assert data["n_votes"] == 7040 and data["models"][0]["model"] == "gpt4"
    assert set(data["models"][0]) == {*LEADERBOARD_ROW_KEYS, "substance", *LEADERBOARD_RANK_KEYS}
    studies = client.get(reverse("api:study-list"), HTTP_AUTHORIZATION=f"Token {token.key}").json()
    assert {"slug": analysed.slug, "n_votes": 7040}.items() <= next(
        s for s in studies if s["slug"] == analysed.slug
    ).items()
    schema = client.get(reverse("api:schema"), HTTP_AUTHORIZATION=f"Token {token.key}")
    assert schema.status_code == 200 and b"/api/studies/{slug}/leaderboard/" in schema.content


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_compute_button_has_the_worker_store_a_snapshot(worker, researcher_client):
    comparison = factories.comparison_setup()
    study = comparison.study
    Vote.objects.create(comparison=comparison, source=VoteSource.IMPORTED, winner="a")
    response = researcher_client.post(reverse("dashboard:compute", args=[study.slug]))
    assert response.status_code == 302
    wait_for_snapshots(study)
    snap = latest_snapshot(study)
    assert snap is not None and snap.n_votes == 1
    html = researcher_client.get(reverse("dashboard:overview", args=[study.slug])).content.decode()
    assert "1 vote" in html and "No analysis yet" not in html

    # The API asks the worker the same way.
    response = researcher_client.post(reverse("api:snapshots", args=[study.slug]))
    assert response.status_code == 202 and response.json()["task_id"]
    assert wait_for_snapshots(study, 2) == 2
