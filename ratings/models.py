"""Studies, the comparisons they show, the raters who see them, and their votes.

Raters are anonymous study participants with no Django account: everything a
rater's browser receives names rows by their opaque ``token`` only.
"""

import base64
import os
import re
import secrets
import struct

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from inference_workers.models import DecodingConfig, LanguageModel, Prompt, PromptSet, Response


def new_token() -> str:
    return secrets.token_urlsafe(16)


def new_completion_code() -> str:
    return secrets.token_hex(4).upper()


def new_shuffle_key() -> int:
    return secrets.randbelow(2**31)


def _new_tokens(n: int) -> list[str]:
    """``n`` tokens as ``new_token`` makes them (16 random bytes, URL-safe base64 without padding), from
    one read of the system's random source (as ``secrets`` reads it) rather than ``n``."""
    raw, encode = os.urandom(16 * n), base64.urlsafe_b64encode
    return [encode(raw[i : i + 16]).rstrip(b"=").decode("ascii") for i in range(0, 16 * n, 16)]


def _new_shuffle_keys(n: int) -> list[int]:
    """``n`` keys as ``new_shuffle_key`` makes them (uniform below 2**31: 31 of 32 random bits)."""
    return [k & 0x7FFFFFFF for k in struct.unpack(f"<{n}I", os.urandom(4 * n))]


# Bulk imports (ratings.engine.bulk) ask a default for a whole chunk's values at once.
new_token.many = _new_tokens
new_shuffle_key.many = _new_shuffle_keys


class StudyStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class PairingDesign(models.TextChoices):
    ALL_PAIRS = "all_pairs", "Every pair of models"
    VS_REFERENCE = "vs_reference", "Each model against the reference"


class Recruitment(models.TextChoices):
    """How raters reach a study, and so where a rater came from (``ratings/platforms/``, one module each)."""

    OPEN_LINK = "open_link", "Open link"
    INVITE = "invite", "Invite tokens"
    PROLIFIC = "prolific", "Prolific"
    MTURK = "mturk", "Amazon Mechanical Turk"
    IMPORTED = "imported", "Imported (judges of a battle file)"


class StudyMode(models.TextChoices):
    PREFERENCE = "preference", "Preference (which answer is better)"
    FACT_CHECK = "fact_check", "Fact check (is each answer correct)"


def default_questions() -> list:
    return []


FOLLOW_UP_KEY = re.compile(r"^[A-Za-z0-9_]{1,40}$")
MAX_FOLLOW_UPS = 10


def follow_up_problem(value) -> str:
    """Why the rating page cannot show these follow-up questions; "" when it can."""
    if not isinstance(value, list):
        return 'Give a list of questions, e.g. [{"key": "factual", "text": "Which is more accurate?"}].'
    if len(value) > MAX_FOLLOW_UPS:
        return f"At most {MAX_FOLLOW_UPS} follow-up questions."
    keys = set()
    for q in value:
        if not isinstance(q, dict) or not isinstance(q.get("key"), str) or not isinstance(q.get("text"), str):
            return 'Each question is {"key": "...", "text": "..."} with two strings.'
        if not FOLLOW_UP_KEY.match(q["key"]) or not q["text"].strip() or len(q["text"]) > 500:
            return "A key is 1-40 letters, digits or _; a text is 1-500 characters."
        if q["key"] in keys:
            return f"The key {q['key']!r} is used twice."
        keys.add(q["key"])
    return ""


def validate_follow_up_questions(value) -> None:
    problem = follow_up_problem(value)
    if problem:
        raise ValidationError(problem)


