"""Storing battles (``ratings/analysis/battles.py`` reads them) as an imported study's votes."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction

from inference_workers.actions import imported_decoding_config
from inference_workers.models import LanguageModel, ModelKind, ModelRole, ModelStatus, Prompt, PromptSet, Response
from ratings.analysis.battles import WINNER_TO_VOTE, Battle
from ratings.models import Comparison, Study, StudyStatus, Vote, VoteSource


@dataclass(frozen=True)
class ImportResult:
    study: Study
    votes: int
    new_models: list[str]
    new_prompts: int
    new_responses: int
    new_comparisons: int


def _study_for(slug: str) -> Study:
    study = Study.objects.filter(slug=slug).select_related("prompt_set").first()
    if study is not None:
        return study
    prompt_set, _ = PromptSet.objects.get_or_create(
        name=slug[:100],
        defaults={
            "title": f"Questions of {slug}",
            "source": "Imported with battles (Chatbot Arena clean-battle JSONL).",
        },
    )
    return Study.objects.create(
        slug=slug, title=slug, prompt_set=prompt_set, imported=True, status=StudyStatus.CLOSED, votes_per_comparison=1
    )


@transaction.atomic
def do_import_battles(
    slug: str, battles: Iterable[Battle], model_defaults: dict[str, dict] | None = None
) -> ImportResult:
    """Store battles as imported votes in the study ``slug`` (created when missing), with their models,
    prompts, answers and comparisons. All or nothing.

    An answer already stored for a model and question is kept (one imported answer per model and
    prompt). ``model_defaults`` gives fields for models created here (role, display name, metadata).
    """
    battles = list(battles)
    study = _study_for(slug)
    prompt_set = study.prompt_set
    config = imported_decoding_config()
    model_defaults = model_defaults or {}

    names = sorted({b.model_a for b in battles} | {b.model_b for b in battles})
    models = {m.name: m for m in LanguageModel.objects.filter(name__in=names)}
    new_models = [n for n in names if n not in models]
    for name in new_models:
        defaults = {
            "role": ModelRole.IMITATION,
            "notes": "Created by a battle import; check its role and metadata.",
            **model_defaults.get(name, {}),
        }
        models[name] = LanguageModel.objects.create(
            name=name, kind=ModelKind.IMPORTED, status=ModelStatus.READY, **defaults
        )
    study.language_models.add(*models.values())

    prompts = {p.external_id: p for p in prompt_set.prompts.all()}
    new_prompts = []
    for b in battles:
        if b.question_id not in prompts:
            prompts[b.question_id] = Prompt(
                prompt_set=prompt_set,
                external_id=b.question_id,
                text=b.question or f"(question {b.question_id}: its text was not in the battle file)",
            )
            new_prompts.append(prompts[b.question_id])
    Prompt.objects.bulk_create(new_prompts)

    responses = {
        (r.model_id, r.prompt_id): r
        for r in Response.objects.filter(prompt__prompt_set=prompt_set, model__in=models.values()).order_by("pk")
    }
    new_responses: dict[tuple[int, int], Response] = {}
    for b in battles:
        prompt = prompts[b.question_id]
        for name, text in ((b.model_a, b.answer_a), (b.model_b, b.answer_b)):
            key = (models[name].pk, prompt.pk)
            if key not in responses and key not in new_responses:
                new_responses[key] = Response(
                    model=models[name], prompt=prompt, decoding_config=config, text=text or ""
                )
    Response.objects.bulk_create(new_responses.values())
    responses.update(new_responses)

    comparisons = {(c.response_a_id, c.response_b_id): c for c in study.comparisons.all()}
    new_comparisons = {}
    for b in battles:
        prompt = prompts[b.question_id]
        ra, rb = responses[(models[b.model_a].pk, prompt.pk)], responses[(models[b.model_b].pk, prompt.pk)]
        if (ra.pk, rb.pk) not in comparisons and (ra.pk, rb.pk) not in new_comparisons:
            new_comparisons[(ra.pk, rb.pk)] = Comparison(study=study, prompt=prompt, response_a=ra, response_b=rb)
    Comparison.objects.bulk_create(new_comparisons.values())
    comparisons.update(new_comparisons)

    votes = []
    for b in battles:
        prompt = prompts[b.question_id]
        ra, rb = responses[(models[b.model_a].pk, prompt.pk)], responses[(models[b.model_b].pk, prompt.pk)]
        votes.append(
            Vote(
                comparison=comparisons[(ra.pk, rb.pk)],
                source=VoteSource.IMPORTED,
                winner=WINNER_TO_VOTE[b.winner],
                judge=b.judge,
            )
        )
    Vote.objects.bulk_create(votes)
    stamped = []
    for vote, b in zip(votes, battles, strict=True):
        if b.tstamp is not None:
            vote.created_at = datetime.fromtimestamp(b.tstamp, tz=UTC)
            stamped.append(vote)
    Vote.objects.bulk_update(stamped, ["created_at"], batch_size=1000)
    return ImportResult(
        study=study,
        votes=len(votes),
        new_models=new_models,
        new_prompts=len(new_prompts),
        new_responses=len(new_responses),
        new_comparisons=len(new_comparisons),
    )
