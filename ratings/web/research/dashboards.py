"""Research dashboards. Pages only read the newest AnalysisSnapshot; computing is the worker's job."""

from django.contrib import messages
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from ratings.analysis import exports
from ratings.analysis.payload import MIN_VOTES_FOR_SANDWICH, SUBSTANCE_ORDER
from ratings.analysis.snapshots import latest_snapshot
from ratings.models import Study, Vote
from ratings.modes import mode_for
from ratings.tasks import compute_analysis_snapshots
from ratings.web.research.charts import (
    Arrow,
    IntervalRow,
    Point,
    bar_chart,
    heatmap,
    interval_chart,
    scatter_chart,
)
from webapp.roles import researcher_required

PAGES = (
    ("overview", "Leaderboard"),
    ("substance", "Style vs substance"),
    ("matrix", "Win matrix"),
    ("activity", "Votes and categories"),
    ("raters", "Raters and agreement"),
)


# Tabs other apps add to every preference study's dashboard, in their AppConfig.ready (the judges app's
# "LLM judges"): (key, label, URL name taking the study's slug). ratings never imports those apps.
EXTRA_TABS: list[tuple[str, str, str]] = []


def register_tab(key: str, label: str, url_name: str) -> None:
    if all(tab[0] != key for tab in EXTRA_TABS):
        EXTRA_TABS.append((key, label, url_name))


# A mode with results of its own (ratings/modes/) has its own overview; a fact-check study has verdicts,
# not preference votes, so its dashboard is the accuracy page alone.
MODE_PAGES = {"fact_check": (("overview", "Human-judged accuracy"),)}


def dashboard_context(request, slug: str, page: str) -> dict:
    """What every dashboard tab of a study shows around its own content (the study, the snapshot, the tabs);
    tabs registered by other apps (judges) build on it too."""
    study = get_object_or_404(Study.objects.select_related("reference_model"), slug=slug)
    trusted = request.GET.get("trusted") == "1"
    snapshot = latest_snapshot(study, "analysis:trusted" if trusted else "analysis")
    n_votes_now = Vote.objects.filter(comparison__study=study).count()
    return {
        "study": study,
        "page": page,
        "pages": MODE_PAGES.get(mode_for(study).results_key, PAGES),
        "extra_tabs": [] if mode_for(study).results_key else EXTRA_TABS,
        "trusted": trusted,
        "snapshot": snapshot,
        "payload": snapshot.payload if snapshot else None,
        "n_votes_now": n_votes_now,
        "study_setup": study_setup(study, n_votes_now),
    }


def votes_so_far(n: int) -> str:
    return "no votes yet" if n == 0 else f"{n} vote{'' if n == 1 else 's'} so far"


def study_setup(study: Study, n_votes: int) -> str:
    """The study's set-up in a sentence, from the study itself: true whatever the newest snapshot holds."""
    n_models = study.language_models.count()
    text = f"{n_models} model{'' if n_models == 1 else 's'}"
    if study.reference_model_id:
        text += f", each compared with the reference, {study.reference_model}"
    return f"{text}. {votes_so_far(n_votes).capitalize()}."


def _render(request, ctx: dict, template: str):
    if ctx["snapshot"] is None:
        return render(request, "dashboard/no_snapshot.html", ctx)
    return render(request, template, ctx)


@researcher_required
def overview(request, slug):
    ctx = dashboard_context(request, slug, "overview")
    own = MODE_OVERVIEWS.get(mode_for(ctx["study"]).results_key)
    if own is not None:
        return own(request, ctx)
    if ctx["payload"]:
        board = ctx["payload"]["leaderboard"]
        rows = [
            IntervalRow(
                r["display_name"] or r["model"],
                (r["rating"], *r["ci"]),
                (r["style_controlled"]["rating"], *r["style_controlled"]["ci"]) if r["style_controlled"] else None,
            )
            for r in board["models"]
        ]
        ctx["board"] = board
        ctx["chart"] = interval_chart(rows, f"Ratings with 95% intervals, {board['n_votes']} votes")
    return _render(request, ctx, "dashboard/overview.html")


def fact_check(request, ctx: dict):
    """Human-judged accuracy per model beside the automatic and benchmark ones (ratings/analysis/fact_check.py)."""
    results = (ctx["payload"] or {}).get("fact_check")
    if results:
        rows = [
            IntervalRow(
                r["display_name"] or r["model"],
                (r["human_accuracy"]["accuracy"], *r["human_accuracy"]["ci"]),
                (r["automatic_accuracy"]["accuracy"], *r["automatic_accuracy"]["ci"]),
            )
            for r in results["models"]
            if r["human_accuracy"] and r["automatic_accuracy"]
        ]
        ctx["results"] = results
        if rows:
            ctx["chart"] = interval_chart(
                rows,
                f"Human-judged against automatic accuracy, {results['n_verdicts']} verdicts",
                legend=("human-judged, 95% interval", "automatic, 95% interval"),
                x_range=(0.0, 1.0),
            )
    return _render(request, ctx, "dashboard/fact_check.html")


