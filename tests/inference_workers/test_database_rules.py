"""The database itself refuses rows that break the registry's rules."""

import pytest
from django.db import IntegrityError, transaction

from inference_workers.models import BenchmarkRun, DecodingConfig, LanguageModel, ModelKind, ModelRole, Response
from tests import factories

pytestmark = pytest.mark.django_db


def refused(write):
    with pytest.raises(IntegrityError), transaction.atomic():
        write()


def test_one_response_per_model_prompt_and_decoding_config():
    ps = factories.prompt_set()
    p = factories.prompt(ps)
    m = factories.model()
    first = factories.response(m, p, "first")
    refused(lambda: Response.objects.create(model=m, prompt=p, decoding_config=first.decoding_config, text="again"))


def test_same_model_and_prompt_under_another_decoding_config_is_allowed():
    ps = factories.prompt_set()
    p = factories.prompt(ps)
    m = factories.model()
    factories.response(m, p, "imported")
    sampled = DecodingConfig.objects.create(temperature=1.0, top_p=0.95, max_new_tokens=64, seed=7)
    factories.response(m, p, "sampled", decoding_config=sampled)
    assert Response.objects.filter(model=m, prompt=p).count() == 2


def test_decoding_config_fingerprint_is_unique():
    DecodingConfig.objects.create(temperature=0.2, seed=1)
    refused(lambda: DecodingConfig.objects.create(temperature=0.2, seed=1))


@pytest.mark.parametrize(
    "fields",
    [{"temperature": -0.1}, {"top_p": 0}, {"top_p": 1.5}, {"max_new_tokens": 0}],
    ids=["negative-temperature", "zero-top-p", "top-p-above-one", "no-new-tokens"],
)
def test_decoding_config_ranges(fields):
    refused(lambda: DecodingConfig.objects.create(**fields))


def test_lora_adapter_needs_a_base_model():
    refused(lambda: LanguageModel.objects.create(name="adapter", kind=ModelKind.LORA, role=ModelRole.IMITATION))


def test_api_model_needs_url_and_model_id():
    refused(
        lambda: LanguageModel.objects.create(
            name="gpt", kind=ModelKind.OPENAI_API, role=ModelRole.PROPRIETARY, api_base_url="https://api.example"
        )
    )


def test_model_names_are_unique():
    factories.model(name="vicuna-13b")
    refused(lambda: factories.model(name="vicuna-13b"))


def test_published_benchmark_score_needs_a_citation():
    m = factories.model()
    refused(lambda: BenchmarkRun.objects.create(model=m, benchmark="nq_open", published=True, accuracy=0.3))


def test_benchmark_cannot_count_more_correct_than_items():
    m = factories.model()
    refused(lambda: BenchmarkRun.objects.create(model=m, benchmark="nq_open", n_items=10, n_correct=11))
