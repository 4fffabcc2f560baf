"""Researchers start jobs from the study page, watch progress without a reload, cancel and retry."""

import pytest
from django.urls import reverse

from inference_workers import jobs
from inference_workers.actions import decoding_config_for, do_cancel_generation_job, do_start_generation_job
from inference_workers.models import GenerationJob, JobStatus, ModelKind, ModelStatus, Response
from tests import factories

pytestmark = pytest.mark.django_db


def local_model(**kwargs):
    return factories.model(kind=ModelKind.GGUF, server_path="/nonexistent", gguf_file="x.gguf", **kwargs)


def test_the_study_page_starts_one_job_per_model_on_its_queue(researcher_client, django_capture_on_commit_callbacks):
    ps = factories.prompt_set()
    factories.prompt(ps)
    m1, m2 = local_model(), local_model()
    study = factories.study(ps, [m1, m2])
    page = researcher_client.get(reverse("ratings:study-detail", args=[study.slug]))
    assert b"Start generation jobs" in page.content
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = researcher_client.post(
            reverse("inference:job-start"),
            {
                "models": [m1.pk, m2.pk],
                "prompt_set": ps.pk,
                "temperature": "0",
                "top_p": "1",
                "max_new_tokens": "24",
                "seed": "3",
                "next": reverse("ratings:study-detail", args=[study.slug]),
            },
        )
    assert response.status_code == 302 and response["Location"].endswith(f"/studies/{study.slug}/")
    jobs_ = GenerationJob.objects.filter(prompt_set=ps)
    assert jobs_.count() == 2 and len(callbacks) == 2
    assert {j.decoding_config.max_new_tokens for j in jobs_} == {24}
    assert all(j.celery_task_id and j.status == JobStatus.QUEUED and j.total == 1 for j in jobs_)


def test_a_model_that_is_not_ready_gets_no_job(researcher_client):
    ps = factories.prompt_set()
    m = local_model(status=ModelStatus.REFUSED)
    form = {"models": [m.pk], "prompt_set": ps.pk, "temperature": 0, "top_p": 1, "max_new_tokens": 8, "seed": 0}
    response = researcher_client.post(reverse("inference:job-start"), form, follow=True)
    assert b"is not ready" in response.content
    assert not GenerationJob.objects.exists()


def test_the_job_page_polls_a_json_progress_endpoint(researcher_client):
    ps = factories.prompt_set()
    job = GenerationJob.objects.create(
        model=local_model(),
        prompt_set=ps,
        decoding_config=decoding_config_for(temperature=0, top_p=1, max_new_tokens=8, seed=0),
        status=JobStatus.RUNNING,
        total=20,
        done=5,
        tokens_per_second=41.25,
        eta_seconds=63.4,
    )
    page = researcher_client.get(reverse("inference:job-detail", args=[job.pk]))
    html = page.content.decode()
    assert reverse("inference:job-progress", args=[job.pk]) in html and "inference/job.js" in html
    progress = researcher_client.get(reverse("inference:job-progress", args=[job.pk])).json()
    assert progress["done"] == 5 and progress["total"] == 20 and progress["eta_seconds"] == 63
    assert progress["tokens_per_second"] == 41.2 or progress["tokens_per_second"] == 41.3
    assert progress["finished"] is False


def test_pages_are_for_researchers_only(client, django_user_model):
    url = reverse("inference:model-list")
    assert client.get(url).status_code == 302
    client.force_login(django_user_model.objects.create_user("stranger", password="x-long-password-1"))
    assert client.get(url).status_code == 403


