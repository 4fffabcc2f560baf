"""Acceptance: SmolLM2-135M-Instruct's NQ-open accuracy on a seeded 200-question subset, through the real worker.

The same run then appears as a measured point on the style-vs-substance chart of a study whose
votes (SmolLM2 against a reference with a published score) are imported battles written here:
the accuracy is real, the preference side is test data.
"""

import json
import time

import pytest
from django.core.management import call_command
from django.urls import reverse

from inference_workers.models import Benchmark, BenchmarkItem, BenchmarkRun, JobStatus, LanguageModel
from inference_workers.substance import datasets, scoring
from inference_workers.substance.actions import do_enter_published_result, do_start_benchmark_run
from ratings.actions.snapshots import do_compute_snapshots
from ratings.analysis.snapshots import latest_snapshot
from ratings.models import Study
from stats.intervals import wilson_interval
from tests.substance.conftest import wait_until_finished

pytestmark = pytest.mark.django_db(transaction=True)


def test_smollm2_scores_a_seeded_200_question_subset_on_the_gpu_queue(worker, smollm2, researcher_client, tmp_path):
    started = time.monotonic()
    run = do_start_benchmark_run(smollm2, Benchmark.NQ_OPEN, subset_size=200, subset_seed=0)
    seen: list[tuple[str, int]] = []
    run = wait_until_finished(run, seen=seen)
    seconds = time.monotonic() - started
    print(f"SmolLM2 NQ-open 200 via the worker: {run.n_correct}/{run.n_items} in {seconds:.0f} s")

    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.n_items == 200 and run.accuracy == run.n_correct / 200
    assert any(0 < n < 200 for _, n in seen), "progress is written between batches"
    chosen = {q.item_id: q for q in datasets.seeded_subset(datasets.nq_open_dev(), 200, 0)}
    items = list(BenchmarkItem.objects.filter(run=run))
    assert {i.item_id for i in items} == set(chosen)
    for item in items:
        # Every stored verdict is the contains-scorer's verdict on the stored answer against the data set's gold.
        assert item.gold == list(chosen[item.item_id].answers)
        assert item.correct == scoring.contains_match(item.prediction, item.gold)
    assert sum(bool(i.prediction) for i in items) > 190
    assert "Question: {question}?" in run.prompting and "greedy" in run.prompting

    progress_json = json.loads(researcher_client.get(reverse("substance:run-progress", args=[run.pk])).content)
    assert progress_json["done"] == progress_json["total"] == 200 and progress_json["finished"]
    low, high = wilson_interval(run.n_correct, 200)
    assert progress_json["ci"] == pytest.approx([low, high])

    page = researcher_client.get(reverse("substance:run-detail", args=[run.pk])).content.decode()
    assert f"{100 * run.accuracy:.1f}%" in page and f"{100 * low:.1f}–{100 * high:.1f}%" in page
    assert "Seeded subset of 200 items (seed 0)" in page

    wrong = researcher_client.get(reverse("substance:wrong-answers", args=[run.pk])).content.decode()
    assert f"{200 - run.n_correct} wrong of 200" in wrong

    show_on_the_style_substance_chart(run, researcher_client, tmp_path)


def show_on_the_style_substance_chart(run: BenchmarkRun, client, tmp_path) -> None:
    votes = [
        {"question_id": f"q{i}", "model_a": run.model.name, "model_b": "reference-llm", "winner": w}
        for i, w in enumerate(["model_a"] * 3 + ["model_b"] * 5 + ["tie"] * 2)
    ]
    path = tmp_path / "battles.jsonl"
    path.write_text("".join(json.dumps(v) + "\n" for v in votes))
    call_command("import_battles", "--study", "smollm2-vs-reference", str(path))
    reference = LanguageModel.objects.get(name="reference-llm")
    do_enter_published_result(reference, Benchmark.NQ_OPEN, 0.31, "Gudibande et al. 2023, ChatGPT on NQ")
    study = Study.objects.get(slug="smollm2-vs-reference")
    study.reference_model = reference
    study.save()
    do_compute_snapshots(study)

    row = next(r for r in latest_snapshot(study).payload["against_reference"] if r["model"] == run.model.name)
    assert row["substance"]["accuracy"] == run.accuracy and not row["substance"]["published"]
    assert row["win_rate"] == pytest.approx(0.4)
    assert row["gap"]["relative_accuracy"] == pytest.approx(run.accuracy / 0.31, abs=1e-6)
    html = client.get(reverse("dashboard:substance", args=[study.slug])).content.decode()
    chart = html[html.index("<svg") : html.index("</svg>")]
    assert run.model.name in chart and ">measured<" in chart and ">published<" in chart
