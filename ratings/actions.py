"""State changes for studies and their comparisons. Views, tasks and commands call these."""

from itertools import combinations

from django.db import transaction
from django.utils import timezone

from inference_workers.models import Response
from ratings.models import Assignment, AssignmentStatus, Comparison, PairingDesign, Study


def do_release_expired_leases(now=None) -> int:
    """Return leases past their deadline to the pool. Returns how many were released."""
    now = now or timezone.now()
    return Assignment.objects.filter(status=AssignmentStatus.LEASED, lease_expires_at__lte=now).update(
        status=AssignmentStatus.EXPIRED
    )


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
    return len(new)
