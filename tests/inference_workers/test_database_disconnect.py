"""A brief database disconnect does not fail a running generation job (issue 14, finding 9).

A real worker answers an API job; twice during the job, once a batch is stored, the test terminates
every other Postgres backend of the test database (the worker's connection among them), as a database
restart or a failover would. The job resumes where it was and ends done with exactly one answer per prompt.
"""

import os

import pytest
from django.db import connection

from inference_workers.actions import decoding_config_for, do_start_generation_job
from inference_workers.models import GenerationJob, JobStatus, Response
from tests import factories
from tests.waiting import wait_advancing

from .chat_server import ChatServer
from .conftest import TEST_API_KEY_ENV
from .test_api_models import api_model

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

N = 80


def terminate_other_backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def wait_for(job_pk: int, done) -> GenerationJob:
    """Poll the job's row until ``done(job)``; fails only when its progress (status, answers stored, heartbeat)
    stands still for five minutes, so a busy machine slows the test down but does not fail it."""

    def reading():
        job = GenerationJob.objects.get(pk=job_pk)
        return (job.status, job.done, job.heartbeat_at), job

    return wait_advancing(reading, lambda state: done(state[1]), f"job {job_pk}", poll_s=0.05)[1]


def test_a_job_survives_its_database_connection_being_cut_twice(worker):
    ps = factories.prompt_set()
    for i in range(N):
        factories.prompt(ps, text=f"Question {i} about mountains?")
    with ChatServer(os.environ[TEST_API_KEY_ENV], delay_s=0.4) as server:
        model = api_model(server)
        config = decoding_config_for(temperature=0, top_p=1, max_new_tokens=32, seed=0)
        job = do_start_generation_job(model, ps, config)
        cuts = []
        for threshold in (1, N // 2):
            job = wait_for(job.pk, lambda j, t=threshold: j.done >= t or j.is_finished)
            assert not job.is_finished, (
                f"the job ended {job.status} at {job.done}/{N} before cut {len(cuts) + 1}: {job.error}"
            )
            cuts.append((job.done, terminate_other_backends()))
        job = wait_for(job.pk, lambda j: j.is_finished)
    assert all(killed >= 1 for _, killed in cuts), cuts
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.done == N and Response.objects.filter(model=model, decoding_config=config).count() == N
    assert len(server.requests) == N  # no prompt asked twice: it went on where it was