def test_cancel_stops_a_running_job_between_batches_and_retry_answers_only_the_rest(researcher_client):
    ps = factories.prompt_set()
    prompts = [factories.prompt(ps) for _ in range(6)]
    model = local_model()
    config = decoding_config_for(temperature=0, top_p=1, max_new_tokens=8, seed=0)
    job = do_start_generation_job(model, ps, config)
    asked = []

    def work(job_, pending, stats):
        # Stands in for the batches of a real backend: two prompts a batch, the cancel seen in between.
        first_run = not asked
        for start in range(0, len(pending), 2):
            batch = pending[start : start + 2]
            asked.extend(p.pk for p in batch)
            jobs.store_answers(job_, [jobs.Answer(p, f"answer {p.pk}", 3, 2, 10) for p in batch])
            stats.answered += len(batch)
            if first_run and start == 0:
                researcher_client.post(reverse("inference:job-cancel", args=[job_.pk]))
            if jobs.record_progress(job_, stats, completion_tokens=2 * len(batch)):
                raise jobs.JobCancelled

    assert jobs.run_job(job.pk, work) == JobStatus.CANCELLED
    job.refresh_from_db()
    assert job.done == 2 and job.status == JobStatus.CANCELLED
    response = researcher_client.post(reverse("inference:job-retry", args=[job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and not job.cancel_requested
    assert jobs.run_job(job.pk, work) == JobStatus.SUCCEEDED
    assert sorted(asked) == sorted(p.pk for p in prompts)
    assert Response.objects.filter(model=model).count() == 6


def test_a_queued_job_is_cancelled_at_once_and_a_stale_delivery_steps_aside():
    ps = factories.prompt_set()
    factories.prompt(ps)
    model = local_model()
    config = decoding_config_for(temperature=0, top_p=1, max_new_tokens=8, seed=0)
    job = do_start_generation_job(model, ps, config)
    assert jobs.run_job(job.pk, jobs.import_work, dispatch="an-older-dispatch") == "skipped"
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and not job.shards.exists()
    do_cancel_generation_job(job)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.finished_at is not None
    assert jobs.run_job(job.pk, jobs.import_work) == "skipped"
    assert not job.shards.exists() and not Response.objects.filter(model=model).exists()


def test_imported_outputs_are_matched_by_prompt_id_or_text(tmp_path, settings):
    from django.core.files.base import ContentFile

    settings.MEDIA_ROOT = tmp_path
    ps = factories.prompt_set()
    p1 = factories.prompt(ps, external_id="1", text="What is 2+2?")
    p2 = factories.prompt(ps, external_id="2", text="Name a colour.")
    factories.prompt(ps, external_id="3", text="Unanswered?")
    model = factories.model(kind=ModelKind.IMPORTED)
    lines = [
        '{"prompt_id": "1", "answer": "## Four\\n\\n**4**"}',
        '{"prompt": "Name a colour.", "output": "- red\\n- blue"}',
        '{"prompt_id": "999", "answer": "not in the set"}',
    ]
    model.checkpoint.save("outputs.jsonl", ContentFile("\n".join(lines).encode()))
    job = do_start_generation_job(model, ps, decoding_config_for(temperature=0, top_p=1, max_new_tokens=8, seed=0))
    assert job.decoding_config.imported
    assert jobs.run_job(job.pk, jobs.import_work) == JobStatus.SUCCEEDED
    by_prompt = {r.prompt_id: r for r in Response.objects.filter(model=model)}
    assert set(by_prompt) == {p1.pk, p2.pk}
    assert by_prompt[p1.pk].n_headers == 1 and by_prompt[p1.pk].n_bold == 1
    assert by_prompt[p2.pk].n_list_items == 2
    job.refresh_from_db()
    assert (job.done, job.total) == (2, 3)


def test_the_registry_shows_metadata_and_verdicts_but_never_an_api_key(researcher_client, monkeypatch):
    monkeypatch.setenv("STYLEGAP_TEST_SECRET", "sk-secret-value-123456")
    api = factories.model(
        name="gpt-x",
        kind=ModelKind.OPENAI_API,
        role="proprietary",
        api_base_url="https://api.example.org/v1",
        api_model_id="gpt-x",
        api_key_env="STYLEGAP_TEST_SECRET",
    )
    refused = local_model(
        name="evil", status=ModelStatus.REFUSED, status_message="Refused: config.json has an auto_map."
    )
    factories.model(name="vicuna-13b", base_model_name="LLaMA-13B", imitation_data_source="ShareGPT")
    listing = researcher_client.get(reverse("inference:model-list")).content.decode()
    assert "LLaMA-13B" in listing and "ShareGPT" in listing and "Refused" in listing
    detail = researcher_client.get(reverse("inference:model-detail", args=[refused.pk])).content.decode()
    assert "has an auto_map" in detail
    api_page = researcher_client.get(reverse("inference:model-detail", args=[api.pk])).content.decode()
    assert "STYLEGAP_TEST_SECRET" in api_page and "sk-secret-value" not in api_page


def test_an_admin_starts_a_job_from_the_admin(admin_client, django_capture_on_commit_callbacks):
    ps = factories.prompt_set()
    factories.prompt(ps)
    model = local_model()
    config = decoding_config_for(temperature=0, top_p=1, max_new_tokens=8, seed=0)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(
            reverse("admin:inference_workers_generationjob_add"),
            {"model": model.pk, "prompt_set": ps.pk, "decoding_config": config.pk, "queue": ""},
        )
    assert response.status_code == 302, response.content.decode()[:1500]
    job = GenerationJob.objects.get(model=model)
    assert job.status == JobStatus.QUEUED and job.total == 1 and job.celery_task_id
    assert len(callbacks) == 1
