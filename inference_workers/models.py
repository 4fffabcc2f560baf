"""What answers, what it is asked, and what it said.

Prompt sets live here rather than in ``ratings`` because generation consumes them:
``ratings`` (studies, comparisons, votes) depends on this app and never the reverse.
"""

import hashlib
import json
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from inference_workers.chat_templates import TemplateRefused, check_template
from inference_workers.egress import EgressRefused, check_endpoint, check_key_env


class ModelKind(models.TextChoices):
    HF_CHECKPOINT = "hf_checkpoint", "Hugging Face checkpoint (safetensors)"
    GGUF = "gguf", "GGUF file"
    LORA = "lora", "LoRA adapter over a base model"
    OPENAI_API = "openai_api", "OpenAI-compatible chat API"
    IMPORTED = "imported", "Imported outputs"


class ModelRole(models.TextChoices):
    IMITATION = "imitation", "Imitation"
    PROPRIETARY = "proprietary", "Proprietary"
    BASE = "base", "Base"


class ModelStatus(models.TextChoices):
    PENDING = "pending", "Waiting for validation"
    VALIDATING = "validating", "Validating"
    READY = "ready", "Ready"
    REFUSED = "refused", "Refused"


class LanguageModel(models.Model):
    """A thing that answers: a checkpoint, an adapter, an API, or a file of imported outputs."""

    name = models.SlugField(max_length=100, unique=True, help_text="Short unique name, e.g. vicuna-13b.")
    display_name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=20, choices=ModelKind.choices)
    role = models.CharField(max_length=20, choices=ModelRole.choices)
    status = models.CharField(max_length=20, choices=ModelStatus.choices, default=ModelStatus.PENDING)
    status_message = models.TextField(blank=True, help_text="Why validation refused it, in plain words.")
    # Set while its validation task has not reached the broker (inference_workers/dispatch.py).
    unsent_since = models.DateTimeField(null=True, blank=True, editable=False)

    # Where the weights are (one source at most): an uploaded archive, a path on the worker's disk inside
    # STYLEGAP_CHECKPOINT_DIRS, or a Hugging Face Hub repo the worker downloads (sources/).
    checkpoint = models.FileField(upload_to="checkpoints/%Y/%m/", blank=True)
    # The SHA-256 a resumable upload announced for the archive: the worker checks the file against it.
    checkpoint_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    server_path = models.CharField(
        max_length=1000, blank=True, help_text="A folder on the worker, inside a directory of STYLEGAP_CHECKPOINT_DIRS."
    )
    hub_repo_id = models.CharField(
        max_length=200, blank=True, help_text="A Hugging Face Hub model repo, e.g. HuggingFaceTB/SmolLM2-135M."
    )
    hub_revision = models.CharField(
        max_length=200, blank=True, help_text="A commit sha, or a branch or tag the worker pins to its commit."
    )
    hub_commit = models.CharField(max_length=40, blank=True, editable=False)
    # While the worker fetches the weights from the Hub: bytes on disk so far, and in all.
    download_done_bytes = models.BigIntegerField(null=True, blank=True, editable=False)
    download_total_bytes = models.BigIntegerField(null=True, blank=True, editable=False)
    gguf_file = models.CharField(max_length=300, blank=True, help_text="File name inside the checkpoint.")
    base = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="adapters",
        help_text="The registered base model a LoRA adapter applies to.",
    )
    # OpenAI-compatible API. The key itself is never stored: only the name of the
    # environment variable on the worker that holds it.
    api_base_url = models.URLField(blank=True)
    api_model_id = models.CharField(max_length=200, blank=True)
    api_key_env = models.CharField(max_length=100, blank=True)
    prompt_price_per_mtok = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    completion_price_per_mtok = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)

    # Research metadata.
    base_model_name = models.CharField(max_length=200, blank=True, help_text="e.g. LLaMA-13B")
    # Lineage (not the LoRA weights' base above): the registered model this one was fine-tuned
    # from, so charts can draw an arrow from the base to its fine-tunes.
    fine_tuned_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="fine_tunes"
    )
    parameter_count = models.BigIntegerField(null=True, blank=True)
    imitation_data_source = models.CharField(max_length=200, blank=True, help_text="e.g. ShareGPT")
    imitation_data_tokens = models.BigIntegerField(null=True, blank=True)
    notes = models.TextField(blank=True)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "model"
        constraints = [
            models.CheckConstraint(name="lora_needs_base", condition=~Q(kind=ModelKind.LORA) | Q(base__isnull=False)),
            models.CheckConstraint(
                name="api_needs_endpoint",
                condition=~Q(kind=ModelKind.OPENAI_API) | (~Q(api_base_url="") & ~Q(api_model_id="")),
            ),
            models.CheckConstraint(name="not_own_base", condition=~Q(base=F("id"))),
            models.CheckConstraint(
                name="one_weights_source",
                condition=(Q(checkpoint="") & Q(server_path=""))
                | (Q(checkpoint="") & Q(hub_repo_id=""))
                | (Q(server_path="") & Q(hub_repo_id="")),
            ),
            models.CheckConstraint(name="hub_repo_needs_revision", condition=Q(hub_repo_id="") | ~Q(hub_revision="")),
            models.CheckConstraint(
                name="parameter_count_positive", condition=Q(parameter_count__isnull=True) | Q(parameter_count__gt=0)
            ),
            models.CheckConstraint(
                name="imitation_tokens_non_negative",
                condition=Q(imitation_data_tokens__isnull=True) | Q(imitation_data_tokens__gte=0),
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.name

    def clean(self):
        super().clean()
        self._clean_weights_source()
        if self.kind == ModelKind.OPENAI_API:
            try:
                check_key_env(self.api_key_env)
            except EgressRefused as exc:
                raise ValidationError({"api_key_env": str(exc)}) from exc
            if self.api_base_url:
                try:
                    check_endpoint(self.api_base_url, "")
                except EgressRefused as exc:
                    raise ValidationError({"api_base_url": str(exc)}) from exc

    def _clean_weights_source(self) -> None:
        from inference_workers.checkpoints import CheckpointRefused
        from inference_workers.sources import hub, server_path

        given = [name for name in ("checkpoint", "server_path", "hub_repo_id") if getattr(self, name)]
        if len(given) > 1:
            raise ValidationError(f"Give one source for the weights, not {len(given)} ({', '.join(given)}).")
        try:
            if self.server_path:
                server_path.allowed_folder(self.server_path)
            if self.hub_repo_id:
                hub.check_repo_reference(self.hub_repo_id, self.hub_revision)
        except CheckpointRefused as exc:
            raise ValidationError({given[0]: str(exc)}) from exc


class PromptSet(models.Model):
    """A named list of prompts that models answer and studies compare."""

    name = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    source = models.TextField(blank=True, help_text="Where the prompts come from, and their licence.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.title


class Prompt(models.Model):
    """One question: plain text, or chat turns as a list of {role, content}."""

    # unique_prompt_per_set leads with prompt_set: it serves prompt-set lookups too.
    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="prompts", db_index=False)
    external_id = models.CharField(max_length=100, help_text="The id in the source data set.")
    text = models.TextField()
    turns = models.JSONField(null=True, blank=True)
    category = models.CharField(max_length=100, blank=True)
    reference_answers = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["prompt_set", "id"]
        constraints = [
            models.UniqueConstraint(fields=["prompt_set", "external_id"], name="unique_prompt_per_set"),
            models.CheckConstraint(name="prompt_text_not_empty", condition=~Q(text="")),
        ]

    def __str__(self) -> str:
        return f"{self.prompt_set.name}/{self.external_id}"


class DecodingConfig(models.Model):
    """How answers were produced. Imported answers share one config with ``imported`` set."""

    fingerprint = models.CharField(max_length=64, unique=True, editable=False)
    imported = models.BooleanField(default=False)
    temperature = models.FloatField(default=0.7)
    top_p = models.FloatField(default=0.9)
    max_new_tokens = models.PositiveIntegerField(default=512)
    seed = models.BigIntegerField(default=0)
    system_prompt = models.TextField(blank=True)
    chat_template = models.TextField(blank=True, help_text="Jinja template; empty uses the model's own.")
    trim_to_sentence = models.BooleanField(
        default=False, help_text="An answer cut off at max_new_tokens is trimmed to its last complete sentence."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(name="temperature_non_negative", condition=Q(temperature__gte=0)),
            models.CheckConstraint(name="top_p_in_unit_interval", condition=Q(top_p__gt=0) & Q(top_p__lte=1)),
            models.CheckConstraint(name="max_new_tokens_positive", condition=Q(max_new_tokens__gt=0)),
        ]

    FINGERPRINT_FIELDS = (
        "imported",
        "temperature",
        "top_p",
        "max_new_tokens",
        "seed",
        "system_prompt",
        "chat_template",
        "trim_to_sentence",
    )

    def __str__(self) -> str:
        if self.imported:
            return "imported"
        return f"T={self.temperature} top_p={self.top_p} max={self.max_new_tokens} seed={self.seed}"

    def save(self, *args, **kwargs):
        self.fingerprint = self.compute_fingerprint()
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        try:
            check_template(self.chat_template)
        except TemplateRefused as exc:
            raise ValidationError({"chat_template": f"The chat template is refused: {exc}"}) from exc

    def compute_fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()

    def as_dict(self) -> dict:
        values = {f: getattr(self, f) for f in self.FINGERPRINT_FIELDS}
        if not values["trim_to_sentence"]:  # configs from before the setting keep their fingerprints
            del values["trim_to_sentence"]
        return values


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class ShardStatus(models.TextChoices):
    OPEN = "open", "Open"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ShardedJob(models.Model):
    """What every job that workers share has (generation jobs, benchmark runs, judging jobs): its status,
    the error it failed with, its dispatch id (deliveries of an older one step aside), the heartbeat any
    worker on it writes, and when it ended. Its items are cut into shards (``Shard``); inference_workers/
    shards.py runs it."""

    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    error = models.TextField(blank=True)
    celery_task_id = models.CharField(max_length=255, blank=True)
    # Written by every worker on it; a running job whose heartbeat stops lost all its workers.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_finished(self) -> bool:
        return self.status in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


class Shard(models.Model):
    """A piece of a job (prompts, benchmark items or judging orders) that one worker takes at a time.

    A worker claims an open shard, or a running one whose lease lapsed (its worker died), with
    ``SELECT ... FOR UPDATE SKIP LOCKED`` (``claims.claim_shard``); its heartbeat renews the lease while it
    works. ``keys`` are the items' keys as the job kind stores them; a shard only ever asks for the ones
    not stored yet, so a shard taken over resumes where its last worker stopped.
    The concrete tables (``GenerationShard``, ``BenchmarkShard``, ``judges.JudgingShard``) add ``job``.
    """

    index = models.PositiveIntegerField()
    keys = models.JSONField(default=list)
    size = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, choices=ShardStatus.choices, default=ShardStatus.OPEN)
    # Claims so far, takeovers of a lapsed lease included: the third failed one fails the job.
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True, help_text="The worker holding it (or that last held it).")
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A takeover keeps who held the shard before and when it last heard from it.
    previous_worker = models.CharField(max_length=255, blank=True)
    previous_heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Items stored per second by its worker (this claim); the job's ETA divides what is left by their sum.
    items_per_second = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        abstract = True
        ordering = ["job_id", "index"]

    def __str__(self) -> str:
        return f"shard {self.index} of {self.job_id} ({self.status})"

    @property
    def seconds_to_takeover(self) -> float | None:
        """From the last heartbeat of the worker it was taken from to this claim."""
        if self.previous_heartbeat_at is None or self.claimed_at is None:
            return None
        return (self.claimed_at - self.previous_heartbeat_at).total_seconds()


