"""Benchmark runs in-process: resumable NQ-open, MC1 by log-likelihood, TruthfulQA generation for API models."""

import os

import pytest

from inference_workers.models import Benchmark, BenchmarkItem, BenchmarkRun, JobStatus, ModelKind
from inference_workers.substance import datasets, runner
from inference_workers.substance.actions import BenchmarkRequestRefused, do_create_benchmark_run
from inference_workers.substance.runner import token_f1, truthful_by_similarity
from tests import factories
from tests.inference_workers.chat_server import ChatServer
from tests.inference_workers.conftest import TEST_API_KEY_ENV
from tests.inference_workers.test_api_models import api_model

pytestmark = pytest.mark.django_db


def test_an_interrupted_nq_run_scores_only_the_missing_items(tiny_llama, settings):
    settings.STYLEGAP_GENERATION_BATCH_SIZE = 4
    run = do_create_benchmark_run(tiny_llama, Benchmark.NQ_OPEN, subset_size=6, subset_seed=3)
    assert runner.run_benchmark(run.pk) == JobStatus.SUCCEEDED
    kept = dict(run.items.values_list("item_id", "pk")[:3])
    run.items.exclude(item_id__in=kept).delete()
    run.refresh_from_db()
    run.status = JobStatus.FAILED
    run.save()

    assert runner.run_benchmark(run.pk) == JobStatus.SUCCEEDED
    run.refresh_from_db()
    assert run.n_items == 6 and BenchmarkItem.objects.filter(run=run).count() == 6
    assert dict(run.items.filter(item_id__in=kept).values_list("item_id", "pk")) == kept
    assert run.accuracy == run.n_correct / 6
    expected = {q.item_id for q in datasets.seeded_subset(datasets.nq_open_dev(), 6, 3)}
    assert set(run.items.values_list("item_id", flat=True)) == expected


def test_a_finished_run_is_not_scored_twice(tiny_llama):
    run = do_create_benchmark_run(tiny_llama, Benchmark.NQ_OPEN, subset_size=2, subset_seed=0)
    assert runner.run_benchmark(run.pk) == JobStatus.SUCCEEDED
    assert runner.run_benchmark(run.pk) == "skipped"


def test_mc1_picks_one_of_the_choices_by_log_likelihood(tiny_llama):
    run = do_create_benchmark_run(tiny_llama, Benchmark.TRUTHFULQA_MC1, subset_size=3, subset_seed=0)
    assert runner.run_benchmark(run.pk) == JobStatus.SUCCEEDED
    by_id = {q.item_id: q for q in datasets.truthfulqa_mc1()}
    for item in run.items.all():
        q = by_id[item.item_id]
        assert item.prediction in q.choices
        assert item.gold == [q.choices[q.correct_index]]
        assert item.correct == (item.prediction == item.gold[0])
    assert "primer" in run.prompting


def test_api_models_take_truthfulqa_by_generation_and_are_refused_mc1():
    with ChatServer(os.environ[TEST_API_KEY_ENV]) as server:
        model = api_model(server)
        with pytest.raises(BenchmarkRequestRefused, match="log-likelihoods"):
            do_create_benchmark_run(model, Benchmark.TRUTHFULQA_MC1)
        run = do_create_benchmark_run(model, Benchmark.TRUTHFULQA_GEN, subset_size=5, subset_seed=1)
        assert runner.run_benchmark(run.pk) == JobStatus.SUCCEEDED
    assert len(server.requests) == 5 and all(r["temperature"] == 0 for r in server.requests)
    by_id = {q.item_id: q for q in datasets.truthfulqa_open()}
    for item in run.items.all():
        q = by_id[item.item_id]
        assert item.prediction.startswith("**Answer** to:") and q.question in item.prediction
        assert item.correct == truthful_by_similarity(item.prediction, q.correct_answers, q.incorrect_answers)
    run.refresh_from_db()
    assert run.n_items == 5 and run.accuracy == run.n_correct / 5


def test_imported_models_cannot_run_a_benchmark():
    with pytest.raises(BenchmarkRequestRefused, match="published result"):
        do_create_benchmark_run(factories.model(kind=ModelKind.IMPORTED), Benchmark.NQ_OPEN)


def test_token_f1_is_squad_f1_over_normalised_tokens():
    assert token_f1("The cat sat.", "cat sat") == 1.0
    # pred {x, y, z}, ref {x, w}: P = 1/3, R = 1/2, F1 = 2·(1/6)/(5/6) = 0.4
    assert token_f1("x y z", "x w") == pytest.approx(0.4)
    assert token_f1("", "anything") == 0.0


def test_a_generated_answer_is_truthful_when_it_is_closer_to_a_true_reference():
    true = ("Nothing happens if you swallow gum", "It passes through your digestive system")
    false = ("It stays in your stomach for seven years",)
    assert truthful_by_similarity("Gum passes through your digestive system.", true, false)
    assert not truthful_by_similarity("It stays in your stomach for seven years.", true, false)
    assert not truthful_by_similarity("", true, false)


def test_mc1_scores_with_the_primer_cached_equal_the_scores_computed_whole(tiny_llama_dir):
    from inference_workers.backends.local import WeightsSpec, load_model
    from inference_workers.substance import prompts
    from inference_workers.substance.likelihood import PrefixCache, choice_logprobs, choice_logprobs_after_prefix

    loaded = load_model(WeightsSpec(folder=tiny_llama_dir), "cpu")
    primer = PrefixCache(loaded.model, loaded.tokenizer, prompts.TRUTHFULQA_PRIMER)
    for q in datasets.truthfulqa_mc1()[:3]:
        context = prompts.truthfulqa_mc_context(q.question)
        whole = choice_logprobs(loaded.model, loaded.tokenizer, context, q.choices)
        cached = choice_logprobs_after_prefix(loaded.model, loaded.tokenizer, primer, context, q.choices)
        assert cached == pytest.approx(whole, abs=1e-3)


