"""Running a judging job: claim it, ask the judge model for every verdict still missing, store each batch.

The job's items are the study's comparisons (attention checks left out; or a seeded sample of them), each
in both orders: (A first, B second) and (B first, A second). Like a generation job (inference_workers/jobs.py)
it is resumable by construction: it asks only for the (first, second) orders that have no verdict of this
judge on this study yet, inserts with conflict handling against the table's unique constraint, and derives
``done`` from what is stored. The judge model is run by its generation backend (``Backend.chat``): batched
on ``gpu`` for a local model, concurrent with back-off on ``api``. Between batches the job writes progress
(done, unparsed, tokens, cost, verdicts per second, ETA) and its heartbeat, and checks the cancel flag;
during a local batch the heartbeat and the cancel check run about once a second.

Progress figures: verdicts/s = verdicts stored in this run / seconds since it started; ETA = verdicts left /
verdicts per second.
"""

import logging
import random
import time
from dataclasses import dataclass

from django.db.models import F
from django.utils import timezone

from inference_workers.backends.base import ChatBatch, Sampling, listening_to_steps
from inference_workers.backends.registry import backend_for
from inference_workers.claims import claim
from inference_workers.models import JobStatus, Prompt, Response
from judges.actions import queue_snapshot
from judges.models import JudgeVerdict, JudgingJob, Outcome
from judges.verdicts import messages, parse

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 1.0
CLOSED = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


class JobCancelled(Exception):
    pass


@dataclass(frozen=True)
class Item:
    prompt: Prompt
    first: Response
    second: Response


def job_items(job: JudgingJob) -> list[Item]:
    """Every comparison of the job (all, or its seeded sample) in both orders."""
    comparisons = list(
        job.study.comparisons.filter(is_gold=False).select_related("prompt", "response_a", "response_b").order_by("pk")
    )
    if job.sample_size is not None and job.sample_size < len(comparisons):
        rng = random.Random(job.sample_seed)  # noqa: S311 - a reproducible sample, not a secret
        comparisons = sorted(rng.sample(comparisons, job.sample_size), key=lambda c: c.pk)
    items = []
    for c in comparisons:
        items.append(Item(c.prompt, c.response_a, c.response_b))
        items.append(Item(c.prompt, c.response_b, c.response_a))
    return items


def pending_items(job: JudgingJob, items: list[Item]) -> list[Item]:
    have = set(
        JudgeVerdict.objects.filter(judge_id=job.judge_id, study_id=job.study_id, repeat=0).values_list(
            "response_first_id", "response_second_id"
        )
    )
    return [i for i in items if (i.first.pk, i.second.pk) not in have]


def claim_job(job_id: int, task_id: str | None) -> JudgingJob | None:
    rows = JudgingJob.objects.select_related("judge__model", "judge__prompt", "study")
    job = claim(rows, job_id, task_id, closed=CLOSED)
    if job is not None:
        job.started_at = job.started_at or job.heartbeat_at
        job.save(update_fields=["started_at"])
    return job


def cancel_requested(job: JudgingJob) -> bool:
    return JudgingJob.objects.filter(pk=job.pk, cancel_requested=True).exists()


def heartbeat(job: JudgingJob):
    """A step listener: the heartbeat and a cancel check at most once a second during a local batch."""
    last = -float("inf")

    def on_step(tokens: int, seconds: float) -> None:
        nonlocal last
        now = time.perf_counter()
        if now - last < HEARTBEAT_EVERY_S:
            return
        last = now
        JudgingJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
        if cancel_requested(job):
            raise JobCancelled

    return on_step


def store_batch(job: JudgingJob, items: list[Item], batch: ChatBatch) -> None:
    parser = job.judge.prompt.parser
    rows = []
    for index, reply in zip(batch.indices, batch.replies, strict=True):
        item = items[index]
        rows.append(
            JudgeVerdict(
                judge_id=job.judge_id,
                study_id=job.study_id,
                job=job,
                prompt=item.prompt,
                response_first=item.first,
                response_second=item.second,
                outcome=parse(parser, reply.text),
                text=reply.text,
                prompt_tokens=reply.prompt_tokens,
                completion_tokens=reply.completion_tokens,
                latency_ms=reply.latency_ms,
            )
        )
    JudgeVerdict.objects.bulk_create(rows, ignore_conflicts=True)


def record_progress(job: JudgingJob, done: int, started: float, asked: int, batch: ChatBatch | None = None) -> bool:
    """Write done, unparsed, rate, ETA and the heartbeat (and the batch's tokens and cost); True when cancelled."""
    elapsed = time.perf_counter() - started
    rate = asked / elapsed if asked and elapsed > 0 else None
    updates = {
        "done": min(done, job.total),
        "unparsed": JudgeVerdict.objects.filter(job=job, outcome=Outcome.UNPARSED).count(),
        "heartbeat_at": timezone.now(),
        "verdicts_per_second": rate,
        "eta_seconds": max(job.total - done, 0) / rate if rate else None,
    }
    if batch is not None:
        updates.update(
            prompt_tokens=F("prompt_tokens") + sum(r.prompt_tokens or 0 for r in batch.replies),
            completion_tokens=F("completion_tokens") + sum(r.completion_tokens or 0 for r in batch.replies),
            cost_usd=F("cost_usd") + batch.cost_usd,
            api_requests=F("api_requests") + batch.api_requests,
            api_retries=F("api_retries") + batch.api_retries,
        )
    JudgingJob.objects.filter(pk=job.pk).update(**updates)
    return cancel_requested(job)


def finish(job: JudgingJob, status: str, error: str = "") -> None:
    JudgingJob.objects.filter(pk=job.pk).update(
        status=status,
        error=error[:5000],
        unparsed=JudgeVerdict.objects.filter(job=job, outcome=Outcome.UNPARSED).count(),
        eta_seconds=0 if status == JobStatus.SUCCEEDED else None,
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )


def run_judging_job(job_id: int, task_id: str | None) -> str:
    """Claim the job, ask for the missing verdicts batch by batch, and record how it ended."""
    job = claim_job(job_id, task_id)
    if job is None:
        return "skipped"
    judge = job.judge
    started = time.perf_counter()
    try:
        items = job_items(job)
        pending = pending_items(job, items)
        job.total = len(items)
        done = len(items) - len(pending)
        JudgingJob.objects.filter(pk=job.pk).update(total=job.total)
        record_progress(job, done, started, 0)
        conversations = [
            messages(judge.prompt.system, judge.prompt.user, i.prompt.text, i.first.text, i.second.text)
            for i in pending
        ]
        sampling = Sampling(judge.temperature, judge.top_p, judge.max_new_tokens, judge.seed)
        asked = 0
        with listening_to_steps(heartbeat(job)):
            for batch in backend_for(judge.model).chat(judge.model, conversations, sampling):
                store_batch(job, pending, batch)
                asked += len(batch.replies)
                done += len(batch.replies)
                if record_progress(job, done, started, asked, batch):
                    raise JobCancelled
    except JobCancelled:
        finish(job, JobStatus.CANCELLED)
        return JobStatus.CANCELLED
    except Exception as exc:
        logger.exception("judging job %s failed", job_id)
        finish(job, JobStatus.FAILED, f"{type(exc).__name__}: {exc}")
        return JobStatus.FAILED
    finish(job, JobStatus.SUCCEEDED)
    queue_snapshot(job.study_id)
    return JobStatus.SUCCEEDED
