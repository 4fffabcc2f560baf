"""Running a generation job: claim it, answer the prompts still unanswered in batches, record progress.

A job is resumable by construction: it only ever asks for prompts that have no Response yet
(model x prompt x decoding config), inserts with conflict handling against the database's unique
constraint, and derives ``done`` from the Responses stored, never from a counter. Between batches
it writes progress and a heartbeat, and checks the cancel flag; during a batch, a backend that decodes
token by token reports its steps, and at most once every ``STEP_PROGRESS_EVERY_S`` the job writes the
batch's tokens so far (``tokens_in_flight``), throughput and ETA, the heartbeat, and checks the cancel
flag again (a cancel abandons the running batch: its answers are not stored).

Progress figures: tokens/s = completion tokens generated in this run (stored and in flight) / seconds
spent generating; ETA = prompts left x (seconds elapsed in this run / prompts answered in this run),
unknown until a batch is stored.

Each database step (claim, reading the pending prompts, storing a batch, progress, finishing) rides out a
brief disconnect (``reconnect.py``): the job goes on where it was, with the batch it holds in memory.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import F
from django.utils import timezone

from inference_workers.backends.base import Answer, Backend, Batch, listening_to_steps
from inference_workers.backends.local import LocalBackend
from inference_workers.backends.registry import backend_for
from inference_workers.claims import claim
from inference_workers.generation import trim_to_last_sentence
from inference_workers.models import GenerationJob, JobStatus, ModelKind, Prompt, Response
from inference_workers.reconnect import retry_on_disconnect
from inference_workers.style_features import style_features

logger = logging.getLogger(__name__)

# Per-step progress writes are throttled to this, so a fast decoder does not hammer the database.
STEP_PROGRESS_EVERY_S = 1.0


class JobCancelled(Exception):
    pass


@dataclass
class RunStats:
    started: float = field(default_factory=time.perf_counter)
    answered: int = 0
    completion_tokens: int = 0
    generating_s: float = 0.0
    done: int = 0  # answered prompts of the job as of the last stored batch


@retry_on_disconnect
def claim_job(job_id: int, task_id: str | None) -> GenerationJob | None:
    """Mark the job running for this task; None when it is finished, cancelled or owned by another task."""
    rows = GenerationJob.objects.select_related("model", "decoding_config")
    job = claim(rows, job_id, task_id, closed={JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
    if job is not None:
        job.started_at = job.started_at or job.heartbeat_at
        job.total = job.prompt_set.prompts.count()
        job.tokens_in_flight = 0  # a batch a dead worker was decoding is gone
        job.save(update_fields=["started_at", "total", "tokens_in_flight"])
    return job


def answered_prompt_ids(job: GenerationJob):
    return Response.objects.filter(
        model_id=job.model_id, decoding_config_id=job.decoding_config_id, prompt__prompt_set_id=job.prompt_set_id
    ).values("prompt_id")


@retry_on_disconnect
def pending_prompts(job: GenerationJob) -> list[Prompt]:
    return list(job.prompt_set.prompts.exclude(pk__in=answered_prompt_ids(job)).order_by("pk"))


@retry_on_disconnect
def store_answers(job: GenerationJob, answers: list[Answer]) -> None:
    """Insert the answers with their style features; one already stored (a rerun) is left as it was."""
    now = timezone.now()
    config = job.decoding_config
    texts = [
        trim_to_last_sentence(a.text)
        if config.trim_to_sentence and (a.completion_tokens or 0) >= config.max_new_tokens
        else a.text
        for a in answers
    ]
    rows = [
        Response(
            model_id=job.model_id,
            prompt=a.prompt,
            decoding_config_id=job.decoding_config_id,
            job=job,
            text=text,
            prompt_tokens=a.prompt_tokens,
            completion_tokens=a.completion_tokens,
            latency_ms=a.latency_ms,
            style_computed_at=now,
            **style_features(text).as_dict(),
        )
        for a, text in zip(answers, texts, strict=True)
    ]
    Response.objects.bulk_create(rows, ignore_conflicts=True)


def eta_seconds(job: GenerationJob, stats: RunStats, done: int) -> float | None:
    if not stats.answered:
        return None
    return max(job.total - done, 0) * (time.perf_counter() - stats.started) / stats.answered


def tokens_per_second(stats: RunStats, tokens_in_flight: int = 0, seconds_in_flight: float = 0.0) -> float | None:
    seconds = stats.generating_s + seconds_in_flight
    return (stats.completion_tokens + tokens_in_flight) / seconds if seconds else None


@retry_on_disconnect
def record_progress(job: GenerationJob, stats: RunStats, **increments) -> bool:
    """Write done/total, throughput, ETA and the heartbeat after a stored batch (whose tokens leave
    ``tokens_in_flight`` for ``completion_tokens`` in the same update); returns True when cancel was requested."""
    done = stats.done = answered_prompt_ids(job).count()
    updates = {
        "done": min(done, job.total),
        "heartbeat_at": timezone.now(),
        "eta_seconds": eta_seconds(job, stats, done),
        "tokens_per_second": tokens_per_second(stats),
        "tokens_in_flight": 0,
    }
    updates.update({name: F(name) + value for name, value in increments.items()})
    GenerationJob.objects.filter(pk=job.pk).update(**updates)
    return cancel_requested(job)


@retry_on_disconnect
def record_step_progress(job: GenerationJob, stats: RunStats, tokens: int, seconds: float) -> bool:
    """Write the running batch's tokens so far, throughput, ETA and the heartbeat; True when cancel was requested."""
    GenerationJob.objects.filter(pk=job.pk).update(
        tokens_in_flight=tokens,
        heartbeat_at=timezone.now(),
        eta_seconds=eta_seconds(job, stats, stats.done),  # done moves only when a batch is stored
        tokens_per_second=tokens_per_second(stats, tokens, seconds),
    )
    return cancel_requested(job)


