"""State changes for studies and their comparisons. Views, tasks and commands call these."""

import secrets
from dataclasses import dataclass
from enum import StrEnum
from itertools import combinations

from django.db import connection, transaction
from django.utils import timezone

from inference_workers.actions import imported_decoding_config, imported_model
from inference_workers.models import LanguageModel, Prompt, Response
from ratings.assignment import from_db_datetime, lock_clause, lock_comparisons, release_leases
from ratings.hotpath import insert, run
from ratings.models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    PairingDesign,
    Rater,
    RaterPlatform,
    Study,
    StudyMode,
    Vote,
    Winner,
)
from ratings.rendering import prepare_texts


def do_release_expired_leases(now=None) -> int:
    """Return leases past their deadline to the pool. Returns how many were released."""
    now = now or timezone.now()
    with transaction.atomic():
        # A lease whose vote is being written right now is skipped: that vote decides its fate.
        expired = Assignment.objects.filter(status=AssignmentStatus.LEASED, lease_expires_at__lte=now)
        return release_leases(list(expired.select_for_update(skip_locked=True).order_by("pk")))


def do_pause(rater: Rater) -> int:
    """The rater steps away: their open lease goes back to the pool now rather than at its deadline."""
    with transaction.atomic():
        held = Assignment.objects.filter(rater=rater, status=AssignmentStatus.LEASED)
        return release_leases(list(held.select_for_update().order_by("pk")))


def do_create_comparisons(study: Study) -> int:
    """Create the study's comparisons from its pairing design; existing pairs are kept.

    Each prompt gets one comparison per model pair that answered it (every pair, or
    each model against the reference). Which model is A is fixed by model order;
    the left / right order a rater sees is randomised per assignment instead.
    """
    models = list(study.language_models.order_by("pk"))
    if study.pairing == PairingDesign.VS_REFERENCE:
        ref = study.reference_model
        pairs = [(ref, m) for m in models if m.pk != ref.pk]
    else:
        pairs = list(combinations(models, 2))
    responses: dict[tuple[int, int], Response] = {}
    for r in Response.objects.filter(prompt__prompt_set=study.prompt_set, model__in=models).order_by("pk"):
        # One answer per model and prompt: the first decoding config wins.
        responses.setdefault((r.model_id, r.prompt_id), r)
    existing = set(study.comparisons.values_list("response_a_id", "response_b_id"))
    new = []
    for prompt_id in study.prompt_set.prompts.order_by("pk").values_list("pk", flat=True):
        for model_a, model_b in pairs:
            a = responses.get((model_a.pk, prompt_id))
            b = responses.get((model_b.pk, prompt_id))
            if a is None or b is None or (a.pk, b.pk) in existing:
                continue
            new.append(Comparison(study=study, prompt_id=prompt_id, response_a=a, response_b=b))
    with transaction.atomic():
        Comparison.objects.bulk_create(new)
    # Their pages' texts rendered once now, rather than on the first rater's request.
    prompt_ids = {c.prompt_id for c in new}
    prepare_texts(
        [
            *Prompt.objects.filter(pk__in=prompt_ids).values_list("text", flat=True),
            *{r.pk: r.text for c in new for r in (c.response_a, c.response_b)}.values(),
        ]
    )
    return len(new)


# --- The rater's path ------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    """Who is arriving at a study link, as the link's parameters say."""

    platform: str
    external_id: str = ""
    platform_study_id: str = ""
    platform_session_id: str = ""
    platform_submit_to: str = ""


def do_enter_study(study: Study, arrival: Arrival, remembered: Rater | None = None) -> Rater:
    """The rater behind an arrival: the same platform id (or a remembered session) resumes, else a new one."""
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
    return Rater.objects.bulk_create([Rater(study=study, platform=RaterPlatform.INVITE) for _ in range(n)])


def do_consent(rater: Rater, now=None) -> None:
    if rater.consented_at is None:
        rater.consented_at = now or timezone.now()
        Rater.objects.filter(pk=rater.pk, consented_at__isnull=True).update(consented_at=rater.consented_at)


def do_complete(rater: Rater, now=None) -> None:
    if rater.completed_at is None:
        rater.completed_at = now or timezone.now()
        Rater.objects.filter(pk=rater.pk, completed_at__isnull=True).update(completed_at=rater.completed_at)


class VoteOutcome(StrEnum):
    RECORDED = "recorded"
    ALREADY_RECORDED = "already_recorded"
    COMPARISON_FULL = "comparison_full"
    TOO_SOON = "too_soon"
    UNKNOWN_ASSIGNMENT = "unknown_assignment"


SIDE_TO_WINNER = {True: {"left": Winner.A, "right": Winner.B}, False: {"left": Winner.B, "right": Winner.A}}
CHOICES = ("left", "right", "tie", "both_bad")


def side_to_answer(side: str, left_is_a: bool) -> str:
    """A left / right choice (as shown) in terms of the comparison's A and B; tie and both_bad pass through."""
    return SIDE_TO_WINNER[left_is_a].get(side, side)


def judgement_fields(choice: str, verdicts, left_is_a: bool) -> dict:
    """A vote's winner (preference), or its verdicts on A and B (fact check), from what the rater saw."""
    if verdicts is None:
        return {"winner": side_to_answer(choice, left_is_a)}
    from ratings.factcheck import verdicts_for_a_and_b

    verdict_a, verdict_b = verdicts_for_a_and_b(*verdicts, left_is_a)
    return {"verdict_a": verdict_a, "verdict_b": verdict_b}


