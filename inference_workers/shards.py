"""One job, many workers: the life of a sharded job (generation, benchmark run, judging), whatever its kind.

A job's items (prompts, benchmark items, judging orders) are split into shards (``models.Shard``) when the
first worker starts it, sized by a setting so that a shard takes a minute or so on its device. The job is
queued as a small pool of identical "work on this job" deliveries, one per shard (``tasks_for``), that carry
the job's dispatch id (``celery_task_id``; a requeue makes a new one and older deliveries step aside). Each:

1. starts the job (``claims.start``: skipped when it is closed; cancelled when a cancel was asked for);
2. gets ready (``kind.prepare``: loads the job's model, which renews no lease), then takes the next shard
   (``claims.claim_shard``: open, or running under a lapsed lease; SKIP LOCKED) and runs it with
   ``kind.run_shard``, which asks only for the shard's items not stored yet and renews the lease from its
   heartbeat (``renew``); then the next, until none is left;
3. while other workers still hold shards, waits for them (polling every ``POLL_S``) and takes over any
   whose lease lapses: the worker that died holding it no longer renews it;
4. ends the job when every shard is done (succeeded), or as soon as a shard has failed
   ``STYLEGAP_SHARD_MAX_ATTEMPTS`` times (failed, with that shard's error).

Why a pool of take-the-next-shard tasks rather than one task per named shard: a task bound to one shard
cannot pick up another worker's lapsed shard (that shard's message sits unacknowledged in Redis until the
visibility timeout), nor keep its loaded model busy with the next shard; a task that takes "the next
shard" does both, and extra deliveries cost nothing (they find no shard and return).

Any number of deliveries may run the same job at once: items are stored against the database's unique
rules, and every figure (done, tokens) is derived from what is stored, so a redelivered or taken-over shard
never stores an answer twice.
"""

import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from inference_workers.claims import (
    claim_shard,
    claimable,
    complete_shard,
    next_lease_expiry,
    release_shard,
    renew_lease,
    start,
)
from inference_workers.models import JobStatus, Shard, ShardStatus
from inference_workers.reconnect import retry_on_disconnect

logger = logging.getLogger(__name__)

CLOSED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
# How often a worker waiting for the last shards of a job looks for a lapsed lease or a closed job.
POLL_S = 2.0


class JobCancelled(Exception):
    """A cancel was requested: the worker stops, storing none of the batch it was running."""


class JobClosed(Exception):
    """Another worker ended the job (a shard failed for good): this one stops its shard."""


class ShardLost(Exception):
    """This worker's lease lapsed (it was paused) and another worker took the shard over."""


@dataclass(frozen=True)
class ShardedKind:
    """How one kind of job is sharded and run; ``work_on`` does the rest."""

    name: str
    jobs: models.QuerySet
    shard_model: type[Shard]
    # The job's item keys still to store, in a stable order (shards are cut from it).
    pending_keys: Callable[[models.Model], list]
    shard_size: Callable[[], int]
    # Store the shard's missing items; renew() from its heartbeat; raise JobCancelled when cancelled.
    run_shard: Callable[[models.Model, Shard], None]
    finish: Callable[[models.Model, str, str], None]
    # Called when a worker joins the job (after it was marked running).
    on_start: Callable[[models.Model], None] = lambda job: None
    # Makes the worker ready before it claims a shard (loads the job's model): slow work that renews no lease.
    prepare: Callable[[models.Model], None] = lambda job: None
    # Statuses in which a delivery does not start the job (a failed benchmark run resumed in-process may).
    closed: frozenset = CLOSED
    # Errors that fail the job at once, in their own words: retrying the shard cannot help.
    fatal: tuple[type[Exception], ...] = ()


@dataclass
class Holding:
    shard: Shard
    lease_s: float
    jobs: models.QuerySet


_holding: ContextVar[Holding | None] = ContextVar("holding", default=None)


def worker_name() -> str:
    """This worker process: the Celery node name in a task (``gpu@host``), else the host name, and the pid."""
    from celery import current_task

    node = getattr(getattr(current_task, "request", None), "hostname", None) or socket.gethostname()
    return f"{node}/{os.getpid()}"


