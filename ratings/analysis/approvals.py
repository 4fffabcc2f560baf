"""After a study: who to approve and who to reject on the crowd platform, and why, from the quality rules.

A rater who finished (reached the completion page) is rejected when they are excluded (by a rule when
it fired, by a researcher, or by the qualification round), or when a study rule would exclude them now
(``ratings.analysis.quality.exclusion_reason``) and no researcher has reinstated them; everyone else who
finished is approved. Raters who never finished submitted nothing to pay, and are not listed. Reading
this changes nothing: exclusions themselves change only through ``ratings/actions/quality.py``.

Files, in the formats the platforms take for bulk actions:

- Prolific: the participant IDs to approve, one a line (Prolific's "bulk approve" box), and those to
  reject with the reason (Prolific asks for one per rejection);
- MTurk: the batch results CSV's identifying columns with ``Approve`` ("x") or ``Reject`` (the reason)
  filled, as the requester site's "upload CSV" for reviewing results expects.
"""

from dataclasses import dataclass

from ratings.analysis.exports import to_csv
from ratings.analysis.quality import exclusion_reason, study_quality
from ratings.models import Rater, Study


@dataclass(frozen=True)
class Decision:
    rater: Rater
    approve: bool
    reason: str = ""  # why a rejection


def decisions(study: Study) -> list[Decision]:
    """One decision per rater who finished, in the order they arrived."""
    quality = {q.rater_id: q for q in study_quality(study)}
    out = []
    for rater in study.raters.filter(completed_at__isnull=False).order_by("pk"):
        reason = (rater.exclusion_reason or "Excluded from the analysis.") if rater.excluded else ""
        q = quality.get(rater.pk)
        if not reason and not rater.exclusion_overridden and q is not None:
            reason = exclusion_reason(q, study.exclude_after_failed_checks, study.exclude_below_median_seconds)
        out.append(Decision(rater, approve=not reason, reason=reason))
    return out


def prolific_approve_ids(rows: list[Decision]) -> str:
    """Participant IDs to approve, one a line."""
    return "".join(f"{d.rater.external_id}\n" for d in rows if d.approve and d.rater.external_id)


def prolific_rejections_csv(rows: list[Decision]) -> str:
    return to_csv(
        [["participant_id", "reason"]]
        + [[d.rater.external_id, d.reason] for d in rows if not d.approve and d.rater.external_id]
    )


MTURK_COLUMNS = ["HITId", "AssignmentId", "WorkerId", "Approve", "Reject"]


def mturk_batch_results_csv(rows: list[Decision]) -> str:
    """MTurk's batch results columns: "x" under Approve, or the reason under Reject (one of the two per row)."""
    body = [
        [
            d.rater.platform_study_id,
            d.rater.platform_session_id,
            d.rater.external_id,
            "x" if d.approve else "",
            d.reason,
        ]
        for d in rows
        if d.rater.external_id
    ]
    return to_csv([MTURK_COLUMNS, *body])