MODE_OVERVIEWS = {"fact_check": fact_check}


def _role_point(row: dict, x: float, y: float, **kwargs) -> Point:
    return Point(row["display_name"] or row["model"], x, y, row["role"], **kwargs)


def benchmark_score(substance: dict | None, benchmark: str | None) -> dict | None:
    """A model's score on one benchmark, from its ``substance`` entry (every benchmark it has)."""
    if not substance or benchmark is None:
        return None
    return (substance.get("benchmarks") or {substance["benchmark"]: substance}).get(benchmark)


def benchmark_choices(rows: list[dict]) -> list[dict]:
    """The benchmarks any model of the study has, most models first: {benchmark, label, models}."""
    counts: dict[str, dict] = {}
    for r in rows:
        s = r["substance"]
        for b, entry in ((s.get("benchmarks") or {s["benchmark"]: s}) if s else {}).items():
            counts.setdefault(b, {"benchmark": b, "label": entry.get("benchmark_label", b), "models": 0})
            counts[b]["models"] += 1

    def rank(c: dict) -> tuple:
        b = c["benchmark"]
        return (-c["models"], SUBSTANCE_ORDER.index(b) if b in SUBSTANCE_ORDER else len(SUBSTANCE_ORDER))

    return sorted(counts.values(), key=rank)


@researcher_required
def substance(request, slug):
    ctx = dashboard_context(request, slug, "substance")
    payload = ctx["payload"]
    if payload:
        rows = payload["against_reference"]
        # One benchmark at a time (a selector): by default the one the most models have a score on.
        ctx["benchmarks"] = benchmark_choices(rows)
        chosen = request.GET.get("benchmark")
        if chosen not in {b["benchmark"] for b in ctx["benchmarks"]}:
            chosen = ctx["benchmarks"][0]["benchmark"] if ctx["benchmarks"] else None
        ctx["benchmark"] = chosen
        for r in rows:
            r["score"] = benchmark_score(r["substance"], chosen)
        with_both = [r for r in rows if r["score"] and (r["win_rate"] is not None or r["is_reference"])]
        points = []
        for r in with_both:
            y = 0.5 if r["is_reference"] else r["win_rate"]
            lo, hi = (r["ci"] or [None, None]) if not r["is_reference"] else (None, None)
            # Measured and published scores are drawn apart: circles and squares; a published one names its source.
            score = r["score"]
            kind = "published" if score.get("published") else "measured"
            note = f"published: {score.get('citation', '')}" if score.get("published") else "measured here"
            points.append(_role_point(r, score["accuracy"], y, y_lower=lo, y_upper=hi, series=kind, note=note))
        ctx["rows"] = rows
        ctx["benchmark_label"] = next((b["label"] for b in ctx["benchmarks"] if b["benchmark"] == chosen), "")
        # Lineage: an arrow from each base model's accuracy (on the axis: nobody rated it here) to its fine-tune.
        plotted = {r["model"]: r for r in with_both if not r["is_reference"]}
        arrows = []
        for link in payload.get("lineage", []):
            base = benchmark_score(link["base_substance"], chosen)
            tuned = plotted.get(link["model"])
            if base and tuned:
                arrows.append(
                    Arrow(link["base_display_name"], base["accuracy"], tuned["score"]["accuracy"], tuned["win_rate"])
                )
        ctx["lineage_arrows"] = arrows
        ctx["n_battles"] = sum(r["battles"] for r in rows)
        # What each interval rests on: a model's votes against the reference.
        ctx["interval_basis"] = [
            f"{r['display_name'] or r['model']}: {r['battles']} vote{'' if r['battles'] == 1 else 's'}"
            for r in with_both
            if not r["is_reference"]
        ]
        if points:
            ctx["style_substance_chart"] = scatter_chart(
                points,
                f"Human preference against factual accuracy ({ctx['benchmark_label']})",
                f"{ctx['benchmark_label']} accuracy",
                f"win rate against {ctx['study'].reference_model} (ties half)",
                x_range=(0, 1),
                y_range=(0, 1),
                diagonal=True,
                series_shapes={"measured": "circle", "published": "square"},
                arrows=arrows,
            )
        ctx["scaling_charts"] = []
        for field, label in (("parameter_count", "parameters"), ("imitation_data_tokens", "imitation-data tokens")):
            pts = []
            for r in rows:
                if not r[field]:
                    continue
                if r["win_rate"] is not None:
                    pts.append(_role_point(r, r[field], r["win_rate"], series="preference"))
                if r["substance"]:
                    pts.append(_role_point(r, r[field], r["substance"]["accuracy"], series="accuracy"))
            chart = None
            if pts:
                chart = scatter_chart(
                    pts,
                    f"Preference and accuracy against {label}",
                    f"{label} (log scale)",
                    "share",
                    y_range=(0, 1),
                    log_x=True,
                    series_shapes={"preference": "circle", "accuracy": "square"},
                )
            ctx["scaling_charts"].append({"label": label, "field": field, "chart": chart, "n": len(pts)})
    return _render(request, ctx, "dashboard/substance.html")


