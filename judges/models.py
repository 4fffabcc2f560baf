"""LLM judges: a registered model asked, through a prompt template, which of two answers is better.

A judge's verdicts live here and nowhere else: they never become ``ratings.Vote`` rows, so human
leaderboards stay human. Every verdict keeps the judge's full text; one whose text names no verdict is
stored as unparsed, never as a tie.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from inference_workers.models import LanguageModel, Prompt, Response, Shard, ShardedJob, shard_constraints
from judges.verdicts import VerdictParser, template_problem


class JudgePrompt(models.Model):
    """A prompt template: system text, and user text with {question}, {answer_1} and {answer_2}."""

    name = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    system = models.TextField(blank=True)
    user = models.TextField(help_text="Must contain {question}, {answer_1} and {answer_2}.")
    parser = models.CharField(max_length=20, choices=VerdictParser.choices)
    source = models.TextField(blank=True, help_text="Where the template comes from, and its licence.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.title

    def clean(self):
        problem = template_problem(self.system, self.user)
        if problem:
            raise ValidationError({"user": problem})


class Judge(models.Model):
    """A judge configuration: the model, the template and the decoding settings; or a name for imported verdicts."""

    name = models.SlugField(max_length=100, unique=True)
    display_name = models.CharField(max_length=200, blank=True)
    model = models.ForeignKey(
        LanguageModel, null=True, blank=True, on_delete=models.PROTECT, related_name="judge_configs"
    )
    prompt = models.ForeignKey(JudgePrompt, null=True, blank=True, on_delete=models.PROTECT, related_name="judges")
    temperature = models.FloatField(default=0.0)
    top_p = models.FloatField(default=1.0)
    max_new_tokens = models.PositiveIntegerField(default=512)
    seed = models.BigIntegerField(default=0)
    imported = models.BooleanField(default=False, help_text="Verdicts loaded from files; the judge is not run here.")
    source = models.TextField(blank=True, help_text="Imported judges: where the verdicts come from.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                name="run_judge_has_model_and_prompt",
                condition=Q(imported=True) | (Q(model__isnull=False) & Q(prompt__isnull=False)),
            ),
            models.CheckConstraint(name="judge_temperature_non_negative", condition=Q(temperature__gte=0)),
            models.CheckConstraint(name="judge_top_p_in_unit_interval", condition=Q(top_p__gt=0) & Q(top_p__lte=1)),
        ]

    def __str__(self) -> str:
        return self.display_name or self.name


class JudgingJob(ShardedJob):
    """A judge on a study's comparisons (or a seeded sample of them), each in both orders."""

    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="jobs")
    study = models.ForeignKey("ratings.Study", on_delete=models.CASCADE, related_name="judging_jobs")
    sample_size = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: every comparison.")
    sample_seed = models.BigIntegerField(default=0)
    total = models.PositiveIntegerField(default=0, help_text="Verdicts to ask for: comparisons x 2 orders.")
    done = models.PositiveIntegerField(default=0)
    unparsed = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    api_requests = models.PositiveIntegerField(default=0)
    api_retries = models.PositiveIntegerField(default=0)
    verdicts_per_second = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    queue = models.CharField(max_length=100, blank=True, help_text="Celery queue; empty: the judge model's own.")
    cancel_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(name="judging_done_within_total", condition=Q(done__lte=F("total"))),
            models.CheckConstraint(name="judging_cost_non_negative", condition=Q(cost_usd__gte=0)),
        ]

    def __str__(self) -> str:
        return f"{self.judge} on {self.study} ({self.status})"

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0


class JudgingShard(Shard):
    """Orders of a judging job (``keys``: [first response id, second response id] pairs)."""

    job = models.ForeignKey(JudgingJob, on_delete=models.CASCADE, related_name="shards")

    class Meta(Shard.Meta):
        constraints = shard_constraints("judging")


class Outcome(models.TextChoices):
    FIRST = "first", "The answer shown first"
    SECOND = "second", "The answer shown second"
    TIE = "tie", "Tie"
    UNPARSED = "unparsed", "Unparsed (no verdict found in the text)"


class VerdictSource(models.TextChoices):
    RUN = "run", "Run here"
    IMPORTED = "imported", "Imported"


class JudgeVerdict(models.Model):
    """One judge's verdict on two answers to one prompt, shown in one order."""

    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="verdicts")
    study = models.ForeignKey("ratings.Study", on_delete=models.CASCADE, related_name="judge_verdicts")
    job = models.ForeignKey(JudgingJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="verdicts")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="judge_verdicts")
    response_first = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    response_second = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    # 0 for the first verdict on an item in this order; 1, 2, ... for the same judge judging it again.
    repeat = models.PositiveSmallIntegerField(default=0)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    text = models.TextField(blank=True, help_text="The judge's full text.")
    source = models.CharField(max_length=10, choices=VerdictSource.choices, default=VerdictSource.RUN)
    external_id = models.CharField(max_length=200, blank=True, help_text="Imported: the id in the source file.")
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["judge", "study", "response_first", "response_second", "repeat"], name="one_verdict_per_order"
            ),
            models.CheckConstraint(name="verdict_two_answers", condition=~Q(response_first=F("response_second"))),
            models.CheckConstraint(name="verdict_outcome_known", condition=Q(outcome__in=Outcome.values)),
        ]
        indexes = [models.Index(fields=["study", "judge"], name="verdict_by_study_judge")]

    def __str__(self) -> str:
        return f"{self.judge}: {self.outcome}"
