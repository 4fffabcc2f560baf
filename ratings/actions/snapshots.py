"""Computing and storing a study's analysis snapshots (all raters, and trusted raters only)."""

import time

from django.db import transaction

from ratings.analysis.payload import analyse, extension_results, substance_scores, trusted_subset
from ratings.analysis.snapshots import SNAPSHOTS_KEPT
from ratings.analysis.votes import study_votes
from ratings.models import AnalysisSnapshot, Study, Vote
from ratings.modes import mode_for


def do_compute_snapshots(study: Study) -> list[AnalysisSnapshot]:
    """Compute and store the study's analysis (all raters, and trusted raters only)."""
    snapshots = []
    total = Vote.objects.filter(comparison__study=study).count()
    table = study_votes(study)
    reference = study.reference_model.name if study.reference_model_id else None
    variants = {"analysis": table, "analysis:trusted": trusted_subset(table) if table.n_votes else table}
    mode = mode_for(study)
    extra = None
    if mode.results_key:
        # A mode's own results (a fact-check study's verdicts) are not filtered by Dawid-Skene trust:
        # both variants carry the same.
        names = list(study.language_models.values_list("name", flat=True))
        extra = mode.results(study, substance_scores(names))
    extensions = extension_results(study)  # other apps' results (LLM judges): the same in both variants
    results = {}
    for key, subset in variants.items():
        t0 = time.perf_counter()
        payload = analyse(subset, reference, study.follow_up_questions or [])
        payload["variant"] = "trusted raters only" if key.endswith(":trusted") else "all raters (excluded left out)"
        payload["n_votes_total"] = total
        payload.update(extensions)
        n_votes = subset.n_votes
        if extra is not None:
            payload[mode.results_key] = extra
            n_votes += extra["n_votes"]
        results[key] = (payload, n_votes, time.perf_counter() - t0)
    with transaction.atomic():
        for key, (payload, n_votes, seconds) in results.items():
            snapshots.append(
                AnalysisSnapshot.objects.create(
                    study=study, key=key, payload=payload, n_votes=n_votes, compute_seconds=seconds
                )
            )
            stale = AnalysisSnapshot.objects.filter(study=study, key=key).order_by("-computed_at", "-pk")
            AnalysisSnapshot.objects.filter(pk__in=list(stale.values_list("pk", flat=True)[SNAPSHOTS_KEPT:])).delete()
    return snapshots
