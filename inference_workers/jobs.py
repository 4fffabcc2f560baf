"""Running a generation job: claim it, answer the prompts still unanswered in batches, record progress.

A job is resumable by construction: it only ever asks for prompts that have no Response yet
(model x prompt x decoding config), inserts with conflict handling against the database's unique
constraint, and derives ``done`` from the Responses stored, never from a counter. Between batches
it writes progress and a heartbeat, and checks the cancel flag.

Progress figures: tokens/s = completion tokens generated in this run / seconds spent generating;
ETA = prompts left x (seconds elapsed in this run / prompts answered in this run).
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from inference_workers.claims import claim
from inference_workers.models import GenerationJob, JobStatus, LanguageModel, Prompt, Response
from inference_workers.style_features import style_features

logger = logging.getLogger(__name__)


class JobCancelled(Exception):
    pass


@dataclass
class RunStats:
    started: float = field(default_factory=time.perf_counter)
    answered: int = 0
    completion_tokens: int = 0
    generating_s: float = 0.0


@dataclass(frozen=True)
class Answer:
    prompt: Prompt
    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int | None


def claim_job(job_id: int, task_id: str | None) -> GenerationJob | None:
    """Mark the job running for this task; None when it is finished, cancelled or owned by another task."""
    rows = GenerationJob.objects.select_related("model", "decoding_config")
    job = claim(rows, job_id, task_id, closed={JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
    if job is not None:
        job.started_at = job.started_at or job.heartbeat_at
        job.total = job.prompt_set.prompts.count()
        job.save(update_fields=["started_at", "total"])
    return job


def answered_prompt_ids(job: GenerationJob):
    return Response.objects.filter(
        model_id=job.model_id, decoding_config_id=job.decoding_config_id, prompt__prompt_set_id=job.prompt_set_id
    ).values("prompt_id")


def pending_prompts(job: GenerationJob) -> list[Prompt]:
    return list(job.prompt_set.prompts.exclude(pk__in=answered_prompt_ids(job)).order_by("pk"))


def store_answers(job: GenerationJob, answers: list[Answer]) -> None:
    """Insert the answers with their style features; one already stored (a rerun) is left as it was."""
    now = timezone.now()
    rows = [
        Response(
            model_id=job.model_id,
            prompt=a.prompt,
            decoding_config_id=job.decoding_config_id,
            job=job,
            text=a.text,
            prompt_tokens=a.prompt_tokens,
            completion_tokens=a.completion_tokens,
            latency_ms=a.latency_ms,
            style_computed_at=now,
            **style_features(a.text).as_dict(),
        )
        for a in answers
    ]
    Response.objects.bulk_create(rows, ignore_conflicts=True)


def record_progress(job: GenerationJob, stats: RunStats, **increments) -> bool:
    """Write done/total, throughput, ETA and the heartbeat; returns True when cancel was requested."""
    done = answered_prompt_ids(job).count()
    elapsed = time.perf_counter() - stats.started
    left = max(job.total - done, 0)
    updates = {
        "done": min(done, job.total),
        "heartbeat_at": timezone.now(),
        "eta_seconds": (left * elapsed / stats.answered) if stats.answered else None,
        "tokens_per_second": (stats.completion_tokens / stats.generating_s) if stats.generating_s else None,
    }
    updates.update({name: F(name) + value for name, value in increments.items()})
    GenerationJob.objects.filter(pk=job.pk).update(**updates)
    return GenerationJob.objects.filter(pk=job.pk, cancel_requested=True).exists()


def finish_job(job: GenerationJob, status: str, error: str = "") -> None:
    done = answered_prompt_ids(job).count()
    GenerationJob.objects.filter(pk=job.pk).update(
        status=status,
        error=error[:5000],
        done=min(done, job.total),
        eta_seconds=0 if status == JobStatus.SUCCEEDED else None,
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )


def run_job(job_id: int, task_id: str | None, work: Callable[[GenerationJob, list[Prompt], RunStats], None]) -> str:
    """Claim, run ``work`` over the pending prompts, and record how it ended. Returns the final status."""
    job = claim_job(job_id, task_id)
    if job is None:
        return "skipped"
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


# --- Local models -------------------------------------------------------------------------------

_MODEL_CACHE = None


def model_cache():
    """The worker process's cache of loaded models (created on first use, sized by a setting)."""
    global _MODEL_CACHE
    if _MODEL_CACHE is None:
        from inference_workers.backends.local import free_memory
        from inference_workers.generation import ModelCache

        _MODEL_CACHE = ModelCache(settings.STYLEGAP_MODEL_CACHE_SIZE, on_evict=lambda _: free_memory())
    return _MODEL_CACHE


def load_cached(model: LanguageModel):
    from inference_workers.backends.local import load_model
    from inference_workers.registry import cache_key, weights_spec

    return model_cache().get_or_load(cache_key(model), lambda: load_model(weights_spec(model)))


