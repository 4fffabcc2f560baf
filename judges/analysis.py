"""A study's LLM judges beside its people: the ``judges`` entry of every analysis snapshot.

Registered as a payload extension (ratings/analysis/payload.py) by judges/hooks.py, so the dashboard,
the downloads, the API and ``leaderboard --study SLUG --json`` carry it; ratings never imports this app.
Formulas are in stats/judges.py; each judge's leaderboard is ratings' own (Bradley-Terry, raw and
style-controlled) run on the judge's combined verdicts instead of human votes.
"""

from collections import defaultdict
from itertools import combinations

import numpy as np

from inference_workers.models import LanguageModel, Response
from inference_workers.style_features import style_features
from judges.models import Judge, JudgeVerdict, Outcome
from ratings.analysis.battles import STYLE_COLUMNS
from ratings.analysis.payload import leaderboard
from ratings.analysis.schema import json_float
from ratings.analysis.votes import ModelInfo, VoteTable, study_votes
from ratings.models import Comparison, Study, Winner
from stats.intervals import wilson_interval
from stats.judges import TIE, UNPARSED, A, B, agreement, cohen_kappa, combine_orders, position_bias, self_consistency

RULE = (
    "Each comparison is judged in both orders. The two verdicts combine so: the same winner in both orders wins, "
    "anything else is a tie; an unparsed verdict in either order leaves the pair unparsed (left out, never a tie). "
    "A pair judged in one order only keeps that verdict."
)
AGREEMENT_ROUNDS = 1000
HUMAN_LABEL = {Winner.A: A, Winner.B: B, Winner.TIE: TIE, Winner.BOTH_BAD: TIE}
OUTCOME_LABEL = {Outcome.TIE: TIE, Outcome.UNPARSED: UNPARSED}

Pair = tuple[int, int]  # (lower response id, higher response id): answer "A" is the lower id


def canonical(first: int, second: int, outcome: str) -> tuple[Pair, int]:
    """The pair key and the verdict in its A/B terms (A = the lower response id)."""
    key = (min(first, second), max(first, second))
    if outcome in OUTCOME_LABEL:
        return key, OUTCOME_LABEL[outcome]
    winner = first if outcome == Outcome.FIRST else second
    return key, A if winner == key[0] else B


def _interval(lo: float, hi: float) -> list:
    return [json_float(lo), json_float(hi)]


def agreement_json(result) -> dict:
    return {
        "n": result.n,
        "agreement": json_float(result.agreement),
        "ci": _interval(result.lower, result.upper),
        "kappa": json_float(result.kappa),
    }


class JudgeData:
    """One judge's verdicts on a study, in A/B terms per pair."""

    def __init__(self, judge: Judge, rows: list[dict]):
        self.judge = judge
        self.rows = rows
        self.orders: dict[Pair, dict[int, int]] = defaultdict(dict)  # pair -> {response shown first: label}
        self.repeats: dict[tuple[int, int], dict[int, int]] = defaultdict(dict)  # (first, second) -> {repeat: label}
        for r in rows:
            key, label = canonical(r["response_first_id"], r["response_second_id"], r["outcome"])
            self.repeats[(r["response_first_id"], r["response_second_id"])][r["repeat"]] = label
            if r["repeat"] == 0:
                self.orders[key][r["response_first_id"]] = label

    def combined(self) -> dict[Pair, int]:
        out = {}
        for key, by_first in self.orders.items():
            if len(by_first) == 2:
                out[key] = int(combine_orders([by_first[key[0]]], [by_first[key[1]]])[0])
            else:
                out[key] = next(iter(by_first.values()))
        return out


def _responses(ids: set[int]) -> dict[int, dict]:
    rows = Response.objects.filter(pk__in=ids).values("pk", "model_id", "text", *STYLE_COLUMNS)
    out = {}
    for r in rows:
        values = [r[c] for c in STYLE_COLUMNS]
        if any(v is None for v in values):
            features = style_features(r["text"]).as_dict()
            values = [features[c] for c in STYLE_COLUMNS]
        out[r["pk"]] = {"model_id": r["model_id"], "style": values}
    return out


