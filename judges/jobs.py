"""Running a judging job: its orders in shards that any number of workers take (inference_workers/shards.py),
each shard asking the judge model for its verdicts still missing, batch by batch.

The job's items are the study's comparisons (attention checks left out; or a seeded sample of them), each
in both orders: (A first, B second) and (B first, A second). Like a generation job (inference_workers/jobs.py)
it is resumable by construction: it asks only for the (first, second) orders that have no verdict of this
judge on this study yet, inserts with conflict handling against the table's unique constraint, and derives
``done`` from what is stored. The judge model is run by its generation backend (``Backend.chat``): batched
on ``gpu`` for a local model, concurrent with back-off on ``api``. Between batches the job writes progress
(done, unparsed, tokens, cost, verdicts per second, ETA) and its heartbeat, and checks the cancel flag;
during a local batch the heartbeat and the cancel check run about once a second
(``STYLEGAP_STEP_PROGRESS_EVERY_S``).

Progress figures, added up over the shards being worked on (one per worker): verdicts/s = Σ_workers verdicts
stored on their shard / seconds since they took it; ETA = verdicts left / verdicts per second.
"""

import logging
import random
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import F, Sum
from django.utils import timezone

from inference_workers.backends.base import ChatBatch, Sampling, at_most_every_interval, listening_to_steps
from inference_workers.backends.registry import backend_for, load_if_local
from inference_workers.models import JobStatus, Prompt, Response, ShardStatus
from inference_workers.shards import JobCancelled, ShardedKind, held_shard, renew, work_on
from judges.actions import queue_snapshot
from judges.models import JudgeVerdict, JudgingJob, JudgingShard, Outcome
from judges.verdicts import messages, parse

logger = logging.getLogger(__name__)

__all__ = ["JobCancelled"]


@dataclass(frozen=True)
class Item:
    prompt: Prompt
    first: Response
    second: Response


def job_items(job: JudgingJob) -> list[Item]:
    """Every comparison of the job (all, or its seeded sample) in both orders; read once per job object."""
    if getattr(job, "_items", None) is None:
        job._items = read_job_items(job)
    return job._items


def read_job_items(job: JudgingJob) -> list[Item]:
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


def cancel_requested(job: JudgingJob) -> bool:
    return JudgingJob.objects.filter(pk=job.pk, cancel_requested=True).exists()


def heartbeat(job: JudgingJob):
    """A step listener: the heartbeat and a cancel check during a local batch, at most once every
    STYLEGAP_STEP_PROGRESS_EVERY_S."""

    def on_step(tokens: int, seconds: float) -> None:
        renew()
        JudgingJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
        if cancel_requested(job):
            raise JobCancelled

    return at_most_every_interval(on_step)


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


def record_progress(job: JudgingJob, started: float, asked: int, batch: ChatBatch | None = None) -> bool:
    """Write done, unparsed, rate, ETA and the heartbeats (and the batch's tokens and cost); True when cancelled."""
    done = stored_verdicts(job)
    shard = held_shard()
    if shard is not None:
        elapsed = time.perf_counter() - started
        renew(done=min(shard_done(job, shard), shard.size), items_per_second=asked / elapsed if asked else None)
    rate = JudgingShard.objects.filter(job=job, status=ShardStatus.RUNNING).aggregate(r=Sum("items_per_second"))["r"]
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


def verdicts_of(job: JudgingJob):
    return JudgeVerdict.objects.filter(judge_id=job.judge_id, study_id=job.study_id, repeat=0)


def stored_verdicts(job: JudgingJob) -> int:
    """Verdicts of the job's orders stored (by this job, or an earlier one of the same judge on the study)."""
    wanted = {(i.first.pk, i.second.pk) for i in job_items(job)}
    return len(wanted & set(verdicts_of(job).values_list("response_first_id", "response_second_id")))


def shard_done(job: JudgingJob, shard: JudgingShard) -> int:
    wanted = {tuple(key) for key in shard.keys}
    return len(wanted & set(verdicts_of(job).values_list("response_first_id", "response_second_id")))


def finish(job: JudgingJob, status: str, error: str = "") -> None:
    JudgingJob.objects.filter(pk=job.pk).update(
        status=status,
        error=error[:5000],
        done=min(stored_verdicts(job), job.total),
        unparsed=JudgeVerdict.objects.filter(job=job, outcome=Outcome.UNPARSED).count(),
        eta_seconds=0 if status == JobStatus.SUCCEEDED else None,
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )


def start_job(job: JudgingJob) -> None:
    """A worker joins: the job's start time (the first worker's) and its total (comparisons x 2 orders)."""
    JudgingJob.objects.filter(pk=job.pk, started_at__isnull=True).update(started_at=timezone.now())
    job.total = len(job_items(job))
    JudgingJob.objects.filter(pk=job.pk).update(total=job.total)


def run_shard(job: JudgingJob, shard: JudgingShard) -> None:
    """Ask for the shard's verdicts still missing, batch by batch, writing progress after each."""
    judge = job.judge
    started = time.perf_counter()
    wanted = {tuple(key) for key in shard.keys}
    pending = [i for i in pending_items(job, job_items(job)) if (i.first.pk, i.second.pk) in wanted]
    record_progress(job, started, 0)
    conversations = [
        messages(judge.prompt.system, judge.prompt.user, i.prompt.text, i.first.text, i.second.text) for i in pending
    ]
    sampling = Sampling(judge.temperature, judge.top_p, judge.max_new_tokens, judge.seed)
    asked = 0
    with listening_to_steps(heartbeat(job)):
        for batch in backend_for(judge.model).chat(judge.model, conversations, sampling):
            store_batch(job, pending, batch)
            asked += len(batch.replies)
            if record_progress(job, started, asked, batch):
                raise JobCancelled


def finish_job(job: JudgingJob, status: str, error: str = "") -> None:
    finish(job, status, error)
    if status == JobStatus.SUCCEEDED:
        queue_snapshot(job.study_id)


def judging_kind() -> ShardedKind:
    return ShardedKind(
        name="judging job",
        jobs=JudgingJob.objects.select_related("judge__model", "judge__prompt", "study"),
        shard_model=JudgingShard,
        pending_keys=lambda job: [[i.first.pk, i.second.pk] for i in pending_items(job, job_items(job))],
        shard_size=lambda: settings.STYLEGAP_SHARD_JUDGING_ITEMS,
        run_shard=run_shard,
        finish=finish_job,
        on_start=start_job,
        prepare=lambda job: load_if_local(job.judge.model),
    )


def run_judging_job(job_id: int, dispatch: str | None = None) -> str:
    """Work on the job's shards beside any other worker, and record how it ended (shards.py); a delivery of
    an older ``dispatch`` than the job's steps aside."""
    return work_on(judging_kind(), job_id, dispatch=dispatch)
