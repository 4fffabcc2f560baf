"""A task sent from the web code path runs in the separate worker process and its result lands in the database."""

import os
import time

import pytest
from django_celery_results.models import TaskResult

from inference_workers.models import Response
from inference_workers.tasks import compute_style_features
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(condition, timeout=600.0, interval=0.2):
    """Until ``condition()`` holds; the ceiling is generous (the session's one worker may still be busy with an earlier
    test's task on a busy machine), and the wait ends as soon as it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def test_task_round_trip_through_the_worker_process(worker):
    ps = factories.prompt_set()
    r = factories.response(factories.model(), factories.prompt(ps), "# Plan\n\n- **one**\n- two\n")

    result = compute_style_features.delay([r.pk])
    assert result.get(timeout=600) == {"updated": 1}

    r.refresh_from_db()
    assert (r.n_headers, r.n_list_items, r.n_bold, r.length_words) == (1, 2, 1, 3)
    stored = TaskResult.objects.get(task_id=result.id)
    assert stored.status == "SUCCESS"
    assert stored.worker == worker.name  # ran in the worker process, not in this one
    assert worker.pid != os.getpid()


def test_researcher_button_sends_the_task_to_the_worker(worker, researcher_client):
    ps = factories.prompt_set()
    m1, m2 = factories.model(), factories.model()
    p = factories.prompt(ps)
    factories.response(m1, p, "Plain.")
    factories.response(m2, p, "## Header\n\n1. item")
    study = factories.study(ps, [m1, m2])

    page = researcher_client.post(f"/studies/{study.slug}/style-features/", follow=True)
    assert page.status_code == 200
    assert b"queued for the worker" in page.content

    answers = Response.objects.filter(prompt__prompt_set=ps)
    assert wait_for(lambda: not answers.filter(style_computed_at__isnull=True).exists())
    assert answers.get(model=m2).n_headers == 1
    # The result row is written after the task returns, so it may land a moment after the answers do.
    assert wait_for(
        TaskResult.objects.filter(
            task_name="inference_workers.tasks.compute_style_features", worker=worker.name, status="SUCCESS"
        ).exists
    )
