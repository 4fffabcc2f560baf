"""Who sees what next: the one module that picks a rater's next comparison and leases it.

Queue order for a rater in a study (``lease_next_comparison``):

1. A live lease the rater already holds is handed back (reload, resume: never a second item).
2. A rater who has voted ``comparisons_per_rater`` times gets nothing (they are done), nor does
   one who answered any item of the qualification round wrongly (they may finish, and are paid).
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

One live lease per rater is a database rule (a partial unique index), so two tabs of one rater
cannot hold two items; the loser of that race retries and gets the winner's lease. Row locks
(Zulip's and Saleor's rule: one helper, a fixed order) are always taken in the order
Assignment -> Comparison. On SQLite ``select_for_update`` does nothing; the embedded
default opens every transaction with BEGIN IMMEDIATE, which serialises writers instead.
"""

import math
import secrets
from collections import Counter
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone

from ratings.models import Assignment, AssignmentStatus, Comparison, Rater, Study


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
    return _lock_first(queue.filter(claim_count=fewest, shuffle_key__gte=start)) or _lock_first(queue)


def unseen_gold(study: Study, rater: Rater) -> QuerySet[Comparison]:
    seen = Assignment.objects.filter(rater=rater, comparison=OuterRef("pk"))
    return Comparison.objects.filter(study=study, is_gold=True).filter(~Exists(seen)).order_by("claim_count", "pk")


def gold_offset(rater: Rater, rate: float) -> float:
    """A per-rater phase in [0, 1 / rate), fixed by the rater's token."""
    fraction = int.from_bytes(rater.token.encode()[:8].ljust(8, b"\0"), "big") / 2**64
    return fraction / rate


def failed_qualification(study: Study, rater: Rater, n_voted: int) -> bool:
    """Whether the rater has finished the qualification round with a wrong answer on any of its items."""
    if not study.qualification_items or n_voted < study.qualification_items:
        return False
    first = rater.votes.filter(comparison__is_gold=True).order_by("pk")[: study.qualification_items]
    return any(winner != gold for winner, gold in first.values_list("winner", "comparison__gold_answer"))


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


# A rating page needs the prompt and both answers: fetched with the lease, not one by one.
WITH_TEXTS = ("prompt", "response_a", "response_b")


def lease_next_comparison(rater: Rater, now: datetime | None = None) -> Assignment | None:
    """The rater's current or next assignment, leased until ``now + study.lease_seconds``; None when done.

    The returned assignment carries ``n_voted``, the rater's votes so far.
    """
    now = now or timezone.now()
    for attempt in range(3):
        try:
            with transaction.atomic():
                return _lease(rater, rater.study, now)
        except IntegrityError:
            # Another request of this rater leased first (one live lease per rater is a database rule).
            if attempt == 2:
                raise
    return None


def _lease(rater: Rater, study: Study, now: datetime) -> Assignment | None:
    held = (
        Assignment.objects.filter(rater=rater, status=AssignmentStatus.LEASED)
        .select_related(*(f"comparison__{name}" for name in WITH_TEXTS))
        .select_for_update(of=("self",))
        .first()
    )
    n_voted = rater.assignments.filter(status=AssignmentStatus.VOTED).count()
    if held is not None and held.lease_expires_at > now:
        held.n_voted = n_voted
        return held
    if held is not None:
        # The rater's own lease ran out before the beat task saw it: give it back first.
        release_leases([held])
    if n_voted >= study.comparisons_per_rater or failed_qualification(study, rater, n_voted):
        return None
    comparison = None
    if gold_is_due(study, rater, n_voted):
        comparison = _lock_first(unseen_gold(study, rater))
    if comparison is None:
        comparison = next_open_comparison(study, rater)
    if comparison is None:
        return None
    Comparison.objects.filter(pk=comparison.pk).update(claim_count=F("claim_count") + 1)
    assignment = Assignment.objects.create(
        comparison=comparison,
        rater=rater,
        left_is_a=secrets.randbits(1) == 1,
        leased_at=now,
        lease_expires_at=now + timedelta(seconds=study.lease_seconds),
    )
    assignment.n_voted = n_voted
    return assignment


def _lock_first(queue: QuerySet[Comparison]) -> Comparison | None:
    return queue.select_related(*WITH_TEXTS).select_for_update(skip_locked=True, of=("self",)).first()


def release_leases(assignments: list[Assignment]) -> int:
    """Mark locked, leased assignments expired and give their claims back to their comparisons."""
    if not assignments:
        return 0
    Assignment.objects.filter(pk__in=[a.pk for a in assignments]).update(status=AssignmentStatus.EXPIRED)
    per_comparison = Counter(a.comparison_id for a in assignments)
    for comparison in lock_comparisons(per_comparison):
        Comparison.objects.filter(pk=comparison.pk).update(claim_count=F("claim_count") - per_comparison[comparison.pk])
    return len(assignments)


def rater_progress(rater: Rater) -> tuple[int, int]:
    """(votes given, comparisons this rater is asked for)."""
    return rater.assignments.filter(status=AssignmentStatus.VOTED).count(), rater.study.comparisons_per_rater
