"""Celery wiring for ratings housekeeping."""

from celery import shared_task

from ratings.actions import do_release_expired_leases


@shared_task(name="ratings.tasks.release_expired_leases")
def release_expired_leases() -> dict:
    return {"released": do_release_expired_leases()}
