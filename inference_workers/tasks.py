"""Celery wiring for the inference workers; the work itself lives in plain functions."""

from celery import shared_task

from inference_workers.actions import do_compute_style_features


@shared_task(name="inference_workers.tasks.compute_style_features")
def compute_style_features(response_ids: list[int] | None = None, only_missing: bool = False) -> dict:
    updated = do_compute_style_features(response_ids, only_missing=only_missing)
    return {"updated": updated}