@researcher_required
def matrix(request, slug):
    ctx = dashboard_context(request, slug, "matrix")
    payload = ctx["payload"]
    if payload and payload["win_matrix"]:
        m = payload["win_matrix"]
        ctx["m"] = m
        ctx["observed_chart"] = heatmap(
            m["models"], m["observed"], f"Observed win fractions, {payload['n_votes']} votes"
        )
        ctx["predicted_chart"] = heatmap(m["models"], m["predicted"], "Win rates predicted by the ratings")
        ctx["matrix_rows"] = [
            {"model": name, "cells": list(zip(m["observed"][i], m["predicted"][i], m["battles"][i], strict=True))}
            for i, name in enumerate(m["models"])
        ]
    return _render(request, ctx, "dashboard/matrix.html")


@researcher_required
def activity(request, slug):
    ctx = dashboard_context(request, slug, "activity")
    ctx["min_votes_for_sandwich"] = MIN_VOTES_FOR_SANDWICH
    payload = ctx["payload"]
    if payload:
        days = payload["timeline"]
        ctx["timeline_chart"] = bar_chart(
            [d["date"] for d in days], [d["votes"] for d in days], f"Votes per day, {payload['n_votes']} votes", "votes"
        )
        cats = payload["categories"]
        if cats:
            models = [r["model"] for r in payload["leaderboard"]["models"]]
            shares = {(c["category"], r["model"]): r["win_rate"] for c in cats for r in c["models"]}
            ctx["category_chart"] = heatmap(
                models,
                [[shares.get((c["category"], m)) for c in cats] for m in models],
                f"Win rate by prompt category, {sum(c['n_votes'] for c in cats)} votes",
                col_labels=[f"{c['category']} ({c['n_votes']})" for c in cats],
            )
    return _render(request, ctx, "dashboard/activity.html")


@researcher_required
def raters(request, slug):
    ctx = dashboard_context(request, slug, "raters")
    rows = (ctx["payload"] or {}).get("raters", {}).get("raters", [])
    points = [
        Point(f"#{r['rater']}", r["left_share"], r["accuracy"], "base" if r["trusted"] else "imitation")
        for r in rows
        if r["left_share"] is not None and r["accuracy"] is not None
    ]
    if points:
        ctx["rater_chart"] = scatter_chart(
            points,
            f"Rater accuracy against left share, {len(points)} raters, {sum(r['votes'] for r in rows)} votes",
            "share of decisive votes for the left answer",
            "Dawid-Skene accuracy",
            x_range=(0, 1),
            y_range=(0, 1),
            role_names={"base": "trusted", "imitation": "not trusted"},
        )
    return _render(request, ctx, "dashboard/raters.html")


@require_POST
@researcher_required
def compute(request, slug):
    study = get_object_or_404(Study, slug=slug)
    result = compute_analysis_snapshots.delay(study.pk)
    messages.info(request, f"Analysis queued for the worker (task {result.id}); reload this page in a moment.")
    return redirect(reverse("dashboard:overview", args=[study.slug]))


@researcher_required
def verdicts_csv(request, slug):
    """Every verdict of a fact-check study, one row per vote, from the database (not a snapshot)."""
    study = get_object_or_404(Study, slug=slug)
    if mode_for(study).results_key != "fact_check":
        raise Http404("Not a fact-check study.")
    response = StreamingHttpResponse(exports.verdict_rows(study), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{study.slug}-verdicts.csv"'
    return response


@researcher_required
def download(request, slug, name):
    ctx = dashboard_context(request, slug, "download")
    payload = ctx["payload"]
    if payload is None:
        raise Http404("No analysis snapshot yet.")
    found = exports.snapshot_download(payload, name)
    if found is None:
        raise Http404("Unknown download.")
    body, kind = found
    suffix = "-trusted" if ctx["trusted"] else ""
    response = HttpResponse(body, content_type=f"{kind}; charset=utf-8")
    stem, ext = name.rsplit(".", 1)
    response["Content-Disposition"] = f'attachment; filename="{ctx["study"].slug}-{stem}{suffix}.{ext}"'
    return response
