"""A local job reports while it decodes: tokens so far and its heartbeat advance inside one batch, seen from
this process while the real worker generates, so a batch longer than the stale threshold is not taken for a
dead worker.

The model is a random-weights Llama that takes a few milliseconds a step and never says end-of-sequence, so
one batch of a long answer keeps the worker decoding for several seconds.
"""

import io
import json
import re
import time

import pytest
from django.urls import reverse

from inference_workers.actions import (
    decoding_config_for,
    do_cancel_generation_job,
    do_resume_stalled_jobs,
    do_start_generation_job,
)
from inference_workers.models import GenerationJob, JobStatus, ModelKind, ModelRole, Response
from tests import factories
from tests.inference_workers.conftest import build_tiny_llama

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Eight times the test worker's heartbeat interval (STYLEGAP_STEP_PROGRESS_EVERY_S, 0.25 s in
# tests/conftest.py); the stale test's batch lasted 3.0 s on an idle machine.
STALE_AFTER_S = 2
# Progress is written at most every 0.25 s in the test worker: at about 1 ms a step on an idle machine, a
# 3,000-token batch gives about a dozen readings inside it (two are asked for).
LONG_ANSWER_TOKENS = 3000
# The stale test's batch: about 16 s here (4.6 ms a step), so it outlasts STALE_AFTER_S on a machine
# several times faster than this one as well.
STALE_TEST_TOKENS = 3500
# Only a bound for a wedged worker: every wait below ends as soon as the row says so.
GIVE_UP_S = 600


@pytest.fixture(scope="module")
def slow_llama_dir(tmp_path_factory, smollm2_tokenizer_dir):
    """The tiny Llama of conftest.py (another seed, one that never says end-of-sequence) with room for long answers."""
    return build_tiny_llama(
        tmp_path_factory.mktemp("slow-llama"), smollm2_tokenizer_dir, seed=1, max_position_embeddings=4096
    )


@pytest.fixture
def slow_llama(worker, slow_llama_dir):
    """The model, already loaded in the worker by a one-token job (loading is not what these tests time)."""
    model = factories.model(kind=ModelKind.HF_CHECKPOINT, role=ModelRole.IMITATION, server_path=str(slow_llama_dir))
    warm_up = factories.prompt_set()
    factories.prompt(warm_up, text="Hello.")
    job = do_start_generation_job(model, warm_up, decoding_config_for(temperature=0, top_p=1, max_new_tokens=1))
    assert wait_for_end(job).status == JobStatus.SUCCEEDED, job.error
    return model


def long_job(model, n_prompts: int = 2, tokens: int = LONG_ANSWER_TOKENS) -> GenerationJob:
    """One batch (the default batch size is above ``n_prompts``) of long answers."""
    ps = factories.prompt_set()
    for i in range(n_prompts):
        factories.prompt(ps, text=f"Tell a very long story, number {i}.")
    config = decoding_config_for(temperature=0, top_p=1, max_new_tokens=tokens)
    return do_start_generation_job(model, ps, config)


def wait_for_end(job: GenerationJob, each=lambda job: None) -> GenerationJob:
    """Poll the row until the job finishes, calling ``each(job)`` on every reading."""
    deadline = time.monotonic() + GIVE_UP_S
    while time.monotonic() < deadline:
        job.refresh_from_db()
        each(job)
        if job.is_finished:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job.pk} still {job.status} after {GIVE_UP_S} s ({job.done}/{job.total})")


def test_a_batch_longer_than_the_stale_threshold_is_not_requeued_while_its_heartbeat_advances(slow_llama):
    job = long_job(slow_llama, tokens=STALE_TEST_TOKENS)
    task_id = job.celery_task_id
    requeued: list[int] = []

    def beat(job):
        requeued.extend(do_resume_stalled_jobs(stale_after_s=STALE_AFTER_S))

    job = wait_for_end(job, beat)

    assert requeued == [], "the beat task took a job that was decoding for a dead one"
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.celery_task_id == task_id, "queued once"
    assert job.done == job.total == 2 and Response.objects.filter(job=job).count() == 2
    assert (job.finished_at - job.started_at).total_seconds() > STALE_AFTER_S, "the batch outlasted the threshold"


def test_tokens_so_far_and_the_heartbeat_advance_before_the_first_answer_is_stored(slow_llama, researcher_client):
    job = long_job(slow_llama)
    tokens_seen: list[int] = []
    heartbeats_seen: list = []
    figures_mid_batch: list[dict] = []

    def watch(job):
        if job.status != JobStatus.RUNNING or job.done:
            return
        if job.tokens_so_far and job.tokens_so_far not in tokens_seen:
            tokens_seen.append(job.tokens_so_far)
            heartbeats_seen.append(job.heartbeat_at)
        if len(tokens_seen) == 2 and not figures_mid_batch:
            url = reverse("inference:job-progress", args=[job.pk])
            figures_mid_batch.append(json.loads(researcher_client.get(url).content))

    job = wait_for_end(job, watch)

    assert job.status == JobStatus.SUCCEEDED, job.error
    # Two distinct readings before the first answer is stored are the advance under test.
    assert len(tokens_seen) >= 2 and tokens_seen == sorted(tokens_seen), tokens_seen
    assert len(set(heartbeats_seen)) == len(heartbeats_seen) and heartbeats_seen == sorted(heartbeats_seen)
    (mid,) = figures_mid_batch
    assert mid["done"] == 0 and mid["completion_tokens"] == 0
    assert mid["tokens_so_far"] > 0 and mid["tokens_per_second"] > 0
    assert job.tokens_in_flight == 0 and job.completion_tokens == 2 * LONG_ANSWER_TOKENS == job.tokens_so_far


def test_a_cancel_stops_the_running_batch_and_stores_none_of_it(slow_llama):
    job = long_job(slow_llama)

    def cancel_once_decoding(job):
        if job.tokens_in_flight and not job.cancel_requested:
            do_cancel_generation_job(job)

    job = wait_for_end(job, cancel_once_decoding)

    assert job.status == JobStatus.CANCELLED
    assert Response.objects.filter(job=job).count() == 0 and job.done == 0
    assert job.tokens_in_flight == 0 and job.completion_tokens == 0


def test_the_progress_line_make_run_prints_shows_the_tokens_advancing_while_the_first_batch_decodes(
    slow_llama, monkeypatch
):
    from ratings.management.commands import setup_demo

    monkeypatch.setattr(setup_demo, "TOKENS_LINE_EVERY_S", 0)  # bin/run's output is not a terminal: a line each poll
    # The longer batch, so that the line is printed several times while it decodes.
    job = long_job(slow_llama, tokens=STALE_TEST_TOKENS)
    out = io.StringIO()
    command = setup_demo.Command(stdout=out)
    command._wait("SmolLM2 answers", lambda: command._job_progress(job.pk), time.monotonic() + GIVE_UP_S)

    lines = out.getvalue().splitlines()
    during_the_batch = [
        int(m.group(1).replace(",", "")) for m in map(re.compile(r"\] 0/2, ([\d,]+) tokens").search, lines) if m
    ]
    # Two distinct counts while the batch decodes are the advance under test.
    assert len(set(during_the_batch)) >= 2 and during_the_batch == sorted(during_the_batch), lines
    assert (
        "tok/s" in lines[-1]
        and lines[-1].startswith("Worker: SmolLM2 answers [")
        and f"] 2/2, {2 * STALE_TEST_TOKENS:,} tokens" in lines[-1]
    )
