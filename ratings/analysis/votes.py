"""A study's votes as arrays (``VoteTable``), the input of every statistic in ``stats/``.

``study_votes`` reads a study's preference votes: excluded raters left out; imported votes, which have
no rater, kept; attention checks and fact-check verdicts left out.
"""

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from inference_workers.models import LanguageModel
from inference_workers.style_features import style_counts
from ratings.analysis.battle_files import FROM_METADATA, FROM_TEXTS, MISSING, read_battle_arrays
from ratings.analysis.battles import STYLE_COLUMNS
from ratings.models import Study, Vote, VoteSource, Winner

OUTCOME = {Winner.A: 1.0, Winner.B: 0.0, Winner.TIE: 0.5, Winner.BOTH_BAD: 0.5}


@dataclass
class ModelInfo:
    name: str
    display_name: str
    role: str = ""
    parameter_count: int | None = None
    imitation_data_tokens: int | None = None


@dataclass
class VoteTable:
    """One row per vote, as arrays; model columns index ``models``."""

    models: list[ModelInfo]
    model_a: np.ndarray
    model_b: np.ndarray
    outcome: np.ndarray
    # (N, 4) style features in STYLE_COLUMNS order, a NaN row where a vote's answers have none
    # (left out of the style fit only); None when no vote has any.
    style_a: np.ndarray | None = None
    style_b: np.ndarray | None = None
    winner: list[str] = field(default_factory=list)
    comparison: np.ndarray | None = None
    category: list[str] = field(default_factory=list)
    rater: np.ndarray | None = None  # -1 for imported votes
    left_is_a: np.ndarray | None = None
    day: list[str] = field(default_factory=list)
    answers: list[dict] = field(default_factory=list)
    # Battles by where their style features came from: texts, conv_metadata, missing (None: not known).
    style_sources: dict[str, int] | None = None

    @property
    def n_votes(self) -> int:
        return len(self.outcome)

    def subset(self, keep: np.ndarray) -> "VoteTable":
        idx = np.nonzero(keep)[0]

        def pick(values):
            if values is None:
                return None
            if isinstance(values, list):
                return [values[i] for i in idx] if values else values
            return values[idx]

        return VoteTable(
            self.models,
            self.model_a[idx],
            self.model_b[idx],
            self.outcome[idx],
            pick(self.style_a),
            pick(self.style_b),
            pick(self.winner),
            pick(self.comparison),
            pick(self.category),
            pick(self.rater),
            pick(self.left_is_a),
            pick(self.day),
            pick(self.answers),
        )


def _style(row: dict, side: str) -> list[float]:
    """The answer's stored style features; counted from its text when not stored yet (an empty text is
    zero-length); NaN when a battle file gave neither text nor counts (left out of the style fit only)."""
    values = [row[f"comparison__response_{side}__{c}"] for c in STYLE_COLUMNS]
    if all(v is not None for v in values):
        return values
    text = row[f"comparison__response_{side}__text"]
    digest = row[f"comparison__response_{side}__text_digest"]
    if digest.startswith("n") or (not text and not digest):
        # "n": imported without a text; "" and no text: imported before texts were told from absent ones.
        return [float("nan")] * len(STYLE_COLUMNS)
    # Not stored yet: count them here (pure, cheap) rather than leave the vote out.
    return list(style_counts(text))


def _source(row: dict) -> str:
    """Where a vote's style features come from: conv_metadata when both answers were imported with counts
    only, missing when either has neither text nor counts, else texts."""
    digests = [row[f"comparison__response_{side}__text_digest"] for side in "ab"]
    texts = [row[f"comparison__response_{side}__text"] for side in "ab"]
    if all(d.startswith("m") for d in digests):
        return FROM_METADATA
    if any(d.startswith("n") or (not d and not t) for d, t in zip(digests, texts, strict=True)):
        return MISSING
    return FROM_TEXTS


