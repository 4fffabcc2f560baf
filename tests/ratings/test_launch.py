"""A study page lists what is missing before the study can open, and one Launch fills the rest: it queues
the missing answers, creates the comparisons when they are in, and opens the study. Closing and reopening
ask for a confirmation, and a closed study's page says what closing means for raters."""

import pytest
from django.urls import reverse

from inference_workers.models import GenerationJob, JobStatus, ModelKind, ModelStatus
from ratings.actions.launch import LaunchRefused, do_advance_launch, do_launch_study, readiness
from ratings.models import Assignment, Recruitment, StudyStatus
from tests import factories
from tests.ratings.rating_setup import rating_study

pytestmark = pytest.mark.django_db


def draft(n_prompts=4, answered=(True, True), **kwargs):
    """A draft over n_prompts prompts and two models; a model answers every prompt when its flag is set."""
    ps = factories.prompt_set()
    prompts = [factories.prompt(ps) for _ in range(n_prompts)]
    models = [
        factories.model(kind=ModelKind.GGUF, server_path="/nonexistent", gguf_file="x.gguf", display_name=f"Model {i}")
        for i in range(len(answered))
    ]
    for model, full in zip(models, answered, strict=True):
        for p in prompts if full else []:
            factories.response(model, p, f"{model.display_name} on {p.text}")
    study = factories.study(ps, models, status=StudyStatus.DRAFT, attention_check_rate=0.25, **kwargs)
    return study, models


def test_the_study_page_lists_what_is_missing(researcher_client):
    study, (m0, m1) = draft(n_prompts=4, answered=(True, False))
    job = GenerationJob.objects.create(
        model=m1, prompt_set=study.prompt_set, decoding_config=factories.imported_decoding_config(), total=4, done=2,
        status=JobStatus.RUNNING,
    )  # fmt: skip
    page = researcher_client.get(reverse("ratings:study-detail", args=[study.slug])).content.decode()
    assert f"1 of 2 models have answered all 4 prompts; job {job.pk} (Model 1) is 50% done." in page
    assert "Comparisons not yet created." in page
    assert 'id="launch"' in page and 'id="launch" disabled' not in page


def test_launch_queues_the_missing_answers_then_the_worker_opens_the_study(django_capture_on_commit_callbacks):
    study, (m0, m1) = draft(n_prompts=4, answered=(True, False))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        jobs = do_launch_study(study)
    assert [j.model for j in jobs] == [m1] and jobs[0].total == 4 and jobs[0].status == JobStatus.QUEUED
    assert len(callbacks) == 2  # the job's task and the launch's first look
    study.refresh_from_db()
    assert study.launch_requested_at is not None and study.status == StudyStatus.DRAFT
    with pytest.raises(LaunchRefused, match="being launched already"):
        do_launch_study(study)
    assert do_advance_launch(study.pk) == "waiting"
    # The worker answers (here: the rows it would store), and finishes its job.
    for p in study.prompt_set.prompts.all():
        factories.response(m1, p, f"Model 1 on {p.text}")
    GenerationJob.objects.filter(pk=jobs[0].pk).update(status=JobStatus.SUCCEEDED, done=4)
    assert do_advance_launch(study.pk) == "opened"
    study.refresh_from_db()
    assert study.status == StudyStatus.OPEN and study.launch_requested_at is None
    assert study.comparisons.filter(is_gold=False).count() == 4
    assert study.comparisons.filter(is_gold=True).count() == 1  # the rate: 0.25 x 4
    assert do_advance_launch(study.pk) == "idle"


def test_a_failed_job_stops_the_launch_with_its_reason(django_capture_on_commit_callbacks):
    study, (m0, m1) = draft(answered=(True, False))
    with django_capture_on_commit_callbacks(execute=False):
        (job,) = do_launch_study(study)
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error="out of memory")
    assert do_advance_launch(study.pk) == "stopped"
    study.refresh_from_db()
    assert study.launch_error == f"Launch stopped: job {job.pk} (Model 1) failed: out of memory"
    assert study.status == StudyStatus.DRAFT and study.launch_requested_at is None and study.comparisons.count() == 0


def test_launching_with_a_model_that_failed_validation_is_refused_and_writes_nothing(researcher_client):
    study, (m0, m1) = draft(answered=(True, False))
    m1.status, m1.status_message = ModelStatus.REFUSED, "Refused: pickle weights (pytorch_model.bin) are not loaded."
    m1.save()
    response = researcher_client.post(reverse("ratings:study-launch", args=[study.slug]), follow=True)
    html = response.content.decode()
    assert "Model 1 cannot answer: it is refused: Refused: pickle weights (pytorch_model.bin) are not loaded." in html
    assert 'id="launch" disabled' in html
    assert GenerationJob.objects.count() == 0
    study.refresh_from_db()
    assert study.launch_requested_at is None and study.status == StudyStatus.DRAFT
    with pytest.raises(LaunchRefused, match="Model 1 cannot answer"):
        do_launch_study(study)


