"""The shape of an analysis snapshot's payload (``AnalysisSnapshot.payload``), as typed dicts.

The payload is JSON: the dashboard, the downloads, the API and the ``leaderboard`` command read it,
and old snapshots stay in the database, so a key is added, never renamed. Numbers that may be NaN
go in through ``json_float`` (NaN becomes null).
"""

from typing import NotRequired, TypedDict

import numpy as np


def json_float(x) -> float | None:
    """A JSON-safe float rounded to 6 places; NaN becomes None (null)."""
    x = float(x)
    return None if np.isnan(x) else round(x, 6)


class StyleControlled(TypedDict):
    rating: float
    ci: list[float | None]  # None: an end the data cannot bound


class LeaderboardRow(TypedDict):
    model: str
    rating: float
    ci: list[float | None]  # None: an end the data cannot bound
    votes: int
    win_rate: float | None
    style_controlled: StyleControlled | None
    display_name: str
    role: str
    rank: int
    style_rank: int | None
    rank_change: int | None  # positive: the model climbs with style held equal
    interval_note: str  # why this model's interval is a profile likelihood ("" when it is not)


class Leaderboard(TypedDict, total=False):
    n_votes: int
    models: list[LeaderboardRow]
    style_coefficients: dict[str, float] | None
    style_coefficient_ci: dict[str, list[float]] | None
    interval: dict[str, str | None]
    interval_rule: str
    reference: str | None
    anchor: dict | None  # {model, rating}: the reference model's pinned rating
    style: dict  # used, votes_with_features, left_out, coverage, min_coverage, sources, note


class SubstanceScore(TypedDict):
    benchmark: str
    benchmark_label: str
    accuracy: float
    ci: list[float | None] | None
    n_items: int | None
    published: bool
    citation: str
    setting: str
    sources: int  # how many published values exist for this model and benchmark
    run_id: int
    benchmarks: NotRequired[dict[str, "SubstanceScore"]]  # every benchmark the model has (headline entry only)


class Gap(TypedDict):
    benchmark: str
    preference: float | None
    relative_accuracy: float | None
    gap: float | None
    ci: list[float | None]


class ReferenceRow(TypedDict):
    model: str
    display_name: str
    role: str
    parameter_count: int | None
    imitation_data_tokens: int | None
    battles: int
    win_rate: float | None
    ci: list[float | None] | None
    equal_or_better: float | None
    substance: SubstanceScore | None
    is_reference: bool
    gap: Gap | None


class WinMatrix(TypedDict):
    models: list[str]
    observed: list[list[float | None]]
    predicted: list[list[float | None]]
    battles: list[list[int]]


class TimelineDay(TypedDict):
    date: str
    votes: int
    cumulative: int


class CategoryRow(TypedDict):
    model: str
    rating: float
    ci: list[float | None]  # None: an end the data cannot bound
    win_rate: float | None
    votes: int
    interval_note: str  # why the profile likelihood replaced the sandwich for this model; "" when it did not


class CategoryBoard(TypedDict):
    category: str
    n_votes: int
    models: list[CategoryRow]
    interval: str  # the method: "sandwich", and for which models the profile likelihood


class Alpha(TypedDict):
    alpha: float | None
    units: int
    judgements: int


class QuestionAlpha(Alpha):
    key: str
    text: str


class Agreement(TypedDict):
    choice: Alpha
    questions: list[QuestionAlpha]


class PositionBias(TypedDict):
    decisive: int
    left_share: float | None
    ci: list[float | None] | None


class RaterReliabilityRow(TypedDict):
    rater: int
    votes: int
    accuracy: float | None  # Dawid-Skene
    trusted: bool
    left_share: float | None
    decisive: int


class RaterReliability(TypedDict, total=False):
    raters: list[RaterReliabilityRow]
    note: str
    threshold: float


class AnalysisPayload(TypedDict, total=False):
    n_votes: int
    n_votes_total: int
    variant: str
    leaderboard: Leaderboard
    reference: str | None
    against_reference: list[ReferenceRow]
    substance_available: bool
    lineage: list[dict]  # {model, base, base_display_name, base_substance}: fine-tunes and their bases
    categories: list[CategoryBoard]
    timeline: list[TimelineDay]
    agreement: Agreement | None
    position: PositionBias | None
    raters: RaterReliability
    imported_votes: int
    win_matrix: WinMatrix | None
    fact_check: dict  # a fact-check study's results (ratings/analysis/fact_check.py)


# The leaderboard JSON of the command, the downloads and the API (``leaderboard_json``).
LEADERBOARD_ROW_KEYS = ("model", "rating", "ci", "votes", "win_rate", "style_controlled")
# ... after ``substance``: what the text output shows too (interval_note: why a model's interval is profiled).
LEADERBOARD_RANK_KEYS = ("rank", "style_rank", "rank_change", "interval_note")
LEADERBOARD_BOARD_KEYS = ("style_coefficient_ci", "interval", "interval_rule", "reference", "anchor", "style")
SUBSTANCE_JSON_KEYS = ("benchmark", "accuracy", "ci")
