"""Fact-check results: human-judged accuracy per model beside the automatic accuracy of the same answers
and the model's benchmark score; formulas in ``stats/accuracy.py``. The fact-check mode
(``ratings/modes/fact_check.py``) puts them in a snapshot's payload under ``fact_check``.
"""

import numpy as np

from inference_workers.models import LanguageModel, Response
from inference_workers.substance.scoring import contains_match
from ratings.analysis.schema import json_float
from ratings.models import Study, Verdict, Vote
from stats.accuracy import human_accuracy, human_automatic_agreement, response_scores
from stats.agreement import krippendorff_alpha_ordinal
from stats.intervals import wilson_interval

VERDICT_SCORE = {Verdict.CORRECT: 1.0, Verdict.PARTLY: 0.5, Verdict.WRONG: 0.0}
# Rank order for ordinal agreement: wrong < partly < correct.
VERDICT_RANK = {Verdict.WRONG: 0, Verdict.PARTLY: 1, Verdict.CORRECT: 2}
BOOTSTRAP_ROUNDS = 1000
BOOTSTRAP_SEED = 0
AUTOMATIC_RULE = (
    "normalised answer match (NQ / SQuAD normalisation): correct when a normalised reference answer "
    "occurs in the normalised answer"
)


def clean_refs(refs) -> list[str]:
    """A prompt's reference answers as non-empty strings (the rater's page escapes them)."""
    return [str(r).strip() for r in (refs or []) if str(r).strip()] if isinstance(refs, list) else []


def fact_check_results(study: Study, substance: dict[str, dict] | None = None) -> dict:
    """Human-judged accuracy per model beside the automatic and benchmark ones, for a snapshot payload.

    Excluded raters' verdicts and attention checks are left out. ``substance`` maps model names to
    their benchmark scores (``ratings.analysis.payload.substance_scores``).
    """
    rows = list(
        Vote.objects.filter(comparison__study=study, comparison__is_gold=False)
        .exclude(verdict_a="")
        .exclude(rater__excluded=True)
        .order_by("pk")
        .values_list(
            "verdict_a",
            "verdict_b",
            "comparison__prompt_id",
            "comparison__response_a_id",
            "comparison__response_b_id",
        )
    )
    response_ids = {r[3] for r in rows} | {r[4] for r in rows}
    responses = {
        r.pk: r
        for r in Response.objects.filter(pk__in=response_ids)
        .select_related("prompt")
        .only("pk", "model_id", "text", "prompt__reference_answers")
    }
    model_ids = sorted(
        {r.model_id for r in responses.values()} | set(study.language_models.values_list("pk", flat=True))
    )
    lookup = {m.pk: m for m in LanguageModel.objects.filter(pk__in=model_ids)}
    index = {pk: i for i, pk in enumerate(model_ids)}
    verdicts = [
        (response_id, prompt_id, verdict)
        for verdict_a, verdict_b, prompt_id, ra, rb in rows
        for response_id, verdict in ((ra, verdict_a), (rb, verdict_b))
        if responses[response_id].model_id in index
    ]
    k = len(model_ids)
    scores = response_scores(
        np.array([v[0] for v in verdicts], dtype=np.int64),
        np.array([index[responses[v[0]].model_id] for v in verdicts], dtype=np.int64),
        np.array([v[1] for v in verdicts], dtype=np.int64),
        np.array([VERDICT_SCORE[v[2]] for v in verdicts], dtype=np.float64),
    )
    judged = sorted({v[0] for v in verdicts})
    automatic = np.array(
        [contains_match(responses[r].text, clean_refs(responses[r].prompt.reference_answers)) for r in judged],
        dtype=bool,
    )
    human = human_accuracy(scores, k, rounds=BOOTSTRAP_ROUNDS, seed=BOOTSTRAP_SEED)
    judged_model = np.array([index[responses[r].model_id] for r in judged], dtype=np.int64)
    substance = substance or {}
    models = []
    for i, pk in enumerate(model_ids):
        m = lookup[pk]
        h = human[i]
        mine = automatic[judged_model == i]
        auto = None
        if len(mine):
            lo, hi = wilson_interval(int(mine.sum()), len(mine))
            auto = {"accuracy": json_float(mine.mean()), "ci": [json_float(lo), json_float(hi)], "n_items": len(mine)}
        models.append(
            {
                "model": m.name,
                "display_name": str(m),
                "role": m.role,
                "human_accuracy": None
                if h is None
                else {
                    "accuracy": json_float(h.accuracy),
                    "ci": [json_float(h.lower), json_float(h.upper)],
                    "n_items": h.n_items,
                    "strict": json_float(h.strict),
                    "strict_ci": [json_float(h.strict_lower), json_float(h.strict_upper)],
                    "n_verdicts": h.n_verdicts,
                },
                "automatic_accuracy": auto,
                "benchmark": substance.get(m.name),
            }
        )
    models.sort(key=lambda r: -(r["human_accuracy"] or {}).get("accuracy", -1))
    return {
        "n_votes": len(rows),
        "n_verdicts": len(verdicts),
        "models": models,
        "agreement": verdict_agreement(verdicts),
        "human_vs_automatic": _agreement_json(scores, judged, automatic),
        "scores": {v.value: VERDICT_SCORE[v] for v in Verdict},
        "interval": f"bootstrap over prompts, {BOOTSTRAP_ROUNDS} rounds, seed {BOOTSTRAP_SEED}, 2.5-97.5 percentiles",
        "automatic_rule": AUTOMATIC_RULE,
    }


def verdict_agreement(verdicts: list[tuple[int, int, str]]) -> dict:
    """Krippendorff's alpha (ordinal: wrong < partly < correct) over responses judged at least twice."""
    counts: dict[int, np.ndarray] = {}
    for response_id, _, verdict in verdicts:
        counts.setdefault(response_id, np.zeros(len(VERDICT_RANK)))[VERDICT_RANK[verdict]] += 1
    matrix = np.array(list(counts.values())) if counts else np.zeros((0, len(VERDICT_RANK)))
    multi = matrix[matrix.sum(axis=1) >= 2] if len(matrix) else matrix
    return {
        "alpha": json_float(krippendorff_alpha_ordinal(multi)) if len(multi) else None,
        "units": len(multi),
        "judgements": int(multi.sum()),
        "level": "ordinal",
    }


def _agreement_json(scores, judged: list[int], automatic: np.ndarray) -> dict | None:
    # response_scores orders responses by id, as ``judged`` is.
    result = human_automatic_agreement(scores.mean, automatic)
    if result is None:
        return None
    return {
        "n": result.n,
        "agreement": json_float(result.agreement),
        "kappa": json_float(result.kappa),
        "both_correct": result.both_correct,
        "human_only": result.human_only,
        "automatic_only": result.automatic_only,
        "both_wrong": result.both_wrong,
    }


def human_accuracy_json(entry: dict | None) -> dict | None:
    """The leaderboard JSON's ``human_accuracy`` entry: {accuracy, ci, n_items}, or None."""
    return {k: entry[k] for k in ("accuracy", "ci", "n_items")} if entry else None


def payload_human_accuracy(payload: dict) -> dict[str, dict | None] | None:
    """Human-judged accuracy by model name from a snapshot payload; None for a preference study."""
    results = payload.get("fact_check")
    if not results:
        return None
    return {r["model"]: human_accuracy_json(r["human_accuracy"]) for r in results["models"]}
