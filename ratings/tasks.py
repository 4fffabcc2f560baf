"""Celery wiring for ratings housekeeping."""

from celery import shared_task

from ratings.actions.snapshots import do_compute_snapshots
from ratings.actions.studies import do_create_comparisons
from ratings.actions.votes import do_release_expired_leases
from ratings.analysis.snapshots import studies_needing_snapshots
from ratings.models import Study


@shared_task(name="ratings.tasks.create_comparisons")
def create_comparisons(study_id: int) -> dict:
    """The study's comparisons from its models' answers, with their pages' texts rendered (admin action)."""
    return {"study": study_id, "created": do_create_comparisons(Study.objects.get(pk=study_id))}


@shared_task(name="ratings.tasks.release_expired_leases")
def release_expired_leases() -> dict:
    return {"released": do_release_expired_leases()}


@shared_task(name="ratings.tasks.compute_analysis_snapshots")
def compute_analysis_snapshots(study_id: int) -> dict:
    snaps = do_compute_snapshots(Study.objects.get(pk=study_id))
    return {"study": study_id, "snapshots": [s.pk for s in snaps], "n_votes": snaps[0].n_votes}


@shared_task(name="ratings.tasks.refresh_analysis_snapshots")
def refresh_analysis_snapshots() -> dict:
    studies = studies_needing_snapshots()
    for study in studies:
        do_compute_snapshots(study)
    return {"refreshed": [s.slug for s in studies]}