def shard_constraints(prefix: str) -> list:
    return [
        models.UniqueConstraint(fields=["job", "index"], name=f"{prefix}_shard_index_unique"),
        models.CheckConstraint(name=f"{prefix}_shard_done_within_size", condition=Q(done__lte=F("size"))),
        models.CheckConstraint(
            name=f"{prefix}_shard_running_has_lease",
            condition=~Q(status=ShardStatus.RUNNING) | Q(lease_expires_at__isnull=False),
        ),
    ]


class GenerationJob(ShardedJob):
    """Model x prompt set x decoding config: produce every missing Response."""

    model = models.ForeignKey(LanguageModel, on_delete=models.CASCADE, related_name="generation_jobs")
    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="generation_jobs")
    decoding_config = models.ForeignKey(DecodingConfig, on_delete=models.PROTECT, related_name="generation_jobs")
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    # Of the batch being decoded: written every second or so, folded into completion_tokens when it is stored.
    tokens_in_flight = models.BigIntegerField(default=0)
    tokens_per_second = models.FloatField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    # Set while its task has not reached the broker (inference_workers/dispatch.py).
    unsent_since = models.DateTimeField(null=True, blank=True, editable=False)
    queue = models.CharField(max_length=100, blank=True, help_text="Celery queue; empty: the model's own.")
    cancel_requested = models.BooleanField(
        default=False,
        help_text="Checked by the worker between batches and, for a local model, every second or so during one.",
    )
    eta_seconds = models.FloatField(null=True, blank=True)
    api_requests = models.PositiveIntegerField(default=0)
    api_retries = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(name="job_done_within_total", condition=Q(done__lte=F("total"))),
            models.CheckConstraint(name="job_cost_non_negative", condition=Q(cost_usd__gte=0)),
            models.CheckConstraint(name="job_tokens_in_flight_non_negative", condition=Q(tokens_in_flight__gte=0)),
        ]

    def __str__(self) -> str:
        return f"{self.model} on {self.prompt_set} ({self.status})"

    @property
    def tokens_so_far(self) -> int:
        """Completion tokens of the stored answers and of the batch being decoded."""
        return self.completion_tokens + self.tokens_in_flight


