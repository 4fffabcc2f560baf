"""Celery wiring for ratings housekeeping."""

from celery import shared_task

from ratings.actions.launch import do_advance_launch, do_advance_launches, schedule_next_look
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


@shared_task(name="ratings.tasks.advance_launch")
def advance_launch(study_id: int) -> dict:
    """One look at a launching study (ratings/actions/launch.py); again in a few seconds while its jobs run."""
    state = do_advance_launch(study_id)
    if state == "waiting":
        schedule_next_look(study_id)
    return {"study": study_id, "state": state}


@shared_task(name="ratings.tasks.advance_launches")
def advance_launches() -> dict:
    """Beat's safety net: every launching study looked at, so a lost message never strands a launch."""
    return {str(k): v for k, v in do_advance_launches().items()}
