"""Riding out a brief database disconnect (a restart, a failover, a terminated backend) in long-running work.

A generation job runs for minutes to hours on one connection. ``retry_on_disconnect`` wraps each of its
database steps: on ``OperationalError`` or ``InterfaceError`` (a closed connection) it closes the broken
connection and runs the step again on a fresh one, after ``STYLEGAP_DB_RETRY_BACKOFF_SECONDS x 2**attempt``
(capped at 30 s), up to ``STYLEGAP_DB_RETRY_ATTEMPTS`` times. Only steps that may run twice are wrapped
(answers are inserted against the unique rule, progress is recomputed from stored answers), and never
inside a transaction: there the whole transaction is what must run again, so the error goes up.
"""

import functools
import logging
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


def retry_on_disconnect(step):
    @functools.wraps(step)
    def wrapper(*args, **kwargs):
        attempts = max(1, settings.STYLEGAP_DB_RETRY_ATTEMPTS)
        for attempt in range(attempts):
            try:
                return step(*args, **kwargs)
            except (OperationalError, InterfaceError) as exc:
                if connection.in_atomic_block or attempt == attempts - 1:
                    raise
                delay = min(settings.STYLEGAP_DB_RETRY_BACKOFF_SECONDS * 2**attempt, MAX_BACKOFF_S)
                logger.warning("%s: database unavailable (%s); retrying in %.1f s", step.__name__, exc, delay)
                connection.close()
                time.sleep(delay)
        raise AssertionError("unreachable")

    return wrapper