def study_votes(study: Study) -> VoteTable:
    """The study's votes for analysis: excluded raters' votes left out, imported votes kept.

    Attention checks (gold comparisons) measure raters, not models: their votes are left out, as
    are fact-check votes, which have verdicts and no winner.
    """
    columns = [
        "winner",
        "answers",
        "created_at",
        "source",
        "rater_id",
        "comparison_id",
        "assignment__left_is_a",
        "comparison__prompt__category",
        "comparison__response_a__model_id",
        "comparison__response_b__model_id",
        "comparison__response_a__text",
        "comparison__response_b__text",
        "comparison__response_a__text_digest",
        "comparison__response_b__text_digest",
    ] + [f"comparison__response_{side}__{c}" for side in "ab" for c in STYLE_COLUMNS]
    rows = list(
        Vote.objects.filter(comparison__study=study, comparison__is_gold=False)
        .exclude(rater__excluded=True)
        .exclude(winner="")  # fact-check votes judge correctness, not preference (ratings/modes/fact_check.py)
        .order_by("pk")
        .values(*columns)
    )
    model_ids = sorted(
        {r["comparison__response_a__model_id"] for r in rows} | {r["comparison__response_b__model_id"] for r in rows}
    )
    lookup = {m.pk: m for m in LanguageModel.objects.filter(pk__in=model_ids)}
    models = [
        ModelInfo(
            lookup[pk].name,
            str(lookup[pk]),
            lookup[pk].role,
            lookup[pk].parameter_count,
            lookup[pk].imitation_data_tokens,
        )
        for pk in model_ids
    ]
    index = {pk: i for i, pk in enumerate(model_ids)}
    sources = Counter(_source(r) for r in rows)
    style_a = np.array([_style(r, "a") for r in rows], dtype=np.float64).reshape(len(rows), len(STYLE_COLUMNS))
    style_b = np.array([_style(r, "b") for r in rows], dtype=np.float64).reshape(len(rows), len(STYLE_COLUMNS))
    with_style = bool((~np.isnan(style_a).any(axis=1) & ~np.isnan(style_b).any(axis=1)).any())
    return VoteTable(
        models=models,
        model_a=np.array([index[r["comparison__response_a__model_id"]] for r in rows], dtype=np.int64),
        model_b=np.array([index[r["comparison__response_b__model_id"]] for r in rows], dtype=np.int64),
        outcome=np.array([OUTCOME[r["winner"]] for r in rows], dtype=np.float64),
        style_a=style_a if with_style else None,
        style_b=style_b if with_style else None,
        winner=[r["winner"] for r in rows],
        comparison=np.array([r["comparison_id"] for r in rows], dtype=np.int64),
        category=[r["comparison__prompt__category"] or "(none)" for r in rows],
        rater=np.array([r["rater_id"] or -1 for r in rows], dtype=np.int64),
        # Imported battles show model_a first (the clean-battle convention), so A was on the left.
        left_is_a=np.array(
            [
                True
                if r["source"] == VoteSource.IMPORTED or r["assignment__left_is_a"] is None
                else r["assignment__left_is_a"]
                for r in rows
            ],
            dtype=bool,
        ),
        day=[r["created_at"].date().isoformat() for r in rows],
        answers=[r["answers"] or {} for r in rows],
        style_sources={key: sources[key] for key in (FROM_TEXTS, FROM_METADATA, MISSING)},
    )


def file_votes(path: str, workers: int | None = None, progress=None) -> VoteTable:
    """A battle file's votes (``battle_files.py``: any format, no database) as a vote table; models by name."""
    arrays = read_battle_arrays(path, workers=workers, progress=progress)
    return VoteTable(
        models=[ModelInfo(name, name) for name in arrays.models],
        model_a=arrays.model_a,
        model_b=arrays.model_b,
        outcome=arrays.outcome,
        style_a=arrays.style_a,
        style_b=arrays.style_b,
        category=[c or "(none)" for c in arrays.category],
        style_sources=arrays.style_sources,
    )