def cancel_requested(job: GenerationJob) -> bool:
    return GenerationJob.objects.filter(pk=job.pk, cancel_requested=True).exists()


def step_progress(job: GenerationJob, stats: RunStats):
    """A step listener (backends/base.py) that records progress at most once every STEP_PROGRESS_EVERY_S
    and abandons the batch (raises JobCancelled) when a cancel was requested."""
    last_write = -float("inf")

    def on_step(tokens: int, seconds: float) -> None:
        nonlocal last_write
        now = time.perf_counter()
        if now - last_write < STEP_PROGRESS_EVERY_S:
            return
        last_write = now
        if record_step_progress(job, stats, tokens, seconds):
            raise JobCancelled

    return on_step


@retry_on_disconnect
def finish_job(job: GenerationJob, status: str, error: str = "") -> None:
    done = answered_prompt_ids(job).count()
    GenerationJob.objects.filter(pk=job.pk).update(
        status=status,
        error=error[:5000],
        done=min(done, job.total),
        eta_seconds=0 if status == JobStatus.SUCCEEDED else None,
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
        tokens_in_flight=0,
    )


Work = Callable[[GenerationJob, list[Prompt], RunStats], None]


def backend_work(backend: Backend) -> Work:
    """Answer the pending prompts with ``backend``: store each batch, record progress, stop when cancelled."""

    def work(job: GenerationJob, prompts: list[Prompt], stats: RunStats) -> None:
        with listening_to_steps(step_progress(job, stats)):
            for batch in backend.generate(job.model, job.decoding_config, prompts):
                store_batch(job, batch, stats)

    return work


def store_batch(job: GenerationJob, batch: Batch, stats: RunStats) -> None:
    """Store one batch's answers and record progress; raises JobCancelled when a cancel was requested."""
    store_answers(job, batch.answers)
    n_prompt = sum(a.prompt_tokens or 0 for a in batch.answers)
    n_completion = sum(a.completion_tokens or 0 for a in batch.answers)
    stats.answered += len(batch.answers)
    stats.completion_tokens += n_completion
    stats.generating_s += batch.seconds
    cancelled = record_progress(
        job,
        stats,
        prompt_tokens=n_prompt,
        completion_tokens=n_completion,
        cost_usd=batch.cost_usd,
        api_requests=batch.api_requests,
        api_retries=batch.api_retries,
    )
    if cancelled:
        raise JobCancelled


def run_job(job_id: int, task_id: str | None, work: Work | None = None) -> str:
    """Claim, run ``work`` (by default the model's backend) over the pending prompts, and record how it
    ended. Returns the final status."""
    job = claim_job(job_id, task_id)
    if job is None:
        return "skipped"
    work = work or backend_work(backend_for(job.model))
    stats = RunStats()
    try:
        work(job, pending_prompts(job), stats)
    except JobCancelled:
        finish_job(job, JobStatus.CANCELLED)
        return JobStatus.CANCELLED
    except Exception as exc:
        logger.exception("generation job %s failed", job_id)
        finish_job(job, JobStatus.FAILED, f"{type(exc).__name__}: {exc}")
        return JobStatus.FAILED
    finish_job(job, JobStatus.SUCCEEDED)
    return JobStatus.SUCCEEDED


# --- A backend's work picked by the caller (the tests, bench/generation.py) ----------------------


def local_work(batch_size: int | None = None) -> Work:
    return backend_work(LocalBackend(batch_size))


api_work = backend_work(backend_for(ModelKind.OPENAI_API))
import_work = backend_work(backend_for(ModelKind.IMPORTED))
