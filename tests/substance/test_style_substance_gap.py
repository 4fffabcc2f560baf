"""The gap: preference beside accuracy relative to the reference, on the dashboard and in leaderboard --json."""

import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from inference_workers.models import Benchmark, BenchmarkRun, JobStatus, LanguageModel
from ratings.actions.snapshots import do_compute_snapshots
from ratings.analysis.snapshots import latest_snapshot
from ratings.models import Study
from stats.gap import style_substance_gap
from stats.intervals import wilson_interval

pytestmark = pytest.mark.django_db


def test_the_gap_is_twice_the_win_rate_less_the_accuracy_ratio():
    gap = style_substance_gap(0.5, 400, 0.10, 1000, 0.30, 1000)
    assert gap.preference == 1.0 and gap.relative_accuracy == pytest.approx(1 / 3)
    assert gap.gap == pytest.approx(2 / 3)
    assert gap.ci[0] < gap.gap < gap.ci[1]
    # sd(2w) = 2·sqrt(.25/400) = 0.05, so the interval spans about ±0.1 plus the accuracy ratio's share.
    assert 0.15 < gap.ci[1] - gap.ci[0] < 0.4
    assert style_substance_gap(0.5, 400, 0.1, 1000, 0.0, 1000) is None


def test_a_published_score_without_an_item_count_is_held_fixed():
    few_items = style_substance_gap(0.6, 1000, 0.2, 50, 0.4, None)
    fixed = style_substance_gap(0.6, 1000, 0.2, None, 0.4, None)
    assert fixed.ci[1] - fixed.ci[0] < few_items.ci[1] - few_items.ci[0]


def battles(n_imitation_wins: int, n_reference_wins: int) -> list[dict]:
    rows = []
    for i in range(n_imitation_wins + n_reference_wins):
        winner = "model_a" if i < n_imitation_wins else "model_b"
        rows.append({"question_id": f"q{i}", "model_a": "imitator", "model_b": "oracle", "winner": winner})
    return rows


def score(name: str, **fields) -> BenchmarkRun:
    return BenchmarkRun.objects.create(
        model=LanguageModel.objects.get(name=name), benchmark=Benchmark.NQ_OPEN, status=JobStatus.SUCCEEDED, **fields
    )


@pytest.fixture
def arena(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in battles(45, 55)))
    call_command("import_battles", "--study", "arena", str(path))
    score("imitator", n_items=200, n_correct=20, accuracy=0.1)
    score("oracle", published=True, citation="A paper, Table 1", accuracy=0.3)
    return path


def test_leaderboard_json_carries_each_models_substance_with_its_interval(arena, capsys):
    call_command("leaderboard", "--battles", str(arena), "--json")
    models = {m["model"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    low, high = wilson_interval(20, 200)
    imitator = models["imitator"]["substance"]
    measured = {"benchmark": "nq_open", "accuracy": 0.1, "ci": pytest.approx([low, high], abs=1e-6)}
    measured |= {"published": False, "source": "measured here"}
    assert imitator == measured | {"benchmarks": {"nq_open": measured}}
    published = {"benchmark": "nq_open", "accuracy": 0.3, "ci": None, "published": True, "source": "A paper, Table 1"}
    assert models["oracle"]["substance"] == published | {"benchmarks": {"nq_open": published}}


def test_the_dashboard_shows_the_gap_and_marks_measured_and_published_apart(arena, researcher_client):
    study = Study.objects.get(slug="arena")
    study.reference_model = LanguageModel.objects.get(name="oracle")
    study.save()
    do_compute_snapshots(study)
    rows = {r["model"]: r for r in latest_snapshot(study).payload["against_reference"]}
    gap = rows["imitator"]["gap"]
    assert gap["preference"] == pytest.approx(0.9) and gap["relative_accuracy"] == pytest.approx(1 / 3)
    assert gap["gap"] == pytest.approx(0.9 - 1 / 3) and gap["ci"][0] < gap["gap"] < gap["ci"][1]
    assert rows["oracle"]["gap"] is None

    html = researcher_client.get(reverse("dashboard:substance", args=[study.slug])).content.decode()
    assert "Human preference against factual accuracy (NQ-open (exact match))" in html
    assert ">measured<" in html and ">published<" in html
    assert f"{gap['gap']:.2f}" in html

    url = reverse("dashboard:download", args=[study.slug, "leaderboard.json"])
    downloaded = {m["model"]: m for m in json.loads(researcher_client.get(url).content)["models"]}
    assert downloaded["imitator"]["substance"]["accuracy"] == 0.1


def test_every_benchmark_is_carried_and_the_chart_shows_one_chosen_benchmark(arena, researcher_client, capsys):
    """The leaderboard JSON carries every benchmark a model has, published or measured with its source;
    the dashboard plots one benchmark at a time, by default the one most models have."""
    study = Study.objects.get(slug="arena")
    study.reference_model = LanguageModel.objects.get(name="oracle")
    study.save()
    for name, value, source in (
        ("imitator", 0.40, "Paper A"),
        ("oracle", 0.80, "Paper B"),
        ("oracle", 0.82, "Paper C"),
    ):
        BenchmarkRun.objects.create(
            model=LanguageModel.objects.get(name=name),
            benchmark=Benchmark.MMLU,
            status=JobStatus.SUCCEEDED,
            published=True,
            citation=source,
            accuracy=value,
            source_order=0 if source != "Paper C" else 1,
        )
    call_command("leaderboard", "--study", "arena", "--json")
    models = {m["model"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    oracle = models["oracle"]["substance"]["benchmarks"]
    assert set(oracle) == {"nq_open", "mmlu"}
    assert oracle["mmlu"] == {
        "benchmark": "mmlu",
        "accuracy": 0.8,
        "ci": None,
        "published": True,
        "source": "Paper B",
    }  # two published values: the one listed first (no primary, no dates), never their average
    assert models["imitator"]["substance"]["benchmarks"]["nq_open"]["published"] is False

    do_compute_snapshots(study)
    html = researcher_client.get(reverse("dashboard:substance", args=[study.slug])).content.decode()
    assert (
        "Human preference against factual accuracy (NQ-open (exact match))" in html
    )  # a tie in models: the order's first
    assert "?benchmark=mmlu" in html
    mmlu = researcher_client.get(reverse("dashboard:substance", args=[study.slug]) + "?benchmark=mmlu")
    page = mmlu.content.decode()
    assert "Human preference against factual accuracy (MMLU (5-shot))" in page
    assert "<title>published: Paper B</title>" in page and "1 of 2 published values" in page
    rows = {r["model"]: r for r in latest_snapshot(study).payload["against_reference"]}
    assert rows["imitator"]["gap"]["benchmark"] == "nq_open"  # the gap uses the first benchmark both have