class GenerationShard(Shard):
    """Prompts of a generation job (``keys``: prompt ids) and the tokens of the batch its worker decodes."""

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="shards")
    tokens_in_flight = models.BigIntegerField(default=0)
    tokens_per_second = models.FloatField(null=True, blank=True)

    class Meta(Shard.Meta):
        constraints = shard_constraints("generation")


class Response(models.Model):
    """One model's answer to one prompt under one decoding config, with its style features."""

    # one_response_per_model_prompt_config leads with model: it serves model lookups too.
    model = models.ForeignKey(LanguageModel, on_delete=models.CASCADE, related_name="responses", db_index=False)
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="responses")
    decoding_config = models.ForeignKey(DecodingConfig, on_delete=models.PROTECT, related_name="responses")
    # Indexed only where set (response_by_job): imported answers, most rows of a big study, have none.
    job = models.ForeignKey(
        GenerationJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="responses", db_index=False
    )
    text = models.TextField()
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Imported answers (battle files): which text this is, so different texts by one model to one
    # question never merge ("t" + hash of the text, or "m" + hash of conv_metadata counts when the
    # file had no text); empty for generated answers. ``turns``: the answers of a multi-turn
    # conversation, one a turn (``text`` joins them).
    text_digest = models.CharField(max_length=32, blank=True, default="")
    turns = models.JSONField(null=True, blank=True)

    # Style features (Chatbot Arena's style control); null until computed. An imported answer with
    # only conv_metadata holds its counts here, its length in tokens (style control uses ratios).
    length_words = models.PositiveIntegerField(null=True, blank=True)
    length_chars = models.PositiveIntegerField(null=True, blank=True)
    n_headers = models.PositiveIntegerField(null=True, blank=True)
    n_list_items = models.PositiveIntegerField(null=True, blank=True)
    n_bold = models.PositiveIntegerField(null=True, blank=True)
    n_code_blocks = models.PositiveIntegerField(null=True, blank=True)
    style_computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["prompt_id", "model_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "prompt", "decoding_config", "text_digest"],
                name="one_response_per_model_prompt_config",
            ),
            # Lets the database check that a comparison's two responses share its prompt.
            models.UniqueConstraint(fields=["id", "prompt"], name="response_id_prompt"),
        ]
        indexes = [models.Index(fields=["job"], name="response_by_job", condition=Q(job__isnull=False))]

    def __str__(self) -> str:
        return f"{self.model.name} on {self.prompt}"


