"""Votes: a rater's judgement on an item, taken once; and leases that ran out going back to the pool."""

from django.db import transaction
from django.utils import timezone

from ratings.actions.quality import do_apply_qualification_rule
from ratings.engine.assignment import VoteOutcome, record_vote, release_leases
from ratings.engine.locks import lock_assignments
from ratings.models import Assignment, AssignmentStatus, Rater, StudyStatus
from ratings.modes import Judgement, mode_for
from ratings.modes.preference import CHOICES, side_to_answer

__all__ = ["CHOICES", "VoteOutcome", "do_record_vote", "do_release_expired_leases", "do_submit"]


def do_record_vote(
    rater: Rater, assignment_token: str, choice: str, answers=None, reason: str = "", now=None, verdicts=None
) -> VoteOutcome:
    """Take a rater's vote on one of their assignments, once.

    ``choice`` is what the rater clicked (left, right, tie, both_bad); the vote stores it as A / B.
    A fact-check vote passes ``verdicts`` (left, right as shown) and no choice; the study's mode
    (``ratings/modes/``) turns either into the vote's fields, and refuses an invalid one (ValueError).
    A second submission of the same assignment records nothing (ALREADY_RECORDED). A vote whose
    lease already returned to the pool is still taken when the comparison is short of k (or is gold),
    else refused (COMPARISON_FULL), as is one past the rater's quota (OVER_QUOTA). A study that is not
    open takes no vote (STUDY_CLOSED). The comparison's vote and claim counts change in the same transaction.
    """
    study = rater.study
    if study.status != StudyStatus.OPEN:
        return VoteOutcome.STUDY_CLOSED
    mode = mode_for(study)
    judgement = Judgement(choice=choice, verdicts=verdicts, answers=answers or {}, reason=reason)
    mode.vote_fields(judgement, True)  # refuse an invalid judgement before touching anything
    now = now or timezone.now()
    return record_vote(
        rater,
        assignment_token,
        lambda left_is_a: {
            **mode.vote_fields(judgement, left_is_a),
            "answers": {key: side_to_answer(value, left_is_a) for key, value in judgement.answers.items() if value},
            "reason": reason.strip()[:5000],
        },
        now,
    )


def do_release_expired_leases(now=None) -> int:
    """Return leases past their deadline to the pool. Returns how many were released."""
    now = now or timezone.now()
    with transaction.atomic():
        # A lease whose vote is being written right now is skipped: that vote decides its fate.
        expired = Assignment.objects.filter(status=AssignmentStatus.LEASED, lease_expires_at__lte=now)
        return release_leases(lock_assignments(expired, skip_locked=True))


def do_submit(rater: Rater, assignment_token: str, judgement: Judgement) -> VoteOutcome:
    """The rating page's form, read by the study's mode: record the vote, then apply the qualification rule."""
    outcome = do_record_vote(
        rater, assignment_token, judgement.choice, judgement.answers, judgement.reason, verdicts=judgement.verdicts
    )
    if outcome == VoteOutcome.RECORDED:
        do_apply_qualification_rule(rater)
    return outcome
