"""API models against a local server that speaks chat completions: retries, bounded concurrency, accounting."""

import os
from decimal import Decimal

import pytest

from inference_workers import jobs
from inference_workers.actions import decoding_config_for, do_start_generation_job
from inference_workers.backends.openai_api import ApiEndpoint, ApiError, chat_completion
from inference_workers.models import GenerationJob, JobStatus, ModelKind, ModelRole, Response
from tests import factories

from .chat_server import ChatServer
from .conftest import TEST_API_KEY_ENV

KEY = os.environ[TEST_API_KEY_ENV]


def api_model(server, **kwargs):
    return factories.model(
        kind=ModelKind.OPENAI_API,
        role=ModelRole.PROPRIETARY,
        api_base_url=server.base_url,
        api_model_id="gpt-test",
        api_key_env=TEST_API_KEY_ENV,
        prompt_price_per_mtok=Decimal("1.5"),
        completion_price_per_mtok=Decimal("2"),
        **kwargs,
    )


def test_retries_on_429_and_500_honouring_retry_after():
    slept = []
    with ChatServer(KEY, failures=[429, 500, 503], retry_after="7") as server:
        endpoint = ApiEndpoint(server.base_url, "gpt-test", TEST_API_KEY_ENV, backoff_s=0.5)
        body = {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi there"}], "max_tokens": 50}
        answer = chat_completion(endpoint, body, sleep=slept.append)
    assert server.statuses == [429, 500, 503, 200]
    # Retry-After for the 429, then exponential backoff: 0.5 * 2**1, 0.5 * 2**2.
    assert slept == [7.0, 1.0, 2.0]
    assert answer.retries == 3
    assert answer.text.startswith("**Answer** to: Hi there")
    assert answer.prompt_tokens == 2


def test_gives_up_after_the_last_attempt_and_never_retries_a_client_error():
    with ChatServer(KEY, failures=[500] * 10) as server:
        endpoint = ApiEndpoint(server.base_url, "gpt-test", TEST_API_KEY_ENV, max_attempts=3)
        body = {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]}
        with pytest.raises(ApiError, match="3 attempts"):
            chat_completion(endpoint, body, sleep=lambda s: None)
        wrong_key = ApiEndpoint(server.base_url, "gpt-test", "STYLEGAP_API_KEY_NO_SUCH_KEY")
        with pytest.raises(ApiError, match="not set"):
            chat_completion(wrong_key, body)


def test_a_refusal_that_quotes_a_wrong_key_is_reduced_to_its_status_line(monkeypatch):
    monkeypatch.setenv("STYLEGAP_API_KEY_WRONG", "sk-wrong-0123456789abcdef")
    with ChatServer(KEY) as server:
        endpoint = ApiEndpoint(server.base_url, "gpt-test", "STYLEGAP_API_KEY_WRONG")
        body = {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]}
        with pytest.raises(ApiError) as refused:
            chat_completion(endpoint, body)
    assert str(refused.value) == "The API answered HTTP 401 Unauthorized."


def test_the_key_is_sent_but_never_stored(db):
    with ChatServer(KEY) as server:
        model = api_model(server)
        assert KEY not in str(list(type(model).objects.filter(pk=model.pk).values()))


@pytest.mark.django_db
def test_an_api_job_answers_every_prompt_with_bounded_concurrency_and_counts_tokens_and_cost(settings):
    settings.STYLEGAP_API_CONCURRENCY = 3
    settings.STYLEGAP_API_BACKOFF_SECONDS = 0.01
    ps = factories.prompt_set()
    prompts = [factories.prompt(ps, text=f"Question number {i} about rivers?") for i in range(10)]
    with ChatServer(KEY, failures=[429, 500], delay_s=0.05) as server:
        model = api_model(server)
        config = decoding_config_for(temperature=0, top_p=1, max_new_tokens=64, seed=1, system_prompt="Be brief.")
        job = do_start_generation_job(model, ps, config)
        status = jobs.run_job(job.pk, jobs.api_work)
    assert status == JobStatus.SUCCEEDED
    job = GenerationJob.objects.get(pk=job.pk)
    responses = Response.objects.filter(job=job)
    assert responses.count() == 10 and job.done == 10 and job.total == 10
    assert {r.prompt_id for r in responses} == {p.pk for p in prompts}
    assert server.max_in_flight <= 3
    assert server.requests[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert job.api_retries == 2 and job.api_requests == 12
    assert job.prompt_tokens == sum(r.prompt_tokens for r in responses) > 0
    assert job.completion_tokens == sum(r.completion_tokens for r in responses) > 0
    expected = (Decimal(job.prompt_tokens) * Decimal("1.5") + Decimal(job.completion_tokens) * 2) / 10**6
    assert job.cost_usd == expected.quantize(Decimal("0.000001"))
    first = responses.first()
    assert first.n_bold == 1 and first.n_list_items == 2 and first.style_computed_at is not None


@pytest.mark.django_db
def test_a_rerun_skips_answered_prompts_and_never_duplicates(settings):
    ps = factories.prompt_set()
    for i in range(4):
        factories.prompt(ps, text=f"Q{i}?")
    with ChatServer(KEY, delay_s=0) as server:
        model = api_model(server)
        config = decoding_config_for(temperature=0, top_p=1, max_new_tokens=16, seed=0)
        job = do_start_generation_job(model, ps, config)
        jobs.run_job(job.pk, jobs.api_work)
        assert len(server.requests) == 4
        again = do_start_generation_job(model, ps, config)
        jobs.run_job(again.pk, jobs.api_work)
        assert len(server.requests) == 4
    assert Response.objects.filter(model=model).count() == 4
    assert GenerationJob.objects.get(pk=again.pk).done == 4
