"""Researcher pages. Thin: they read, validate, and call actions or enqueue tasks."""

from django.contrib import messages
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from inference_workers.models import Response
from inference_workers.tasks import compute_style_features
from ratings.actions.launch import readiness
from ratings.models import Study, StudyStatus, Vote
from webapp.roles import researcher_required


@researcher_required
def study_list(request):
    studies = Study.objects.select_related("prompt_set").annotate(
        n_comparisons=Count("comparisons", distinct=True), n_models=Count("language_models", distinct=True)
    )
    vote_counts = dict(
        Vote.objects.values("comparison__study_id").annotate(n=Count("id")).values_list("comparison__study_id", "n")
    )
    for study in studies:
        study.n_votes = vote_counts.get(study.pk, 0)
    return render(request, "ratings/study_list.html", {"studies": studies})


@researcher_required
def study_detail(request, slug):
    study = get_object_or_404(Study.objects.select_related("prompt_set", "reference_model"), slug=slug)
    ready = readiness(study)
    context = {
        "study": study,
        "models": ready.models,
        "readiness": ready,
        "launching": study.launch_requested_at is not None,
        "n_prompts": ready.n_prompts,
        "n_comparisons": ready.n_comparisons,
        "n_votes": Vote.objects.filter(comparison__study=study).count(),
        "n_raters": study.raters.count(),
        "styled": dict(
            study.language_models.annotate(
                n=Count(
                    "responses",
                    filter=Q(
                        responses__prompt__prompt_set=study.prompt_set, responses__style_computed_at__isnull=False
                    ),
                )
            ).values_list("pk", "n")
        ),
        "is_draft": study.status == StudyStatus.DRAFT,
    }
    return render(request, "ratings/study_detail.html", context)


@require_POST
@researcher_required
def study_compute_style(request, slug):
    study = get_object_or_404(Study, slug=slug)
    ids = list(
        Response.objects.filter(prompt__prompt_set=study.prompt_set, model__in=study.language_models.all()).values_list(
            "pk", flat=True
        )
    )
    result = compute_style_features.delay(ids)
    messages.info(request, f"Style features for {len(ids)} answers queued for the worker (task {result.id}).")
    return redirect("ratings:study-detail", slug=study.slug)
