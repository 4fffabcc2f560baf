"""Claiming resumable work (generation jobs, benchmark runs): one delivery of one task runs it at a time.

Each queueing records a fresh Celery task id on the row. A delivery claims the row under a row lock
(``select_for_update``); a delivery of another task (the broker redelivering an older message after a
requeue) steps aside, and so does any delivery once the row is closed. A claimed row is marked running
with a heartbeat; ``requeue_stalled`` queues again the running rows whose heartbeat stopped.
"""

from collections.abc import Callable, Collection
from datetime import timedelta
from typing import TypeVar

from django.db import models, transaction
from django.utils import timezone

from inference_workers.models import JobStatus

Row = TypeVar("Row", bound=models.Model)


def claim(rows: models.QuerySet, pk: int, task_id: str | None, *, closed: Collection[str]) -> Row | None:
    """The row marked running for this delivery; None when it is not among ``rows`` (gone, or filtered
    out), its status is in ``closed``, another task owns it, or (rows with a cancel flag) a cancel was
    requested, in which case it is marked cancelled.

    ``task_id`` None is an in-process call (a command, a test): it claims any open row.
    """
    with transaction.atomic():
        row = rows.select_for_update(of=("self",)).filter(pk=pk).first()
        if row is None or row.status in closed:
            return None
        if task_id and row.celery_task_id and row.celery_task_id != task_id:
            return None
        now = timezone.now()
        if getattr(row, "cancel_requested", False):
            row.status, row.finished_at = JobStatus.CANCELLED, now
            row.save(update_fields=["status", "finished_at"])
            return None
        row.status, row.heartbeat_at, row.error = JobStatus.RUNNING, now, ""
        row.save(update_fields=["status", "heartbeat_at", "error"])
    return row


def requeue_stalled(rows: models.QuerySet, stale_after_s: float, queue: Callable[[Row], None]) -> list[int]:
    """Mark every running row of ``rows`` whose heartbeat is older than ``stale_after_s`` (its worker died)
    queued, and ``queue(row)`` it again under a fresh task id. Returns their ids."""
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


def reopen(rows: models.QuerySet, pk: int, queue: Callable[[Row], None]) -> Row | None:
    """Mark a failed or cancelled row queued again and ``queue(row)`` it (it resumes with what is missing);
    None, with nothing changed, when the row is in any other state."""
    with transaction.atomic():
        row = rows.select_for_update(of=("self",)).get(pk=pk)
        if row.status not in {JobStatus.FAILED, JobStatus.CANCELLED}:
            return None
        row.status, row.cancel_requested, row.error, row.finished_at = JobStatus.QUEUED, False, "", None
        row.save(update_fields=["status", "cancel_requested", "error", "finished_at"])
        queue(row)
    return row
