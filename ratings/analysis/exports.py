"""What researchers download: the CSV columns of each export and the rows that fill them.

Every cell a spreadsheet would run as a formula (= + - @, a tab or a carriage return first) is defused
with a leading quote: model answers and rater reasons are untrusted text.
"""

import csv
import io
import json
from collections.abc import Iterator

from ratings.analysis.fact_check import payload_human_accuracy
from ratings.analysis.payload import leaderboard_json, payload_extensions, payload_substance
from ratings.models import Study, Vote

# OWASP's list: = + - @ start a formula; a leading tab or carriage return hides one from some importers.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """Spreadsheets run cells starting with = + - @ (or a tab or carriage return before one) as formulas;
    text ones get a leading quote."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def to_csv(rows: list[list]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
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


def verdict_rows(study: Study) -> Iterator[str]:
    """Every verdict of a fact-check study as CSV lines, one row per vote, streamed from the database."""
    votes = (
        Vote.objects.filter(comparison__study=study)
        .exclude(verdict_a="")
        .select_related("rater", "comparison__prompt", "comparison__response_a__model", "comparison__response_b__model")
        .order_by("pk")
    )
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
        yield writer.writerow([safe_cell(x) for x in row])


def snapshot_download(payload: dict, name: str) -> tuple[str, str] | None:
    """(body, content type) of the download ``name`` from a snapshot's payload; None for an unknown one."""
    if name == "leaderboard.json":
        body, kind = (
            json.dumps(
                leaderboard_json(payload["leaderboard"], payload_substance(payload), payload_human_accuracy(payload))
                | payload_extensions(payload),
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
        body, kind = to_csv(rows), "text/csv"
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
        body, kind = to_csv(rows), "text/csv"
    elif name == "fact_check.csv" and payload.get("fact_check"):
        rows = [FACT_CHECK_CSV_HEAD] + [fact_check_csv_row(r) for r in payload["fact_check"]["models"]]
        body, kind = to_csv(rows), "text/csv"
    elif name == "matrix.csv" and payload["win_matrix"]:
        m = payload["win_matrix"]
        rows = [["model (row) vs column: observed share", *m["models"]]]
        rows += [[name_, *["" if v is None else v for v in m["observed"][i]]] for i, name_ in enumerate(m["models"])]
        body, kind = to_csv(rows), "text/csv"
    else:
        return None
    return body, kind
