r"""LLM judges beside people: combining a judge's two orders, agreement, kappa, position bias, self-consistency.

Labels: 0 = answer A better, 1 = answer B better, 2 = tie; -1 = unparsed (the judge's text named no verdict).
A and B are the comparison's answers, whichever the judge was shown first.

Two orders (A shown first, then B shown first) combine by the rule: the same winner in both orders wins,
anything else is a tie; an unparsed verdict in either order leaves the pair unparsed (never a tie).

Agreement (the MT-bench methodology, Zheng et al. 2023): every human vote on a pair against the judge's
combined verdict on that pair,

    agreement = #{v : human_v = judge_v} / n.

"With ties" counts every vote with a parsed judge verdict; "without ties" keeps only the votes where both
the human and the judge named a winner. 95% interval: seeded bootstrap over the votes (percentiles 2.5 and
97.5). Cohen's kappa over the same votes,

    kappa = (p_o - p_e) / (1 - p_e),  p_e = sum_c p_human(c) p_judge(c).

Position bias: over a judge's decisive single-order verdicts, the share for the answer shown first, with
its Wilson interval (0.5 = none). Self-consistency: where a judge judged the same item in the same order
twice, the share of identical verdicts, with its Wilson interval.
"""

from dataclasses import dataclass

import numpy as np

from stats.intervals import wilson_interval
from stats.position import LeftShare, left_share

A, B, TIE, UNPARSED = 0, 1, 2, -1


def combine_orders(a_first: np.ndarray, b_first: np.ndarray) -> np.ndarray:
    """The combined verdict per pair from its verdict with A shown first and with B shown first (both in A/B terms)."""
    x = np.asarray(a_first, dtype=np.int64)
    y = np.asarray(b_first, dtype=np.int64)
    out = np.where(x == y, x, TIE)
    return np.where((x == UNPARSED) | (y == UNPARSED), UNPARSED, out)


def cohen_kappa(x: np.ndarray, y: np.ndarray, n_classes: int = 3) -> float:
    """Cohen's kappa of two label arrays (labels 0..n_classes-1); NaN when empty or when chance agreement is 1."""
    x = np.asarray(x, dtype=np.int64)
    y = np.asarray(y, dtype=np.int64)
    if len(x) == 0:
        return float("nan")
    p_o = float((x == y).mean())
    p_e = float((np.bincount(x, minlength=n_classes) * np.bincount(y, minlength=n_classes)).sum()) / len(x) ** 2
    return (p_o - p_e) / (1 - p_e) if p_e < 1 else float("nan")


@dataclass(frozen=True)
class AgreementResult:
    n: int
    agreement: float
    lower: float
    upper: float
    kappa: float


def agreement(
    human: np.ndarray, judge: np.ndarray, *, with_ties: bool = True, rounds: int = 1000, seed: int = 0
) -> AgreementResult:
    """Agreement of paired labels (one pair per human vote), with a bootstrap 95% interval and Cohen's kappa.

    Pairs whose judge label is unparsed are left out; ``with_ties=False`` also leaves out every pair where
    either side is a tie.
    """
    h = np.asarray(human, dtype=np.int64)
    j = np.asarray(judge, dtype=np.int64)
    keep = j != UNPARSED
    if not with_ties:
        keep &= (h != TIE) & (j != TIE)
    h, j = h[keep], j[keep]
    n = len(h)
    if n == 0:
        nan = float("nan")
        return AgreementResult(0, nan, nan, nan, nan)
    same = (h == j).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(rounds, n))
    means = same[draws].mean(axis=1)
    lower, upper = np.percentile(means, [2.5, 97.5])
    return AgreementResult(n, float(same.mean()), float(lower), float(upper), cohen_kappa(h, j))


def position_bias(first_won: np.ndarray) -> LeftShare:
    """From a boolean per decisive single-order verdict (True when the answer shown first won)."""
    return left_share(first_won)


@dataclass(frozen=True)
class Consistency:
    n: int
    share: float
    lower: float
    upper: float


def self_consistency(first_run: np.ndarray, second_run: np.ndarray) -> Consistency:
    """Share of items (same judge, same order) given the same verdict twice; unparsed pairs left out."""
    x = np.asarray(first_run, dtype=np.int64)
    y = np.asarray(second_run, dtype=np.int64)
    keep = (x != UNPARSED) & (y != UNPARSED)
    n = int(keep.sum())
    if n == 0:
        nan = float("nan")
        return Consistency(0, nan, nan, nan)
    same = int((x[keep] == y[keep]).sum())
    lo, hi = wilson_interval(same, n)
    return Consistency(n, same / n, lo, hi)
