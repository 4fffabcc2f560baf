"""Researcher pages for substance benchmarks: per-model results, a run with live progress, its wrong answers.

Model output is hostile text: every template autoescapes it, nothing is marked safe.
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from inference_workers.models import BenchmarkRun, LanguageModel
from inference_workers.substance import actions, results
from inference_workers.substance.forms import PublishedResultForm, StartBenchmarkForm
from webapp.roles import researcher_required

WRONG_PER_PAGE = 100


@researcher_required
def overview(request):
    models = LanguageModel.objects.order_by("name")
    runs = BenchmarkRun.objects.select_related("model").order_by("model__name", "benchmark", "-created_at")
    return render(
        request, "substance/overview.html", {"models": models, "summaries": [results.summarize(r) for r in runs]}
    )


@researcher_required
def model_results(request, pk):
    model = get_object_or_404(LanguageModel, pk=pk)
    runs = list(model.benchmark_runs.order_by("benchmark", "-created_at"))
    return render(
        request,
        "substance/model_results.html",
        {
            "model": model,
            "measured": [results.summarize(r, with_exact=True) for r in runs if not r.published],
            "published": [results.summarize(r) for r in runs if r.published],
            "start_form": StartBenchmarkForm(),
            "published_form": PublishedResultForm(),
        },
    )


@require_POST
@researcher_required
def start_run(request, pk):
    model = get_object_or_404(LanguageModel, pk=pk)
    form = StartBenchmarkForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"No run started: {form.errors.as_text()}")
        return redirect("substance:model-results", pk=pk)
    try:
        run = actions.do_start_benchmark_run(
            model,
            form.cleaned_data["benchmark"],
            subset_size=form.cleaned_data["subset_size"],
            subset_seed=form.cleaned_data["subset_seed"] or 0,
        )
    except actions.BenchmarkRequestRefused as exc:
        messages.error(request, str(exc))
        return redirect("substance:model-results", pk=pk)
    return redirect("substance:run-detail", pk=run.pk)


@require_POST
@researcher_required
def enter_published(request, pk):
    model = get_object_or_404(LanguageModel, pk=pk)
    form = PublishedResultForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Not saved: {form.errors.as_text()}")
        return redirect("substance:model-results", pk=pk)
    try:
        actions.do_enter_published_result(
            model,
            form.cleaned_data["benchmark"],
            form.cleaned_data["accuracy_percent"] / 100,
            form.cleaned_data["citation"],
            n_items=form.cleaned_data["n_items"],
        )
    except IntegrityError:
        messages.error(request, "Not saved: a published result needs a citation.")
        return redirect("substance:model-results", pk=pk)
    messages.info(request, "Published result saved.")
    return redirect("substance:model-results", pk=pk)


@researcher_required
def run_detail(request, pk):
    run = get_object_or_404(BenchmarkRun.objects.select_related("model"), pk=pk)
    return render(
        request,
        "substance/run_detail.html",
        {
            "run": run,
            "summary": results.summarize(run, with_exact=True),
            "progress": results.progress_dict(run),
            "breakdown": results.mmlu_breakdown(run) if run.status == "succeeded" else None,
        },
    )


@researcher_required
def run_progress(request, pk):
    return JsonResponse(results.progress_dict(get_object_or_404(BenchmarkRun, pk=pk)))


@researcher_required
def wrong_answers(request, pk):
    run = get_object_or_404(BenchmarkRun.objects.select_related("model"), pk=pk)
    wrong = run.items.filter(correct=False).order_by("item_id")
    page = Paginator(wrong, WRONG_PER_PAGE).get_page(request.GET.get("page"))
    context = {"run": run, "page": page, "n_wrong": wrong.count(), "has_detail": wrong.exclude(detail="").exists()}
    return render(request, "substance/wrong_answers.html", context)


@require_POST
@researcher_required
def resume_run(request, pk):
    run = get_object_or_404(BenchmarkRun, pk=pk)
    try:
        actions.do_resume_benchmark_run(run)
        messages.info(request, "Queued again: only the items not scored yet will run.")
    except actions.BenchmarkRequestRefused as exc:
        messages.error(request, str(exc))
    return redirect("substance:run-detail", pk=pk)
