"""Researcher pages: results with intervals and baselines, wrong answers as inert text, published scores apart."""

import pytest
from django.urls import reverse

from inference_workers.models import Benchmark, BenchmarkItem, BenchmarkRun, JobStatus
from inference_workers.substance import datasets
from tests import factories

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def measured_run(model, benchmark=Benchmark.NQ_OPEN, **kwargs):
    defaults = {"status": JobStatus.SUCCEEDED, "n_items": 2, "n_correct": 1, "accuracy": 0.5, "subset_size": 2}
    return BenchmarkRun.objects.create(model=model, benchmark=benchmark, subset_seed=0, **{**defaults, **kwargs})


def test_wrong_answers_sit_beside_the_gold_ones_as_inert_text(researcher_client):
    run = measured_run(factories.model())
    item = BenchmarkItem.objects.create
    item(run=run, item_id="a", question="Who?", prediction=HOSTILE, gold=["Ada"], correct=False)
    item(run=run, item_id="b", question="Where?", prediction="Paris", gold=["Paris"], correct=True)
    html = researcher_client.get(reverse("substance:wrong-answers", args=[run.pk])).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "Ada" in html and "1 wrong of 2" in html
    assert "Where?" not in html


@pytest.mark.parametrize("name", ["model-results", "run-detail", "wrong-answers", "run-progress"])
def test_substance_pages_send_visitors_to_log_in_and_refuse_other_accounts(client, django_user_model, name):
    run = measured_run(factories.model())
    BenchmarkItem.objects.create(run=run, item_id="a", question="Who?", prediction="Bob", gold=["Ada"], correct=False)
    url = reverse(f"substance:{name}", args=[run.model.pk if name == "model-results" else run.pk])
    anonymous = client.get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("admin:login") + "?next=")
    client.force_login(django_user_model.objects.create_user("stranger", password="x-long-password-1"))
    stranger = client.get(url)
    assert stranger.status_code == 403
    assert "Ada" not in anonymous.content.decode() + stranger.content.decode()


def test_mc1_is_shown_with_the_random_guess_baseline_of_its_own_items(researcher_client):
    run = measured_run(factories.model(), Benchmark.TRUTHFULQA_MC1, subset_size=50, n_items=50, n_correct=12)
    run.accuracy = 12 / 50
    run.save()
    chance = datasets.random_guess_accuracy(datasets.seeded_subset(datasets.truthfulqa_mc1(), 50, 0))
    html = researcher_client.get(reverse("substance:run-detail", args=[run.pk])).content.decode()
    assert "Random guess" in html and f"{100 * chance:.1f}%" in html
    assert "24.0%" in html


def test_a_published_result_needs_a_citation_and_is_listed_apart(researcher_client):
    model = factories.model()
    measured_run(model)
    url = reverse("substance:enter-published", args=[model.pk])
    form = {"benchmark": Benchmark.NQ_OPEN, "accuracy_percent": "31.2", "citation": ""}
    researcher_client.post(url, form)
    assert not BenchmarkRun.objects.filter(published=True).exists()

    form["citation"] = "Gudibande et al. 2023, The False Promise of Imitating Proprietary LLMs, Table 1"
    researcher_client.post(url, form)
    published = BenchmarkRun.objects.get(published=True)
    assert published.accuracy == pytest.approx(0.312) and published.status == JobStatus.SUCCEEDED

    html = researcher_client.get(reverse("substance:model-results", args=[model.pk])).content.decode()
    measured_part, published_part = html.split('id="published"')
    assert "False Promise" in published_part and "False Promise" not in measured_part
    assert "31.2%" in published_part and "50.0%" in measured_part


def test_starting_a_run_from_the_model_page_records_the_subset_and_prompting(researcher_client, settings):
    model = factories.model(kind="gguf", role="base", server_path="/nonexistent", gguf_file="x.gguf")
    response = researcher_client.post(
        reverse("substance:start-run", args=[model.pk]),
        {"benchmark": Benchmark.NQ_OPEN, "subset_size": "200", "subset_seed": "7"},
    )
    run = BenchmarkRun.objects.get(model=model)
    assert response.url == reverse("substance:run-detail", args=[run.pk])
    assert (run.subset_size, run.subset_seed, run.status) == (200, 7, JobStatus.QUEUED)
    assert "Do not explain" in run.prompting
    page = researcher_client.get(response.url).content.decode()
    assert "Seeded subset of 200 items (seed 7)" in page and "Do not explain" in page
