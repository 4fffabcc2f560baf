"""Waiting for the worker's analysis snapshots."""

import time

from ratings.models import AnalysisSnapshot


def wait_for_snapshots(study, count: int = 1, key: str = "analysis", timeout: float = 600) -> int:
    """Wait until the study has ``count`` snapshots under ``key`` (or the timeout passes); returns how many.

    The wait ends as soon as they are there; the ceiling is generous because the session's one worker may still be
    finishing an earlier test's task on a busy machine."""
    deadline = time.monotonic() + timeout
    while (n := AnalysisSnapshot.objects.filter(study=study, key=key).count()) < count and time.monotonic() < deadline:
        time.sleep(0.3)
    return n
