"""A study ready for rating, with model names that a blindness check can look for."""

from inference_workers.models import LanguageModel, ModelKind, ModelRole
from ratings.actions.studies import do_create_attention_checks, do_create_comparisons
from ratings.models import PairingDesign, Study, StudyMode
from tests import factories

# Every identifying string of these models; none of them may reach a rater.
SECRET_MODELS = [
    {
        "name": "zyx-imitator-13b",
        "display_name": "Zyxwv Imitator 13B",
        "kind": ModelKind.HF_CHECKPOINT,
        "role": ModelRole.IMITATION,
        "server_path": "/srv/checkpoints/qqimitator-13b-step4000",
        "base_model_name": "Qwertybase-13B",
    },
    {
        "name": "zyx-proprietary",
        "display_name": "Proprietron Ultra",
        "kind": ModelKind.OPENAI_API,
        "role": ModelRole.PROPRIETARY,
        "api_base_url": "https://api.example.invalid/v1",
        "api_model_id": "proprietron-ultra-0613",
        "api_key_env": "PROPRIETRON_KEY",
    },
    {
        "name": "zyx-base-7b",
        "display_name": "Basalisk 7B",
        "kind": ModelKind.GGUF,
        "role": ModelRole.BASE,
        "server_path": "/srv/checkpoints/basalisk-7b.Q4.gguf",
        "gguf_file": "basalisk-7b.Q4.gguf",
    },
]


def secret_strings(models: list[LanguageModel]) -> set[str]:
    found = set()
    for m in models:
        for field in ("name", "display_name", "server_path", "api_model_id", "api_base_url", "gguf_file"):
            value = getattr(m, field)
            if value:
                found.add(value)
        if m.base_model_name:
            found.add(m.base_model_name)
    return found


def rating_study(
    n_prompts: int = 12, n_models: int = 2, n_gold: int = 0, answers=None, references=None, **study_kwargs
) -> Study:
    """A study over n_prompts prompts answered by the first n_models secret models (all pairs).

    ``references(i)`` gives prompt i's reference answers (a fact-check study needs them).
    """
    ps = factories.prompt_set()
    categories = ["writing", "knowledge", "coding", "math"]
    prompts = [
        factories.prompt(
            ps,
            text=f"Question {i}: how would you explain topic {i}?",
            category=categories[i % 4],
            reference_answers=references(i) if references else [],
        )
        for i in range(n_prompts)
    ]
    models = [factories.model(**spec) for spec in SECRET_MODELS[:n_models]]
    for j, m in enumerate(models):
        for i, p in enumerate(prompts):
            text = answers(i, j) if answers else f"Answer number {j} to question {i}.\n\n- point one\n- point two"
            factories.response(m, p, text)
    defaults = {"pairing": PairingDesign.ALL_PAIRS, "attention_check_rate": 0, "lease_seconds": 600}
    study = factories.study(ps, models, **{**defaults, **study_kwargs})
    do_create_comparisons(study)
    if n_gold:
        do_create_attention_checks(study, n_gold)
    return study


def fact_check_study(n_prompts: int = 6, n_models: int = 2, n_gold: int = 0, **study_kwargs) -> Study:
    """A fact-check study: prompt i's reference answer is "Canberra {i}"; model j answers it rightly when j == 0."""
    return rating_study(
        n_prompts=n_prompts,
        n_models=n_models,
        n_gold=n_gold,
        references=lambda i: [f"Canberra {i}", f"the city of Canberra {i}"],
        answers=study_kwargs.pop(
            "answers", lambda i, j: f"It is Canberra {i}." if j == 0 else f"Answer number {j}: Sydney {i}."
        ),
        mode=StudyMode.FACT_CHECK,
        **study_kwargs,
    )


def sibling_study(study: Study, **study_kwargs) -> Study:
    """Another study over the same prompts and models (model names are unique, so not a second rating_study)."""
    other = factories.study(study.prompt_set, list(study.language_models.all()), **study_kwargs)
    do_create_comparisons(other)
    return other