def test_launch_is_refused_for_a_prolific_study_without_a_completion_url():
    study, _ = draft(recruitment=Recruitment.PROLIFIC)
    with pytest.raises(LaunchRefused, match="A Prolific study needs its completion URL"):
        do_launch_study(study)
    assert readiness(study).blockers and GenerationJob.objects.count() == 0


def test_launch_with_every_answer_in_opens_without_a_job(researcher_client, django_capture_on_commit_callbacks):
    study, _ = draft(answered=(True, True))
    with django_capture_on_commit_callbacks(execute=True):
        response = researcher_client.post(reverse("ratings:study-launch", args=[study.slug]), follow=True)
    assert "Launching: the study opens when every model has answered." in response.content.decode()
    assert GenerationJob.objects.count() == 0
    assert do_advance_launch(study.pk) == "opened"


def test_close_and_reopen_ask_first_and_the_closed_page_says_what_closing_means(researcher_client, client):
    study = rating_study(n_prompts=3)
    rater_page = client.get(reverse("rater:enter", args=[study.token]), follow=True)
    assert Assignment.objects.filter(status="leased").count() == 1 and "Answer A" in rater_page.content.decode()
    close = reverse("ratings:study-close", args=[study.slug])
    confirm = researcher_client.get(close).content.decode()
    assert "votes sent from now on are refused" in confirm
    study.refresh_from_db()
    assert study.status == StudyStatus.OPEN  # a GET asks, and changes nothing
    researcher_client.post(close, {"confirm": "yes"})
    study.refresh_from_db()
    assert study.status == StudyStatus.CLOSED
    assert Assignment.objects.filter(status="leased").count() == 0  # held items went back to the pool
    page = researcher_client.get(reverse("ratings:study-detail", args=[study.slug])).content.decode()
    assert "Raters who open its link see that it is not open" in page
    assert "This study is not open" in client.get(reverse("rater:enter", args=[study.token])).content.decode()
    researcher_client.post(reverse("ratings:study-reopen", args=[study.slug]), {"confirm": "yes"})
    study.refresh_from_db()
    assert study.status == StudyStatus.OPEN


def test_a_model_refused_while_its_answers_are_awaited_stops_the_launch(django_capture_on_commit_callbacks):
    study, (m0, m1) = draft(answered=(True, False))
    with django_capture_on_commit_callbacks(execute=False):
        (job,) = do_launch_study(study)
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    m0.status, m0.status_message = ModelStatus.REFUSED, "Refused: the endpoint answered 401."
    m0.save()
    assert do_advance_launch(study.pk) == "stopped"
    study.refresh_from_db()
    assert "Model 0 cannot answer: it is refused: Refused: the endpoint answered 401." in study.launch_error
    assert study.status == StudyStatus.DRAFT and study.comparisons.count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_worker_looks_again_while_a_job_runs_and_opens_the_study_when_it_ends(worker):
    """advance_launch in the real worker: "waiting" sends itself again a few seconds later, until the job ends."""
    from tests.webapp.test_main_command import wait_on_progress

    study, (m0, m1) = draft(n_prompts=3, answered=(True, False))
    # A job already under way (its worker is elsewhere): Launch queues nothing more and waits on it.
    job = GenerationJob.objects.create(
        model=m1, prompt_set=study.prompt_set, decoding_config=factories.imported_decoding_config(), total=3,
        status=JobStatus.RUNNING,
    )  # fmt: skip
    assert do_launch_study(study) == []
    looks = lambda: worker_results("ratings.tasks.advance_launch")  # noqa: E731
    wait_on_progress(lambda: len(looks()) >= 2, lambda: len(looks()), "advance_launch looking again")
    assert all(r == {"study": study.pk, "state": "waiting"} for r in looks())
    study.refresh_from_db()
    assert study.status == StudyStatus.DRAFT
    for p in study.prompt_set.prompts.all():
        factories.response(m1, p, f"Model 1 on {p.text}")
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, done=3)
    wait_on_progress(
        lambda: study.__class__.objects.get(pk=study.pk).status == StudyStatus.OPEN,
        lambda: len(looks()),
        "the launch opening the study",
    )
    assert study.comparisons.filter(is_gold=False).count() == 3


def worker_results(task_name: str) -> list:
    """What the worker's runs of a task returned (django-celery-results), oldest first."""
    import json

    from django_celery_results.models import TaskResult

    rows = TaskResult.objects.filter(task_name=task_name, status="SUCCESS").order_by("date_done")
    return [json.loads(r.result) for r in rows]
