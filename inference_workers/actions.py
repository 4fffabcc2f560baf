"""State changes for models, prompts and responses. Views, tasks and commands call these."""

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from inference_workers.models import DecodingConfig, LanguageModel, Prompt, PromptSet, Response
from inference_workers.style_features import style_features

STYLE_BATCH = 500


def do_compute_style_features(response_ids: Iterable[int] | None = None, *, only_missing: bool = False) -> int:
    """Compute and store style features for the given responses (all when None). Returns the count."""
    queryset = Response.objects.order_by("pk")
    if response_ids is not None:
        queryset = queryset.filter(pk__in=list(response_ids))
    if only_missing:
        queryset = queryset.filter(style_computed_at__isnull=True)
    updated = 0
    now = timezone.now()
    fields = ["length_words", "length_chars", "n_headers", "n_list_items", "n_bold", "n_code_blocks"]
    batch: list[Response] = []
    for response in queryset.only("pk", "text").iterator(chunk_size=STYLE_BATCH):
        for name, value in style_features(response.text).as_dict().items():
            setattr(response, name, value)
        response.style_computed_at = now
        batch.append(response)
        if len(batch) >= STYLE_BATCH:
            updated += _save_style(batch, fields)
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


def imported_decoding_config() -> DecodingConfig:
    """The single decoding config shared by all answers produced outside stylegap."""
    template = DecodingConfig(imported=True, temperature=0, top_p=1, max_new_tokens=1, seed=0)
    config, _ = DecodingConfig.objects.get_or_create(
        fingerprint=template.compute_fingerprint(),
        defaults={f: getattr(template, f) for f in DecodingConfig.FINGERPRINT_FIELDS},
    )
    return config


def do_import_prompts(prompt_set: PromptSet, records: Iterable[dict]) -> int:
    """Add prompts ({external_id, text, category}) to a set; existing ids are left alone."""
    existing = set(prompt_set.prompts.values_list("external_id", flat=True))
    new = [
        Prompt(prompt_set=prompt_set, external_id=str(r["external_id"]), text=r["text"], category=r.get("category", ""))
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
