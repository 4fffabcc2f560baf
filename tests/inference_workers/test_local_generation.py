"""SmolLM2-135M-Instruct answers a 20-prompt set through a real worker, which is killed mid-job and replaced."""

import uuid

import pytest
from django.conf import settings

from inference_workers.actions import decoding_config_for, do_resume_stalled_jobs, do_start_generation_job
from inference_workers.models import GenerationJob, JobStatus, Response
from tests import factories
from tests.conftest import WorkerProcess, database_url
from tests.waiting import wait_advancing

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

QUESTIONS = [
    "What is the capital of Australia?",
    "Name a primary colour.",
    "How many legs does a spider have?",
    "What is 2 + 2?",
    "Write a haiku about rain.",
    "Give two tips for better sleep, as a list.",
    "What gas do plants take in?",
    "Who wrote Romeo and Juliet?",
    "What is the boiling point of water in Celsius?",
    "Translate 'thank you' into French.",
    "What is the largest planet in the solar system?",
    "Explain what a noun is in one sentence.",
    "Name a mammal that can fly.",
    "What is the freezing point of water in Fahrenheit?",
    "Suggest a name for a pet goldfish.",
    "What continent is Kenya in?",
    "What does a thermometer measure?",
    "Give one synonym for 'happy'.",
    "How many days are in a week?",
    "What colour is the sky on a clear day?",
]


def wait_until(predicate, job_pk: int, what: str):
    """Poll until ``predicate()``; fails only when the job's progress (status, answers, tokens in flight,
    heartbeat) stands still for five minutes, so a busy machine slows the test but does not fail it."""
    wait_advancing(
        lambda: GenerationJob.objects.values_list("status", "done", "tokens_in_flight", "heartbeat_at").get(pk=job_pk),
        lambda state: predicate(),
        what,
    )


def test_a_killed_worker_leaves_a_job_that_a_new_worker_completes_without_duplicates(broker):
    ps = factories.prompt_set()
    for i, question in enumerate(QUESTIONS):
        factories.prompt(ps, external_id=f"q{i}", text=question)
    model = factories.smollm2()
    config = decoding_config_for(temperature=0, top_p=1, max_new_tokens=24, seed=0)
    # Only this test's workers listen on this queue: the session worker never takes the job.
    queue = f"gpu-kill-{uuid.uuid4().hex[:6]}"
    db_url = database_url(settings.DATABASES["default"])
    small_batches = {"STYLEGAP_GENERATION_BATCH_SIZE": "4"}

    first = WorkerProcess(db_url, queues=queue, env=small_batches)
    first.start()
    try:
        job = do_start_generation_job(model, ps, config, queue=queue)
        answered = Response.objects.filter(model=model, decoding_config=config)
        wait_until(lambda: answered.count() >= 4, job.pk, "the first batch")
    finally:
        first.kill()
    before_kill = set(answered.values_list("pk", flat=True))
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert 4 <= len(before_kill) < 20

    assert do_resume_stalled_jobs(stale_after_s=0) == [job.pk]
    second = WorkerProcess(db_url, queues=queue, env=small_batches)
    second.start()
    try:
        wait_until(lambda: GenerationJob.objects.get(pk=job.pk).is_finished, job.pk, "the job to finish")
    finally:
        second.stop()

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    responses = list(answered)
    assert len(responses) == 20 and job.done == job.total == 20
    assert len({r.prompt_id for r in responses}) == 20
    assert before_kill <= {r.pk for r in responses}, "answers stored before the kill are kept, not redone"
    assert all(r.style_computed_at is not None and r.length_words is not None for r in responses)
    assert all(0 < r.completion_tokens <= 24 and r.prompt_tokens > 0 for r in responses)
    assert sum(1 for r in responses if r.text.strip()) >= 18
    canberra = next(r for r in responses if r.prompt.external_id == "q0")
    assert "Canberra" in canberra.text
    assert job.tokens_per_second and job.tokens_per_second > 0
