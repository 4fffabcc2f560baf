"""Researcher pages: the model registry, generation jobs with live progress, cancel and retry."""

from django.contrib import messages
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from inference_workers.actions import (
    JobRefused,
    decoding_config_for,
    do_cancel_generation_job,
    do_retry_generation_job,
    do_start_generation_job,
)
from inference_workers.forms import StartJobsForm
from inference_workers.models import GenerationJob, LanguageModel
from webapp.roles import researcher_required


@researcher_required
def model_list(request):
    models = LanguageModel.objects.select_related("base").annotate(n_responses=Count("responses"))
    return render(request, "inference/model_list.html", {"models": models})


@researcher_required
def model_detail(request, pk):
    model = get_object_or_404(LanguageModel.objects.select_related("base"), pk=pk)
    jobs = model.generation_jobs.select_related("prompt_set", "decoding_config")[:50]
    return render(request, "inference/model_detail.html", {"model": model, "jobs": jobs})


@researcher_required
def job_list(request):
    jobs = GenerationJob.objects.select_related("model", "prompt_set", "decoding_config")[:200]
    return render(request, "inference/job_list.html", {"jobs": jobs})


@researcher_required
def job_detail(request, pk):
    job = get_object_or_404(GenerationJob.objects.select_related("model", "prompt_set", "decoding_config"), pk=pk)
    return render(request, "inference/job_detail.html", {"job": job, "progress": job_progress_dict(job)})


def job_progress_dict(job: GenerationJob) -> dict:
    return {
        "status": job.status,
        "status_display": job.get_status_display(),
        "done": job.done,
        "total": job.total,
        "tokens_per_second": round(job.tokens_per_second, 1) if job.tokens_per_second is not None else None,
        "eta_seconds": round(job.eta_seconds) if job.eta_seconds is not None else None,
        "prompt_tokens": job.prompt_tokens,
        "completion_tokens": job.completion_tokens,
        # Stored answers' tokens plus those of the batch being decoded: what the page shows as tokens out.
        "tokens_so_far": job.tokens_so_far,
        "cost_usd": str(job.cost_usd),
        "cancel_requested": job.cancel_requested,
        "finished": job.is_finished,
        "error": job.error,
    }


@researcher_required
def job_progress(request, pk):
    job = get_object_or_404(GenerationJob, pk=pk)
    return JsonResponse(job_progress_dict(job))


@require_POST
@researcher_required
def job_cancel(request, pk):
    job = get_object_or_404(GenerationJob, pk=pk)
    do_cancel_generation_job(job)
    messages.info(request, "Cancel requested: the worker stops at its next progress check, storing none of its batch.")
    return redirect("inference:job-detail", pk=pk)


@require_POST
@researcher_required
def job_retry(request, pk):
    job = get_object_or_404(GenerationJob, pk=pk)
    try:
        do_retry_generation_job(job)
        messages.info(request, "Queued again: only the prompts still unanswered will be generated.")
    except JobRefused as exc:
        messages.error(request, str(exc))
    return redirect("inference:job-detail", pk=pk)


@require_POST
@researcher_required
def job_start(request):
    """Start one job per chosen model over one prompt set (the study page's form posts here)."""
    form = StartJobsForm(request.POST)
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        next_url = ""
    if not form.is_valid():
        messages.error(request, f"No job started: {form.errors.as_text()}")
        return redirect(next_url or "inference:job-list")
    config = decoding_config_for(**form.decoding_values())
    started = []
    for model in form.cleaned_data["models"]:
        try:
            started.append(do_start_generation_job(model, form.cleaned_data["prompt_set"], config, user=request.user))
        except JobRefused as exc:
            messages.warning(request, str(exc))
    if started:
        messages.info(request, f"Started {len(started)} generation job{'s' if len(started) != 1 else ''}.")
    if len(started) == 1 and not next_url:
        return redirect("inference:job-detail", pk=started[0].pk)
    return redirect(next_url or "inference:job-list")
