"""Celery wiring for judges; the work lives in jobs.py and actions.py.

A judging job is sent by name to its judge model's queue (``gpu`` for a local model, ``api`` for an API one).
"""

from celery import shared_task
from django.conf import settings

from judges.actions import do_resume_stalled_judging_jobs
from judges.jobs import run_judging_job as run


@shared_task(bind=True, name="judges.tasks.run_judging_job")
def run_judging_job(self, job_id: int) -> str:
    return run(job_id, self.request.id)


@shared_task(name="judges.tasks.resume_stalled_judging_jobs")
def resume_stalled_judging_jobs() -> dict:
    """Judging jobs whose worker died: queued again (beat, every few minutes)."""
    return {"judging_jobs": do_resume_stalled_judging_jobs(settings.STYLEGAP_JOB_STALE_AFTER_SECONDS)}
