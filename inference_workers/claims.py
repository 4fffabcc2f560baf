"""Claiming resumable work (generation jobs, benchmark runs, judging jobs) and the shards it is split into.

A job is split into shards (``models.Shard``); every delivery of the job's task (there are several: one
per shard, see ``shards.py``) starts the job (``start``: marked running unless it is closed or a cancel
was asked for) and then takes shards one at a time with ``claim_shard``: an open shard, or a running one
whose lease lapsed, under ``SELECT ... FOR UPDATE SKIP LOCKED``, so two workers never wait on nor take
the same shard. The holder renews the lease with its heartbeat (``renew_lease``); a claim is identified by
(worker, claimed_at), so a worker that was paused past its lease and lost the shard finds out at its next
renewal instead of writing over the new holder. ``requeue_stalled`` queues again the running jobs whose
heartbeat stopped (every worker on them died); ``reopen_lapsed_shards`` offers the shards of a dead
worker again within about a minute.
"""

from collections.abc import Callable, Collection
from datetime import timedelta
from typing import TypeVar

from django.db import models, transaction
from django.db.models import Case, Q, When
from django.utils import timezone

from inference_workers.models import JobStatus, Shard, ShardStatus

Row = TypeVar("Row", bound=models.Model)


def start(rows: models.QuerySet, pk: int, *, closed: Collection[str], dispatch: str | None = None) -> Row | None:
    """The row marked running with a fresh heartbeat; None when it is not among ``rows`` (gone, or
    filtered out), its status is in ``closed``, the delivery belongs to an older ``dispatch`` than the
    row's (``celery_task_id``: the broker redelivering a message from before a requeue), or (rows with a
    cancel flag) a cancel was requested, in which case it is marked cancelled.

    Every delivery of the current dispatch may start the row: the shards they claim, not the row, say who
    does what. ``dispatch`` None is an in-process call (a command, a test): it starts any open row."""
    with transaction.atomic():
        row = rows.select_for_update(of=("self",)).filter(pk=pk).first()
        if row is None or row.status in closed:
            return None
        if dispatch and row.celery_task_id and row.celery_task_id != dispatch:
            return None
        now = timezone.now()
        if getattr(row, "cancel_requested", False):
            row.status, row.finished_at = JobStatus.CANCELLED, now
            row.save(update_fields=["status", "finished_at"])
            return None
        fields = ["status", "heartbeat_at"]
        if row.status != JobStatus.RUNNING:
            row.error = ""
            fields.append("error")
        row.status, row.heartbeat_at = JobStatus.RUNNING, now
        row.save(update_fields=fields)
    return row


def requeue_stalled(
    rows: models.QuerySet, stale_after_s: float, queue: Callable[[Row], None], shards: type[Shard] | None = None
) -> list[int]:
    """Mark every running row of ``rows`` whose heartbeat is older than ``stale_after_s`` (its workers died)
    queued, and ``queue(row)`` it again under a fresh task id. Its ``shards`` that were running are offered
    again at once (``reopen_lapsed_shards``): no worker renewed their leases either. Returns the rows' ids."""
    cutoff = timezone.now() - timedelta(seconds=stale_after_s)
    resumed = []
    with transaction.atomic():
        stalled = (
            rows.select_for_update(of=("self",))
            .filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff)
            .order_by("pk")
        )
        for row in stalled:
            row.status, row.heartbeat_at = JobStatus.QUEUED, timezone.now()
            row.save(update_fields=["status", "heartbeat_at"])
            if shards is not None:
                reopen_lapsed_shards(shards.objects.filter(job_id=row.pk), before=cutoff)
            queue(row)
            resumed.append(row.pk)
    return resumed


CLOSED = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


def request_cancel(rows: models.QuerySet, pk: int) -> None:
    """Ask the worker running the row to stop at its next check (``cancel_requested``); a row still queued is
    cancelled at once, a finished one is left as it is."""
    with transaction.atomic():
        row = rows.select_for_update(of=("self",)).get(pk=pk)
        if row.status in CLOSED:
            return
        row.cancel_requested = True
        fields = ["cancel_requested"]
        if row.status == JobStatus.QUEUED:
            row.status, row.finished_at = JobStatus.CANCELLED, timezone.now()
            fields += ["status", "finished_at"]
        row.save(update_fields=fields)


def reopen(
    rows: models.QuerySet, pk: int, queue: Callable[[Row], None], shards: type[Shard] | None = None
) -> Row | None:
    """Mark a failed or cancelled row queued again and ``queue(row)`` it (it resumes with what is missing);
    None, with nothing changed, when the row is in any other state. Its ``shards`` that are not done are
    dropped: the first worker cuts new ones from the items still missing, with fresh attempts."""
    with transaction.atomic():
        row = rows.select_for_update(of=("self",)).get(pk=pk)
        if row.status not in {JobStatus.FAILED, JobStatus.CANCELLED}:
            return None
        row.status, row.cancel_requested, row.error, row.finished_at = JobStatus.QUEUED, False, "", None
        row.save(update_fields=["status", "cancel_requested", "error", "finished_at"])
        if shards is not None:
            drop_unfinished_shards(shards, row.pk)
        queue(row)
    return row


def drop_unfinished_shards(shards: type[Shard], job_id: int) -> None:
    shards.objects.filter(job_id=job_id).exclude(status=ShardStatus.DONE).delete()


