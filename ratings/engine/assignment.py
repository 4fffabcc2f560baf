"""Who sees what next: the one module that picks a rater's next comparison and leases it.

Queue order for a rater in a study (``lease_next_comparison``):

1. A live lease the rater already holds is handed back (reload, resume: never a second item).
2. A rater who has voted ``comparisons_per_rater`` times gets nothing (they are done), nor does
   one who answered any item of the qualification round wrongly (they may finish, and are paid).
   The quota counts items *given* (leased, whatever became of them), not only votes: a rater who
   has been given ``comparisons_per_rater`` items gets one of their own unvoted items back (one
   they paused or let expire, while its comparison has room), else nothing. Pausing and resuming
   therefore never yields more items than the quota.
3. The first ``qualification_items`` items are gold (attention) items; after that a gold item
   comes at the study's ``attention_check_rate``: item i (counted from 0 after qualification)
   is gold when ``floor((i + 1 + o) * rate) > floor((i + o) * rate)``, with a per-rater offset
   ``o`` in [0, 1 / rate) drawn from a server-side secret (HMAC of ``SECRET_KEY``, the study and
   the rater), so checks are evenly spread, not at the same positions for everyone, and not
   predictable from anything the rater sees. Gold items are never capped at k.
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

Left / right is drawn per assignment with ``secrets`` and stored on it. A rater who has not voted
yet gets a short first lease (``settings.RATER_FIRST_LEASE_SECONDS``, at most the study's): a
visit that never comes back holds its slot only briefly. ``extend_lease`` (the page's sign of
life) and every vote bring a rater to the study's full ``lease_seconds``.

One live lease per rater is a database rule (a partial unique index), so two tabs of one rater
cannot hold two items; the loser of that race retries and gets the winner's lease. Row locks are
taken through ``ratings.engine.locks`` only, always in the order Assignment -> Comparison.
"""

import hashlib
import hmac
import math
import secrets
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from ratings.engine.hotpath import insert, run
from ratings.engine.locks import lock_assignments, lock_clause, lock_comparisons
from ratings.models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    Rater,
    Study,
    Vote,
    new_token,
    passed_attention_check,
)


def open_comparisons(study: Study, rater: Rater) -> QuerySet[Comparison]:
    """Non-gold comparisons short of k that this rater has never been assigned, in queue order."""
    seen = Assignment.objects.filter(rater=rater, comparison=OuterRef("pk"))
    return (
        Comparison.objects.filter(study=study, is_gold=False, claim_count__lt=study.votes_per_comparison)
        .filter(~Exists(seen))
        .order_by("claim_count", "shuffle_key")
    )


def next_open_comparison(study: Study, rater: Rater) -> int | None:
    """Step 4 of the queue order on its own: lock the next open comparison and return its id, or None."""
    with connection.cursor() as cursor:
        row = _pick_open(cursor, study, rater, secrets.randbelow(2**31))
    return row[0] if row else None


def gold_offset(rater: Rater, rate: float) -> float:
    """A per-rater phase in [0, 1 / rate), fixed by a server-side secret: HMAC(SECRET_KEY, study, rater).

    Nothing a rater sees (their token, their page) predicts it.
    """
    message = f"attention-checks:{rater.study_id}:{rater.pk}".encode()
    digest = hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 / rate


def failed_qualification(study: Study, rater: Rater, n_voted: int) -> bool:
    """Whether the rater has finished the qualification round with a wrong answer on any of its items.

    A rater whom a researcher reinstated (``exclusion_overridden``) has not: the researcher's word stands.
    """
    if not study.qualification_items or n_voted < study.qualification_items or rater.exclusion_overridden:
        return False
    first = rater.votes.filter(comparison__is_gold=True).order_by("pk")[: study.qualification_items]
    rows = first.values_list("winner", "verdict_a", "verdict_b", "comparison__gold_answer")
    return not all(passed_attention_check(*row) for row in rows)


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


def lease_next_comparison(rater: Rater, now: datetime | None = None) -> Assignment | None:
    """The rater's current or next assignment, leased until ``now + study.lease_seconds``; None when done.

    The returned assignment carries ``n_voted``, the rater's votes so far.
    """
    now = now or timezone.now()
    for attempt in range(3):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                return _lease(cursor, rater, rater.study, now)
        except (IntegrityError, _LeaseRaced):
            # Another request of this rater leased or voted first (one live lease per rater is a
            # database rule): read again.
            if attempt == 2:
                raise
    return None


