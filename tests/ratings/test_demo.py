"""The demo loads the shipped Vicuna-80 data and the live study; loading again adds nothing."""

import pytest

from inference_workers.models import BenchmarkRun, GenerationJob, LanguageModel, Prompt, Response
from inference_workers.substance.datasets import efficientqa_test_rated
from inference_workers.substance.scoring import contains_match
from ratings.demo.studies import (
    EFFICIENTQA_MODEL,
    VICUNA80_MODELS,
    add_live_comparisons,
    ensure_demo_accounts,
    load_vicuna80_model,
    load_vicuna80_prompts,
    setup_fact_check_study,
    setup_live_study,
    setup_substance,
)
from ratings.models import Comparison, StudyMode
from webapp.roles import is_researcher

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
    published = BenchmarkRun.objects.get(published=True, benchmark="nq_open", model__name="gpt35")
    assert published.model.name == "gpt35" and published.accuracy == 0.31
    assert "Gudibande" in published.citation
    # ChatGPT's other published scores come with it, each with its source; a second set-up adds none.
    gpt35 = BenchmarkRun.objects.filter(published=True, model__name="gpt35")
    assert set(gpt35.values_list("benchmark", flat=True)) == {
        "nq_open",
        "mmlu",
        "humaneval",
    }
    assert all(r.citation for r in BenchmarkRun.objects.filter(published=True))
    # The LLaMA bases are registered with their published scores only, for lineage.
    llama13 = LanguageModel.objects.get(name="llama-13b")
    assert BenchmarkRun.objects.filter(model=llama13, benchmark="mmlu", published=True).exists()
    before = BenchmarkRun.objects.filter(published=True).count()
    setup_substance(nq_subset=20)
    assert BenchmarkRun.objects.filter(published=True).count() == before


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


def test_fact_check_study_pairs_smollm2_with_human_rated_efficientqa_answers_once():
    first = setup_fact_check_study(n_questions=12)
    study, job = first.study, first.job
    assert study.mode == StudyMode.FACT_CHECK and study.status == "open"
    study.full_clean()  # every prompt has reference answers, so it may be open
    prompts = list(study.prompt_set.prompts.order_by("pk"))
    assert len(prompts) == 12
    by_id = {q.item_id: q for q in efficientqa_test_rated()}
    systems = LanguageModel.objects.get(name=EFFICIENTQA_MODEL)
    for p in prompts:
        item = by_id[p.external_id]
        assert p.text == f"{item.question}?" and p.reference_answers == list(item.answers)
        # The imported answer is one the EfficientQA annotators rated for this very question.
        answer = Response.objects.get(model=systems, prompt=p).text
        assert answer in {a for a, _ in item.rated}
    # SmolLM2 is asked the NQ-open way: greedy, 16 new tokens, the benchmark's instruction.
    assert job.total == 12 and job.status == "queued" and job.model.name == "smollm2-135m-instruct"
    config = job.decoding_config
    assert (config.temperature, config.max_new_tokens) == (0.0, 16) and "short answer" in config.system_prompt
    assert first.new_comparisons == 0

    again = setup_fact_check_study(n_questions=12)
    assert again.job.pk == job.pk and again.study.pk == study.pk
    assert (
        Response.objects.filter(model=systems).count() == 12
        and GenerationJob.objects.filter(model=job.model).count() == 1
    )

    smollm2 = job.model
    Response.objects.bulk_create(
        Response(model=smollm2, prompt=p, decoding_config=config, text=f"Answer {p.pk}.") for p in prompts
    )
    assert add_live_comparisons(study) == 12
    gold = list(study.comparisons.filter(is_gold=True).select_related("prompt", "response_b"))
    assert len(gold) == 1
    assert not contains_match(gold[0].response_b.text, gold[0].prompt.reference_answers)
    assert setup_fact_check_study(n_questions=12).new_comparisons == 0