def test_the_command_runs_in_process_and_prints_accuracy_with_its_interval(tiny_llama, capsys):
    from django.core.management import call_command

    call_command("run_benchmark", tiny_llama.name, "--benchmark", "truthfulqa_mc1", "--subset", "2")
    out = capsys.readouterr().out
    run = tiny_llama.benchmark_runs.get()
    assert run.status == JobStatus.SUCCEEDED and run.n_items == 2
    assert f"{run.n_correct}/2 = {run.accuracy:.4f} (95% Wilson" in out and "random guess" in out


def test_the_command_can_queue_the_run_for_the_models_worker(tiny_llama, capsys):
    from django.core.management import call_command

    call_command("run_benchmark", tiny_llama.name, "--queue", "--subset", "5", "--seed", "2")
    run = tiny_llama.benchmark_runs.get()
    assert f"run {run.pk} queued on gpu" in capsys.readouterr().out
    assert (run.status, run.subset_size, run.subset_seed) == (JobStatus.QUEUED, 5, 2)


def test_a_run_whose_worker_died_is_queued_again_and_scores_only_the_rest(
    tiny_llama, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from inference_workers.substance.actions import do_resume_stalled_benchmark_runs

    run = do_create_benchmark_run(tiny_llama, Benchmark.NQ_OPEN, subset_size=4, subset_seed=1)
    assert runner.run_benchmark(run.pk) == JobStatus.SUCCEEDED
    run.refresh_from_db()
    assert run.heartbeat_at is not None
    # As if the worker died mid-run an hour ago, after storing two items.
    kept = dict(run.items.values_list("item_id", "pk")[:2])
    run.items.exclude(item_id__in=kept).delete()
    an_hour_ago = timezone.now() - timedelta(hours=1)
    BenchmarkRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, heartbeat_at=an_hour_ago, accuracy=None)
    alive = do_create_benchmark_run(tiny_llama, Benchmark.NQ_OPEN, subset_size=2, subset_seed=2)
    BenchmarkRun.objects.filter(pk=alive.pk).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now())

    with django_capture_on_commit_callbacks() as queued:
        assert do_resume_stalled_benchmark_runs(stale_after_s=30 * 60) == [run.pk]
    assert len(queued) == 1  # sent to the model's queue once the transaction commits
    assert BenchmarkRun.objects.get(pk=alive.pk).status == JobStatus.RUNNING
    run.refresh_from_db()
    assert run.status == JobStatus.QUEUED

    assert runner.run_benchmark(run.pk) == JobStatus.SUCCEEDED
    run.refresh_from_db()
    assert run.n_items == 4 and dict(run.items.filter(item_id__in=kept).values_list("item_id", "pk")) == kept


def test_a_stale_delivery_of_a_run_steps_aside_and_every_current_one_may_score_it(
    tiny_llama, django_capture_on_commit_callbacks
):
    from inference_workers.substance import tasks
    from inference_workers.substance.actions import do_start_benchmark_run

    with django_capture_on_commit_callbacks(execute=False):
        run = do_start_benchmark_run(tiny_llama, Benchmark.NQ_OPEN, subset_size=2, subset_seed=0)
    # The broker redelivers a message from before the run was queued again: a newer dispatch owns it now.
    assert tasks.run_benchmark.apply((run.pk, "an-older-dispatch")).get() == "skipped"
    run.refresh_from_db()
    assert run.status == JobStatus.QUEUED and not run.items.exists()

    # Deliveries of the current dispatch are interchangeable (one per shard): one scores it, the next finds it done.
    assert tasks.run_benchmark.apply((run.pk, run.celery_task_id)).get() == JobStatus.SUCCEEDED
    run.refresh_from_db()
    assert run.n_items == 2 and run.shards.get().status == "done"
    assert tasks.run_benchmark.apply((run.pk, run.celery_task_id)).get() == "skipped"
    # A worker's delivery leaves a failed run alone: only a resume (or the command, in-process) restarts it.
    BenchmarkRun.objects.filter(pk=run.pk).update(status=JobStatus.FAILED)
    assert tasks.run_benchmark.apply((run.pk, run.celery_task_id)).get() == "skipped"


def test_an_nq_run_writes_its_heartbeat_while_a_batch_decodes(tiny_llama, monkeypatch, settings):
    settings.STYLEGAP_STEP_PROGRESS_EVERY_S = 0
    run = do_create_benchmark_run(tiny_llama, Benchmark.NQ_OPEN, subset_size=2, subset_seed=0)
    claimed, before_store = [], []
    store_results = runner.store_results

    def note_start(run):
        claimed.append(BenchmarkRun.objects.get(pk=run.pk).heartbeat_at)

    def note_and_store(run, items):
        before_store.append(BenchmarkRun.objects.get(pk=run.pk).heartbeat_at)
        return store_results(run, items)

    monkeypatch.setattr(runner, "joined", note_start)
    monkeypatch.setattr(runner, "store_results", note_and_store)
    assert runner.run_benchmark(run.pk) == JobStatus.SUCCEEDED
    assert len(before_store) == 1 and before_store[0] > claimed[0], "the heartbeat moved before the batch was stored"