# --- The hot path: one rater's lease, in a few plain statements -------------------------------------
#
# The rating page runs this on every item, so it is written as SQL that both backends accept (no ORM
# query compilation), run through ``hotpath.run`` (prepared once per Postgres connection):
# ``FOR UPDATE [SKIP LOCKED]`` is added on Postgres only; SQLite serialises writers with BEGIN
# IMMEDIATE instead. Tests run it on both (tests/ratings/test_engine_on_sqlite.py).

ASSIGNMENT_COLUMNS = "id, comparison_id, token, left_is_a, status, leased_at, lease_expires_at"


class _LeaseRaced(Exception):
    """The rater's live lease changed between reading and locking it (another tab voted): read again."""


def to_db_datetime(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


def from_db_datetime(value) -> datetime:
    # Postgres hands back aware datetimes; SQLite naive ones in UTC.
    return timezone.make_aware(value, UTC) if timezone.is_naive(value) else value


def _assignment_from_row(row, rater: Rater) -> Assignment:
    pk, comparison_id, token, left_is_a, status, leased_at, lease_expires_at = row
    assignment = Assignment(
        id=pk,
        comparison_id=comparison_id,
        rater=rater,
        token=token,
        left_is_a=bool(left_is_a),
        status=status,
        leased_at=from_db_datetime(leased_at),
        lease_expires_at=from_db_datetime(lease_expires_at),
    )
    assignment._state.adding = False
    return assignment


def _lease(cursor, rater: Rater, study: Study, now: datetime) -> Assignment | None:
    run(
        cursor,
        "SELECT COALESCE(SUM(CASE WHEN status = %s THEN 1 ELSE 0 END), 0), MAX(CASE WHEN status = %s THEN id END),"
        " COUNT(*) FROM ratings_assignment WHERE rater_id = %s",
        [AssignmentStatus.VOTED, AssignmentStatus.LEASED, rater.pk],
    )
    n_voted, held_id, n_given = cursor.fetchone()
    if held_id is not None:
        run(
            cursor,
            f"SELECT {ASSIGNMENT_COLUMNS} FROM ratings_assignment WHERE id = %s AND status = %s{lock_clause()}",  # noqa: S608
            [held_id, AssignmentStatus.LEASED],
        )
        row = cursor.fetchone()
        if row is None:
            raise _LeaseRaced
        held = _assignment_from_row(row, rater)
        if held.lease_expires_at > now:
            held.n_voted = n_voted
            return held
        # The rater's own lease ran out before the beat task saw it: give it back first.
        release_leases([held])
    if n_voted >= study.comparisons_per_rater or failed_qualification(study, rater, n_voted):
        return None
    expires = now + timedelta(seconds=lease_length(study, n_voted))
    if n_given >= study.comparisons_per_rater:
        # The quota counts what was given: only the rater's own unvoted items can come back.
        again = _lease_again(rater, study, now, expires)
        if again is not None:
            again.n_voted = n_voted
        return again
    picked = None
    if gold_is_due(study, rater, n_voted):
        picked = _pick_gold(cursor, study, rater)
    if picked is None:
        picked = _pick_open(cursor, study, rater, secrets.randbelow(2**31))
    if picked is None:
        return None
    comparison_id, *texts = picked
    run(cursor, "UPDATE ratings_comparison SET claim_count = claim_count + 1 WHERE id = %s", [comparison_id])
    token, left_is_a = new_token(), secrets.randbits(1) == 1
    run(
        cursor,
        "INSERT INTO ratings_assignment"
        " (comparison_id, rater_id, token, left_is_a, status, leased_at, lease_expires_at, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        [comparison_id, rater.pk, token, left_is_a, AssignmentStatus.LEASED, *map(to_db_datetime, (now, expires, now))],
    )
    assignment = _assignment_from_row(
        (cursor.fetchone()[0], comparison_id, token, left_is_a, AssignmentStatus.LEASED, now, expires), rater
    )
    assignment.n_voted = n_voted
    assignment.texts = tuple(texts)
    return assignment


def lease_length(study: Study, n_voted: int) -> int:
    """Seconds of a new lease: the study's, or the short first lease of a rater who has not voted yet."""
    if n_voted:
        return study.lease_seconds
    return max(1, min(study.lease_seconds, settings.RATER_FIRST_LEASE_SECONDS))


def _lease_again(rater: Rater, study: Study, now: datetime, expires: datetime) -> Assignment | None:
    """The rater's oldest unvoted (expired) item whose comparison still has room, leased to them again."""
    k = study.votes_per_comparison
    for candidate in lock_assignments(
        Assignment.objects.filter(rater=rater, status=AssignmentStatus.EXPIRED), skip_locked=True
    ):
        (comparison,) = lock_comparisons([candidate.comparison_id])
        if comparison.is_gold or comparison.claim_count < k:
            Comparison.objects.filter(pk=comparison.pk).update(claim_count=F("claim_count") + 1)
            Assignment.objects.filter(pk=candidate.pk).update(
                status=AssignmentStatus.LEASED, leased_at=now, lease_expires_at=expires
            )
            candidate.status, candidate.leased_at, candidate.lease_expires_at = AssignmentStatus.LEASED, now, expires
            candidate.rater = rater
            return candidate
    return None


def own_items_open(rater: Rater) -> bool:
    """Whether one of the rater's unvoted, expired items could be leased to them again."""
    room = Q(comparison__is_gold=True) | Q(comparison__claim_count__lt=rater.study.votes_per_comparison)
    return Assignment.objects.filter(rater=rater, status=AssignmentStatus.EXPIRED).filter(room).exists()


def items_given(rater: Rater) -> int:
    """How many items the rater has been given (leased, voted or expired): what the quota counts."""
    return rater.assignments.count()


def extend_lease(rater: Rater, assignment_token: str, now: datetime) -> bool:
    """The page's sign of life: the rater's live lease runs to ``leased_at + study.lease_seconds``.

    Never longer than a lease the study grants; an expired (released) lease is not revived. Returns
    whether a live lease of this rater was found.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        run(
            cursor,
            "SELECT id, leased_at FROM ratings_assignment"  # noqa: S608
            f" WHERE token = %s AND rater_id = %s AND status = %s AND lease_expires_at > %s{lock_clause()}",
            [assignment_token, rater.pk, AssignmentStatus.LEASED, to_db_datetime(now)],
        )
        row = cursor.fetchone()
        if row is None:
            return False
        until = from_db_datetime(row[1]) + timedelta(seconds=rater.study.lease_seconds)
        run(
            cursor,
            "UPDATE ratings_assignment SET lease_expires_at = %s WHERE id = %s AND lease_expires_at < %s",
            [to_db_datetime(until), row[0], to_db_datetime(until)],
        )
    return True


# Rows of the study's queue this rater has never been assigned (any status). The SQL built here is
# constant fragments only; every value goes in as a parameter.
_UNSEEN = "NOT EXISTS (SELECT 1 FROM ratings_assignment a WHERE a.rater_id = %s AND a.comparison_id = c.id)"
# The picked comparison comes with its page's texts: one round trip takes the lock and the content.
# Scalar subqueries rather than joins: they run for the one row picked, and the planner does not
# plan (nor, on a large table, size caches for) a join over every open comparison.
_PICKED = (
    "SELECT c.id,"
    " (SELECT p.text FROM inference_workers_prompt p WHERE p.id = c.prompt_id),"
    " (SELECT r.text FROM inference_workers_response r WHERE r.id = c.response_a_id),"
    " (SELECT r.text FROM inference_workers_response r WHERE r.id = c.response_b_id)"
    " FROM ratings_comparison c"
)


def _pick_open(cursor, study: Study, rater: Rater, start: int):
    """Step 4 of the queue order: lock the next open comparison; (id, prompt, A, B texts) or None.

    First the fewest-claimed rows at or after the random start (the fewest claim count comes from
    a subquery that stops at the first row of the index), then, wrapping round, the whole queue.
    """
    where = f"c.study_id = %s AND c.is_gold = %s AND {_UNSEEN}"
    args = [study.pk, False, rater.pk]
    lock = lock_clause(skip_locked=True)
    run(
        cursor,
        f"{_PICKED} WHERE {where} AND c.claim_count = (SELECT c.claim_count FROM ratings_comparison c"  # noqa: S608
        f" WHERE {where} AND c.claim_count < %s ORDER BY c.claim_count, c.shuffle_key LIMIT 1)"
        f" AND c.shuffle_key >= %s ORDER BY c.shuffle_key LIMIT 1{lock}",
        [*args, *args, study.votes_per_comparison, start],
    )
    row = cursor.fetchone()
    if row is None:
        run(
            cursor,
            f"{_PICKED} WHERE {where} AND c.claim_count < %s ORDER BY c.claim_count, c.shuffle_key LIMIT 1{lock}",
            [*args, study.votes_per_comparison],
        )
        row = cursor.fetchone()
    return row


def _pick_gold(cursor, study: Study, rater: Rater):
    run(
        cursor,
        f"{_PICKED} WHERE c.study_id = %s AND c.is_gold = %s AND {_UNSEEN}"
        f" ORDER BY c.claim_count, c.id LIMIT 1{lock_clause(skip_locked=True)}",
        [study.pk, True, rater.pk],
    )
    return cursor.fetchone()


def page_texts(assignment: Assignment) -> tuple[str, str, str]:
    """(prompt, answer A, answer B) of an assignment's comparison: as leased, or in one statement."""
    if getattr(assignment, "texts", None):
        return assignment.texts
    with connection.cursor() as cursor:
        run(cursor, _PICKED + " WHERE c.id = %s", [assignment.comparison_id])
        return cursor.fetchone()[1:]


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


# --- A vote, taken once ------------------------------------------------------------------------------


class VoteOutcome(StrEnum):
    RECORDED = "recorded"
    ALREADY_RECORDED = "already_recorded"
    COMPARISON_FULL = "comparison_full"
    TOO_SOON = "too_soon"
    UNKNOWN_ASSIGNMENT = "unknown_assignment"
    OVER_QUOTA = "over_quota"
    STUDY_CLOSED = "study_closed"


def record_vote(rater: Rater, assignment_token: str, vote_fields: Callable[[bool], dict], now: datetime) -> VoteOutcome:
    """Store a vote on one of the rater's assignments, once; ``vote_fields(left_is_a)`` gives its judgement.

    A second submission of the same assignment records nothing (ALREADY_RECORDED). A vote whose lease
    already returned to the pool is still taken when the comparison is short of k (or is gold), else
    refused (COMPARISON_FULL), and only while the rater has voted fewer than ``comparisons_per_rater``
    times (else OVER_QUOTA). The comparison's vote and claim counts change in the same transaction.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        # Plain statements, as in the lease: this runs once per vote.
        run(
            cursor,
            "SELECT id, comparison_id, status, leased_at, left_is_a FROM ratings_assignment"  # noqa: S608
            f" WHERE token = %s AND rater_id = %s{lock_clause()}",
            [assignment_token, rater.pk],
        )
        row = cursor.fetchone()
        if row is None:
            return VoteOutcome.UNKNOWN_ASSIGNMENT
        assignment_id, comparison_id, status, leased_at, left_is_a = row
        if status == AssignmentStatus.VOTED:
            return VoteOutcome.ALREADY_RECORDED
        seconds = max(0.0, (now - from_db_datetime(leased_at)).total_seconds())
        if seconds < rater.study.min_seconds_on_page:
            return VoteOutcome.TOO_SOON
        reclaim = 0
        if status == AssignmentStatus.EXPIRED:
            # Taken only while nobody else holds the slot and the rater's quota allows one more vote.
            run(
                cursor,
                "SELECT COUNT(*) FROM ratings_assignment WHERE rater_id = %s AND status = %s",
                [rater.pk, AssignmentStatus.VOTED],
            )
            if cursor.fetchone()[0] >= rater.study.comparisons_per_rater:
                return VoteOutcome.OVER_QUOTA
            (comparison,) = lock_comparisons([comparison_id])
            if not comparison.is_gold and comparison.claim_count >= rater.study.votes_per_comparison:
                return VoteOutcome.COMPARISON_FULL
            reclaim = 1
        vote = Vote(
            comparison_id=comparison_id,
            assignment_id=assignment_id,
            rater=rater,
            seconds_on_page=seconds,
            **vote_fields(bool(left_is_a)),
        )
        insert(cursor, vote)
        # A live lease already holds its claim; the UPDATE takes the comparison's row lock.
        run(
            cursor,
            "UPDATE ratings_comparison SET vote_count = vote_count + 1, claim_count = claim_count + %s WHERE id = %s",
            [reclaim, comparison_id],
        )
        run(cursor, "UPDATE ratings_assignment SET status = %s WHERE id = %s", [AssignmentStatus.VOTED, assignment_id])
    return VoteOutcome.RECORDED
