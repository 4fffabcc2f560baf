"""A worker keeps its shard through the long waits of a live job: a shard's lease is renewed only by
progress, so a stretch without progress writes handed the shard to the next look of another worker (or of
beat, which reopens lapsed shards), and after three such losses the shard and its job failed.

- Loading the model (seconds for SmolLM2 on a busy machine, minutes for a large checkpoint): a worker now
  loads it before it claims a shard (this failed CI's two-worker test, where the load outlasted the test's
  10 s lease).
- Awaiting a chunk of API requests: the tokens of the answers back so far now reach the step listener, as a
  local model's decoding steps do, which renews the lease, shows progress and lets a cancel in.
- (HumanEval's sandbox checks of a batch: ``tests/substance/test_humaneval.py``.)
"""

import os
import types
from datetime import timedelta

import pytest
from django.utils import timezone

from inference_workers import claims, jobs
from inference_workers.actions import decoding_config_for, do_start_generation_job
from inference_workers.backends import local
from inference_workers.models import JobStatus, Response, ShardStatus
from tests import factories

LEASE_S = 5


@pytest.mark.django_db
def test_no_shard_lease_can_lapse_while_the_worker_loads_its_model(settings, monkeypatch):
    settings.STYLEGAP_SHARD_PROMPTS = 2
    settings.STYLEGAP_SHARD_LEASE_SECONDS = LEASE_S
    ps = factories.prompt_set()
    for i in range(4):
        factories.prompt(ps, external_id=f"q{i}", text=f"Name a colour. ({i})")
    model = factories.smollm2()
    job = do_start_generation_job(model, ps, decoding_config_for(temperature=0, top_p=1, max_new_tokens=4))

    # A fresh model cache, so this worker loads the model; the load looks at the shards as another worker would
    # once the lease has passed (its clock moved on by more than the lease, so nothing need sleep).
    monkeypatch.setattr(local, "_MODEL_CACHE", None)
    real_load, seen = local.load_model, []

    def load_model_while_another_worker_looks(spec, device=None):
        later = timezone.now() + timedelta(seconds=LEASE_S + 1)
        monkeypatch.setattr(claims, "timezone", types.SimpleNamespace(now=lambda: later))
        try:
            taken = claims.claim_shard(job.shards.all(), "another-worker/1", LEASE_S, 3)
        finally:
            monkeypatch.setattr(claims, "timezone", timezone)
        seen.append(taken and (taken.index, taken.previous_worker))
        if taken is not None:  # the other worker was only looking: put what it took back as it was
            type(taken).objects.filter(pk=taken.pk).update(
                status=ShardStatus.OPEN, worker="", attempts=0, claimed_at=None, lease_expires_at=None
            )
        return real_load(spec, device)

    monkeypatch.setattr(local, "load_model", load_model_while_another_worker_looks)

    assert jobs.run_job(job.pk) == JobStatus.SUCCEEDED
    assert len(seen) == 1, f"the model is loaded once for the job: {seen}"
    assert seen[0] in (None, (0, "")), f"another worker took shard {seen[0][0]} from {seen[0][1]}"
    shards = list(job.shards.order_by("index"))
    assert all(s.status == ShardStatus.DONE and s.previous_worker == "" and s.attempts == 1 for s in shards), [
        (s.index, s.status, s.worker, s.previous_worker, s.attempts) for s in shards
    ]
    assert Response.objects.filter(job=job).count() == 4


@pytest.mark.django_db(transaction=True)
def test_an_api_chunk_longer_than_the_lease_keeps_the_shard_and_shows_its_tokens(settings):
    """An API model's chunk (2 x STYLEGAP_API_CONCURRENCY requests) renewed nothing until all of it was back: with
    slow answers (long ones, back-offs) it outlasted the lease, beat reopened the live worker's shard, and the
    worker lost it when it stored the chunk. Now the wait reports the tokens answered so far, as a local
    model's decoding steps do, which renews the lease. Beat looks every 0.1 s here."""
    import threading

    from django.db import connection

    from inference_workers.claims import reopen_lapsed_shards
    from inference_workers.models import GenerationJob, GenerationShard
    from tests.inference_workers.chat_server import ChatServer
    from tests.inference_workers.conftest import TEST_API_KEY_ENV
    from tests.inference_workers.test_api_models import api_model

    settings.STYLEGAP_SHARD_LEASE_SECONDS = 2
    settings.STYLEGAP_API_CONCURRENCY = 1  # a chunk of two requests, one after the other: 3 s, past the lease
    settings.STYLEGAP_STEP_PROGRESS_EVERY_S = 0.1
    ps = factories.prompt_set()
    for i in range(2):
        factories.prompt(ps, external_id=f"q{i}", text=f"Name a colour. ({i})")
    stop, tokens_seen = threading.Event(), set()

    def beat(job_id):
        try:
            while not stop.wait(0.1):
                reopen_lapsed_shards(GenerationShard.objects.filter(job_id=job_id))
                tokens_seen.add(GenerationJob.objects.get(pk=job_id).tokens_in_flight)
        finally:
            connection.close()

    with ChatServer(os.environ[TEST_API_KEY_ENV], delay_s=1.5) as server:
        config = decoding_config_for(temperature=0, top_p=1, max_new_tokens=8)
        # Run here, in this process: its delivery goes to a queue no worker listens on.
        job = do_start_generation_job(api_model(server), ps, config, queue="nobody-listens")
        watcher = threading.Thread(target=beat, args=(job.pk,))
        watcher.start()
        try:
            status = jobs.run_job(job.pk)
        finally:
            stop.set()
            watcher.join()
    assert status == JobStatus.SUCCEEDED
    (shard,) = job.shards.all()
    assert (shard.attempts, shard.previous_worker) == (1, ""), "the live worker lost its shard"
    assert max(tokens_seen) > 0, "the tokens of the first answer showed while the second was awaited"
    assert Response.objects.filter(job=job).count() == 2