class Study(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    # Public token in rater links: the slug may describe the models, the token does not.
    token = models.CharField(max_length=32, unique=True, default=new_token, editable=False)
    status = models.CharField(max_length=20, choices=StudyStatus.choices, default=StudyStatus.DRAFT)
    mode = models.CharField(max_length=20, choices=StudyMode.choices, default=StudyMode.PREFERENCE)
    # Empty only while a draft is being set up (the set-up pages save a draft at any step); an open study has one.
    prompt_set = models.ForeignKey(PromptSet, null=True, blank=True, on_delete=models.PROTECT, related_name="studies")
    language_models = models.ManyToManyField(LanguageModel, related_name="studies")
    reference_model = models.ForeignKey(
        LanguageModel, null=True, blank=True, on_delete=models.PROTECT, related_name="reference_for"
    )
    pairing = models.CharField(max_length=20, choices=PairingDesign.choices, default=PairingDesign.ALL_PAIRS)
    votes_per_comparison = models.PositiveSmallIntegerField(default=3)
    comparisons_per_rater = models.PositiveSmallIntegerField(default=30)
    follow_up_questions = models.JSONField(
        default=default_questions,
        blank=True,
        validators=[validate_follow_up_questions],
        help_text="Extra questions per comparison, e.g. "
        '[{"key": "factual", "text": "Which is more factually accurate?"}]',
    )
    instructions = models.TextField(blank=True)
    consent_text = models.TextField(blank=True)
    recruitment = models.CharField(max_length=20, choices=Recruitment.choices, default=Recruitment.OPEN_LINK)
    completion_code = models.CharField(max_length=64, default=new_completion_code)
    completion_redirect_url = models.URLField(blank=True, help_text="e.g. Prolific's completion URL.")
    attention_check_rate = models.FloatField(default=0.1)
    qualification_items = models.PositiveSmallIntegerField(default=0)
    lease_seconds = models.PositiveIntegerField(default=600)
    min_seconds_on_page = models.PositiveIntegerField(default=0)
    # Quality rules (ratings/analysis/quality.py): a rater is excluded when either one fires; 0 turns a rule off.
    exclude_after_failed_checks = models.PositiveSmallIntegerField(
        default=2, help_text="Exclude a rater after this many failed attention checks (0: never)."
    )
    exclude_below_median_seconds = models.FloatField(
        default=0, help_text="Exclude a rater whose median seconds per vote is below this (0: never)."
    )
    imported = models.BooleanField(default=False, help_text="Votes imported from elsewhere; not rated here.")
    # How Launch has the study's local and API models answer (ratings/actions/launch.py); empty: the defaults.
    decoding_config = models.ForeignKey(
        DecodingConfig, null=True, blank=True, on_delete=models.PROTECT, related_name="studies"
    )
    # Set while a Launch is under way (answers being generated, then comparisons made, then opened).
    launch_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    launch_error = models.TextField(blank=True, editable=False, help_text="Why the last Launch stopped.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"
        constraints = [
            models.CheckConstraint(name="votes_per_comparison_positive", condition=Q(votes_per_comparison__gte=1)),
            models.CheckConstraint(
                name="attention_rate_in_unit_interval",
                condition=Q(attention_check_rate__gte=0) & Q(attention_check_rate__lte=1),
            ),
            models.CheckConstraint(name="lease_positive", condition=Q(lease_seconds__gt=0)),
            models.CheckConstraint(
                name="open_study_has_prompt_set",
                condition=Q(status=StudyStatus.DRAFT) | Q(prompt_set__isnull=False),
            ),
            models.CheckConstraint(
                name="vs_reference_needs_reference",
                condition=~Q(pairing=PairingDesign.VS_REFERENCE) | Q(reference_model__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def clean(self):
        # A study that has votes keeps its mode: preference votes and verdicts never mix.
        if self.pk:
            stored = Study.objects.filter(pk=self.pk).values_list("mode", flat=True).first()
            if stored and stored != self.mode and Vote.objects.filter(comparison__study=self).exists():
                raise ValidationError({"mode": "This study has votes already: its mode can no longer change."})
        problem = self.opening_problem()
        if problem:
            raise ValidationError({"status": problem})

    def questions(self) -> list[dict]:
        """The follow-up questions the rating page shows: none when the stored value is not a valid list."""
        return [] if follow_up_problem(self.follow_up_questions) else self.follow_up_questions

    def opening_problem(self) -> str:
        """Why this open study cannot be open, as its mode's rules say (``ratings/modes/``); "" when it can."""
        if self.status != StudyStatus.OPEN or not self.prompt_set_id:
            return ""
        # The modes sit above the models (they read them), so they are found through the app registry.
        return apps.get_app_config("ratings").mode_for(self).opening_problem(self)


class Comparison(models.Model):
    """Two different responses to the same prompt, shown side by side inside a study.

    The database holds both rules: ``response_a != response_b``, and a trigger (see
    migration 0002) that refuses responses to any prompt other than ``prompt``.
    """

    # Indexes that lead with study (the queue, unique_pair_per_study) serve study lookups too.
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="comparisons", db_index=False)
    # No foreign key of their own: the composite keys (response_x, prompt) -> response (id, prompt) of
    # migration 0002 already refuse a missing response or prompt, and checking both costs an import
    # three more lookups a row. Django's PROTECT still guards deletes.
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="comparisons", db_constraint=False)
    response_a = models.ForeignKey(
        Response, on_delete=models.PROTECT, related_name="comparisons_as_a", db_constraint=False
    )
    response_b = models.ForeignKey(
        Response, on_delete=models.PROTECT, related_name="comparisons_as_b", db_constraint=False
    )
    # Unique by a constraint, not ``unique=True``, which adds a second (LIKE) index on Postgres.
    token = models.CharField(max_length=32, default=new_token, editable=False)
    is_gold = models.BooleanField(default=False, help_text="An attention check with a known better answer.")
    gold_answer = models.CharField(max_length=1, blank=True, choices=[("a", "A"), ("b", "B")])
    vote_count = models.PositiveIntegerField(default=0)
    # Live votes plus live leases: what counts against the study's votes per comparison (k).
    claim_count = models.PositiveIntegerField(default=0)
    # Random tie-break among equally claimed comparisons, so prompts and model pairs interleave.
    shuffle_key = models.IntegerField(default=new_shuffle_key, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "id"]
        constraints = [
            models.CheckConstraint(name="comparison_responses_differ", condition=~Q(response_a=F("response_b"))),
            models.UniqueConstraint(fields=["study", "response_a", "response_b"], name="unique_pair_per_study"),
            models.CheckConstraint(name="gold_has_answer", condition=Q(is_gold=False) | Q(gold_answer__in=["a", "b"])),
            models.UniqueConstraint(fields=["token"], name="comparison_token_unique"),
        ]
        indexes = [
            # The next-comparison queue (ratings/engine/assignment.py) walks this index in order.
            models.Index(fields=["study", "is_gold", "claim_count", "shuffle_key"], name="comparison_queue"),
        ]

    def __str__(self) -> str:
        return f"Comparison {self.pk} ({self.study.slug})"


class Rater(models.Model):
    """A study participant. No Django account: identified by a session and an external id."""

    # rater_arrivals_per_study (study, created_at) serves the foreign-key lookups: no separate index.
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="raters", db_index=False)
    # Unique by rater_token_unique, without the second (LIKE) index that unique=True adds on Postgres.
    token = models.CharField(max_length=32, default=new_token, editable=False)
    platform = models.CharField(max_length=20, choices=Recruitment.choices, default=Recruitment.OPEN_LINK)
    external_id = models.CharField(max_length=200, blank=True, help_text="PROLIFIC_PID or MTurk workerId.")
    platform_study_id = models.CharField(max_length=200, blank=True)
    platform_session_id = models.CharField(max_length=200, blank=True)
    # MTurk only: where the completion form posts (turkSubmitTo, checked against MTurk's hosts).
    platform_submit_to = models.URLField(blank=True)
    consented_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    excluded = models.BooleanField(default=False, help_text="Votes kept, but left out of analysis.")
    exclusion_reason = models.CharField(max_length=300, blank=True)
    # A researcher undid an exclusion: the automatic rules leave this rater alone from now on.
    exclusion_overridden = models.BooleanField(default=False)
    # A keyed hash (HMAC with SECRET_KEY) of the address the rater arrived from, never the address itself:
    # the caps on new raters per minute and the admin's burst view read it. Empty for invites.
    ip_hash = models.CharField(max_length=32, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "id"]
        indexes = [
            models.Index(fields=["study", "created_at"], name="rater_arrivals_per_study"),
            models.Index(fields=["ip_hash", "created_at"], name="rater_arrivals_per_address"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["token"], name="rater_token_unique"),
            # Returning with the same platform id resumes the same rater.
            models.UniqueConstraint(
                fields=["study", "platform", "external_id"],
                condition=~Q(external_id=""),
                name="one_rater_per_external_id",
            ),
        ]

    def __str__(self) -> str:
        return f"Rater {self.pk} ({self.platform})"


class AssignmentStatus(models.TextChoices):
    LEASED = "leased", "Leased"
    VOTED = "voted", "Voted"
    EXPIRED = "expired", "Expired"


class Assignment(models.Model):
    """One rater x one comparison: a lease with a deadline, and the order the rater saw."""

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="assignments")
    # one_assignment_per_rater_comparison (rater, comparison) serves rater lookups too.
    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="assignments", db_index=False)
    token = models.CharField(max_length=32, unique=True, default=new_token, editable=False)
    left_is_a = models.BooleanField(help_text="True when response A was shown on the left.")
    status = models.CharField(max_length=20, choices=AssignmentStatus.choices, default=AssignmentStatus.LEASED)
    leased_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # A rater sees, and so votes on, a comparison at most once.
            models.UniqueConstraint(fields=["rater", "comparison"], name="one_assignment_per_rater_comparison"),
            models.CheckConstraint(name="lease_ends_after_start", condition=Q(lease_expires_at__gt=F("leased_at"))),
            # One item at a time: a rater holds at most one lease, even from two tabs.
            models.UniqueConstraint(
                fields=["rater"], condition=Q(status=AssignmentStatus.LEASED), name="one_live_lease_per_rater"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "lease_expires_at"], name="assignment_lease_expiry"),
            models.Index(fields=["rater", "status"], name="assignment_rater_progress"),
        ]

    def __str__(self) -> str:
        return f"Assignment {self.pk} ({self.status})"


