"""Celery wiring for judges; the work lives in jobs.py and actions.py.

A judging job is sent by name to its judge model's queue (``gpu`` for a local model, ``api`` for an API one).
"""

from celery import shared_task
from django.conf import settings

from judges.actions import do_reoffer_lapsed_judging_shards, do_resume_stalled_judging_jobs
from judges.jobs import run_judging_job as run


@shared_task(name="judges.tasks.run_judging_job")
def run_judging_job(job_id: int, dispatch: str | None = None) -> str:
    """One of the job's deliveries (one per shard): takes its shards beside the other workers."""
    return run(job_id, dispatch)


@shared_task(name="judges.tasks.resume_stalled_judging_jobs")
def resume_stalled_judging_jobs() -> dict:
    """Judging jobs whose worker died: queued again (beat, every few minutes)."""
    return {"judging_jobs": do_resume_stalled_judging_jobs(settings.STYLEGAP_JOB_STALE_AFTER_SECONDS)}


@shared_task(name="judges.tasks.reoffer_lapsed_judging_shards")
def reoffer_lapsed_judging_shards() -> dict:
    """Shards whose worker died (lease lapsed): open again, with a delivery of their job (beat, every 30 s)."""
    return {"judging_jobs": do_reoffer_lapsed_judging_shards()}