class Benchmark(models.TextChoices):
    NQ_OPEN = "nq_open", "NQ-open (exact match)"
    TRUTHFULQA_MC1 = "truthfulqa_mc1", "TruthfulQA MC1"
    TRUTHFULQA_GEN = "truthfulqa_gen", "TruthfulQA (generation)"
    MMLU = "mmlu", "MMLU (5-shot)"
    HUMANEVAL = "humaneval", "HumanEval (pass@1)"


class BenchmarkRun(ShardedJob):
    """A model's score on a substance benchmark: measured here, or published elsewhere."""

    model = models.ForeignKey(LanguageModel, on_delete=models.CASCADE, related_name="benchmark_runs")
    benchmark = models.CharField(max_length=30, choices=Benchmark.choices)
    published = models.BooleanField(default=False, help_text="Entered from a publication, not measured here.")
    citation = models.TextField(blank=True)
    # A published score's provenance, as imported (import_published_scores): the setting it was
    # measured in (e.g. "5-shot"), where exactly it was read, and any caveat.
    setting = models.CharField(max_length=300, blank=True)
    source_detail = models.TextField(blank=True)
    note = models.TextField(blank=True)
    # Which of several disagreeing published scores a chart shows (substance/published.py).
    primary_source = models.BooleanField(default=False)
    published_on = models.CharField(max_length=10, blank=True, help_text="YYYY, YYYY-MM or YYYY-MM-DD")
    source_order = models.PositiveIntegerField(null=True, blank=True, help_text="Row order in the imported file.")
    prompting = models.TextField(blank=True, help_text="The prompt format used, as shown on the results page.")
    subset_size = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: the full set.")
    subset_seed = models.BigIntegerField(null=True, blank=True)
    n_items = models.PositiveIntegerField(default=0)
    n_correct = models.PositiveIntegerField(default=0)
    accuracy = models.FloatField(null=True, blank=True)
    queue = models.CharField(max_length=100, blank=True, help_text="Celery queue; empty: the model's own.")
    # Set while its task has not reached the broker (inference_workers/dispatch.py).
    unsent_since = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(name="correct_within_items", condition=Q(n_correct__lte=F("n_items"))),
            models.CheckConstraint(
                name="accuracy_in_unit_interval",
                condition=Q(accuracy__isnull=True) | (Q(accuracy__gte=0) & Q(accuracy__lte=1)),
            ),
            models.CheckConstraint(name="published_has_citation", condition=Q(published=False) | ~Q(citation="")),
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.get_benchmark_display()}"