class Winner(models.TextChoices):
    A = "a", "A is better"
    B = "b", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


class Verdict(models.TextChoices):
    """A fact-check judgement of one answer against the question's reference answers."""

    CORRECT = "correct", "Correct"
    PARTLY = "partly", "Partly correct"
    WRONG = "wrong", "Wrong"


def passed_attention_check(winner: str, verdict_a: str, verdict_b: str, gold_answer: str) -> bool:
    """A preference vote passes when the gold answer won; a fact-check vote (verdicts, no winner) when the
    off-topic answer was judged wrong. What it says of the good answer does not count: it may well be wrong."""
    if winner:
        return winner == gold_answer
    off_topic = verdict_b if gold_answer == "a" else verdict_a
    return off_topic == Verdict.WRONG


class VoteSource(models.TextChoices):
    LIVE = "live", "Rated here"
    IMPORTED = "imported", "Imported"


class Vote(models.Model):
    """A judgement on a comparison, in terms of its responses A and B (not left / right).

    A preference vote has a ``winner``; a fact-check vote (studies in fact-check mode) has a
    ``verdict_a`` and a ``verdict_b`` instead and no winner. The database holds that rule.
    """

    # vote_by_comparison (comparison, created_at) and one_vote_per_rater_comparison (rater, comparison)
    # serve the foreign-key lookups: no separate index for either.
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="votes", db_index=False)
    # One vote per assignment (one_vote_per_assignment), indexed only where there is one: imported
    # votes have none, and a million of them would otherwise each add a NULL entry to a unique index.
    assignment = models.ForeignKey(
        Assignment, null=True, blank=True, on_delete=models.CASCADE, related_name="vote", db_index=False
    )
    rater = models.ForeignKey(
        Rater, null=True, blank=True, on_delete=models.CASCADE, related_name="votes", db_index=False
    )
    source = models.CharField(max_length=20, choices=VoteSource.choices, default=VoteSource.LIVE)
    winner = models.CharField(max_length=20, choices=Winner.choices, blank=True)
    verdict_a = models.CharField(max_length=10, choices=Verdict.choices, blank=True)
    verdict_b = models.CharField(max_length=10, choices=Verdict.choices, blank=True)
    answers = models.JSONField(default=dict, blank=True, help_text="Answers to the study's follow-up questions.")
    reason = models.TextField(blank=True)
    seconds_on_page = models.FloatField(null=True, blank=True)
    judge = models.CharField(max_length=200, blank=True, help_text="Imported votes: the judge's label.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["rater", "comparison"], name="one_vote_per_rater_comparison"),
            models.UniqueConstraint(
                fields=["assignment"], condition=Q(assignment__isnull=False), name="one_vote_per_assignment"
            ),
            models.CheckConstraint(
                name="live_vote_has_assignment",
                condition=Q(source=VoteSource.IMPORTED) | (Q(assignment__isnull=False) & Q(rater__isnull=False)),
            ),
            models.CheckConstraint(
                name="vote_is_preference_or_fact_check",
                condition=(~Q(winner="") & Q(verdict_a="") & Q(verdict_b=""))
                | (Q(winner="") & Q(verdict_a__in=Verdict.values) & Q(verdict_b__in=Verdict.values)),
            ),
            models.CheckConstraint(
                name="seconds_non_negative", condition=Q(seconds_on_page__isnull=True) | Q(seconds_on_page__gte=0)
            ),
        ]
        indexes = [models.Index(fields=["comparison", "created_at"], name="vote_by_comparison")]

    def __str__(self) -> str:
        return f"Vote {self.pk}: {self.winner or f'{self.verdict_a} / {self.verdict_b}'}"


class AnalysisSnapshot(models.Model):
    """Cached analysis results (leaderboards, matrices, agreement), computed by a Celery task.

    Pages read the newest snapshot for a key and never compute on request.
    """

    study = models.ForeignKey(Study, null=True, blank=True, on_delete=models.CASCADE, related_name="snapshots")
    key = models.CharField(max_length=200, help_text='What was computed, e.g. "leaderboard" or "leaderboard:trusted".')
    payload = models.JSONField()
    n_votes = models.PositiveIntegerField(default=0)
    compute_seconds = models.FloatField(null=True, blank=True)
    computed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-computed_at"]
        get_latest_by = "computed_at"
        indexes = [models.Index(fields=["study", "key", "-computed_at"], name="snapshot_latest")]

    def __str__(self) -> str:
        return f"{self.key} ({self.computed_at:%Y-%m-%d %H:%M})"


class RenderedText(models.Model):
    """Sanitised HTML of one model text, kept so that it is rendered once (see ratings/engine/rendering.py).

    Keyed by a digest of the renderer's version and the text: a new renderer never reads old rows.
    """

    digest = models.CharField(max_length=64, primary_key=True)
    html = models.TextField()

    def __str__(self) -> str:
        return self.digest[:12]
