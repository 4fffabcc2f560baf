"""Research dashboards. Pages only read the newest AnalysisSnapshot; computing is the worker's job."""

import csv
import io
import json

from django.contrib import messages
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from ratings.analysis import latest_snapshot, leaderboard_json, payload_substance
from ratings.charts import IntervalRow, Point, bar_chart, heatmap, interval_chart, scatter_chart
from ratings.factcheck import is_fact_check, payload_human_accuracy
from ratings.models import Study, Vote
from ratings.tasks import compute_analysis_snapshots
from webapp.roles import researcher_required

PAGES = (
    ("overview", "Leaderboard"),
    ("substance", "Style vs substance"),
    ("matrix", "Win matrix"),
    ("activity", "Votes and categories"),
    ("raters", "Raters and agreement"),
)


# A fact-check study has verdicts, not preference votes: its dashboard is the accuracy page.
FACT_CHECK_PAGES = (("overview", "Human-judged accuracy"),)


def _context(request, slug: str, page: str) -> dict:
    study = get_object_or_404(Study.objects.select_related("reference_model"), slug=slug)
    trusted = request.GET.get("trusted") == "1"
    snapshot = latest_snapshot(study, "analysis:trusted" if trusted else "analysis")
    return {
        "study": study,
        "page": page,
        "pages": FACT_CHECK_PAGES if is_fact_check(study) else PAGES,
        "trusted": trusted,
        "snapshot": snapshot,
        "payload": snapshot.payload if snapshot else None,
        "n_votes_now": Vote.objects.filter(comparison__study=study).count(),
    }


def _render(request, ctx: dict, template: str):
    if ctx["snapshot"] is None:
        return render(request, "dashboard/no_snapshot.html", ctx)
    return render(request, template, ctx)


@researcher_required
def overview(request, slug):
    ctx = _context(request, slug, "overview")
    if is_fact_check(ctx["study"]):
        return fact_check(request, ctx)
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
    """Human-judged accuracy per model beside the automatic and benchmark ones (ratings/factcheck.py)."""
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


def _role_point(row: dict, x: float, y: float, **kwargs) -> Point:
    return Point(row["display_name"] or row["model"], x, y, row["role"], **kwargs)


