"""A study's comparisons and attention checks."""

import secrets
from itertools import combinations

from django.db import transaction

from inference_workers.actions import imported_decoding_config, imported_model
from inference_workers.models import LanguageModel, Prompt, Response
from ratings.engine.rendering import prepare_texts
from ratings.models import Comparison, PairingDesign, Study
from ratings.modes import mode_for

ATTENTION_CHECK_MODEL = "attention-check"


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
    How a check is passed, and which off-topic answers fit, is the study mode's (``ratings/modes/``).
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
    fits = mode_for(study).off_topic_fits(study)
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


def do_add_attention_checks_at_rate(study: Study) -> int:
    """Add the attention checks the study still lacks: its rate times its comparisons, and at least its
    qualification round. Returns how many were added."""
    wanted = round(study.attention_check_rate * study.comparisons.filter(is_gold=False).count())
    missing = max(wanted, study.qualification_items) - study.comparisons.filter(is_gold=True).count()
    return do_create_attention_checks(study, missing) if missing > 0 else 0