# --- Shards ---------------------------------------------------------------------------------------------


def claimable(shards: models.QuerySet, now=None) -> models.QuerySet:
    """The shards of ``shards`` a worker may take now: open, or running under a lapsed lease."""
    now = now or timezone.now()
    return shards.filter(Q(status=ShardStatus.OPEN) | Q(status=ShardStatus.RUNNING, lease_expires_at__lt=now))


def claim_shard(shards: models.QuerySet, worker: str, lease_s: float, max_attempts: int) -> Shard | None:
    """The next shard of ``shards`` for ``worker``, marked running under a lease of ``lease_s``; None when
    every shard is done, failed, or held under a live lease.

    Order: a running shard whose lease lapsed first (its worker died; it has waited longest), then fewest
    attempts (a shard that just failed goes behind fresh ones), then by index. A lapsed shard is taken
    over, its last holder and heartbeat kept in ``previous_*``. A shard
    that has had ``max_attempts`` claims is marked failed instead and returned as such: its job fails.
    """
    now = timezone.now()
    with transaction.atomic():
        shard = (
            claimable(shards.select_for_update(skip_locked=True), now)
            .order_by(Case(When(status=ShardStatus.RUNNING, then=0), default=1), "attempts", "index")
            .first()
        )
        if shard is None:
            return None
        if shard.status == ShardStatus.RUNNING:
            shard.previous_worker, shard.previous_heartbeat_at = shard.worker, shard.heartbeat_at
        if shard.attempts >= max_attempts:
            shard.status, shard.finished_at, shard.lease_expires_at = ShardStatus.FAILED, now, None
            shard.error = shard.error or f"its worker stopped (lease lapsed) on each of {shard.attempts} attempts"
            shard.save()
            return shard
        shard.status, shard.attempts, shard.worker = ShardStatus.RUNNING, shard.attempts + 1, worker
        shard.claimed_at = shard.heartbeat_at = now
        shard.lease_expires_at = now + timedelta(seconds=lease_s)
        shard.items_per_second, shard.finished_at = None, None
        shard.save()
    return shard


def held(shard: Shard) -> models.QuerySet:
    """The shard's row while this claim of it still holds (same worker, same claim time, still running)."""
    return type(shard).objects.filter(
        pk=shard.pk, status=ShardStatus.RUNNING, worker=shard.worker, claimed_at=shard.claimed_at
    )


def renew_lease(shard: Shard, lease_s: float, **fields) -> bool:
    """Write the heartbeat and ``fields`` and extend the lease by ``lease_s``; False when the claim was lost
    (the lease lapsed and another worker took the shard over)."""
    now = timezone.now()
    return held(shard).update(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease_s), **fields) == 1


def complete_shard(shard: Shard, **fields) -> bool:
    """Mark the shard done; False when the claim was lost meanwhile."""
    now = timezone.now()
    return held(shard).update(status=ShardStatus.DONE, finished_at=now, heartbeat_at=now, error="", **fields) == 1


def release_shard(shard: Shard, error: str, max_attempts: int) -> bool:
    """After a failed attempt: the shard open again for the next claim, or failed once it has had
    ``max_attempts`` claims. Returns True when it failed."""
    failed = shard.attempts >= max_attempts
    held(shard).update(
        status=ShardStatus.FAILED if failed else ShardStatus.OPEN,
        error=error[:5000],
        lease_expires_at=None,
        finished_at=timezone.now() if failed else None,
    )
    return failed


def next_lease_expiry(shards: models.QuerySet):
    """When the earliest live lease among ``shards`` ends; None when none is running."""
    running = shards.filter(status=ShardStatus.RUNNING).order_by("lease_expires_at")
    return running.values_list("lease_expires_at", flat=True).first()


def reoffer_lapsed_shards(shards: models.QuerySet, jobs: models.QuerySet, queue: Callable[[Row], None]) -> list[int]:
    """Reopen the lapsed shards of running jobs (``reopen_lapsed_shards``) and ``queue(job)`` a delivery for
    each of their jobs, read from ``jobs``. Returns the jobs' ids."""
    job_ids = reopen_lapsed_shards(shards.filter(job__status=JobStatus.RUNNING))
    for job in jobs.filter(pk__in=job_ids):
        queue(job)
    return job_ids


def reopen_lapsed_shards(shards: models.QuerySet, before=None) -> list[int]:
    """Mark open the running shards of ``shards`` whose lease lapsed (or, with ``before``, whose heartbeat is
    older than it), keeping their last holder in ``previous_*``. Returns the ids of their jobs."""
    now = timezone.now()
    lapsed = Q(lease_expires_at__lt=now) if before is None else Q(heartbeat_at__lt=before) | Q(lease_expires_at__lt=now)
    jobs = set()
    with transaction.atomic():
        for shard in shards.select_for_update(skip_locked=True).filter(lapsed, status=ShardStatus.RUNNING):
            shard.previous_worker, shard.previous_heartbeat_at = shard.worker, shard.heartbeat_at
            shard.status, shard.lease_expires_at = ShardStatus.OPEN, None
            shard.save(update_fields=["previous_worker", "previous_heartbeat_at", "status", "lease_expires_at"])
            jobs.add(shard.job_id)
    return sorted(jobs)