@pytest.mark.django_db
def test_a_delivery_that_only_waits_for_other_workers_shards_loads_nothing(settings):
    """Getting ready waits for a shard this worker could take: while every shard is held under a live lease
    it loads no model (it would only evict another), and once one lapses it loads before taking it over."""
    from inference_workers import shards as sharding

    settings.STYLEGAP_SHARD_PROMPTS = 2
    ps = factories.prompt_set()
    for i in range(4):
        factories.prompt(ps, external_id=f"q{i}", text=f"Name a colour. ({i})")
    job = do_start_generation_job(
        factories.smollm2(), ps, decoding_config_for(temperature=0, top_p=1, max_new_tokens=4)
    )
    loaded = []
    kind = sharding.ShardedKind(**{**vars(jobs.generation_kind()), "prepare": loaded.append})
    sharding.plan(kind, job)
    for _ in range(2):
        claims.claim_shard(job.shards.all(), "another-worker/1", 60, 3)

    assert sharding.prepare(kind, job, job.shards.all()) is False and loaded == []
    job.shards.filter(index=1).update(lease_expires_at=timezone.now() - timedelta(seconds=1))  # its worker died
    assert sharding.prepare(kind, job, job.shards.all()) is True and loaded == [job]


@pytest.mark.django_db(transaction=True)
def test_a_cancel_stops_an_api_job_while_it_waits_for_a_chunk(settings):
    """Cancel reaches an API job inside a chunk: once the first answer's tokens show, a cancel is asked for,
    and the job stops when the requests in flight return, storing none of the chunk and sending no more."""
    import threading

    from django.db import connection

    from inference_workers.actions import do_cancel_generation_job
    from inference_workers.models import GenerationJob
    from tests.inference_workers.chat_server import ChatServer
    from tests.inference_workers.conftest import TEST_API_KEY_ENV
    from tests.inference_workers.test_api_models import api_model
    from tests.waiting import wait_advancing

    settings.STYLEGAP_API_CONCURRENCY = 1  # chunks of two requests, one after the other
    settings.STYLEGAP_STEP_PROGRESS_EVERY_S = 0.1
    ps = factories.prompt_set()
    for i in range(6):
        factories.prompt(ps, external_id=f"q{i}", text=f"Name a colour. ({i})")

    def cancel_once_tokens_show(job_id):
        try:
            wait_advancing(
                lambda: GenerationJob.objects.values_list("status", "tokens_in_flight").get(pk=job_id),
                lambda state: state[1] > 0 or state[0] in ("succeeded", "failed", "cancelled"),
                "the first answer's tokens",
            )
            do_cancel_generation_job(GenerationJob.objects.get(pk=job_id))
        finally:
            connection.close()

    with ChatServer(os.environ[TEST_API_KEY_ENV], delay_s=1.0) as server:
        config = decoding_config_for(temperature=0, top_p=1, max_new_tokens=8)
        job = do_start_generation_job(api_model(server), ps, config, queue="nobody-listens")  # run here
        canceller = threading.Thread(target=cancel_once_tokens_show, args=(job.pk,))
        canceller.start()
        status = jobs.run_job(job.pk)
        canceller.join()
    job.refresh_from_db()
    assert status == JobStatus.CANCELLED == job.status
    assert Response.objects.filter(job=job).count() == 0 and job.done == 0, "none of the cancelled chunk is stored"
    assert len(server.requests) < 6, f"{len(server.requests)} requests sent: the rest were dropped"
