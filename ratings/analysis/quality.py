"""Per-rater quality figures and the exclusion rules that use them.

For rater r with live votes V_r (winner w_v in terms of A / B, left_is_a_v, seconds s_v):

- votes            n_r = |V_r|
- median seconds   median(s_v for v in V_r with s_v known)
- attention checks pass rate = #{gold v : passed} / #{gold v}; passed: w_v = gold answer, or in a
                   fact-check study the off-topic answer judged wrong (``ratings.models.passed_attention_check``)
- left share       #{v : w_v in {a, b} and the chosen side was shown left} / #{v : w_v in {a, b}}
                   (0.5 for a rater without position bias; ``stats.position.left_share``)
- majority agreement (leave-one-out): over non-gold comparisons c that r voted on, the other raters'
                   votes on c have a unique most common winner m_c; agreement = #{w_v = m_c} / #{such c}.
                   A fact-check vote's "winner" here is its pair of verdicts (A's, B's).

The figures are computed by ``rater_quality`` from plain rows, with no database in sight;
``study_quality`` loads the rows for a study.
"""

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ratings.models import Vote, VoteSource, passed_attention_check
from stats.position import left_share


@dataclass(frozen=True)
class VoteRow:
    rater_id: int
    comparison_id: int
    winner: str
    left_is_a: bool | None
    seconds: float | None
    is_gold: bool
    gold_answer: str
    verdict_a: str = ""
    verdict_b: str = ""

    @property
    def judgement(self) -> str:
        """The winner of a preference vote, or both verdicts of a fact-check vote."""
        return self.winner or f"{self.verdict_a}/{self.verdict_b}"


@dataclass
class RaterQuality:
    rater_id: int
    n_votes: int = 0
    median_seconds: float | None = None
    checks_passed: int = 0
    checks_failed: int = 0
    left_share: float | None = None
    majority_agreement: float | None = None
    n_majority_compared: int = 0

    @property
    def checks_pass_rate(self) -> float | None:
        total = self.checks_passed + self.checks_failed
        return self.checks_passed / total if total else None


def rater_quality(rows: Iterable[VoteRow]) -> list[RaterQuality]:
    """The figures of the module docstring, one RaterQuality per rater, ordered by rater id."""
    rows = list(rows)
    by_comparison: dict[int, Counter] = defaultdict(Counter)
    for row in rows:
        if not row.is_gold:
            by_comparison[row.comparison_id][row.judgement] += 1
    by_rater: dict[int, list[VoteRow]] = defaultdict(list)
    for row in rows:
        by_rater[row.rater_id].append(row)
    result = []
    for rater_id in sorted(by_rater):
        votes = by_rater[rater_id]
        q = RaterQuality(rater_id=rater_id, n_votes=len(votes))
        seconds = [v.seconds for v in votes if v.seconds is not None]
        q.median_seconds = statistics.median(seconds) if seconds else None
        gold = [v for v in votes if v.is_gold]
        q.checks_passed = sum(passed_attention_check(v.winner, v.verdict_a, v.verdict_b, v.gold_answer) for v in gold)
        q.checks_failed = len(gold) - q.checks_passed
        sided = [v for v in votes if v.winner in ("a", "b") and v.left_is_a is not None]
        if sided:
            q.left_share = left_share(
                np.array([(v.winner == "a") == v.left_is_a for v in sided], dtype=bool)
            ).left_share
        agreed = compared = 0
        for v in votes:
            if v.is_gold:
                continue
            others = by_comparison[v.comparison_id].copy()
            others[v.judgement] -= 1
            ranked = [(n, w) for w, n in others.most_common() if n > 0]
            if not ranked or (len(ranked) > 1 and ranked[0][0] == ranked[1][0]):
                continue
            compared += 1
            agreed += ranked[0][1] == v.judgement
        q.n_majority_compared = compared
        q.majority_agreement = agreed / compared if compared else None
        result.append(q)
    return result


def exclusion_reason(q: RaterQuality, max_failed_checks: int, min_median_seconds: float) -> str:
    """Why the study's rules exclude this rater, or "" when they do not. A rule set to 0 is off."""
    if max_failed_checks and q.checks_failed >= max_failed_checks:
        return f"Failed {q.checks_failed} attention checks (rule: {max_failed_checks})."
    if min_median_seconds and q.median_seconds is not None and q.median_seconds < min_median_seconds:
        return f"Median {q.median_seconds:.1f} s per vote (rule: at least {min_median_seconds:g} s)."
    return ""


def study_quality(study) -> list[RaterQuality]:
    """Every rater of the study who voted, from the study's live votes."""
    rows = (
        Vote.objects.filter(comparison__study=study, source=VoteSource.LIVE, rater__isnull=False)
        .values_list(
            "rater_id",
            "comparison_id",
            "winner",
            "assignment__left_is_a",
            "seconds_on_page",
            "comparison__is_gold",
            "comparison__gold_answer",
            "verdict_a",
            "verdict_b",
        )
        .order_by("pk")
    )
    return rater_quality(VoteRow(*row) for row in rows)
