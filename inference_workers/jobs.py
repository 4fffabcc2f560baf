"""Running a generation job: its prompts in shards that any number of workers take (shards.py), each shard
answered in batches, with progress.

A job is resumable by construction: a shard only ever asks for its prompts that have no Response yet
(model x prompt x decoding config), inserts with conflict handling against the database's unique
constraint, and ``done`` is derived from the Responses stored, never from a counter, so two workers, a
redelivery or a takeover never store an answer twice. Between batches a worker writes progress and its
heartbeat (the job's, and its shard's lease), and checks the cancel flag; during a batch, a backend that
decodes token by token reports its steps, and at most once every ``STYLEGAP_STEP_PROGRESS_EVERY_S`` the worker
writes its batch's tokens so far, throughput and ETA, the heartbeats, and checks the cancel flag again (a
cancel abandons the running batch: its answers are not stored).

Progress figures, added up over the shards being worked on (one per worker):
tokens/s = Σ_workers completion tokens generated on their shard (stored and in flight) / seconds spent
generating it; tokens in flight = Σ_workers tokens of the batch being decoded;
ETA = prompts left / Σ_workers (prompts answered on their shard / seconds since they took it),
unknown until a batch is stored.

Each database step (claim, reading the pending prompts, storing a batch, progress, finishing) rides out a
brief disconnect (``reconnect.py``): the job goes on where it was, with the batch it holds in memory.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from inference_workers.backends.base import Answer, Backend, Batch, at_most_every_interval, listening_to_steps
from inference_workers.backends.local import LocalBackend
from inference_workers.backends.registry import backend_for, load_if_local
from inference_workers.generation import trim_to_last_sentence
from inference_workers.models import (
    GenerationJob,
    GenerationShard,
    JobStatus,
    ModelKind,
    Prompt,
    Response,
    ShardStatus,
)
from inference_workers.reconnect import retry_on_disconnect
from inference_workers.shards import JobCancelled, ShardedKind, held_shard, renew, work_on
from inference_workers.style_features import style_features

logger = logging.getLogger(__name__)

__all__ = ["JobCancelled"]  # raised by a job's work when a cancel was requested (shards.py)


@dataclass
class RunStats:
    """One worker's figures on the shard it holds."""

    started: float = field(default_factory=time.perf_counter)
    answered: int = 0
    completion_tokens: int = 0
    generating_s: float = 0.0
    done: int = 0  # answered prompts of the job as of the last stored batch


@retry_on_disconnect
def start_job(job: GenerationJob) -> None:
    """A worker joins the job: its start time (the first worker's) and its total, as the set now stands."""
    GenerationJob.objects.filter(pk=job.pk, started_at__isnull=True).update(started_at=timezone.now())
    job.total = job.prompt_set.prompts.count()
    GenerationJob.objects.filter(pk=job.pk).update(total=job.total)


def answered_prompt_ids(job: GenerationJob):
    return Response.objects.filter(
        model_id=job.model_id, decoding_config_id=job.decoding_config_id, prompt__prompt_set_id=job.prompt_set_id
    ).values("prompt_id")


@retry_on_disconnect
def pending_prompts(job: GenerationJob, prompt_ids: list[int] | None = None) -> list[Prompt]:
    """The job's prompts (of ``prompt_ids``, a shard's, when given) that have no answer yet."""
    prompts = job.prompt_set.prompts.exclude(pk__in=answered_prompt_ids(job))
    if prompt_ids is not None:
        prompts = prompts.filter(pk__in=prompt_ids)
    return list(prompts.order_by("pk"))


def pending_prompt_ids(job: GenerationJob) -> list[int]:
    return [p.pk for p in pending_prompts(job)]


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


def tokens_per_second(stats: RunStats, tokens_in_flight: int = 0, seconds_in_flight: float = 0.0) -> float | None:
    seconds = stats.generating_s + seconds_in_flight
    return (stats.completion_tokens + tokens_in_flight) / seconds if seconds else None


def prompts_per_second(stats: RunStats) -> float | None:
    elapsed = time.perf_counter() - stats.started
    return stats.answered / elapsed if stats.answered and elapsed > 0 else None


def running_shards(job: GenerationJob):
    return GenerationShard.objects.filter(job_id=job.pk, status=ShardStatus.RUNNING)


def summed_over_running_shards(name: str):
    """Σ ``name`` over the job's running shards, as an expression for the job's own update."""
    rows = (
        GenerationShard.objects.filter(job_id=OuterRef("pk"), status=ShardStatus.RUNNING)
        .values("job_id")
        .annotate(total=Sum(name))
        .values("total")
    )
    return Subquery(rows)


def job_eta(job: GenerationJob, done: int) -> float | None:
    """Prompts left / Σ_workers prompts per second (None until some worker has stored a batch)."""
    rate = running_shards(job).aggregate(rate=Sum("items_per_second"))["rate"]
    return max(job.total - done, 0) / rate if rate else None


