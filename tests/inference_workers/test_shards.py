"""The rules of shared jobs (inference_workers/shards.py, claims.py) in-process: claiming skips locked shards,
a lapsed lease is taken over first, a shard that fails three times fails the job with its error, a lost
claim cannot write over the new holder, and beat offers a dead worker's shard again."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from inference_workers import jobs
from inference_workers.actions import (
    decoding_config_for,
    do_reoffer_lapsed_generation_shards,
    do_retry_generation_job,
    do_start_generation_job,
)
from inference_workers.claims import claim_shard, renew_lease
from inference_workers.models import GenerationShard, JobStatus, ModelKind, Response, ShardStatus
from inference_workers.shards import plan
from tests import factories


def job_of(n_prompts: int, settings, shard_size: int = 2):
    settings.STYLEGAP_SHARD_PROMPTS = shard_size
    ps = factories.prompt_set()
    for i in range(n_prompts):
        factories.prompt(ps, external_id=f"q{i}", text=f"Question {i}?")
    model = factories.model(kind=ModelKind.IMPORTED)
    return do_start_generation_job(model, ps, decoding_config_for(temperature=0, top_p=1, max_new_tokens=8))


def answering(fail_times: int = 0, error: str = "the GPU fell over"):
    """A job's work that answers every prompt it is given, after raising ``error`` ``fail_times`` times."""
    calls = {"failures": 0, "prompts": []}

    def work(job, prompts, stats):
        if calls["failures"] < fail_times:
            calls["failures"] += 1
            raise RuntimeError(error)
        calls["prompts"].extend(p.pk for p in prompts)
        jobs.store_answers(job, [jobs.Answer(p, f"answer {p.pk}", 3, 2, 10) for p in prompts])
        stats.answered += len(prompts)
        jobs.record_progress(job, stats, completion_tokens=2 * len(prompts))

    return work, calls