def judge_table(combined: dict[Pair, int], responses: dict[int, dict]) -> VoteTable:
    """The judge's parsed combined verdicts as a vote table (one vote per pair), with both answers' style."""
    pairs = [(key, label) for key, label in sorted(combined.items()) if label != UNPARSED]
    model_ids = sorted({responses[k]["model_id"] for (lo, hi), _ in pairs for k in (lo, hi)})
    lookup = {m.pk: m for m in LanguageModel.objects.filter(pk__in=model_ids)}
    index = {pk: i for i, pk in enumerate(model_ids)}
    outcome = {A: 1.0, B: 0.0, TIE: 0.5}
    return VoteTable(
        models=[ModelInfo(lookup[pk].name, str(lookup[pk]), lookup[pk].role) for pk in model_ids],
        model_a=np.array([index[responses[lo]["model_id"]] for (lo, _), _ in pairs], dtype=np.int64),
        model_b=np.array([index[responses[hi]["model_id"]] for (_, hi), _ in pairs], dtype=np.int64),
        outcome=np.array([outcome[label] for _, label in pairs], dtype=np.float64),
        style_a=np.array([responses[lo]["style"] for (lo, _), _ in pairs], dtype=np.float64),
        style_b=np.array([responses[hi]["style"] for (_, hi), _ in pairs], dtype=np.float64),
    )


def human_labels(study: Study) -> list[tuple[Pair, int]]:
    """Every analysed human vote (excluded raters and attention checks left out) as (pair, label in A/B terms)."""
    table = study_votes(study)
    if not table.n_votes:
        return []
    comparisons = dict(
        (pk, (a, b))
        for pk, a, b in Comparison.objects.filter(pk__in=set(table.comparison.tolist())).values_list(
            "pk", "response_a_id", "response_b_id"
        )
    )
    out = []
    for comparison, winner in zip(table.comparison.tolist(), table.winner, strict=True):
        a, b = comparisons[comparison]
        label = HUMAN_LABEL[winner]
        if label != TIE and a > b:
            label = B if label == A else A
        out.append(((min(a, b), max(a, b)), label))
    return out


def human_agreement(humans: list[tuple[Pair, int]], combined: dict[Pair, int], model_of: dict[int, str]) -> dict:
    """Each human vote on a pair the judge judged against the judge's combined verdict (MT-bench)."""
    matched = [(key, h, combined[key]) for key, h in humans if key in combined]
    h = np.array([m[1] for m in matched], dtype=np.int64)
    j = np.array([m[2] for m in matched], dtype=np.int64)
    per_pair: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for (lo, hi), hv, jv in matched:
        if jv != UNPARSED:
            per_pair[tuple(sorted((model_of[lo], model_of[hi])))].append((hv, jv))
    pairs = []
    for (m1, m2), values in sorted(per_pair.items()):
        same = sum(hv == jv for hv, jv in values)
        decisive = [(hv, jv) for hv, jv in values if hv != TIE and jv != TIE]
        same_decisive = sum(hv == jv for hv, jv in decisive)
        pairs.append(
            {
                "models": [m1, m2],
                "n": len(values),
                "agreement": json_float(same / len(values)),
                "ci": _interval(*wilson_interval(same, len(values))),
                "n_without_ties": len(decisive),
                "agreement_without_ties": json_float(same_decisive / len(decisive)) if decisive else None,
            }
        )
    return {
        "votes_matched": len(matched),
        "with_ties": agreement_json(agreement(h, j, with_ties=True, rounds=AGREEMENT_ROUNDS)),
        "without_ties": agreement_json(agreement(h, j, with_ties=False, rounds=AGREEMENT_ROUNDS)),
        "per_model_pair": pairs,
    }


