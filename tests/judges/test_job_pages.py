"""A judging job's page: its Cancel and Retry buttons work through the web, for researchers only.

The job stays queued: the broker send waits for a commit that this test's transaction never makes, so no
worker is needed to see the buttons change the job's state (the worker's side of cancel and retry is in
test_judging_job.py)."""

import pytest
from django.test import Client

from inference_workers.models import JobStatus, ModelKind, ModelRole
from judges.actions import do_create_judge, do_start_judging_job, ensure_builtin_prompts
from judges.models import JudgingJob
from ratings.actions.studies import do_create_comparisons
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def job():
    ps = factories.prompt_set()
    p = factories.prompt(ps, external_id="1")
    models = [factories.model(name=name) for name in ("alpha", "beta")]
    for m in models:
        factories.response(m, p, f"{m.name} answers")
    study = factories.study(ps, models)
    do_create_comparisons(study)
    model = factories.model(
        name="api-judge",
        kind=ModelKind.OPENAI_API,
        role=ModelRole.PROPRIETARY,
        api_base_url="https://api.example.invalid/v1",
        api_model_id="judge",
    )
    judge = do_create_judge("button-judge", model, ensure_builtin_prompts()[0])
    return do_start_judging_job(judge, study)


def status(job) -> tuple[str, bool]:
    row = JudgingJob.objects.get(pk=job.pk)
    return row.status, row.cancel_requested


def test_cancel_then_retry_through_the_job_page(job, researcher_client):
    base = f"/studies/{job.study.slug}/judges/jobs/{job.pk}/"
    page = researcher_client.get(base).content.decode()
    assert f'action="{base}cancel/"' in page and f'action="{base}retry/"' not in page

    # Someone who is not a researcher changes nothing.
    assert Client().post(base + "cancel/").status_code == 302  # to the login page
    assert status(job) == (JobStatus.QUEUED, False)

    assert researcher_client.post(base + "cancel/").status_code == 302
    assert status(job) == (JobStatus.CANCELLED, True)
    page = researcher_client.get(base).content.decode()
    assert f'action="{base}retry/"' in page and f'action="{base}cancel/"' not in page

    assert researcher_client.post(base + "retry/").status_code == 302
    assert status(job) == (JobStatus.QUEUED, False)
    # A job that is not failed or cancelled is not retried; the page says why.
    page = researcher_client.post(base + "retry/", follow=True).content.decode()
    assert "Only a failed or cancelled judging job can be retried." in page
    assert status(job) == (JobStatus.QUEUED, False)
