"""Celery wiring for the inference workers; the work itself lives in plain functions.

A generation job is sent by its backend's task name to its backend's queue (actions.py), one delivery per
shard (shards.py); a job may name its own queue, which wins. Routes (webapp/settings.py): ``generate_*``
to ``gpu``, ``call_api_*`` to ``api``, the rest to ``default``.
"""

from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings

from inference_workers import jobs
from inference_workers.actions import (
    do_compute_style_features,
    do_reoffer_lapsed_generation_shards,
    do_resend_unsent_jobs,
    do_resend_unsent_validations,
    do_resume_stalled_jobs,
    do_validate_model,
)
from inference_workers.sources.resumable import do_delete_expired_uploads
from inference_workers.substance.actions import (
    do_reoffer_lapsed_benchmark_shards,
    do_resend_unsent_benchmark_runs,
    do_resume_stalled_benchmark_runs,
)


@worker_process_init.connect
def limit_torch_threads(**kwargs) -> None:
    """Several workers on one machine share its cores: each uses STYLEGAP_TORCH_THREADS threads when set."""
    if settings.STYLEGAP_TORCH_THREADS > 0:
        import torch

        torch.set_num_threads(settings.STYLEGAP_TORCH_THREADS)


@shared_task(name="inference_workers.tasks.compute_style_features")
def compute_style_features(response_ids: list[int] | None = None, only_missing: bool = False) -> dict:
    updated = do_compute_style_features(response_ids, only_missing=only_missing)
    return {"updated": updated}


@shared_task(name="inference_workers.tasks.validate_model")
def validate_model(model_id: int) -> str:
    return do_validate_model(model_id)


def work_on_generation(job_id: int, dispatch: str | None) -> str:
    """Take the job's shards beside the other workers; then, while this process holds the model loaded, the
    shards of other jobs of that model on the same queue."""
    status = jobs.run_job(job_id, dispatch=dispatch)
    while (job_id := jobs.next_job_for_loaded_model(job_id)) is not None:
        jobs.run_job(job_id)
    return status


@shared_task(name="inference_workers.tasks.run_generation_job")
def run_generation_job(job_id: int, dispatch: str | None = None) -> str:
    return work_on_generation(job_id, dispatch)


# The built-in backends' own names for the same task (backends/*.py ``task``): routes and queued messages use them.
@shared_task(name="inference_workers.tasks.generate_local_job")
def generate_local_job(job_id: int, dispatch: str | None = None) -> str:
    return work_on_generation(job_id, dispatch)


@shared_task(name="inference_workers.tasks.call_api_job")
def call_api_job(job_id: int, dispatch: str | None = None) -> str:
    return work_on_generation(job_id, dispatch)


@shared_task(name="inference_workers.tasks.import_outputs_job")
def import_outputs_job(job_id: int, dispatch: str | None = None) -> str:
    return work_on_generation(job_id, dispatch)


@shared_task(name="inference_workers.tasks.resume_stalled_jobs")
def resume_stalled_jobs() -> dict:
    """Generation jobs and benchmark runs whose worker died: queued again (beat, every few minutes)."""
    stale = settings.STYLEGAP_JOB_STALE_AFTER_SECONDS
    return {"generation_jobs": do_resume_stalled_jobs(stale), "benchmark_runs": do_resume_stalled_benchmark_runs(stale)}


@shared_task(name="inference_workers.tasks.resend_unsent")
def resend_unsent() -> dict:
    """Jobs, benchmark runs and validations whose message never reached the broker (it was down when they
    were committed): sent again (beat, every minute), once ``STYLEGAP_RESEND_UNSENT_AFTER_SECONDS`` passed."""
    grace = settings.STYLEGAP_RESEND_UNSENT_AFTER_SECONDS
    return {
        "generation_jobs": do_resend_unsent_jobs(grace),
        "benchmark_runs": do_resend_unsent_benchmark_runs(grace),
        "models": do_resend_unsent_validations(grace),
    }


@shared_task(name="inference_workers.tasks.delete_expired_uploads")
def delete_expired_uploads() -> int:
    """Unfinished resumable checkpoint uploads past their expiry, with their partial files (beat, hourly)."""
    return do_delete_expired_uploads()


@shared_task(name="inference_workers.tasks.reoffer_lapsed_shards")
def reoffer_lapsed_shards() -> dict:
    """Shards whose worker died (lease lapsed): open again, with a delivery of their job (beat, every 30 s);
    judges.tasks does the same for judging jobs."""
    return {
        "generation_jobs": do_reoffer_lapsed_generation_shards(),
        "benchmark_runs": do_reoffer_lapsed_benchmark_shards(),
    }