def do_record_vote(
    rater: Rater, assignment_token: str, choice: str, answers=None, reason: str = "", now=None, verdicts=None
) -> VoteOutcome:
    """Take a rater's vote on one of their assignments, once.

    ``choice`` is what the rater clicked (left, right, tie, both_bad); the vote stores it as A / B.
    A fact-check vote passes ``verdicts`` (left, right as shown; see ratings/factcheck.py) and no choice.
    A second submission of the same assignment records nothing (ALREADY_RECORDED). A vote whose
    lease already returned to the pool is still taken when the comparison is short of k (or is gold),
    else refused (COMPARISON_FULL). The comparison's vote and claim counts change in the same transaction.
    """
    if verdicts is None and choice not in CHOICES:
        raise ValueError(f"unknown choice {choice!r}")
    now = now or timezone.now()
    study = rater.study
    with transaction.atomic(), connection.cursor() as cursor:
        # Plain statements, as in ratings.assignment's lease: this runs once per vote.
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
        if seconds < study.min_seconds_on_page:
            return VoteOutcome.TOO_SOON
        reclaim = 0
        if status == AssignmentStatus.EXPIRED:
            (comparison,) = lock_comparisons([comparison_id])
            if not comparison.is_gold and comparison.claim_count >= study.votes_per_comparison:
                return VoteOutcome.COMPARISON_FULL
            reclaim = 1
        vote = Vote(
            comparison_id=comparison_id,
            assignment_id=assignment_id,
            rater=rater,
            **judgement_fields(choice, verdicts, bool(left_is_a)),
            answers={key: side_to_answer(value, bool(left_is_a)) for key, value in (answers or {}).items() if value},
            reason=reason.strip()[:5000],
            seconds_on_page=seconds,
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


# --- Attention checks ---------------------------------------------------------------------

ATTENTION_CHECK_MODEL = "attention-check"


def attention_check_model() -> LanguageModel:
    """The imported "model" whose answers are off-topic on purpose; like every model, never named to raters."""
    model = imported_model(
        ATTENTION_CHECK_MODEL,
        display_name="Attention check (off-topic answers)",
        notes="Each answer is another question's answer, shown against a good one as an attention check.",
    )
    return model


def do_create_attention_checks(study: Study, n: int) -> int:
    """Add up to n gold comparisons: a good answer against an obviously off-topic one.

    The good answer is the reference model's (else the study's first model's). The off-topic
    answer is the same model's answer to another prompt, preferably of another category, stored
    as the attention-check model's Response to this prompt. Gold answer: A (the good one); the
    rater sees left / right drawn at random as for every comparison. Returns how many were added.
    In a fact-check study the check is passed by judging the off-topic answer wrong (ratings/factcheck.py).
    """
    good_model = study.reference_model or study.language_models.order_by("pk").first()
    if good_model is None:
        return 0
    answers = list(
        Response.objects.filter(model=good_model, prompt__prompt_set=study.prompt_set)
        .select_related("prompt")
        .order_by("prompt_id", "pk")
    )
    by_prompt = {}
    for r in answers:
        by_prompt.setdefault(r.prompt_id, r)
    answers = list(by_prompt.values())
    if len(answers) < 2:
        return 0
    used = set(study.comparisons.filter(is_gold=True).values_list("prompt_id", flat=True))
    candidates = [r for r in answers if r.prompt_id not in used]
    chosen = secrets.SystemRandom().sample(candidates, min(n, len(candidates)))
    checker = attention_check_model()
    config = imported_decoding_config()
    fits = off_topic_fits(study)
    created = 0
    with transaction.atomic():
        for good in chosen:
            # Half-way round the list lands far away, then prefer another category.
            start = answers.index(good) + len(answers) // 2
            ring = answers[start:] + answers[:start]
            # Fact check: the off-topic answer must not happen to match this question's reference answers.
            ring = [r for r in ring if fits(good, r)] or ring
            other = next((r for r in ring if r.prompt.category != good.prompt.category), None)
            other = other or next(r for r in ring if r.prompt_id != good.prompt_id)
            off_topic, _ = Response.objects.get_or_create(
                model=checker, prompt=good.prompt, decoding_config=config, defaults={"text": other.text}
            )
            Comparison.objects.create(
                study=study, prompt=good.prompt, response_a=good, response_b=off_topic, is_gold=True, gold_answer="a"
            )
            created += 1
    return created


def off_topic_fits(study: Study):
    """Whether another question's answer may serve as this question's off-topic answer in the study."""
    if study.mode != StudyMode.FACT_CHECK:
        return lambda good, other: True
    from inference_workers.substance.scoring import contains_match

    return lambda good, other: not contains_match(other.text, good.prompt.reference_answers or [])


# --- Quality control ---------------------------------------------------------------------------


def do_exclude_rater(rater: Rater, reason: str) -> None:
    """Leave a rater's votes out of analysis; the votes themselves stay."""
    Rater.objects.filter(pk=rater.pk).update(excluded=True, exclusion_reason=reason[:300], exclusion_overridden=False)


def do_reinstate_rater(rater: Rater) -> None:
    """Undo an exclusion; the automatic rules will not exclude this rater again."""
    Rater.objects.filter(pk=rater.pk).update(excluded=False, exclusion_reason="", exclusion_overridden=True)


def do_apply_exclusion_rules(study: Study) -> int:
    """Exclude every rater a study rule fires on, except those a researcher reinstated. Returns how many."""
    from ratings.quality import exclusion_reason, study_quality

    excluded = 0
    candidates = {r.pk: r for r in study.raters.filter(excluded=False, exclusion_overridden=False)}
    for quality in study_quality(study):
        rater = candidates.get(quality.rater_id)
        if rater is None:
            continue
        reason = exclusion_reason(quality, study.exclude_after_failed_checks, study.exclude_below_median_seconds)
        if reason:
            do_exclude_rater(rater, reason)
            excluded += 1
    return excluded
