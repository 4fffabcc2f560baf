"""A rater's way through a study: arrival, consent, the item they are shown, a pause, completion.

Views call one function per step. The item comes from the assignment engine
(``ratings/engine/assignment.py``), its texts from the one renderer (``ratings/engine/rendering.py``).
"""

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.safestring import SafeString

from ratings.engine import assignment as engine
from ratings.engine.hotpath import rater_by_token
from ratings.engine.locks import lock_assignments
from ratings.engine.rendering import render_model_texts
from ratings.models import Assignment, AssignmentStatus, Rater, Recruitment, Study
from ratings.platforms import Arrival

__all__ = [
    "NewRatersCapped",
    "address_hash",
    "do_complete",
    "do_consent",
    "do_enter_study",
    "do_extend_lease",
    "do_invite_raters",
    "do_lease_next",
    "do_pause",
    "failed_qualification",
    "has_open_work",
    "is_finished",
    "quota_given",
    "item_html",
    "rater_by_token",
    "rater_progress",
]


@dataclass
class NewRatersCapped(Exception):
    """Too many new raters in the last minute, from this address or for this study: come back later."""

    retry_after: int
    per: str  # "address" or "study"


def address_hash(address: str) -> str:
    """A keyed hash of a client address (HMAC with SECRET_KEY): what the caps and the admin read, never the address."""
    return hmac.new(settings.SECRET_KEY.encode(), f"rater-address:{address}".encode(), hashlib.sha256).hexdigest()[:32]


def _check_new_rater_caps(study: Study, ip_hash: str, now: datetime) -> None:
    """Refuse a new rater past the per-address or per-study cap of new raters per minute.

    Runs with the study's row locked, so concurrent arrivals of one study are counted one after another.
    """
    since = now - timedelta(seconds=60)
    arrivals = Rater.objects.filter(created_at__gt=since).exclude(ip_hash="")
    for per, cap, rows in (
        ("address", settings.RATER_NEW_PER_IP_PER_MINUTE, arrivals.filter(ip_hash=ip_hash)),
        ("study", settings.RATER_NEW_PER_STUDY_PER_MINUTE, arrivals.filter(study=study)),
    ):
        if cap <= 0 or (per == "address" and not ip_hash):
            continue
        recent = list(rows.order_by("-created_at").values_list("created_at", flat=True)[:cap])
        if len(recent) >= cap:
            # Room again when the oldest of the last ``cap`` arrivals is a minute old.
            raise NewRatersCapped(max(1, int((recent[-1] - since).total_seconds()) + 1), per)


def _new_rater(study: Study, ip_hash: str, now: datetime, **fields) -> Rater:
    """A new rater, within the caps (raises NewRatersCapped)."""
    # New raters of one study are counted one after another (FOR NO KEY UPDATE: votes and leases go on).
    list(Study.objects.select_for_update(no_key=True).filter(pk=study.pk).values_list("pk", flat=True))
    _check_new_rater_caps(study, ip_hash, now)
    return Rater.objects.create(study=study, ip_hash=ip_hash, **fields)


def do_enter_study(
    study: Study, arrival: Arrival, remembered: Rater | None = None, ip_hash: str = "", now: datetime | None = None
) -> Rater | None:
    """The rater behind an arrival: the same platform id (or a remembered session) resumes, else a new one.

    An arrival that names a rater made in advance (an invite) gets that rater, or None when there is none.
    A new rater counts against the caps on new raters per minute, per address (``ip_hash``, a keyed
    hash) and per study (settings ``RATER_NEW_PER_IP_PER_MINUTE``, ``RATER_NEW_PER_STUDY_PER_MINUTE``):
    past either, ``NewRatersCapped``. Platform arrivals with a new id count the same as open-link ones.
    """
    if arrival.rater_token:
        return Rater.objects.filter(study=study, platform=arrival.platform, token=arrival.rater_token).first()
    now = now or timezone.now()
    platform_fields = {
        "platform_study_id": arrival.platform_study_id,
        "platform_session_id": arrival.platform_session_id,
        "platform_submit_to": arrival.platform_submit_to,
    }
    if arrival.external_id:
        key = {"study": study, "platform": arrival.platform, "external_id": arrival.external_id}
        rater, created = Rater.objects.filter(**key).first(), False
        if rater is None:
            try:
                with transaction.atomic():
                    rater = _new_rater(study, ip_hash, now, platform=arrival.platform,
                                       external_id=arrival.external_id, **platform_fields)  # fmt: skip
                created = True
            except IntegrityError:
                # The same id arrived twice at once: the other request made the rater.
                rater = Rater.objects.get(**key)
        changed = {k: v for k, v in platform_fields.items() if v and getattr(rater, k) != v}
        if not created and changed:
            # A new MTurk assignment or Prolific session of the same person: submit to the latest one.
            Rater.objects.filter(pk=rater.pk).update(**changed)
            for k, v in changed.items():
                setattr(rater, k, v)
        return rater
    if remembered is not None and remembered.study_id == study.pk:
        return remembered
    with transaction.atomic():
        return _new_rater(study, ip_hash, now, platform=arrival.platform)


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


def do_extend_lease(rater: Rater, assignment_token: str, now: datetime | None = None) -> bool:
    """The rater is there (the page saw them interact): their live lease runs the study's full length."""
    return engine.extend_lease(rater, assignment_token, now or timezone.now())


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
    """Whether a comparison is still open to this rater, within their quota of items given."""
    if engine.own_items_open(rater):
        return True
    return engine.items_given(rater) < study.comparisons_per_rater and engine.open_comparisons(study, rater).exists()


def quota_given(study: Study, rater: Rater) -> bool:
    """Whether the rater has been given every item of their quota and none of their own can come back."""
    return engine.items_given(rater) >= study.comparisons_per_rater and not engine.own_items_open(rater)


def is_finished(study: Study, rater: Rater, n_voted: int) -> bool:
    """Whether the rater may finish (and gets the completion code): quota voted, failed the qualification
    round, or voted at least once with nothing left to give them (the study ran dry, or their items are
    given and taken by others)."""
    return bool(
        rater.completed_at
        or n_voted >= study.comparisons_per_rater
        or failed_qualification(study, rater, n_voted)
        or (n_voted > 0 and not has_open_work(study, rater))
    )
