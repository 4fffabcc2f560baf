"""Who sees what next: the one module that picks a rater's next comparison and leases it.

Queue order for a rater in a study (``lease_next_comparison``):

1. A live lease the rater already holds is handed back (reload, resume: never a second item).
2. A rater who has voted ``comparisons_per_rater`` times gets nothing (they are done).
3. The first ``qualification_items`` items are gold (attention) items; after that a gold item
   comes at the study's ``attention_check_rate``: item i (counted from 0 after qualification)
   is gold when ``floor((i + 1 + o) * rate) > floor((i + o) * rate)``, with a per-rater offset
   ``o`` in [0, 1 / rate) drawn from the rater's token, so checks are evenly spread but not at
   the same positions for everyone. Gold items are never capped at k.
4. Otherwise the non-gold comparison of the study that
   - the rater has never been assigned (any status),
   - has ``claim_count < k`` (claims = live votes + live leases, so a leased-but-unvoted
     comparison counts against k until its lease expires),
   - and is not row-locked by another rater's lease right now (SKIP LOCKED),
   with the fewest claims first; among those, the first ``shuffle_key`` (a random number fixed
   per comparison) at or after a random start drawn for this lease, wrapping round to the
   lowest. Fewest-first keeps every comparison's vote count within one of every other's at all
   times, so prompts and model pairs stay balanced however early a study is stopped; the random
   start gives each rater a different order (no shared order effects) and spreads concurrent
   raters over the queue instead of having them all skip the same locked head row.
   Every step is a range scan of the index (study, is_gold, claim_count, shuffle_key) that
   stops at its first hit, so its cost does not grow with the number of open comparisons.
5. Nothing left: ``None`` (the "no more work" page).

Left / right is drawn per assignment with ``secrets`` and stored on it.

Row locks (Zulip's and Saleor's rule: one helper, a fixed order) are always taken in the order
Rater -> Assignment -> Comparison. On SQLite ``select_for_update`` does nothing; the embedded
default opens every transaction with BEGIN IMMEDIATE, which serialises writers instead.
"""

import math
import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone

from ratings.models import Assignment, AssignmentStatus, Comparison, Rater, Study


def lock_raters(pks) -> list[Rater]:
    return list(Rater.objects.select_for_update().filter(pk__in=list(pks)).order_by("pk"))


def lock_assignments(pks) -> list[Assignment]:
    return list(Assignment.objects.select_for_update().filter(pk__in=list(pks)).order_by("pk"))


def lock_comparisons(pks) -> list[Comparison]:
    return list(Comparison.objects.select_for_update().filter(pk__in=list(pks)).order_by("pk"))


def open_comparisons(study: Study, rater: Rater) -> QuerySet[Comparison]:
    """Non-gold comparisons short of k that this rater has never been assigned, in queue order."""
    seen = Assignment.objects.filter(rater=rater, comparison=OuterRef("pk"))
    return (
        Comparison.objects.filter(study=study, is_gold=False, claim_count__lt=study.votes_per_comparison)
        .filter(~Exists(seen))
        .order_by("claim_count", "shuffle_key")
    )


def next_open_comparison(study: Study, rater: Rater) -> Comparison | None:
    """Step 4 of the queue order: lock and return the next open comparison, or None."""
    queue = open_comparisons(study, rater)
    fewest = queue.values_list("claim_count", flat=True).first()
    if fewest is None:
        return None
    start = secrets.randbelow(2**31)
    at_start = queue.filter(claim_count=fewest, shuffle_key__gte=start)
    return at_start.select_for_update(skip_locked=True).first() or queue.select_for_update(skip_locked=True).first()


def unseen_gold(study: Study, rater: Rater) -> QuerySet[Comparison]:
    seen = Assignment.objects.filter(rater=rater, comparison=OuterRef("pk"))
    return Comparison.objects.filter(study=study, is_gold=True).filter(~Exists(seen)).order_by("claim_count", "pk")


def gold_offset(rater: Rater, rate: float) -> float:
    """A per-rater phase in [0, 1 / rate), fixed by the rater's token."""
    fraction = int.from_bytes(rater.token.encode()[:8].ljust(8, b"\0"), "big") / 2**64
    return fraction / rate


def gold_is_due(study: Study, rater: Rater, n_voted: int) -> bool:
    """Whether the rater's next item (they have voted ``n_voted`` times) is an attention check."""
    if n_voted < study.qualification_items:
        return True
    rate = study.attention_check_rate
    if rate <= 0:
        return False
    i = n_voted - study.qualification_items
    o = gold_offset(rater, rate)
    return math.floor((i + 1 + o) * rate) > math.floor((i + o) * rate)


def current_lease(rater: Rater, now: datetime) -> Assignment | None:
    return (
        Assignment.objects.filter(rater=rater, status=AssignmentStatus.LEASED, lease_expires_at__gt=now)
        .order_by("pk")
        .first()
    )


def lease_next_comparison(rater: Rater, now: datetime | None = None) -> Assignment | None:
    """The rater's current or next assignment, leased until ``now + study.lease_seconds``; None when done."""
    now = now or timezone.now()
    study = rater.study
    with transaction.atomic():
        # One lease at a time per rater, even from two tabs.
        lock_raters([rater.pk])
        held = current_lease(rater, now)
        if held is not None:
            return held
        n_voted = rater.assignments.filter(status=AssignmentStatus.VOTED).count()
        if n_voted >= study.comparisons_per_rater:
            return None
        comparison = None
        if gold_is_due(study, rater, n_voted):
            comparison = unseen_gold(study, rater).select_for_update(skip_locked=True).first()
        if comparison is None:
            comparison = next_open_comparison(study, rater)
        if comparison is None:
            return None
        Comparison.objects.filter(pk=comparison.pk).update(claim_count=F("claim_count") + 1)
        return Assignment.objects.create(
            comparison=comparison,
            rater=rater,
            left_is_a=secrets.randbits(1) == 1,
            leased_at=now,
            lease_expires_at=now + timedelta(seconds=study.lease_seconds),
        )


def rater_progress(rater: Rater) -> tuple[int, int]:
    """(votes given, comparisons this rater is asked for)."""
    return rater.assignments.filter(status=AssignmentStatus.VOTED).count(), rater.study.comparisons_per_rater