@pytest.mark.django_db
def test_a_job_is_cut_into_shards_that_one_worker_runs_in_turn(settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as sent:
        job = job_of(5, settings)
    assert len(sent) == 1  # one send step, which queues one delivery per shard (dispatch.py)
    work, calls = answering()
    assert jobs.run_job(job.pk, work) == JobStatus.SUCCEEDED
    shards = list(job.shards.order_by("index"))
    assert [s.size for s in shards] == [2, 2, 1] and all(s.status == ShardStatus.DONE for s in shards)
    assert sorted(calls["prompts"]) == sorted(p for s in shards for p in s.keys)
    job.refresh_from_db()
    assert job.done == job.total == 5 and Response.objects.filter(job=job).count() == 5


@pytest.mark.django_db
def test_a_shard_that_fails_twice_is_retried_and_the_job_succeeds(settings):
    job = job_of(2, settings)
    work, calls = answering(fail_times=2)
    assert jobs.run_job(job.pk, work) == JobStatus.SUCCEEDED
    (shard,) = job.shards.all()
    assert shard.status == ShardStatus.DONE and shard.attempts == 3 and shard.error == ""


@pytest.mark.django_db
def test_a_shard_that_fails_three_times_fails_the_job_with_its_error_and_retry_resumes(settings):
    job = job_of(4, settings)
    work, _ = answering(fail_times=100, error="CUDA error: an illegal memory access")
    assert jobs.run_job(job.pk, work) == JobStatus.FAILED
    job.refresh_from_db()
    failed = job.shards.get(status=ShardStatus.FAILED)
    assert failed.attempts == 3
    assert f"Shard {failed.index} failed 3 times" in job.error and "CUDA error: an illegal memory access" in job.error

    do_retry_generation_job(job)
    work, _ = answering()
    assert jobs.run_job(job.pk, work) == JobStatus.SUCCEEDED
    job.refresh_from_db()
    assert job.done == 4 and not job.shards.filter(status=ShardStatus.FAILED).exists()


@pytest.mark.django_db(transaction=True)
def test_a_claim_skips_a_shard_another_worker_is_claiming_and_takes_a_lapsed_lease_first(settings, monkeypatch):
    # Committed rows: a delivery sent now would let the session's real worker (up when worker tests ran
    # earlier) claim these shards first, so nothing is sent.
    monkeypatch.setattr("inference_workers.actions.send_on_commit", lambda *args, **kwargs: None)
    job = job_of(6, settings)
    plan(jobs.generation_kind(), job)
    shards = GenerationShard.objects.filter(job=job)
    locked, release = threading.Event(), threading.Event()

    def other_worker():
        with transaction.atomic():
            GenerationShard.objects.select_for_update().filter(job=job, index=0).get()
            locked.set()
            release.wait(30)
        connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert locked.wait(30)
        mine = claim_shard(shards, "me/1", lease_s=60, max_attempts=3)
        assert mine.index == 1, "the locked shard is skipped, not waited for"
    finally:
        release.set()
        thread.join(30)

    # A worker that died holding shard 2: once its lease lapses, it comes before the open shard 0.
    dead = claim_shard(shards.filter(index=2), "dead/2", lease_s=60, max_attempts=3)
    GenerationShard.objects.filter(pk=dead.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    taken = claim_shard(shards, "me/1", lease_s=60, max_attempts=3)
    assert taken.pk == dead.pk and taken.previous_worker == "dead/2" and taken.attempts == 2
    assert taken.seconds_to_takeover is not None and taken.seconds_to_takeover >= 0
    # The dead worker, were it only paused, finds its claim gone and cannot write over the new holder.
    assert not renew_lease(dead, 60, done=2)
    assert renew_lease(taken, 60, done=1)
    assert GenerationShard.objects.get(pk=dead.pk).done == 1


@pytest.mark.django_db
def test_beat_offers_a_dead_workers_shard_again_with_a_delivery(settings, django_capture_on_commit_callbacks):
    job = job_of(4, settings)
    plan(jobs.generation_kind(), job)
    job.status = JobStatus.RUNNING
    job.save(update_fields=["status"])
    shard = claim_shard(GenerationShard.objects.filter(job=job), "dead/9", lease_s=60, max_attempts=3)
    assert do_reoffer_lapsed_generation_shards() == [], "a live lease is left alone"
    GenerationShard.objects.filter(pk=shard.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=False) as sent:
        assert do_reoffer_lapsed_generation_shards() == [job.pk]
    assert len(sent) == 1
    shard.refresh_from_db()
    assert shard.status == ShardStatus.OPEN and shard.previous_worker == "dead/9" and shard.lease_expires_at is None


@pytest.mark.django_db
def test_a_worker_holding_a_model_goes_on_with_jobs_of_that_model_on_its_queue():
    ps = factories.prompt_set()
    factories.prompt(ps)
    model = factories.model(kind=ModelKind.GGUF, server_path="/nonexistent", gguf_file="x.gguf")
    other_model = factories.model(kind=ModelKind.GGUF, server_path="/nonexistent", gguf_file="y.gguf")
    config = decoding_config_for(temperature=0, top_p=1, max_new_tokens=8)
    done = do_start_generation_job(model, ps, config)
    do_start_generation_job(other_model, ps, config)  # another model: its own worker loads it
    do_start_generation_job(model, ps, config, queue="gpu-elsewhere")  # another queue: its own workers
    assert jobs.next_job_for_loaded_model(done.pk) is None
    same = do_start_generation_job(model, ps, decoding_config_for(temperature=0, top_p=1, max_new_tokens=9))
    assert jobs.next_job_for_loaded_model(done.pk) == same.pk
    # Once its shards are all taken (here: done), it is no longer offered.
    plan(jobs.generation_kind(), same)
    same.shards.update(status=ShardStatus.DONE)
    assert jobs.next_job_for_loaded_model(done.pk) is None
