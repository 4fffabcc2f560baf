"""A broker outage strands no row (issue 14, finding 5).

With the broker pointed at a dead port, a researcher starts a generation job and a benchmark run and an
admin registers a model, all through the real views: each answers with a page that says the work is
queued and the broker unreachable, never a 500. With the broker back, the beat task (called directly here,
and checked to be in the beat schedule) sends them again and the real worker finishes each one.
"""

import os
from contextlib import contextmanager

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from inference_workers.models import BenchmarkRun, GenerationJob, JobStatus, LanguageModel, ModelStatus, Response
from tests import factories
from tests.waiting import wait_advancing
from webapp.celery import app

from .chat_server import ChatServer
from .conftest import TEST_API_KEY_ENV
from .test_api_models import api_model

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

BROKER_DOWN = "Queued; the broker is unreachable, will retry."
DEAD_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def _point_broker_at(url: str) -> None:
    app.conf.broker_url = app.conf.broker_write_url = url
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def broker_unreachable():
    url = app.conf.broker_url
    _point_broker_at(DEAD_BROKER)
    try:
        yield
    finally:
        _point_broker_at(url)


def wait_until(read, done):
    """Poll ``read()`` (a row) until ``done(row)``; fails only when the row's progress (status, items done,
    heartbeat) stands still for five minutes."""

    def reading():
        row = read()
        return tuple(getattr(row, field, None) for field in ("status", "done", "heartbeat_at")), row

    return wait_advancing(reading, lambda state: done(state[1]), "the row to finish")[1]


def resend_now(settings):
    from inference_workers.tasks import resend_unsent

    schedule = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert "inference_workers.tasks.resend_unsent" in schedule
    settings.STYLEGAP_RESEND_UNSENT_AFTER_SECONDS = 0
    return resend_unsent()


def test_a_generation_job_started_while_the_broker_is_down_runs_once_it_is_back(researcher_client, worker, settings):
    ps = factories.prompt_set()
    for i in range(4):
        factories.prompt(ps, text=f"Question {i} about lakes?")
    with ChatServer(os.environ[TEST_API_KEY_ENV], delay_s=0) as server:
        model = api_model(server)
        form = {
            "models": [model.pk],
            "prompt_set": ps.pk,
            "temperature": 0,
            "top_p": 1,
            "max_new_tokens": 32,
            "seed": 0,
        }
        with broker_unreachable():
            page = researcher_client.post(reverse("inference:job-start"), form, follow=True)
        assert page.status_code == 200
        assert BROKER_DOWN in page.content.decode()
        job = GenerationJob.objects.get()
        assert job.status == JobStatus.QUEUED

        assert resend_now(settings)["generation_jobs"] == [job.pk]
        job = wait_until(lambda: GenerationJob.objects.get(pk=job.pk), lambda j: j.is_finished)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert Response.objects.filter(job=job).count() == 4 and job.done == 4 and job.error == ""
    # Sent once it went out: a second pass of the beat task leaves it alone.
    assert resend_now(settings)["generation_jobs"] == []


def test_a_model_registered_while_the_broker_is_down_is_validated_once_it_is_back(admin_client, worker, settings):
    with ChatServer(os.environ[TEST_API_KEY_ENV], delay_s=0) as server:
        fields = {
            "name": "gpt-later",
            "kind": "openai_api",
            "role": "proprietary",
            "api_base_url": server.base_url,
            "api_model_id": "gpt-test",
            "api_key_env": TEST_API_KEY_ENV,
        }
        with broker_unreachable():
            page = admin_client.post(reverse("admin:inference_workers_languagemodel_add"), fields, follow=True)
        assert page.status_code == 200
        model = LanguageModel.objects.get(name="gpt-later")
        assert model.status == ModelStatus.PENDING
        change = admin_client.get(reverse("admin:inference_workers_languagemodel_change", args=[model.pk]))
        assert BROKER_DOWN in change.content.decode()

        assert resend_now(settings)["models"] == [model.pk]
        model = wait_until(
            lambda: LanguageModel.objects.get(pk=model.pk),
            lambda m: m.status in {ModelStatus.READY, ModelStatus.REFUSED},
        )
    assert model.status == ModelStatus.READY, model.status_message


def test_a_benchmark_run_started_while_the_broker_is_down_runs_once_it_is_back(researcher_client, worker, settings):
    with ChatServer(os.environ[TEST_API_KEY_ENV], delay_s=0) as server:
        model = api_model(server)
        with broker_unreachable():
            page = researcher_client.post(
                reverse("substance:start-run", args=[model.pk]),
                {"benchmark": "truthfulqa_gen", "subset_size": 3, "subset_seed": 1},
                follow=True,
            )
        assert page.status_code == 200
        assert BROKER_DOWN in page.content.decode()
        run = BenchmarkRun.objects.get()
        assert run.status == JobStatus.QUEUED

        assert resend_now(settings)["benchmark_runs"] == [run.pk]
        run = wait_until(
            lambda: BenchmarkRun.objects.get(pk=run.pk),
            lambda r: r.status in {JobStatus.SUCCEEDED, JobStatus.FAILED},
        )
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.n_items == 3 and len(server.requests) == 3
