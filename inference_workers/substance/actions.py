"""State changes for substance benchmarks. Views, tasks and the run_benchmark command call these."""

import uuid

from django.conf import settings
from django.db import transaction

from inference_workers.backends.registry import backend_for
from inference_workers.claims import drop_unfinished_shards, reoffer_lapsed_shards, requeue_stalled
from inference_workers.dispatch import resend_unsent, send_on_commit
from inference_workers.models import Benchmark, BenchmarkRun, BenchmarkShard, JobStatus, LanguageModel, ModelStatus
from inference_workers.shards import tasks_for
from inference_workers.substance.runner import planned_total, prompting_text

# Sent by name: substance/tasks.py wires it to runner.run_benchmark and imports nothing from here.
RUN_BENCHMARK_TASK = "inference_workers.substance.tasks.run_benchmark"


class BenchmarkRequestRefused(Exception):
    """A run that cannot be started, in words a researcher can act on."""


def check_runnable(model: LanguageModel, benchmark: str) -> None:
    if model.status != ModelStatus.READY:
        raise BenchmarkRequestRefused(f"{model} is not ready ({model.get_status_display().lower()}).")
    backend = backend_for(model)
    if backend.imported:
        raise BenchmarkRequestRefused("Imported outputs cannot answer new questions: enter a published result.")
    if benchmark == Benchmark.TRUTHFULQA_MC1 and not backend.local:
        raise BenchmarkRequestRefused("MC1 needs the model's own log-likelihoods: choose TruthfulQA (generation).")
    if benchmark == Benchmark.MMLU and not backend.local:
        raise BenchmarkRequestRefused(
            "MMLU is scored by the model's own next-token log-probabilities: a local model only."
        )


def do_create_benchmark_run(
    model: LanguageModel, benchmark: str, *, subset_size: int | None = None, subset_seed: int = 0, queue: str = ""
) -> BenchmarkRun:
    """A queued run (not yet sent to a worker) with its prompting written down; ``queue`` empty: the model's own."""
    check_runnable(model, benchmark)
    return BenchmarkRun.objects.create(
        model=model,
        benchmark=benchmark,
        prompting=prompting_text(benchmark, model.kind),
        subset_size=subset_size,
        subset_seed=subset_seed if subset_size is not None else None,
        queue=queue,
    )


def do_queue_benchmark_run(run: BenchmarkRun) -> None:
    """Send the run to its model's queue (``gpu`` for local models, ``api`` for API models) after commit:
    one delivery per shard, so every worker on the queue can take its shards, under a fresh dispatch id
    (``celery_task_id``): deliveries of an older dispatch then step aside."""
    task_id = str(uuid.uuid4())
    BenchmarkRun.objects.filter(pk=run.pk).update(celery_task_id=task_id)
    run.celery_task_id = task_id
    queue = run.queue or backend_for(run.model).queue
    copies = tasks_for(max(planned_total(run) - run.n_items, 1), settings.STYLEGAP_SHARD_BENCHMARK_ITEMS)
    args = (run.pk, task_id)
    send_on_commit(run, "error", RUN_BENCHMARK_TASK, args, copies=copies, task_id=task_id, queue=queue)


def do_start_benchmark_run(
    model: LanguageModel, benchmark: str, *, subset_size: int | None = None, subset_seed: int = 0, queue: str = ""
) -> BenchmarkRun:
    with transaction.atomic():
        run = do_create_benchmark_run(model, benchmark, subset_size=subset_size, subset_seed=subset_seed, queue=queue)
        do_queue_benchmark_run(run)
    return run


def do_resume_benchmark_run(run: BenchmarkRun) -> BenchmarkRun:
    """Queue a failed run again; it scores only the items not stored yet."""
    with transaction.atomic():
        run = BenchmarkRun.objects.select_for_update().select_related("model").get(pk=run.pk)
        if run.published or run.status != JobStatus.FAILED:
            raise BenchmarkRequestRefused("Only a failed measured run can be resumed.")
        run.status, run.error, run.finished_at = JobStatus.QUEUED, "", None
        run.save(update_fields=["status", "error", "finished_at"])
        drop_unfinished_shards(BenchmarkShard, run.pk)
        do_queue_benchmark_run(run)
    return run


def do_enter_published_result(
    model: LanguageModel, benchmark: str, accuracy: float, citation: str, *, n_items: int | None = None
) -> BenchmarkRun:
    """A score from a publication, for a model that cannot run here; the database requires the citation."""
    n = n_items or 0
    return BenchmarkRun.objects.create(
        model=model,
        benchmark=benchmark,
        status=JobStatus.SUCCEEDED,
        published=True,
        citation=citation.strip(),
        accuracy=accuracy,
        n_items=n,
        n_correct=round(accuracy * n),
    )


def do_resume_stalled_benchmark_runs(stale_after_s: float) -> list[int]:
    """Queue again every running benchmark run whose worker died; it scores only the items not stored yet."""
    runs = BenchmarkRun.objects.filter(published=False)
    return requeue_stalled(runs, stale_after_s, do_queue_benchmark_run, BenchmarkShard)


def do_reoffer_lapsed_benchmark_shards() -> list[int]:
    """Shards whose worker stopped renewing its lease, open again, with a delivery of their run queued."""
    return reoffer_lapsed_shards(
        BenchmarkShard.objects, BenchmarkRun.objects.select_related("model"), do_queue_benchmark_run
    )


def do_resend_unsent_benchmark_runs(grace_s: float) -> list[int]:
    """Queued runs whose message never reached the broker, sent again (inference_workers/dispatch.py)."""
    runs = BenchmarkRun.objects.select_related("model").filter(status=JobStatus.QUEUED, published=False)
    return resend_unsent(runs, grace_s, do_queue_benchmark_run)
