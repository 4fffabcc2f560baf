"""Researcher pages: the model registry (with a model's validation and download progress, and the resumable
checkpoint upload), generation jobs with live progress, cancel and retry."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
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
from inference_workers.backends.local import LOCAL_KINDS
from inference_workers.forms import StartJobsForm
from inference_workers.models import GenerationJob, LanguageModel, ModelStatus
from inference_workers.shards import shard_progress
from inference_workers.sources.resumable import UPLOAD_PERMISSION
from webapp.roles import researcher_required

# The browser client's PATCH size: small enough to lose little on a dropped connection, large enough to be few.
# (Under gunicorn's sync workers, as in the Docker image, one chunk must also arrive within its --timeout.)
UPLOAD_CHUNK_BYTES = 16 * 1024**2


@researcher_required
def model_list(request):
    models = LanguageModel.objects.select_related("base").annotate(n_responses=Count("responses"))
    return render(request, "inference/model_list.html", {"models": models})


@researcher_required
def model_detail(request, pk):
    model = get_object_or_404(LanguageModel.objects.select_related("base"), pk=pk)
    jobs = model.generation_jobs.select_related("prompt_set", "decoding_config")[:50]
    context = {
        "model": model,
        "jobs": jobs,
        "progress": model_status_dict(model),
        "can_upload": model.kind in LOCAL_KINDS and request.user.has_perm(UPLOAD_PERMISSION),
    }
    return render(request, "inference/model_detail.html", context)


def model_status_dict(model: LanguageModel) -> dict:
    """Validation status, and while the worker downloads Hub weights, the bytes so far and in all."""
    return {
        "status": model.status,
        "status_display": model.get_status_display(),
        "status_message": model.status_message,
        "finished": model.status in (ModelStatus.READY, ModelStatus.REFUSED),
        "hub_commit": model.hub_commit,
        "download_done_bytes": model.download_done_bytes,
        "download_total_bytes": model.download_total_bytes,
    }


@researcher_required
def model_status(request, pk):
    return JsonResponse(model_status_dict(get_object_or_404(LanguageModel, pk=pk)))


@researcher_required
def model_upload(request, pk):
    """The page that sends a (multi-GB) checkpoint archive to the tus server in resumable chunks."""
    model = get_object_or_404(LanguageModel, pk=pk)
    if not request.user.has_perm(UPLOAD_PERMISSION):
        raise PermissionDenied("Only admins upload checkpoints.")
    if model.kind not in LOCAL_KINDS:
        messages.error(request, f"{model} is an {model.get_kind_display()} model: it has no checkpoint to upload.")
        return redirect("inference:model-detail", pk=pk)
    context = {"model": model, "max_bytes": settings.STYLEGAP_MAX_UPLOAD_BYTES, "chunk_bytes": UPLOAD_CHUNK_BYTES}
    return render(request, "inference/model_upload.html", context)


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
        # Progress adds up the shards that the workers on the job take (inference_workers/shards.py).
        **shard_progress(job.shards.all()),
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