def local_work(batch_size: int | None = None):
    def work(job: GenerationJob, prompts: list[Prompt], stats: RunStats) -> None:
        from inference_workers.backends import local
        from inference_workers.generation import length_sorted_batches, run_halving_on_oom

        config = job.decoding_config
        loaded = load_cached(job.model)
        rendered = {
            p.pk: local.render_prompt(loaded.tokenizer, p.text, config.system_prompt, config.chat_template)
            for p in prompts
        }
        lengths = local.count_prompt_tokens(loaded, [rendered[p.pk] for p in prompts]) if prompts else []

        def generate(batch: list[Prompt]) -> list[Answer]:
            outputs, seconds = local.generate_batch(
                loaded,
                [rendered[p.pk] for p in batch],
                temperature=config.temperature,
                top_p=config.top_p,
                max_new_tokens=config.max_new_tokens,
                seed=config.seed,
            )
            stats.generating_s += seconds
            # Every answer in a batch waited for the whole batch: that is its latency.
            latency = int(seconds * 1000)
            return [
                Answer(p, o.text, o.prompt_tokens, o.completion_tokens, latency)
                for p, o in zip(batch, outputs, strict=True)
            ]

        def on_oom(size: int) -> None:
            local.free_memory()
            logger.warning("job %s: out of memory at a batch of %d; halving", job.pk, size)

        for batch in length_sorted_batches(prompts, lengths, batch_size or settings.STYLEGAP_GENERATION_BATCH_SIZE):
            answers = run_halving_on_oom(batch, generate, local.is_out_of_memory, on_oom)
            store_answers(job, answers)
            stats.answered += len(answers)
            stats.completion_tokens += sum(a.completion_tokens or 0 for a in answers)
            cancelled = record_progress(
                job,
                stats,
                prompt_tokens=sum(a.prompt_tokens or 0 for a in answers),
                completion_tokens=sum(a.completion_tokens or 0 for a in answers),
            )
            if cancelled:
                raise JobCancelled

    return work


# --- API models ---------------------------------------------------------------------------------


def api_endpoint(model: LanguageModel):
    from inference_workers.backends.openai_api import ApiEndpoint

    return ApiEndpoint(
        base_url=model.api_base_url,
        model_id=model.api_model_id,
        api_key_env=model.api_key_env,
        max_attempts=settings.STYLEGAP_API_MAX_ATTEMPTS,
        backoff_s=settings.STYLEGAP_API_BACKOFF_SECONDS,
    )


def api_messages(text: str, system_prompt: str) -> list[dict]:
    return ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
        {"role": "user", "content": text}
    ]


def api_answer_chunks(
    model: LanguageModel,
    texts: list[str],
    *,
    system_prompt: str,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    seed: int,
):
    """Ask an API model every text, a few pool-fulls at a time; yields (start, results, seconds) per chunk.

    Callers record progress and check their cancel flag between chunks.
    """
    from inference_workers.backends import openai_api

    endpoint = api_endpoint(model)
    concurrency = settings.STYLEGAP_API_CONCURRENCY
    chunk = concurrency * 2
    for start in range(0, len(texts), chunk):
        bodies = [
            openai_api.request_body(
                endpoint,
                api_messages(text, system_prompt),
                temperature=temperature,
                top_p=top_p,
                max_new_tokens=max_new_tokens,
                seed=seed,
            )
            for text in texts[start : start + chunk]
        ]
        began = time.perf_counter()
        results = openai_api.chat_completions(endpoint, bodies, concurrency)
        yield start, results, time.perf_counter() - began


def api_work(job: GenerationJob, prompts: list[Prompt], stats: RunStats) -> None:
    from inference_workers.backends import openai_api

    config = job.decoding_config
    chunks = api_answer_chunks(
        job.model,
        [p.text for p in prompts],
        system_prompt=config.system_prompt,
        temperature=config.temperature,
        top_p=config.top_p,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
    )
    for start, results, seconds in chunks:
        part = prompts[start : start + len(results)]
        stats.generating_s += seconds
        answers = [
            Answer(p, r.text, r.prompt_tokens, r.completion_tokens, r.latency_ms)
            for p, r in zip(part, results, strict=True)
        ]
        store_answers(job, answers)
        n_prompt = sum(r.prompt_tokens for r in results)
        n_completion = sum(r.completion_tokens for r in results)
        stats.answered += len(answers)
        stats.completion_tokens += n_completion
        cost = openai_api.cost_usd(
            n_prompt, n_completion, job.model.prompt_price_per_mtok, job.model.completion_price_per_mtok
        )
        cancelled = record_progress(
            job,
            stats,
            prompt_tokens=n_prompt,
            completion_tokens=n_completion,
            cost_usd=cost,
            api_requests=len(results) + sum(r.retries for r in results),
            api_retries=sum(r.retries for r in results),
        )
        if cancelled:
            raise JobCancelled


# --- Imported outputs ---------------------------------------------------------------------------


def import_work(job: GenerationJob, prompts: list[Prompt], stats: RunStats) -> None:
    from inference_workers.backends.imported import match_prompts, parse_outputs

    with job.model.checkpoint.open("rb") as fh:
        answers = parse_outputs(fh)
    by_id = {p.external_id: p for p in prompts}
    by_text = {p.text.strip(): p for p in prompts}
    matched = match_prompts(answers, by_id, by_text)
    store_answers(job, [Answer(p, text, None, None, None) for p, text in matched.items()])
    stats.answered += len(matched)
    record_progress(job, stats)