def lease_seconds() -> float:
    return settings.STYLEGAP_SHARD_LEASE_SECONDS


@contextmanager
def holding(shard: Shard, kind: ShardedKind) -> Iterator[None]:
    token = _holding.set(Holding(shard, lease_seconds(), kind.jobs))
    try:
        yield
    finally:
        _holding.reset(token)


def held_shard() -> Shard | None:
    holding_ = _holding.get()
    return holding_.shard if holding_ else None


@retry_on_disconnect
def renew(**fields) -> None:
    """Renew the lease of the shard this worker holds and write ``fields`` on it (a no-op outside one).

    Raises ShardLost when another worker took the shard over, JobClosed when the job was ended meanwhile."""
    holding_ = _holding.get()
    if holding_ is None:
        return
    if not renew_lease(holding_.shard, holding_.lease_s, **fields):
        raise ShardLost
    if holding_.jobs.filter(pk=holding_.shard.job_id, status__in=CLOSED).exists():
        raise JobClosed


def tasks_for(total: int, size: int) -> int:
    """Deliveries to queue for a job of ``total`` items: one per shard, within STYLEGAP_SHARD_TASKS_MAX."""
    return max(1, min(math.ceil(total / max(size, 1)), settings.STYLEGAP_SHARD_TASKS_MAX))


@retry_on_disconnect
def plan(kind: ShardedKind, job: models.Model) -> int:
    """Cut the job's pending items into shards, unless some shard is still open or running (the job is
    already planned). Returns the number of shards created."""
    shards = kind.shard_model.objects.filter(job_id=job.pk)
    with transaction.atomic():
        kind.jobs.model.objects.select_for_update().filter(pk=job.pk).first()
        if shards.filter(status__in=[ShardStatus.OPEN, ShardStatus.RUNNING]).exists():
            return 0
        keys = kind.pending_keys(job)
        size = max(1, kind.shard_size())
        last = shards.aggregate(last=models.Max("index"))["last"]
        first = 0 if last is None else last + 1
        kind.shard_model.objects.bulk_create(
            kind.shard_model(job_id=job.pk, index=first + n, keys=keys[i : i + size], size=len(keys[i : i + size]))
            for n, i in enumerate(range(0, len(keys), size))
        )
    return math.ceil(len(keys) / size)


@retry_on_disconnect
def job_state(kind: ShardedKind, job: models.Model) -> tuple[str, bool]:
    row = kind.jobs.model.objects.filter(pk=job.pk).values("status").first()
    cancel = kind.jobs.model.objects.filter(pk=job.pk, cancel_requested=True).exists() if has_cancel(kind) else False
    return (row["status"] if row else JobStatus.CANCELLED), cancel


def has_cancel(kind: ShardedKind) -> bool:
    return any(f.name == "cancel_requested" for f in kind.jobs.model._meta.get_fields())


def work_on(kind: ShardedKind, job_id: int, worker: str | None = None, dispatch: str | None = None) -> str:
    """Start the job, run shards until none is left, and end it when all are done. Returns its status as
    this worker leaves it ("skipped" when it was closed or cancelled before this worker started)."""
    job = retry_on_disconnect(start)(kind.jobs, job_id, closed=kind.closed, dispatch=dispatch)
    if job is None:
        return "skipped"
    worker = worker or worker_name()
    kind.on_start(job)
    plan(kind, job)
    shards = kind.shard_model.objects.filter(job_id=job.pk)
    ready = False
    while True:
        status, cancel = job_state(kind, job)
        if status in CLOSED:
            return status
        if cancel:
            kind.finish(job, JobStatus.CANCELLED, "")
            return JobStatus.CANCELLED
        if not ready:
            ready = prepare(kind, job, shards)
        shard = retry_on_disconnect(claim_shard)(shards, worker, lease_seconds(), settings.STYLEGAP_SHARD_MAX_ATTEMPTS)
        if shard is None:
            expiry = retry_on_disconnect(next_lease_expiry)(shards)
            if expiry is None:
                break
            # Others hold the last shards: wait for them, ready to take over one whose lease lapses.
            time.sleep(min(POLL_S, max((expiry - timezone.now()).total_seconds(), 0.05)))
            continue
        if shard.status == ShardStatus.FAILED:
            kind.finish(job, JobStatus.FAILED, failure_message(shard))
            return JobStatus.FAILED
        outcome = run_one(kind, job, shard)
        if outcome is not None:
            return outcome
    return conclude(kind, job)


