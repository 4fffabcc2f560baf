"""Sending a row's task once its transaction commits, and sending again what the broker never took.

A generation job, a benchmark run or a model awaiting validation is committed with ``unsent_since`` set;
after the commit its task is sent, and once the broker has taken the message ``unsent_since`` is cleared.
When the broker is unreachable the send fails without failing the request: the row says so where its page
shows news (``BROKER_DOWN``), and the beat task ``resend_unsent`` sends it again once the broker answers.
A row whose message the broker took is never sent twice: a second message would send it to the back of
its queue, behind work queued after it, each time beat ran.
"""

import logging
from collections.abc import Callable
from datetime import timedelta

from celery import current_app
from django.db import models, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

BROKER_DOWN = "Queued; the broker is unreachable, will retry."


def send_on_commit(row: models.Model, note_field: str, task: str, args: tuple, copies: int = 1, **options) -> None:
    """Mark ``row`` unsent now, and send ``task`` after commit (``copies`` deliveries of it: the first under
    ``options``' task id, the others under their own, for a job many workers share); on failure write
    ``BROKER_DOWN`` to ``note_field`` (the field its page shows) and leave it for ``resend_unsent``."""
    rows = type(row).objects.filter(pk=row.pk)
    now = timezone.now()
    rows.update(unsent_since=now)
    row.unsent_since = now

    def send() -> None:
        try:
            current_app.send_task(task, args, **options)
            others = {k: v for k, v in options.items() if k != "task_id"}
            for _ in range(copies - 1):
                current_app.send_task(task, args, **others)
        except Exception:
            logger.warning("the broker is unreachable: %s %s waits for resend_unsent", type(row).__name__, row.pk)
            rows.filter(unsent_since=now).update(**{note_field: BROKER_DOWN})
            return
        rows.filter(unsent_since=now).update(unsent_since=None)
        rows.filter(**{note_field: BROKER_DOWN}).update(**{note_field: ""})

    transaction.on_commit(send)


def resend_unsent(rows: models.QuerySet, grace_s: float, queue: Callable[[models.Model], None]) -> list[int]:
    """``queue(row)`` again for every row of ``rows`` (filtered to those still waiting) whose message has
    not reached the broker for ``grace_s`` seconds. Returns their ids."""
    cutoff = timezone.now() - timedelta(seconds=grace_s)
    sent = []
    with transaction.atomic():
        for row in rows.select_for_update(of=("self",)).filter(unsent_since__lte=cutoff).order_by("pk"):
            queue(row)
            sent.append(row.pk)
    return sent