def judge_entry(data: JudgeData, responses: dict[int, dict], humans, model_of: dict[int, str]) -> dict:
    judge = data.judge
    outcomes = {o: 0 for o in Outcome.values}
    for r in data.rows:
        outcomes[r["outcome"]] += 1
    combined = data.combined()
    combined_counts = {"a": 0, "b": 0, "tie": 0, "unparsed": 0}
    for label in combined.values():
        combined_counts[{A: "a", B: "b", TIE: "tie", UNPARSED: "unparsed"}[label]] += 1
    decisive = [r for r in data.rows if r["repeat"] == 0 and r["outcome"] in (Outcome.FIRST, Outcome.SECOND)]
    bias = position_bias(np.array([r["outcome"] == Outcome.FIRST for r in decisive], dtype=bool))
    twice = [(v[0], v[1]) for v in data.repeats.values() if 0 in v and 1 in v]
    consistency = self_consistency([x for x, _ in twice], [y for _, y in twice]) if twice else None
    table = judge_table(combined, responses)
    board = leaderboard(table) if table.n_votes else {"n_votes": 0, "models": [], "style_coefficients": None}
    return {
        "judge": judge.name,
        "display_name": str(judge),
        "model": judge.model.name if judge.model_id else None,
        "imported": judge.imported,
        "prompt": judge.prompt.name if judge.prompt_id else None,
        "verdicts": len(data.rows),
        "unparsed": outcomes[Outcome.UNPARSED],
        "outcomes": outcomes,
        "pairs": len(combined),
        "pairs_both_orders": sum(len(v) == 2 for v in data.orders.values()),
        "combined": combined_counts,
        "leaderboard": board,
        "style_coefficients": board.get("style_coefficients"),
        "style_coefficient_ci": board.get("style_coefficient_ci"),
        "position_bias": {
            "decisive": bias.decisive,
            "first_share": json_float(bias.left_share),
            "ci": _interval(bias.lower, bias.upper),
        },
        "self_consistency": None
        if consistency is None
        else {
            "n": consistency.n,
            "share": json_float(consistency.share),
            "ci": _interval(consistency.lower, consistency.upper),
        },
        "agreement": human_agreement(humans, combined, model_of),
    }


def judge_vs_judge(datas: list[JudgeData], combined: dict[str, dict[Pair, int]]) -> list[dict]:
    out = []
    for x, y in combinations(datas, 2):
        cx, cy = combined[x.judge.name], combined[y.judge.name]
        common = [k for k in cx if k in cy and cx[k] != UNPARSED and cy[k] != UNPARSED]
        a = np.array([cx[k] for k in common], dtype=np.int64)
        b = np.array([cy[k] for k in common], dtype=np.int64)
        decisive = (a != TIE) & (b != TIE)
        out.append(
            {
                "judges": [x.judge.name, y.judge.name],
                "n": len(common),
                "agreement": json_float((a == b).mean()) if len(common) else None,
                "kappa": json_float(cohen_kappa(a, b)) if len(common) else None,
                "n_without_ties": int(decisive.sum()),
                "agreement_without_ties": json_float((a[decisive] == b[decisive]).mean()) if decisive.any() else None,
            }
        )
    return out


def study_judges(study: Study) -> dict | None:
    """The ``judges`` payload entry: per judge its counts, leaderboard, style coefficients, position bias,
    self-consistency and agreement with the humans; and judge vs judge. None when no judge judged the study."""
    rows = list(
        JudgeVerdict.objects.filter(study=study)
        .order_by("pk")
        .values("judge_id", "response_first_id", "response_second_id", "repeat", "outcome")
    )
    if not rows:
        return None
    by_judge = defaultdict(list)
    for r in rows:
        by_judge[r["judge_id"]].append(r)
    judges = Judge.objects.filter(pk__in=by_judge).select_related("model", "prompt").order_by("name")
    ids = {r["response_first_id"] for r in rows} | {r["response_second_id"] for r in rows}
    responses = _responses(ids)
    names = dict(LanguageModel.objects.values_list("pk", "name"))
    model_of = {pk: names[info["model_id"]] for pk, info in responses.items()}
    humans = human_labels(study)
    datas = [JudgeData(judge, by_judge[judge.pk]) for judge in judges]
    combined = {d.judge.name: d.combined() for d in datas}
    return {
        "rule": RULE,
        "human_votes": len(humans),
        "judges": [judge_entry(d, responses, humans, model_of) for d in datas],
        "judge_vs_judge": judge_vs_judge(datas, combined),
    }
