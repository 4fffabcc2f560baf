r"""Human-judged accuracy from fact-check verdicts, and how it agrees with automatic scoring.

Each verdict on an answer scores s = 1 (correct), 0.5 (partly correct) or 0 (wrong). For a
response r (one model's answer to one prompt) judged by raters j = 1..J_r:

    x_r = (1 / J_r) sum_j s_rj                    (mean score)
    c_r = (1 / J_r) sum_j [s_rj = 1]              (share judging it fully correct)

and for a model m with judged responses on prompts P_m:

    accuracy_m = (1 / |P_m|) sum_{p in P_m} x_{m,p}      strict_m = (1 / |P_m|) sum_{p in P_m} c_{m,p}

95% intervals: percentile bootstrap over prompts (the unit that was sampled). Each round draws
|P| prompts with replacement from all judged prompts, the same draw for every model (so models
stay paired), and recomputes each model's mean over the drawn prompts it answered, with weights
w_p = times p was drawn: sum_p w_p x_{m,p} / sum_p w_p [p in P_m].

Human against automatic (per response): the raters call an answer correct when x_r >= 1/2; the
automatic scorer's verdict a_r is 0 or 1. Agreement is the share of responses where the two match,
and Cohen's kappa = (p_o - p_e) / (1 - p_e) with p_e = h a + (1 - h)(1 - a) from the marginal
shares h and a of "correct".
"""

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ResponseScores:
    """Per judged response: its model, its prompt, the mean score x_r, the share c_r, and J_r."""

    model: np.ndarray
    prompt: np.ndarray
    mean: np.ndarray
    correct_share: np.ndarray
    n_verdicts: np.ndarray


@dataclass(frozen=True)
class ModelAccuracy:
    accuracy: float
    lower: float
    upper: float
    strict: float
    strict_lower: float
    strict_upper: float
    n_items: int
    n_verdicts: int


def response_scores(response: np.ndarray, model: np.ndarray, prompt: np.ndarray, score: np.ndarray) -> ResponseScores:
    """Collapse one row per verdict into one row per response (``response`` ids group the rows)."""
    ids, first, index = np.unique(np.asarray(response), return_index=True, return_inverse=True)
    n = np.bincount(index, minlength=len(ids)).astype(np.float64)
    score = np.asarray(score, dtype=np.float64)
    return ResponseScores(
        model=np.asarray(model)[first],
        prompt=np.asarray(prompt)[first],
        mean=np.bincount(index, weights=score, minlength=len(ids)) / n,
        correct_share=np.bincount(index, weights=(score == 1.0).astype(np.float64), minlength=len(ids)) / n,
        n_verdicts=n.astype(np.int64),
    )


def _by_model_and_prompt(values: np.ndarray, scores: ResponseScores, k: int, n_prompts: int, p_index: np.ndarray):
    """A k x P matrix of per-response values (NaN where a model has no judged answer to a prompt)."""
    total = np.zeros((k, n_prompts))
    count = np.zeros((k, n_prompts))
    np.add.at(total, (scores.model, p_index), values)
    np.add.at(count, (scores.model, p_index), 1)
    with np.errstate(invalid="ignore"):
        return total / np.where(count > 0, count, np.nan)


def human_accuracy(scores: ResponseScores, k: int, rounds: int = 1000, seed: int = 0) -> list[ModelAccuracy | None]:
    """Each model's accuracy and strict share with bootstrap intervals (module docstring); None when unjudged."""
    prompts, p_index = np.unique(scores.prompt, return_inverse=True)
    n_prompts = len(prompts)
    if n_prompts == 0:
        return [None] * k
    matrices = [_by_model_and_prompt(v, scores, k, n_prompts, p_index) for v in (scores.mean, scores.correct_share)]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_prompts, size=(rounds, n_prompts))
    weights = np.zeros((rounds, n_prompts))
    np.add.at(weights, (np.repeat(np.arange(rounds), n_prompts), draws.ravel()), 1)
    bounds = []
    for matrix in matrices:
        present = ~np.isnan(matrix)
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = (weights @ np.nan_to_num(matrix).T) / (weights @ present.T)
        with warnings.catch_warnings():
            # An unjudged model's column is all NaN: its bounds stay NaN and it is reported as None below.
            warnings.simplefilter("ignore", RuntimeWarning)
            bounds.append(np.nanpercentile(boot, [2.5, 97.5], axis=0) if rounds else np.full((2, k), np.nan))
    verdicts = np.bincount(scores.model, weights=scores.n_verdicts, minlength=k)
    out: list[ModelAccuracy | None] = []
    for m in range(k):
        present = ~np.isnan(matrices[0][m])
        if not present.any():
            out.append(None)
            continue
        out.append(
            ModelAccuracy(
                accuracy=float(np.nanmean(matrices[0][m])),
                lower=float(bounds[0][0, m]),
                upper=float(bounds[0][1, m]),
                strict=float(np.nanmean(matrices[1][m])),
                strict_lower=float(bounds[1][0, m]),
                strict_upper=float(bounds[1][1, m]),
                n_items=int(present.sum()),
                n_verdicts=int(verdicts[m]),
            )
        )
    return out


@dataclass(frozen=True)
class Agreement:
    n: int
    agreement: float
    kappa: float
    both_correct: int
    human_only: int
    automatic_only: int
    both_wrong: int


def human_automatic_agreement(human_mean: np.ndarray, automatic: np.ndarray) -> Agreement | None:
    """The 2 x 2 table of the raters' call (mean score >= 1/2) against the automatic verdict, with kappa."""
    human = np.asarray(human_mean, dtype=np.float64) >= 0.5
    auto = np.asarray(automatic, dtype=bool)
    n = len(human)
    if n == 0:
        return None
    p_o = float((human == auto).mean())
    h, a = human.mean(), auto.mean()
    p_e = h * a + (1 - h) * (1 - a)
    kappa = float((p_o - p_e) / (1 - p_e)) if p_e < 1 else float("nan")
    return Agreement(
        n=n,
        agreement=p_o,
        kappa=kappa,
        both_correct=int((human & auto).sum()),
        human_only=int((human & ~auto).sum()),
        automatic_only=int((~human & auto).sum()),
        both_wrong=int((~human & ~auto).sum()),
    )
