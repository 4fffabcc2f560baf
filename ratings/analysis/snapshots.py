"""Reading analysis snapshots: a study's newest one, and which studies need a new one.

Snapshots are written by ``ratings.actions.snapshots.do_compute_snapshots`` (a Celery task, the beat's
refresh or the ``compute_snapshots`` command); pages read them and never compute on request.
"""

from django.db.models import Count

from ratings.models import AnalysisSnapshot, Study, Vote

SNAPSHOT_KEYS = ("analysis", "analysis:trusted")
# Older snapshots are history nobody reads; keep a few per study and key.
SNAPSHOTS_KEPT = 5


def latest_snapshot(study: Study, key: str = "analysis") -> AnalysisSnapshot | None:
    return AnalysisSnapshot.objects.filter(study=study, key=key).order_by("-computed_at", "-pk").first()


def studies_needing_snapshots() -> list[Study]:
    """Studies whose votes changed since their newest snapshot (or that have none).

    Changed: the total number of votes, or the number analysed (an exclusion changes only the latter).
    """
    per_study = Vote.objects.values("comparison__study_id")
    total = dict(per_study.annotate(n=Count("id")).values_list("comparison__study_id", "n"))
    # What a snapshot analyses: no attention checks, no excluded raters.
    analysed = dict(
        per_study.filter(comparison__is_gold=False)
        .exclude(rater__excluded=True)
        .annotate(n=Count("id"))
        .values_list("comparison__study_id", "n")
    )
    out = []
    for study in Study.objects.filter(pk__in=total).order_by("pk"):
        snap = latest_snapshot(study)
        if snap is None or (snap.payload.get("n_votes_total"), snap.n_votes) != (
            total[study.pk],
            analysed.get(study.pk, 0),
        ):
            out.append(study)
    return out