class BenchmarkItem(models.Model):
    """One question of a benchmark run: what the model said and whether it was right."""

    run = models.ForeignKey(BenchmarkRun, on_delete=models.CASCADE, related_name="items")
    item_id = models.CharField(max_length=100)
    question = models.TextField()
    prediction = models.TextField(blank=True)
    gold = models.JSONField(default=list)
    correct = models.BooleanField()
    # Why an item failed where there is more to say than right or wrong (HumanEval: the sandbox's verdict).
    detail = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "item_id"], name="one_result_per_item")]

    def __str__(self) -> str:
        return f"{self.run} item {self.item_id}"


class CheckpointUpload(models.Model):
    """A resumable (tus) upload of one model's checkpoint archive, received in chunks straight to disk.

    The bytes received so far are the size of the partial file (sources/resumable.py), not a column: a
    chunk cut off mid-way still counts what reached the disk, and the client resumes from there.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.ForeignKey(LanguageModel, on_delete=models.CASCADE, related_name="uploads")
    filename = models.CharField(max_length=255)
    length = models.BigIntegerField(help_text="The archive's size in bytes, announced at creation.")
    sha256 = models.CharField(max_length=64, help_text="The whole archive's SHA-256 (hex), announced at creation.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(name="upload_length_positive", condition=Q(length__gt=0)),
            models.CheckConstraint(name="upload_sha256_is_hex", condition=Q(sha256__regex=r"^[0-9a-f]{64}$")),
        ]

    def __str__(self) -> str:
        return f"{self.filename} for {self.model}"


class BenchmarkShard(Shard):
    """Items of a measured benchmark run (``keys``: item ids)."""

    job = models.ForeignKey(BenchmarkRun, on_delete=models.CASCADE, related_name="shards")

    class Meta(Shard.Meta):
        constraints = shard_constraints("benchmark")