@researcher_required
def substance(request, slug):
    ctx = _context(request, slug, "substance")
    payload = ctx["payload"]
    if payload:
        rows = payload["against_reference"]
        with_both = [r for r in rows if r["substance"] and (r["win_rate"] is not None or r["is_reference"])]
        points = []
        for r in with_both:
            y = 0.5 if r["is_reference"] else r["win_rate"]
            lo, hi = (r["ci"] or [None, None]) if not r["is_reference"] else (None, None)
            # Measured and published scores are drawn apart: circles and squares.
            kind = "published" if r["substance"].get("published") else "measured"
            points.append(_role_point(r, r["substance"]["accuracy"], y, y_lower=lo, y_upper=hi, series=kind))
        ctx["rows"] = rows
        ctx["n_battles"] = sum(r["battles"] for r in rows)
        if points:
            ctx["style_substance_chart"] = scatter_chart(
                points,
                "Human preference against factual accuracy",
                "factual accuracy",
                f"win rate against {payload['reference']} (ties half)",
                x_range=(0, 1),
                y_range=(0, 1),
                diagonal=True,
                series_shapes={"measured": "circle", "published": "square"},
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
    ctx = _context(request, slug, "matrix")
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
    ctx = _context(request, slug, "activity")
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
    ctx = _context(request, slug, "raters")
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


def _safe_cell(value):
    """Spreadsheets run cells starting with = + - @ as formulas; text ones get a leading quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def _csv(rows: list[list]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([_safe_cell(v) for v in row])
    return out.getvalue()


FACT_CHECK_CSV_HEAD = [
    "model",
    "role",
    "answers_judged",
    "verdicts",
    "human_accuracy",
    "human_ci_low",
    "human_ci_high",
    "strictly_correct",
    "strict_ci_low",
    "strict_ci_high",
    "automatic_accuracy",
    "automatic_ci_low",
    "automatic_ci_high",
    "benchmark",
    "benchmark_accuracy",
    "benchmark_ci_low",
    "benchmark_ci_high",
]


def fact_check_csv_row(r: dict) -> list:
    h, a, b = r["human_accuracy"] or {}, r["automatic_accuracy"] or {}, r["benchmark"] or {}
    return [
        r["model"],
        r["role"],
        h.get("n_items", 0),
        h.get("n_verdicts", 0),
        h.get("accuracy", ""),
        *(h.get("ci") or ["", ""]),
        h.get("strict", ""),
        *(h.get("strict_ci") or ["", ""]),
        a.get("accuracy", ""),
        *(a.get("ci") or ["", ""]),
        b.get("benchmark", ""),
        b.get("accuracy", ""),
        *(b.get("ci") or ["", ""]),
    ]


VERDICTS_CSV_HEAD = [
    "vote_id",
    "created_at",
    "rater_id",
    "rater_excluded",
    "prompt_id",
    "question",
    "reference_answers",
    "attention_check",
    "model_a",
    "verdict_a",
    "model_b",
    "verdict_b",
    "seconds_on_page",
    "reason",
]


class _Echo:
    def write(self, value):
        return value


@researcher_required
def verdicts_csv(request, slug):
    """Every verdict of a fact-check study, one row per vote, from the database (not a snapshot)."""
    study = get_object_or_404(Study, slug=slug)
    if not is_fact_check(study):
        raise Http404("Not a fact-check study.")
    votes = (
        Vote.objects.filter(comparison__study=study)
        .exclude(verdict_a="")
        .select_related("rater", "comparison__prompt", "comparison__response_a__model", "comparison__response_b__model")
        .order_by("pk")
    )

    def rows():
        writer = csv.writer(_Echo())
        yield writer.writerow(VERDICTS_CSV_HEAD)
        for v in votes.iterator(chunk_size=2000):
            c = v.comparison
            row = [
                v.pk,
                v.created_at.isoformat(),
                v.rater_id or "",
                v.rater.excluded if v.rater else "",
                c.prompt.external_id,
                c.prompt.text,
                " | ".join(c.prompt.reference_answers or []),
                c.is_gold,
                c.response_a.model.name,
                v.verdict_a,
                c.response_b.model.name,
                v.verdict_b,
                "" if v.seconds_on_page is None else round(v.seconds_on_page, 2),
                v.reason,
            ]
            yield writer.writerow([_safe_cell(x) for x in row])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{study.slug}-verdicts.csv"'
    return response


@researcher_required
def download(request, slug, name):
    ctx = _context(request, slug, "download")
    payload = ctx["payload"]
    if payload is None:
        raise Http404("No analysis snapshot yet.")
    suffix = "-trusted" if ctx["trusted"] else ""
    if name == "leaderboard.json":
        body, kind = (
            json.dumps(
                leaderboard_json(payload["leaderboard"], payload_substance(payload), payload_human_accuracy(payload)),
                indent=2,
            ),
            "application/json",
        )
    elif name == "analysis.json":
        body, kind = json.dumps(payload, indent=2), "application/json"
    elif name == "leaderboard.csv":
        head = ["rank", "model", "display_name", "role", "rating", "ci_low", "ci_high", "votes", "win_rate"]
        head += ["style_rating", "style_ci_low", "style_ci_high", "style_rank", "rank_change"]
        rows = [head]
        for r in payload["leaderboard"]["models"]:
            sc = r["style_controlled"] or {"rating": "", "ci": ["", ""]}
            rows.append(
                [r["rank"], r["model"], r["display_name"], r["role"], r["rating"], *r["ci"], r["votes"], r["win_rate"]]
                + [
                    sc["rating"],
                    *sc["ci"],
                    r["style_rank"] or "",
                    r["rank_change"] if r["rank_change"] is not None else "",
                ]
            )
        body, kind = _csv(rows), "text/csv"
    elif name == "reference.csv":
        head = ["model", "role", "battles", "win_rate", "ci_low", "ci_high", "equal_or_better", "benchmark", "accuracy"]
        head += ["accuracy_ci_low", "accuracy_ci_high", "published", "relative_accuracy", "gap", "gap_ci_low"]
        head += ["gap_ci_high"]
        rows = [head]
        for r in payload["against_reference"]:
            s = r["substance"] or {}
            ci = r["ci"] or ["", ""]
            gap = r.get("gap") or {}
            rows.append(
                [r["model"], r["role"], r["battles"], r["win_rate"], *ci, r["equal_or_better"]]
                + [s.get("benchmark", ""), s.get("accuracy", ""), *(s.get("ci") or ["", ""]), s.get("published", "")]
                + [gap.get("relative_accuracy", ""), gap.get("gap", ""), *(gap.get("ci") or ["", ""])]
            )
        body, kind = _csv(rows), "text/csv"
    elif name == "fact_check.csv" and payload.get("fact_check"):
        rows = [FACT_CHECK_CSV_HEAD] + [fact_check_csv_row(r) for r in payload["fact_check"]["models"]]
        body, kind = _csv(rows), "text/csv"
    elif name == "matrix.csv" and payload["win_matrix"]:
        m = payload["win_matrix"]
        rows = [["model (row) vs column: observed share", *m["models"]]]
        rows += [[name_, *["" if v is None else v for v in m["observed"][i]]] for i, name_ in enumerate(m["models"])]
        body, kind = _csv(rows), "text/csv"
    else:
        raise Http404("Unknown download.")
    response = HttpResponse(body, content_type=f"{kind}; charset=utf-8")
    stem, ext = name.rsplit(".", 1)
    response["Content-Disposition"] = f'attachment; filename="{ctx["study"].slug}-{stem}{suffix}.{ext}"'
    return response