@retry_on_disconnect
def record_progress(job: GenerationJob, stats: RunStats, **increments) -> bool:
    """Write done/total, throughput, ETA and the heartbeats after a stored batch (whose tokens leave
    ``tokens_in_flight`` for ``completion_tokens`` in the same update); returns True when cancel was requested."""
    done = stats.done = answered_prompt_ids(job).count()
    shard = held_shard()
    if shard is not None:
        renew(
            done=answered_prompt_ids(job).filter(prompt_id__in=shard.keys).count(),
            items_per_second=prompts_per_second(stats),
            tokens_in_flight=0,
            tokens_per_second=tokens_per_second(stats),
        )
    updates = {
        "done": min(done, job.total),
        "heartbeat_at": timezone.now(),
        "eta_seconds": job_eta(job, done),
        "tokens_per_second": Coalesce(summed_over_running_shards("tokens_per_second"), tokens_per_second(stats)),
        "tokens_in_flight": Coalesce(summed_over_running_shards("tokens_in_flight"), 0),
    }
    updates.update({name: F(name) + value for name, value in increments.items()})
    GenerationJob.objects.filter(pk=job.pk).update(**updates)
    return cancel_requested(job)


@retry_on_disconnect
def record_step_progress(job: GenerationJob, stats: RunStats, tokens: int, seconds: float) -> bool:
    """Write the running batch's tokens so far, throughput, ETA and the heartbeats; True when cancel was requested."""
    renew(tokens_in_flight=tokens, tokens_per_second=tokens_per_second(stats, tokens, seconds))
    GenerationJob.objects.filter(pk=job.pk).update(
        tokens_in_flight=Coalesce(summed_over_running_shards("tokens_in_flight"), tokens),
        heartbeat_at=timezone.now(),
        eta_seconds=job_eta(job, stats.done),  # done moves only when a batch is stored
        tokens_per_second=Coalesce(
            summed_over_running_shards("tokens_per_second"), tokens_per_second(stats, tokens, seconds)
        ),
    )
    return cancel_requested(job)


def cancel_requested(job: GenerationJob) -> bool:
    return GenerationJob.objects.filter(pk=job.pk, cancel_requested=True).exists()


def step_progress(job: GenerationJob, stats: RunStats):
    """A step listener (backends/base.py) that records progress at most once every
    STYLEGAP_STEP_PROGRESS_EVERY_S and abandons the batch (raises JobCancelled) when a cancel was requested."""

    def on_step(tokens: int, seconds: float) -> None:
        if record_step_progress(job, stats, tokens, seconds):
            raise JobCancelled

    return at_most_every_interval(on_step)


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


def run_shard(job: GenerationJob, shard: GenerationShard, work: Work | None = None) -> None:
    """Answer the shard's prompts still unanswered with ``work`` (by default the model's backend)."""
    work = work or backend_work(backend_for(job.model))
    work(job, pending_prompts(job, shard.keys), RunStats())


def generation_kind(work: Work | None = None) -> ShardedKind:
    return ShardedKind(
        name="generation job",
        jobs=GenerationJob.objects.select_related("model", "decoding_config", "prompt_set"),
        shard_model=GenerationShard,
        pending_keys=pending_prompt_ids,
        shard_size=lambda: settings.STYLEGAP_SHARD_PROMPTS,
        run_shard=lambda job, shard: run_shard(job, shard, work),
        finish=finish_job,
        on_start=start_job,
        prepare=(lambda job: load_if_local(job.model)) if work is None else (lambda job: None),
    )


def run_job(job_id: int, work: Work | None = None, *, dispatch: str | None = None) -> str:
    """Work on the job's shards beside any other worker (shards.py), with ``work`` (by default the model's
    backend). Returns the job's status as this worker leaves it, or "skipped" when it was closed (or the
    delivery's ``dispatch`` is not the job's current one)."""
    return work_on(generation_kind(work), job_id, dispatch=dispatch)


def effective_queue(job: GenerationJob) -> str:
    return job.queue or backend_for(job.model).queue


def next_job_for_loaded_model(job_id: int) -> int | None:
    """Another unfinished job of the same local model on the same queue with a shard to take (or not yet
    planned): a worker that holds the model loaded takes it before going back to the broker."""
    job = GenerationJob.objects.select_related("model").get(pk=job_id)
    if not backend_for(job.model).local:
        return None
    lapsed = Q(status=ShardStatus.RUNNING, lease_expires_at__lt=timezone.now())
    takeable = GenerationShard.objects.filter(Q(status=ShardStatus.OPEN) | lapsed, job_id=OuterRef("pk"))
    candidates = (
        GenerationJob.objects.select_related("model")
        .filter(model_id=job.model_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING], cancel_requested=False)
        .filter(Exists(takeable) | ~Exists(GenerationShard.objects.filter(job_id=OuterRef("pk"))))
        .exclude(pk=job_id)
        .order_by("created_at")
    )
    queue = effective_queue(job)
    return next((c.pk for c in candidates if effective_queue(c) == queue), None)


# --- A backend's work picked by the caller (the tests, bench/generation.py) ----------------------


def local_work(batch_size: int | None = None) -> Work:
    return backend_work(LocalBackend(batch_size))


api_work = backend_work(backend_for(ModelKind.OPENAI_API))
import_work = backend_work(backend_for(ModelKind.IMPORTED))
