"""The demo loads the shipped Vicuna-80 data and the live study; loading again adds nothing."""

import pytest

from inference_workers.models import BenchmarkRun, GenerationJob, LanguageModel, Prompt, Response
from ratings.demo import (
    VICUNA80_MODELS,
    add_live_comparisons,
    ensure_demo_accounts,
    load_vicuna80_model,
    load_vicuna80_prompts,
    setup_live_study,
    setup_substance,
)
from ratings.models import Comparison
from ratings.roles import is_researcher

pytestmark = pytest.mark.django_db


def test_live_study_queues_generation_once_and_pairs_answers_as_they_arrive():
    first = setup_live_study(max_new_tokens=32)
    study, job = first.study, first.job
    assert study.prompt_set.prompts.count() == 80
    assert {m.name for m in study.language_models.all()} == {"gpt35", "smollm2-135m-instruct"}
    assert study.reference_model.name == "gpt35"
    assert job.total == 80 and job.status == "queued" and job.decoding_config.max_new_tokens == 32
    assert first.new_comparisons == 0  # SmolLM2 has not answered yet

    # Running the set-up again while the job is queued starts no second job.
    again = setup_live_study(max_new_tokens=32)
    assert again.job.pk == job.pk
    assert GenerationJob.objects.count() == 1

    # Once the worker has stored SmolLM2's answers, every question becomes a comparison,
    # with attention checks at the study's rate; a further call adds nothing.
    smollm2 = LanguageModel.objects.get(name="smollm2-135m-instruct")
    Response.objects.bulk_create(
        Response(model=smollm2, prompt=p, decoding_config=job.decoding_config, text=f"Answer {p.pk}.")
        for p in study.prompt_set.prompts.all()
    )
    assert add_live_comparisons(study) == 80
    assert study.comparisons.filter(is_gold=True).count() == 8
    assert add_live_comparisons(study) == 0
    assert Comparison.objects.filter(study=study).count() == 88
    assert Prompt.objects.count() == 80


def test_substance_set_up_enters_published_scores_once_and_queues_one_run():
    setup_live_study(max_new_tokens=32)
    run = setup_substance(nq_subset=20)
    assert (run.benchmark, run.subset_size, run.subset_seed, run.published) == ("nq_open", 20, 0, False)
    assert setup_substance(nq_subset=20).pk == run.pk
    published = BenchmarkRun.objects.get(published=True)
    assert published.model.name == "gpt35" and published.accuracy == 0.31
    assert "Gudibande" in published.citation


@pytest.mark.parametrize("name", sorted(VICUNA80_MODELS))
def test_every_shipped_model_has_an_answer_to_every_question(name):
    prompt_set = load_vicuna80_prompts()
    model, ids = load_vicuna80_model(prompt_set, name)
    assert len(ids) == 80
    assert not Response.objects.filter(model=model, text="").exists()
    assert LanguageModel.objects.get(name=name).role == VICUNA80_MODELS[name].role


def test_demo_accounts_are_created_once_and_kept_private(tmp_path):
    creds = tmp_path / "credentials.json"
    first = ensure_demo_accounts(creds)
    assert set(first) == {"admin", "researcher"} and all(first.values())
    assert oct(creds.stat().st_mode & 0o777) == "0o600"
    assert ensure_demo_accounts(creds) == first

    from django.contrib.auth import authenticate

    researcher = authenticate(username="researcher", password=first["researcher"])
    assert researcher is not None and is_researcher(researcher) and not researcher.is_superuser
    assert authenticate(username="admin", password=first["admin"]).is_superuser