def prepare(kind: ShardedKind, job: models.Model, shards: models.QuerySet) -> bool:
    """Get ready (load the model) before claiming, once there is a shard to take (a delivery that only waits
    for other workers' shards loads nothing): a claimed shard's lease is renewed only by its progress, so a
    load that outlasted the lease would hand a live worker's shard to another. Returns whether it got ready.
    Best effort: an error here is raised again, and handled as a shard's error, when the shard runs."""
    if not retry_on_disconnect(claimable(shards).exists)():
        return False
    try:
        kind.prepare(job)
    except Exception:
        logger.warning("%s %s: getting ready failed; the shard will try again", kind.name, job.pk, exc_info=True)
    return True


def run_one(kind: ShardedKind, job: models.Model, shard: Shard) -> str | None:
    """Run one claimed shard; the job's final status when this ends it, else None (take the next)."""
    try:
        with holding(shard, kind):
            kind.run_shard(job, shard)
    except JobCancelled:
        kind.finish(job, JobStatus.CANCELLED, "")
        return JobStatus.CANCELLED
    except (ShardLost, JobClosed):
        logger.info("%s %s: shard %s taken from %s", kind.name, job.pk, shard.index, shard.worker)
        return None
    except kind.fatal as exc:
        kind.finish(job, JobStatus.FAILED, str(exc))
        return JobStatus.FAILED
    except Exception as exc:
        logger.exception("%s %s: shard %s failed", kind.name, job.pk, shard.index)
        error = f"{type(exc).__name__}: {exc}"
        if retry_on_disconnect(release_shard)(shard, error, settings.STYLEGAP_SHARD_MAX_ATTEMPTS):
            shard.error = error
            kind.finish(job, JobStatus.FAILED, failure_message(shard))
            return JobStatus.FAILED
        return None
    retry_on_disconnect(complete_shard)(shard)
    return None


def failure_message(shard: Shard) -> str:
    return f"Shard {shard.index} failed {shard.attempts} times; last error: {shard.error}"


@retry_on_disconnect
def conclude(kind: ShardedKind, job: models.Model) -> str:
    """No shard left to take: the job succeeded when all are done (once, under the job's row lock)."""
    with transaction.atomic():
        status = kind.jobs.model.objects.select_for_update().filter(pk=job.pk).values_list("status", flat=True).first()
        if status in CLOSED:
            return status
        if kind.shard_model.objects.filter(job_id=job.pk).exclude(status=ShardStatus.DONE).exists():
            return status  # a shard was reopened meanwhile: its taker ends the job
    kind.finish(job, JobStatus.SUCCEEDED, "")
    return JobStatus.SUCCEEDED


def shard_progress(shards: models.QuerySet) -> dict:
    """What a job's page shows of its shards: how many, done, running, and the workers on it."""
    counts = shards.aggregate(
        total=models.Count("pk"),
        done=models.Count("pk", filter=models.Q(status=ShardStatus.DONE)),
        running=models.Count("pk", filter=models.Q(status=ShardStatus.RUNNING)),
    )
    return {"shards": counts, "workers": workers_on(shards)}


def workers_on(shards: models.QuerySet) -> list[dict]:
    """Who works (or worked) on a job: each worker's running shard (if any), how many shards it finished, and
    how many it lost (it stopped, and another worker took the shard over)."""
    seen: dict[str, dict] = {}

    def entry(worker: str) -> dict:
        return seen.setdefault(worker, {"worker": worker, "running": None, "shards_done": 0, "shards_lost": 0})

    for shard in shards.exclude(worker="").order_by("index"):
        if shard.status == ShardStatus.RUNNING:
            entry(shard.worker)["running"] = shard.index
        elif shard.status == ShardStatus.DONE:
            entry(shard.worker)["shards_done"] += 1
        if shard.previous_worker:
            entry(shard.previous_worker)["shards_lost"] += 1
    return sorted(seen.values(), key=lambda e: (e["running"] is None, e["worker"]))
