"""The judges' research pages: the study dashboard's "LLM judges" tab, judging jobs (start, progress, cancel,
retry) and verdict downloads. Researchers only; the dashboard reads the newest analysis snapshot."""

import io

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from inference_workers.shards import shard_progress
from judges import actions
from judges.charts import position_bias_chart
from judges.formats import write_arena, write_mtbench
from judges.models import Judge, JudgeVerdict, JudgingJob, Outcome
from ratings.models import Study
from ratings.web.research.charts import IntervalRow, interval_chart
from ratings.web.research.dashboards import dashboard_context
from webapp.roles import researcher_required

STYLE_LABELS = {"length": "length", "headers": "headers", "lists": "list items", "bold": "bold"}


def style_chart(payload: dict, judges: list[dict]):
    """Each judge's style coefficients (circles) beside the crowd's (diamonds), with 95% intervals."""
    human = payload["leaderboard"].get("style_coefficients") or {}
    human_ci = payload["leaderboard"].get("style_coefficient_ci") or {}
    rows = []
    for feature in human or next((j["style_coefficients"] for j in judges if j["style_coefficients"]), {}) or {}:
        for j in judges:
            coef, ci = (j["style_coefficients"] or {}).get(feature), (j["style_coefficient_ci"] or {}).get(feature)
            if coef is None or ci is None or (coef == 0 and ci[0] == ci[1] == 0):
                continue  # a feature no answer has (e.g. headers): nothing to show
            crowd = (human[feature], *human_ci[feature]) if feature in human and feature in human_ci else None
            rows.append(IntervalRow(f"{STYLE_LABELS.get(feature, feature)}: {j['display_name']}", (coef, *ci), crowd))
    if not rows:
        return None
    return interval_chart(
        rows,
        "Style coefficients: each judge against the crowd (log-odds per unit of normalised difference)",
        legend=("the judge, 95% interval", "the crowd (human votes), 95% interval"),
    )


@researcher_required
def dashboard(request, slug):
    ctx = dashboard_context(request, slug, "judges")
    payload = ctx["payload"] or {}
    judges = (payload.get("judges") or {}).get("judges", [])
    ctx["judges_payload"] = payload.get("judges")
    ctx["judges"] = judges
    ctx["runnable"] = Judge.objects.filter(imported=False).select_related("model")
    ctx["jobs"] = JudgingJob.objects.filter(study=ctx["study"]).select_related("judge")[:20]
    if judges:
        ctx["bias_chart"] = position_bias_chart(
            [
                (
                    j["display_name"],
                    j["position_bias"]["first_share"],
                    *j["position_bias"]["ci"],
                    j["position_bias"]["decisive"],
                )
                for j in judges
                if j["position_bias"]["decisive"]
            ],
            "Position bias: share of decisive verdicts for the answer shown first (0.5 = none)",
        )
        ctx["style_chart"] = style_chart(payload, judges)
        ctx["human_style"] = payload["leaderboard"].get("style_coefficients")
    if ctx["snapshot"] is None:
        return render(request, "dashboard/no_snapshot.html", ctx)
    return render(request, "judges/dashboard.html", ctx)


@researcher_required
@require_POST
def start_job(request, slug):
    study = get_object_or_404(Study, slug=slug)
    judge = get_object_or_404(Judge, pk=request.POST.get("judge"))
    raw = (request.POST.get("sample_size") or "").strip()
    try:
        sample = int(raw) if raw else None
        job = actions.do_start_judging_job(judge, study, sample_size=sample, user=request.user)
    except ValueError:
        messages.error(request, "The sample size must be a whole number.")
        return redirect("judges:dashboard", slug)
    except actions.JudgeRefused as exc:
        messages.error(request, str(exc))
        return redirect("judges:dashboard", slug)
    return redirect("judges:job-detail", slug, job.pk)


def _job(slug: str, pk: int) -> JudgingJob:
    return get_object_or_404(JudgingJob.objects.select_related("judge__model", "study"), pk=pk, study__slug=slug)


@researcher_required
def job_detail(request, slug, pk):
    job = _job(slug, pk)
    verdicts = JudgeVerdict.objects.filter(job=job).select_related(
        "prompt", "response_first__model", "response_second__model"
    )
    return render(
        request,
        "judges/job_detail.html",
        {
            "job": job,
            "study": job.study,
            "unparsed": verdicts.filter(outcome=Outcome.UNPARSED)[:20],
            "recent": verdicts.order_by("-pk")[:10],
            "refresh": not job.is_finished,
            "progress": shard_progress(job.shards.all()),
        },
    )


@researcher_required
@require_POST
def cancel_job(request, slug, pk):
    actions.do_cancel_judging_job(_job(slug, pk))
    return redirect("judges:job-detail", slug, pk)


@researcher_required
@require_POST
def retry_job(request, slug, pk):
    try:
        actions.do_retry_judging_job(_job(slug, pk))
    except actions.JudgeRefused as exc:
        messages.error(request, str(exc))
    return redirect("judges:job-detail", slug, pk)


@researcher_required
def download_verdicts(request, slug, judge):
    """A judge's verdicts on the study as MT-bench pairwise JSONL (?format=mtbench, default) or Arena battles."""
    study = get_object_or_404(Study, slug=slug)
    verdicts = actions.export_verdicts(study, [judge])
    if not verdicts:
        raise Http404("No verdicts of that judge on this study.")
    out = io.StringIO()
    kind = request.GET.get("format", "mtbench")
    if kind == "arena":
        write_arena(verdicts, out)
    elif kind == "mtbench":
        write_mtbench(verdicts, out)
    else:
        raise Http404("Unknown format: mtbench or arena.")
    response = HttpResponse(out.getvalue(), content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="{slug}-{judge}-{kind}.jsonl"'
    return response
