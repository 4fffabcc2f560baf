"""Excluding raters from analysis (their votes stay), by a researcher or by the study's rules.

A researcher's word is final: once they reinstate a rater (``exclusion_overridden``), no automatic
rule (attention checks, speed, the qualification round) excludes that rater again. Exclusion changes
happen only here, called from POST handlers, admin actions and tasks, never from a page view.
"""

from ratings.analysis.quality import exclusion_reason, study_quality
from ratings.engine.assignment import failed_qualification
from ratings.models import AssignmentStatus, Rater, Study

QUALIFICATION_FAILED = "Did not pass the qualification round."


def do_exclude_rater(rater: Rater, reason: str) -> None:
    """A researcher leaves a rater's votes out of analysis; the votes themselves stay."""
    Rater.objects.filter(pk=rater.pk).update(excluded=True, exclusion_reason=reason[:300], exclusion_overridden=False)
    rater.excluded, rater.exclusion_reason, rater.exclusion_overridden = True, reason[:300], False


def do_reinstate_rater(rater: Rater) -> None:
    """Undo an exclusion; the automatic rules will not exclude this rater again."""
    Rater.objects.filter(pk=rater.pk).update(excluded=False, exclusion_reason="", exclusion_overridden=True)
    rater.excluded, rater.exclusion_reason, rater.exclusion_overridden = False, "", True


def _exclude_by_rule(rater: Rater, reason: str) -> bool:
    """Exclude unless a researcher reinstated the rater (checked in the same UPDATE). Whether it did."""
    changed = Rater.objects.filter(pk=rater.pk, exclusion_overridden=False, excluded=False).update(
        excluded=True, exclusion_reason=reason[:300]
    )
    if changed:
        rater.excluded, rater.exclusion_reason = True, reason[:300]
    return bool(changed)


def do_apply_exclusion_rules(study: Study) -> int:
    """Exclude every rater a study rule fires on, except those a researcher reinstated. Returns how many."""
    excluded = 0
    candidates = {r.pk: r for r in study.raters.filter(excluded=False, exclusion_overridden=False)}
    for quality in study_quality(study):
        rater = candidates.get(quality.rater_id)
        if rater is None:
            continue
        reason = exclusion_reason(quality, study.exclude_after_failed_checks, study.exclude_below_median_seconds)
        if reason and _exclude_by_rule(rater, reason):
            excluded += 1
    return excluded


def do_set_exclusion_rules(study: Study, exclude_after_failed_checks: int, exclude_below_median_seconds: float) -> int:
    """Save the study's two exclusion rules and apply them now. Returns how many raters they excluded."""
    study.exclude_after_failed_checks = exclude_after_failed_checks
    study.exclude_below_median_seconds = exclude_below_median_seconds
    study.save(update_fields=["exclude_after_failed_checks", "exclude_below_median_seconds"])
    return do_apply_exclusion_rules(study)


def do_apply_qualification_rule(rater: Rater) -> bool:
    """After a vote: exclude a rater who has just failed the qualification round. Whether it did."""
    study = rater.study
    if not study.qualification_items or rater.excluded or rater.exclusion_overridden:
        return False
    n_voted = rater.assignments.filter(status=AssignmentStatus.VOTED).count()
    if not failed_qualification(study, rater, n_voted):
        return False
    return _exclude_by_rule(rater, QUALIFICATION_FAILED)
