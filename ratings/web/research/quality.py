"""The quality-control page of a study, for researchers: per-rater figures, exclusion rules, undo."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from ratings.actions import quality as actions
from ratings.analysis.quality import exclusion_reason, study_quality
from ratings.models import Rater, Study
from webapp.roles import researcher_required

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 560, 260, 40


class ExclusionRulesForm(forms.ModelForm):
    class Meta:
        model = Study
        fields = ["exclude_after_failed_checks", "exclude_below_median_seconds"]


def scatter_points(rows: list[dict]) -> tuple[list[dict], float]:
    """SVG coordinates for median seconds (x) against majority agreement (y), one point per rater."""
    xs = [r["quality"].median_seconds for r in rows if r["quality"].median_seconds is not None]
    x_max = max(xs + [1.0])
    points = []
    for r in rows:
        q = r["quality"]
        if q.median_seconds is None or q.majority_agreement is None:
            continue
        points.append(
            {
                "x": CHART_PAD + (CHART_WIDTH - 2 * CHART_PAD) * q.median_seconds / x_max,
                "y": CHART_HEIGHT - CHART_PAD - (CHART_HEIGHT - 2 * CHART_PAD) * q.majority_agreement,
                "excluded": r["rater"].excluded,
                "label": f"{r['rater'].token[:6]}: {q.median_seconds:.1f} s, {q.majority_agreement:.0%} agreement",
            }
        )
    return points, x_max


@researcher_required
def study_quality_page(request, slug):
    study = get_object_or_404(Study, slug=slug)
    raters = {r.pk: r for r in study.raters.all()}
    rows = []
    for quality in study_quality(study):
        rater = raters[quality.rater_id]
        would = exclusion_reason(quality, study.exclude_after_failed_checks, study.exclude_below_median_seconds)
        rows.append({"rater": rater, "quality": quality, "rule_fires": would})
    points, x_max = scatter_points(rows)
    context = {
        "study": study,
        "rows": rows,
        "form": ExclusionRulesForm(instance=study),
        "n_excluded": sum(r.excluded for r in raters.values()),
        "points": points,
        "chart": {"w": CHART_WIDTH, "h": CHART_HEIGHT, "pad": CHART_PAD, "x_max": x_max},
    }
    return render(request, "quality/study_quality.html", context)


@require_POST
@researcher_required
def apply_rules(request, slug):
    study = get_object_or_404(Study, slug=slug)
    form = ExclusionRulesForm(request.POST, instance=study)
    if not form.is_valid():
        messages.error(
            request, "The rules were not saved: " + "; ".join(e for errs in form.errors.values() for e in errs)
        )
        return redirect("quality:study-quality", slug=study.slug)
    n = actions.do_set_exclusion_rules(study, **form.cleaned_data)
    messages.info(request, f"Rules saved and applied: {n} more rater{'s' if n != 1 else ''} excluded.")
    return redirect("quality:study-quality", slug=study.slug)


@require_POST
@researcher_required
def set_exclusion(request, slug, rater_token):
    study = get_object_or_404(Study, slug=slug)
    rater = get_object_or_404(Rater, study=study, token=rater_token)
    if request.POST.get("excluded") == "1":
        actions.do_exclude_rater(rater, request.POST.get("reason", "").strip() or "Excluded by a researcher.")
        messages.info(request, "Rater excluded; their votes are kept but left out of analysis.")
    else:
        actions.do_reinstate_rater(rater)
        messages.info(request, "Exclusion undone; the automatic rules will leave this rater alone.")
    return redirect("quality:study-quality", slug=study.slug)
