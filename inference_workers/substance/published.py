"""Published substance scores with their sources: imported from a CSV, kept with their citation.

The CSV's columns are ``model, benchmark, setting, score, source, source_detail, note`` (one row per
model, benchmark, setting and source; ``data/published-substance/scores.csv`` is the demo's file).
Two optional columns order disagreeing sources: ``primary`` (yes/no) and ``published_on``
(YYYY, YYYY-MM or YYYY-MM-DD).

- Every row is checked before anything is written; the first bad line is named and nothing is stored
  (an unknown model or benchmark, a score outside 0..1, a missing source).
- ``only_benchmarks`` / ``only_known_models`` skip (and count) rows the caller chose to leave out,
  instead of refusing them; the demo uses them for the rows about models it does not register.
- Published scores are never averaged with anything. Where sources disagree, every value is kept,
  and :func:`preferred` names the one a chart uses by the stated rule: a primary source first, then
  the newest, then the one listed first in the file it came from.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from inference_workers.models import Benchmark, BenchmarkRun, JobStatus, LanguageModel

COLUMNS = ("model", "benchmark", "setting", "score", "source", "source_detail", "note")
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
PREFERENCE_RULE = "a primary source first, then the newest, then the one listed first in its file"


class PublishedScoreError(ValueError):
    """A bad published-scores file, with the line that is wrong."""


@dataclass
class ImportReport:
    created: int = 0
    already_there: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


def _fail(line: int, message: str) -> PublishedScoreError:
    return PublishedScoreError(f"line {line}: {message}")


def _score(line: int, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _fail(line, f"score {text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise _fail(line, f"score {value} is outside 0..1 (write fractions, e.g. 0.864 for 86.4%)")
    return value


def read_rows(text: str) -> list[tuple[int, dict[str, str]]]:
    """The CSV's rows with their line numbers (the header is line 1); refuses a missing column."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise _fail(1, f"the header lacks {', '.join(missing)} (expected {', '.join(COLUMNS)})")
    rows = []
    for row in reader:
        if None in row:
            raise _fail(reader.line_num, "more cells than the header has columns")
        rows.append((reader.line_num, {k: (v or "").strip() for k, v in row.items()}))
    return rows


def import_published_scores(
    text: str,
    *,
    only_benchmarks: set[str] | None = None,
    only_known_models: bool = False,
) -> ImportReport:
    """Store each row as a published BenchmarkRun; all or nothing. Re-importing a row changes nothing."""
    report = ImportReport()
    models = {m.name: m for m in LanguageModel.objects.all()}
    valid = {b.value for b in Benchmark}
    planned: list[BenchmarkRun] = []
    for order, (line, row) in enumerate(read_rows(text)):
        benchmark = row["benchmark"]
        if only_benchmarks is not None and benchmark not in only_benchmarks:
            report.skip(f"benchmark {benchmark} not selected")
            continue
        if benchmark not in valid:
            raise _fail(line, f"unknown benchmark {benchmark!r} (known: {', '.join(sorted(valid))})")
        model = models.get(row["model"])
        if model is None:
            if only_known_models:
                report.skip("model not registered")
                continue
            raise _fail(line, f"unknown model {row['model']!r}: register it first (names are model slugs)")
        score = _score(line, row["score"])
        if not row["source"]:
            raise _fail(line, "the source is missing: every published score keeps its citation")
        primary = row.get("primary", "").lower() in {"yes", "true", "1", "primary"}
        published_on = row.get("published_on", "")
        if published_on and not _DATE.fullmatch(published_on):
            raise _fail(line, f"published_on {published_on!r} is not YYYY, YYYY-MM or YYYY-MM-DD")
        planned.append(
            BenchmarkRun(
                model=model,
                benchmark=benchmark,
                status=JobStatus.SUCCEEDED,
                published=True,
                citation=row["source"],
                setting=row["setting"],
                source_detail=row["source_detail"],
                note=row["note"],
                accuracy=score,
                primary_source=primary,
                published_on=published_on,
                source_order=order,
            )
        )
    with transaction.atomic():
        for run in planned:
            same = BenchmarkRun.objects.filter(
                model=run.model,
                benchmark=run.benchmark,
                published=True,
                citation=run.citation,
                setting=run.setting,
                accuracy=run.accuracy,
            )
            if same.exists():
                report.already_there += 1
                continue
            run.save()
            report.created += 1
    return report


def _rank(run: BenchmarkRun) -> tuple:
    order = run.source_order if run.source_order is not None else 10**9
    # Primary first; then the newest date (a missing date sorts last); then the file's order.
    return (not run.primary_source, _date_key(run.published_on), order, -run.pk)


def _date_key(date: str) -> tuple:
    if not date:
        return (1, "")
    # Newest first: invert each digit so that a plain ascending sort puts later dates first.
    return (0, "".join(chr(ord("9") - ord(c) + ord("0")) if c.isdigit() else c for c in date.ljust(10, "0")))


def preferred(runs: list[BenchmarkRun]) -> BenchmarkRun | None:
    """The published score a chart shows for one model and benchmark, by PREFERENCE_RULE."""
    published = [r for r in runs if r.published]
    return min(published, key=_rank) if published else None


def import_file(path: Path, **kwargs) -> ImportReport:
    return import_published_scores(path.read_text(encoding="utf-8"), **kwargs)
