"""A rater's way through a study: arrival, consent, the item they are shown, a pause, completion.

Views call one function per step. The item comes from the assignment engine
(``ratings/engine/assignment.py``), its texts from the one renderer (``ratings/engine/rendering.py``).
"""

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.safestring import SafeString

from ratings.engine import assignment as engine
from ratings.engine.hotpath import rater_by_token
from ratings.engine.locks import lock_assignments
from ratings.engine.rendering import render_model_texts
from ratings.models import Assignment, AssignmentStatus, Rater, Recruitment, Study
from ratings.platforms import Arrival

__all__ = [
    "do_complete",
    "do_consent",
    "do_enter_study",
    "do_invite_raters",
    "do_lease_next",
    "do_pause",
    "failed_qualification",
    "has_open_work",
    "item_html",
    "rater_by_token",
    "rater_progress",
]


def do_enter_study(study: Study, arrival: Arrival, remembered: Rater | None = None) -> Rater | None:
    """The rater behind an arrival: the same platform id (or a remembered session) resumes, else a new one.

    An arrival that names a rater made in advance (an invite) gets that rater, or None when there is none.
    """
    if arrival.rater_token:
        return Rater.objects.filter(study=study, platform=arrival.platform, token=arrival.rater_token).first()
    platform_fields = {
        "platform_study_id": arrival.platform_study_id,
        "platform_session_id": arrival.platform_session_id,
        "platform_submit_to": arrival.platform_submit_to,
    }
    if arrival.external_id:
        rater, created = Rater.objects.get_or_create(
            study=study, platform=arrival.platform, external_id=arrival.external_id, defaults=platform_fields
        )
        changed = {k: v for k, v in platform_fields.items() if v and getattr(rater, k) != v}
        if not created and changed:
            # A new MTurk assignment or Prolific session of the same person: submit to the latest one.
            Rater.objects.filter(pk=rater.pk).update(**changed)
            for k, v in changed.items():
                setattr(rater, k, v)
        return rater
    if remembered is not None and remembered.study_id == study.pk:
        return remembered
    return Rater.objects.create(study=study, platform=arrival.platform)


def do_invite_raters(study: Study, n: int) -> list[Rater]:
    """n invite raters; each one's link carries its opaque token."""
    return Rater.objects.bulk_create([Rater(study=study, platform=Recruitment.INVITE) for _ in range(n)])


def do_consent(rater: Rater, now=None) -> None:
    if rater.consented_at is None:
        rater.consented_at = now or timezone.now()
        Rater.objects.filter(pk=rater.pk, consented_at__isnull=True).update(consented_at=rater.consented_at)


def do_complete(rater: Rater, now=None) -> None:
    if rater.completed_at is None:
        rater.completed_at = now or timezone.now()
        Rater.objects.filter(pk=rater.pk, completed_at__isnull=True).update(completed_at=rater.completed_at)


def do_lease_next(rater: Rater, now: datetime | None = None) -> Assignment | None:
    """The rater's current item, or the next one leased to them (queue order in the engine); None when done."""
    return engine.lease_next_comparison(rater, now)


def do_pause(rater: Rater) -> int:
    """The rater steps away: their open lease goes back to the pool now rather than at its deadline."""
    with transaction.atomic():
        held = lock_assignments(Assignment.objects.filter(rater=rater, status=AssignmentStatus.LEASED))
        return engine.release_leases(held)


def item_html(assignment: Assignment) -> tuple[SafeString, SafeString, SafeString]:
    """(prompt, left answer, right answer) of an item as sanitised HTML, in the order the rater sees them."""
    prompt, a, b = engine.page_texts(assignment)
    left, right = (a, b) if assignment.left_is_a else (b, a)
    prompt_html, left_html, right_html = render_model_texts([prompt, left, right])
    return prompt_html, left_html, right_html


def rater_progress(rater: Rater) -> tuple[int, int]:
    """(votes given, comparisons this rater is asked for)."""
    return engine.rater_progress(rater)


def failed_qualification(study: Study, rater: Rater, n_voted: int) -> bool:
    """Whether the rater finished the qualification round with a wrong answer (and was not reinstated)."""
    return engine.failed_qualification(study, rater, n_voted)


def has_open_work(study: Study, rater: Rater) -> bool:
    """Whether a comparison is still open to this rater."""
    return engine.open_comparisons(study, rater).exists()
