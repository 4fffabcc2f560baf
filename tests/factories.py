"""Small builders for test rows. Each returns a saved object with sensible defaults."""

import itertools
from datetime import timedelta

from django.utils import timezone

from inference_workers.actions import imported_decoding_config
from inference_workers.models import LanguageModel, ModelKind, ModelRole, ModelStatus, Prompt, PromptSet, Response
from ratings.models import Assignment, Comparison, Rater, Study, StudyStatus

_seq = itertools.count(1)


def prompt_set(**kwargs) -> PromptSet:
    n = next(_seq)
    return PromptSet.objects.create(**{"name": f"set-{n}", "title": f"Set {n}", **kwargs})


def prompt(prompt_set_: PromptSet, **kwargs) -> Prompt:
    n = next(_seq)
    return Prompt.objects.create(
        **{"prompt_set": prompt_set_, "external_id": str(n), "text": f"Question {n}?", **kwargs}
    )


def model(**kwargs) -> LanguageModel:
    n = next(_seq)
    defaults = {
        "name": f"model-{n}",
        "kind": ModelKind.IMPORTED,
        "role": ModelRole.IMITATION,
        "status": ModelStatus.READY,
    }
    return LanguageModel.objects.create(**{**defaults, **kwargs})


def smollm2(**kwargs) -> LanguageModel:
    """The packaged SmolLM2-135M-Instruct GGUF as a ready local model (what the real worker loads)."""
    from inference_workers.backends.local import SMOLLM2_GGUF, smollm2_folder

    fields = {"name": "smollm2-135m-instruct", "kind": ModelKind.GGUF, "role": ModelRole.BASE}
    return model(**{**fields, "server_path": str(smollm2_folder()), "gguf_file": SMOLLM2_GGUF, **kwargs})


def response(model_: LanguageModel, prompt_: Prompt, text: str = "An answer.", **kwargs) -> Response:
    return Response.objects.create(
        model=model_,
        prompt=prompt_,
        decoding_config=kwargs.pop("decoding_config", imported_decoding_config()),
        text=text,
        **kwargs,
    )


def study(prompt_set_: PromptSet, models=(), **kwargs) -> Study:
    n = next(_seq)
    s = Study.objects.create(
        **{"slug": f"study-{n}", "title": f"Study {n}", "prompt_set": prompt_set_, "status": StudyStatus.OPEN, **kwargs}
    )
    s.language_models.add(*models)
    return s


def comparison_setup():
    """A study with one prompt answered by two models, and their comparison."""
    ps = prompt_set()
    p = prompt(ps)
    m1, m2 = model(), model()
    r1, r2 = response(m1, p, "First answer."), response(m2, p, "Second answer.")
    s = study(ps, [m1, m2])
    c = Comparison.objects.create(study=s, prompt=p, response_a=r1, response_b=r2)
    return c


def rater(study_: Study, **kwargs) -> Rater:
    return Rater.objects.create(study=study_, **kwargs)


def assignment(comparison_: Comparison, rater_: Rater, **kwargs) -> Assignment:
    now = timezone.now()
    defaults = {"left_is_a": True, "leased_at": now, "lease_expires_at": now + timedelta(minutes=10)}
    return Assignment.objects.create(comparison=comparison_, rater=rater_, **{**defaults, **kwargs})
