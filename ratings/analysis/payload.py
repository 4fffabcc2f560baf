"""From a vote table to a snapshot payload: ``analyse`` turns a ``VoteTable`` (``votes.py``) into the JSON
(shape in ``schema.py``) that the dashboard, the downloads and the API read from an ``AnalysisSnapshot``;
``ratings.actions.snapshots.do_compute_snapshots`` stores it. Nothing here runs on a page request.
"""

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from django.db import DatabaseError, connection

from inference_workers.models import BenchmarkRun, LanguageModel
from inference_workers.substance.published import preferred as preferred_published
from ratings.analysis.schema import (
    LEADERBOARD_BOARD_KEYS,
    LEADERBOARD_RANK_KEYS,
    LEADERBOARD_ROW_KEYS,
    SUBSTANCE_JSON_KEYS,
    AnalysisPayload,
    Leaderboard,
    RaterReliability,
    ReferenceRow,
    SubstanceScore,
    json_float,
)
from ratings.analysis.votes import VoteTable
from ratings.models import Winner
from stats.agreement import krippendorff_alpha_nominal, value_counts
from stats.bradley_terry import ELO_BASE, bradley_terry, ranks_from_intervals
from stats.gap import style_substance_gap
from stats.intervals import wilson_interval
from stats.position import left_share
from stats.reliability import dawid_skene
from stats.style_control import (
    STYLE_FEATURES,
    bootstrap_style_controlled,
    fit_style_controlled,
    normalized_style_differences,
    profile_style_controlled,
)
from stats.win_rates import (
    battle_counts,
    predicted_win_matrix,
    win_fraction_matrix,
    win_rate_against,
    win_rates,
)

# Results other apps add to every snapshot, by payload key (the judges app's "judges"): each registers a
# function of the study in its AppConfig.ready, so ratings never imports it. A function returns None when
# it has nothing for the study; the leaderboard JSON (command, API, downloads) carries what it returned.
PAYLOAD_EXTENSIONS: dict[str, Callable] = {}


def register_payload_extension(key: str, compute: Callable) -> None:
    PAYLOAD_EXTENSIONS[key] = compute


def extension_results(study) -> dict:
    """Every registered extension's results for the study, by key; those with nothing to say left out."""
    found = {key: compute(study) for key, compute in PAYLOAD_EXTENSIONS.items()}
    return {key: value for key, value in found.items() if value is not None}


def payload_extensions(payload: dict) -> dict:
    """The registered extensions' results a snapshot holds, by key."""
    return {key: payload[key] for key in PAYLOAD_EXTENSIONS if payload.get(key) is not None}


LABELS = {Winner.A: 0, Winner.B: 1, Winner.TIE: 2, Winner.BOTH_BAD: 2}
BOOTSTRAP_ROUNDS = 100
BOOTSTRAP_SEED = 0
# The interval rule: below this many votes for a model, or when a model won or lost every vote, the
# sandwich and the bootstrap overstate certainty; the leaderboard then uses the profile likelihood.
MIN_VOTES_FOR_SANDWICH = 30
# Style control is fitted on the votes whose answers both have style features, and refused when
# fewer than this share of the votes have them.
STYLE_COVERAGE_MIN = 0.5
# Profiling a style-controlled rating costs a few hundred passes over the votes per flagged model.
PROFILE_STYLE_BUDGET = 20_000_000
TRUSTED_ACCURACY = 0.5
# Substance benchmarks in order of preference for the style-vs-substance chart.
SUBSTANCE_ORDER = ("nq_open", "mmlu", "truthfulqa_mc1", "truthfulqa_gen", "humaneval")


def json_bound(x: float) -> float | None:
    """A coefficient's interval end for JSON; None (null) where the data set no bound."""
    return round(float(x), 6) if np.isfinite(x) else None


def _bound(x: float) -> float | None:
    """An interval end for JSON: rounded, or None (null) where the data set no bound (+-inf)."""
    return round(float(x), 2) if np.isfinite(x) else None


def interval_flags(table: VoteTable) -> dict[int, str]:
    """Models whose intervals the sandwich or the bootstrap would overstate, with the reason: fewer than
    MIN_VOTES_FOR_SANDWICH votes, or separated (won every vote, or lost every vote; a tie breaks it)."""
    k = len(table.models)
    votes = battle_counts(table.model_a, table.model_b, k)
    score = np.bincount(table.model_a, weights=table.outcome, minlength=k) + np.bincount(
        table.model_b, weights=1.0 - table.outcome, minlength=k
    )
    flags = {}
    for i in range(k):
        if votes[i] == 0:
            continue
        if score[i] == votes[i]:
            flags[i] = f"won every one of its {int(votes[i])} votes: no upper bound"
        elif score[i] == 0:
            flags[i] = f"lost every one of its {int(votes[i])} votes: no lower bound"
        elif votes[i] < MIN_VOTES_FOR_SANDWICH:
            flags[i] = f"{int(votes[i])} votes (fewer than {MIN_VOTES_FOR_SANDWICH})"
    return flags


def profiled_clause(table: VoteTable, flags: dict[int, str]) -> str:
    """How an interval method names the models that got the profile likelihood instead ("" when none did)."""
    return f"; profile likelihood for {', '.join(table.models[i].name for i in sorted(flags))}" if flags else ""


def style_rows(table: VoteTable) -> np.ndarray | None:
    """Which votes have style features for both answers (None: no vote has any)."""
    if table.style_a is None or table.style_b is None:
        return None
    return ~(np.isnan(table.style_a).any(axis=1) | np.isnan(table.style_b).any(axis=1))


def _style_fit(table: VoteTable, keep: np.ndarray, reference, flags, style_interval, rounds, seed):
    """The style-controlled fit on the votes with features, over the models that have such votes; the
    fit's ratings and bounds are returned in the table's model order (NaN for a model without)."""
    k = len(table.models)
    a, b, y = table.model_a[keep], table.model_b[keep], table.outcome[keep]
    present = np.unique(np.concatenate([a, b]))
    remap = -np.ones(k, dtype=np.int64)
    remap[present] = np.arange(len(present))
    ref = int(remap[reference]) if reference is not None and remap[reference] >= 0 else None
    z = normalized_style_differences(table.style_a[keep], table.style_b[keep])
    args = (remap[a], remap[b], y, z, len(present), ref)
    if style_interval == "bootstrap":
        fit = bootstrap_style_controlled(*args, rounds=rounds, seed=seed)
    else:
        fit = fit_style_controlled(*args)
    lower, upper = fit.lower.copy(), fit.upper.copy()
    profiled = [int(remap[i]) for i in flags if remap[i] >= 0]
    if profiled and len(y) * (len(profiled) + z.shape[1]) <= PROFILE_STYLE_BUDGET:
        bounds, coef_lo, coef_hi = profile_style_controlled(*args[:5], profiled, ref)
        for j, (lo, hi) in bounds.items():
            lower[j], upper[j] = lo, hi
        fit = replace(fit, coefficient_lower=coef_lo, coefficient_upper=coef_hi)
    elif profiled:  # too many votes to profile each flagged model: at least open the unbounded ends
        for i in flags:
            j = remap[i]
            if j >= 0 and "no upper bound" in flags[i]:
                upper[j] = np.inf
            if j >= 0 and "no lower bound" in flags[i]:
                lower[j] = -np.inf
    out = np.full((3, k), np.nan)
    out[:, present] = fit.rating, lower, upper
    return out, fit


def leaderboard(
    table: VoteTable,
    reference: int | None = None,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = BOOTSTRAP_SEED,
    style_interval: str = "sandwich",
    anchor_rating: float | None = None,
    style_sources: dict[str, int] | None = None,
) -> Leaderboard:
    """Raw ratings (bootstrap 95% intervals) beside style-controlled ones (sandwich or bootstrap 95% intervals).

    Rows carry the fixed keys (model, rating, ci, votes, win_rate, style_controlled) plus
    display_name, role, rank, style_rank and rank_change (positive: the model climbs with style held
    equal) and interval_note. Honest intervals: when any model has fewer than MIN_VOTES_FOR_SANDWICH
    votes or won (or lost) every vote, its raw and style-controlled intervals come from the profile
    likelihood (and the style coefficients' too), and ``interval`` says so; an
    end the data cannot bound is null. Style control uses the votes whose answers both have style
    features, and is refused below STYLE_COVERAGE_MIN of the votes (``style`` says how many were left
    out and why). ``reference`` is pinned at 1000, or at ``anchor_rating``.
    """
    k = len(table.models)
    if table.n_votes == 0:
        return {"n_votes": 0, "models": [], "style_coefficients": None}
    flags = interval_flags(table)
    raw = bradley_terry(
        table.model_a,
        table.model_b,
        table.outcome,
        k,
        reference,
        interval="bootstrap",
        rounds=rounds,
        seed=seed,
        profile=sorted(flags),
    )
    rates = win_rates(table.model_a, table.model_b, table.outcome, k)
    votes = battle_counts(table.model_a, table.model_b, k)
    shift = (anchor_rating - ELO_BASE) if anchor_rating is not None else 0.0
    keep = style_rows(table)
    with_style = int(keep.sum()) if keep is not None else 0
    coverage = with_style / table.n_votes
    style = {
        "used": False,
        "votes_with_features": with_style,
        "left_out": table.n_votes - with_style,
        "coverage": round(coverage, 4),
        "min_coverage": STYLE_COVERAGE_MIN,
        "sources": style_sources or table.style_sources,
        "note": "",
    }
    controlled = fit = None
    if with_style and coverage >= STYLE_COVERAGE_MIN:
        controlled, fit = _style_fit(table, keep, reference, flags, style_interval, rounds, seed)
        style["used"] = True
        if with_style < table.n_votes:
            style["note"] = (
                f"{table.n_votes - with_style} of {table.n_votes} votes have no style features for both answers "
                "and are left out of the style-controlled fit (kept in the raw ratings)."
            )
    else:
        style["note"] = (
            "No vote has style features (answer texts or conv_metadata counts): no style control."
            if not with_style
            else f"Only {with_style} of {table.n_votes} votes ({coverage:.0%}) have style features, below the "
            f"{STYLE_COVERAGE_MIN:.0%} needed: no style control."
        )
    raw_rank = raw.rank
    style_rank = None
    if controlled is not None:
        present = ~np.isnan(controlled[0])
        style_rank = np.zeros(k, dtype=np.int64)
        style_rank[present] = ranks_from_intervals(controlled[1][present], controlled[2][present])
    rows = []
    for i in np.argsort(-raw.rating, kind="stable"):
        info = table.models[i]
        row = {
            "model": info.name,
            "rating": round(float(raw.rating[i] + shift), 2),
            "ci": [_bound(raw.lower[i] + shift), _bound(raw.upper[i] + shift)],
            "votes": int(votes[i]),
            "win_rate": json_float(rates[i]),
            "style_controlled": None,
            "display_name": info.display_name,
            "role": info.role,
            "rank": int(raw_rank[i]),
            "style_rank": None,
            "rank_change": None,
            "interval_note": flags.get(i, ""),
        }
        if controlled is not None and not np.isnan(controlled[0][i]):
            row["style_controlled"] = {
                "rating": round(float(controlled[0][i] + shift), 2),
                "ci": [_bound(controlled[1][i] + shift), _bound(controlled[2][i] + shift)],
            }
            row["style_rank"] = int(style_rank[i])
            row["rank_change"] = int(raw_rank[i] - style_rank[i])
        rows.append(row)
    raw_method = f"bootstrap over votes, {rounds} rounds, seed {seed}, 2.5-97.5 percentiles"
    if flags:
        raw_method += f"{profiled_clause(table, flags)} (the bootstrap overstates certainty there)"
    style_method = (
        f"bootstrap over votes, {rounds} rounds, seed {seed}, 2.5-97.5 percentiles"
        if style_interval == "bootstrap"
        else "sandwich (Hessian-based)"
    )
    if flags:
        style_method += f"{profiled_clause(table, flags)} and for the coefficients"
    result = {
        "n_votes": table.n_votes,
        "models": rows,
        "style_coefficients": None,
        "style_coefficient_ci": None,
        "interval": {"raw": raw_method, "style_controlled": style_method if controlled is not None else None},
        "interval_rule": (
            f"a model with fewer than {MIN_VOTES_FOR_SANDWICH} votes, or that won or lost every vote, gets a "
            "profile-likelihood interval instead of the sandwich or the bootstrap"
        ),
        "reference": table.models[reference].name if reference is not None else None,
        "anchor": (
            {"model": table.models[reference].name, "rating": anchor_rating if anchor_rating is not None else ELO_BASE}
            if reference is not None
            else None
        ),
        "style": style,
    }
    if fit is not None:
        result["style_coefficients"] = {
            name: round(float(c), 6) for name, c in zip(STYLE_FEATURES, fit.coefficients, strict=True)
        }
        result["style_coefficient_ci"] = {
            name: [json_bound(lo), json_bound(hi)]
            for name, lo, hi in zip(STYLE_FEATURES, fit.coefficient_lower, fit.coefficient_upper, strict=True)
        }
    return result


def leaderboard_json(
    board: dict, substance: dict[str, dict] | None = None, human_accuracy: dict[str, dict | None] | None = None
) -> dict:
    """The fixed leaderboard shape, for the command, the downloads and the API.

    Each model also carries ``substance`` ({benchmark, accuracy, ci} or null) from ``substance``.
    A fact-check study passes ``human_accuracy`` ({accuracy, ci, n_items} or null by model name,
    ``ratings.analysis.fact_check.payload_human_accuracy``): every row then carries it, and models with verdicts
    but no preference votes get rows with null ratings.
    """
    substance = substance or {}
    rows = [
        {
            **{k: row[k] for k in LEADERBOARD_ROW_KEYS},
            "substance": substance_json(substance.get(row["model"])),
            **{k: row.get(k) for k in LEADERBOARD_RANK_KEYS},
        }
        for row in board["models"]
    ]
    if human_accuracy is not None:
        rated = {row["model"] for row in rows}
        rows += [
            {"model": name, "rating": None, "ci": None, "votes": 0, "win_rate": None, "style_controlled": None}
            | {"substance": substance_json(substance.get(name))}
            for name in human_accuracy
            if name not in rated
        ]
        for row in rows:
            row["human_accuracy"] = human_accuracy.get(row["model"])
    return {
        "n_votes": board["n_votes"],
        "models": rows,
        "style_coefficients": board["style_coefficients"],
        **{k: board.get(k) for k in LEADERBOARD_BOARD_KEYS},
    }


def _substance_entry(run: BenchmarkRun, sources: int) -> dict:
    ci = wilson_interval(run.n_correct, run.n_items) if run.n_items else None
    return {
        "benchmark": run.benchmark,
        "benchmark_label": run.get_benchmark_display(),
        "accuracy": run.accuracy,
        "ci": [json_float(ci[0]), json_float(ci[1])] if ci else None,
        "n_items": run.n_items,
        "published": run.published,
        "citation": run.citation,
        "setting": run.setting,
        "sources": sources,
        "run_id": run.pk,
    }


def substance_scores(model_names: list[str]) -> dict[str, SubstanceScore]:
    """Each model's substance: every benchmark it has a score on, and a headline one.

    Per benchmark, a score measured here comes before a published one (the latest measured run);
    among published scores that disagree, ``inference_workers.substance.published.preferred`` picks
    one by its stated rule, and ``sources`` says how many published values there are. The headline is
    the first benchmark of SUBSTANCE_ORDER the model has. ``ci`` is the 95% Wilson interval of the
    accuracy; None for a published score with no item count.
    """
    runs = (
        BenchmarkRun.objects.filter(model__name__in=model_names, accuracy__isnull=False)
        .select_related("model")
        .order_by("-created_at", "-pk")
    )
    grouped: dict[tuple[str, str], list[BenchmarkRun]] = defaultdict(list)
    for run in runs:
        grouped[(run.model.name, run.benchmark)].append(run)
    result: dict[str, dict] = {}
    for (model, benchmark), found in grouped.items():
        measured = [r for r in found if not r.published]
        chosen = measured[0] if measured else preferred_published(found)
        entry = _substance_entry(chosen, sources=sum(r.published for r in found))
        result.setdefault(model, {})[benchmark] = entry
    best: dict[str, dict] = {}
    for model, benchmarks in result.items():
        order = sorted(benchmarks, key=lambda b: SUBSTANCE_ORDER.index(b) if b in SUBSTANCE_ORDER else 99)
        best[model] = {**benchmarks[order[0]], "benchmarks": {b: benchmarks[b] for b in order}}
    return best


def lineage(model_names: list[str]) -> list[dict]:
    """The study's models that name the model they were fine-tuned from, with that base's substance
    (a base need not be in the study: LLaMA-13B has published scores but no votes)."""
    tuned = LanguageModel.objects.filter(name__in=model_names, fine_tuned_from__isnull=False).select_related(
        "fine_tuned_from"
    )
    pairs = [(m.name, m.fine_tuned_from) for m in tuned.order_by("name")]
    bases = substance_scores(sorted({base.name for _, base in pairs}))
    return [
        {
            "model": name,
            "base": base.name,
            "base_display_name": base.display_name or base.name,
            "base_substance": bases.get(base.name),
        }
        for name, base in pairs
    ]


def substance_scores_if_stored(model_names: list[str]) -> dict[str, SubstanceScore]:
    """``substance_scores`` when the database is there and migrated, else {}: reading a battle file needs none."""
    try:
        if BenchmarkRun._meta.db_table not in connection.introspection.table_names():
            return {}
    except DatabaseError:
        return {}
    return substance_scores(model_names)


def substance_json(score: dict | None) -> dict | None:
    """The leaderboard JSON's ``substance`` entry: the headline {benchmark, accuracy, ci, published, source}
    and ``benchmarks``, every benchmark the model has, each with the same keys; or None."""
    if not score:
        return None

    def one(entry: dict) -> dict:
        return {k: entry[k] for k in SUBSTANCE_JSON_KEYS} | {
            "published": bool(entry.get("published")),
            "source": entry.get("citation") if entry.get("published") else "measured here",
        }

    benchmarks = score.get("benchmarks") or {score["benchmark"]: score}
    return one(score) | {"benchmarks": {b: one(e) for b, e in benchmarks.items()}}


def payload_substance(payload: dict) -> dict[str, dict]:
    """The substance scores a snapshot was computed with, by model name (fact-check results included)."""
    found = {r["model"]: r["substance"] for r in payload.get("against_reference", []) if r.get("substance")}
    for r in (payload.get("fact_check") or {}).get("models", []):
        if r["benchmark"]:
            found.setdefault(r["model"], r["benchmark"])
    return found


def shared_benchmark(score: dict | None, reference_score: dict | None) -> str | None:
    """The first benchmark of SUBSTANCE_ORDER (then any) that both the model and the reference have."""
    if not score or not reference_score:
        return None
    mine = score.get("benchmarks") or {score["benchmark"]: score}
    theirs = reference_score.get("benchmarks") or {reference_score["benchmark"]: reference_score}
    both = [b for b in mine if b in theirs]
    both.sort(key=lambda b: SUBSTANCE_ORDER.index(b) if b in SUBSTANCE_ORDER else 99)
    return both[0] if both else None


def gap_against_reference(row: dict, reference_score: dict | None) -> dict | None:
    """Preference beside relative accuracy and their difference (stats.gap), on a benchmark both have."""
    benchmark = shared_benchmark(row["substance"], reference_score)
    if benchmark is None or row["win_rate"] is None:
        return None
    score = (row["substance"].get("benchmarks") or {benchmark: row["substance"]})[benchmark]
    reference_score = (reference_score.get("benchmarks") or {benchmark: reference_score})[benchmark]
    result = style_substance_gap(
        row["win_rate"],
        row["battles"],
        score["accuracy"],
        score["n_items"],
        reference_score["accuracy"],
        reference_score["n_items"],
    )
    if result is None:
        return None
    return {
        "benchmark": score["benchmark"],
        "preference": json_float(result.preference),
        "relative_accuracy": json_float(result.relative_accuracy),
        "gap": json_float(result.gap),
        "ci": [json_float(result.ci[0]), json_float(result.ci[1])],
    }


def against_reference(table: VoteTable, reference: int | None, substance: dict[str, dict]) -> list[ReferenceRow]:
    rows = []
    for i, info in enumerate(table.models):
        row = {
            "model": info.name,
            "display_name": info.display_name,
            "role": info.role,
            "parameter_count": info.parameter_count,
            "imitation_data_tokens": info.imitation_data_tokens,
            "battles": 0,
            "win_rate": None,
            "ci": None,
            "equal_or_better": None,
            "substance": substance.get(info.name),
            "is_reference": i == reference,
        }
        if reference is not None and i != reference:
            wr = win_rate_against(table.model_a, table.model_b, table.outcome, i, reference)
            row.update(
                battles=wr.battles,
                win_rate=json_float(wr.win_rate),
                ci=[json_float(wr.lower), json_float(wr.upper)] if wr.battles else None,
                equal_or_better=json_float(wr.equal_or_better),
            )
        rows.append(row)
    reference_score = substance.get(table.models[reference].name) if reference is not None else None
    for row in rows:
        row["gap"] = None if row["is_reference"] else gap_against_reference(row, reference_score)
    return rows


def win_matrix(table: VoteTable, ratings_by_model: dict[str, float]) -> dict:
    k = len(table.models)
    observed = win_fraction_matrix(table.model_a, table.model_b, table.outcome, k)
    order = sorted(range(k), key=lambda i: -ratings_by_model.get(table.models[i].name, 0))
    predicted = predicted_win_matrix(np.array([ratings_by_model.get(m.name, 1000.0) for m in table.models]))
    size = k * k
    pairs = table.model_a * k + table.model_b
    battles = np.bincount(pairs, minlength=size) + np.bincount(table.model_b * k + table.model_a, minlength=size)
    battles = battles.reshape(k, k)
    return {
        "models": [table.models[i].name for i in order],
        "observed": [[json_float(observed[i, j]) if i != j else None for j in order] for i in order],
        "predicted": [[json_float(predicted[i, j]) if i != j else None for j in order] for i in order],
        "battles": [[int(battles[i, j]) for j in order] for i in order],
    }


def timeline(table: VoteTable) -> list[dict]:
    counts = Counter(table.day)
    total = 0
    out = []
    for day in sorted(counts):
        total += counts[day]
        out.append({"date": day, "votes": counts[day], "cumulative": total})
    return out


def categories(table: VoteTable) -> list[dict]:
    """A Bradley-Terry board per prompt category, under the leaderboard's interval rule: the sandwich, or the
    profile likelihood for a model with few votes in the category or that won or lost all of them
    (``interval`` names the method, a row's ``interval_note`` the reason; an end the data cannot bound is null)."""
    out = []
    k = len(table.models)
    labels = np.array(table.category)
    for name in sorted(set(table.category)):
        sub = table.subset(labels == name)
        present = np.unique(np.concatenate([sub.model_a, sub.model_b]))
        remap = -np.ones(k, dtype=np.int64)
        remap[present] = np.arange(len(present))
        flags = interval_flags(sub)
        fit = bradley_terry(
            remap[sub.model_a],
            remap[sub.model_b],
            sub.outcome,
            len(present),
            profile=sorted(int(remap[m]) for m in flags),
        )
        rates = win_rates(sub.model_a, sub.model_b, sub.outcome, k)
        votes = battle_counts(sub.model_a, sub.model_b, k)
        rows = [
            {
                "model": table.models[m].name,
                "rating": round(float(fit.rating[j]), 2),
                "ci": [_bound(fit.lower[j]), _bound(fit.upper[j])],
                "win_rate": json_float(rates[m]),
                "votes": int(votes[m]),
                "interval_note": flags.get(int(m), ""),
            }
            for j, m in enumerate(present)
        ]
        rows.sort(key=lambda r: -r["rating"])
        method = "sandwich" + profiled_clause(table, flags)
        out.append({"category": name, "n_votes": sub.n_votes, "models": rows, "interval": method})
    return out


def agreement(table: VoteTable, questions: list[dict]) -> dict:
    """Krippendorff's alpha over comparisons (units) for the main choice and each follow-up question."""

    def alpha(units: list[int], values: list[str]) -> dict:
        counts = value_counts(np.array(units), np.array(values)) if units else np.zeros((0, 0))
        multi = int((counts.sum(axis=1) >= 2).sum()) if len(units) else 0
        return {
            "alpha": json_float(krippendorff_alpha_nominal(counts)) if multi else None,
            "units": multi,
            "judgements": int(counts[counts.sum(axis=1) >= 2].sum()) if multi else 0,
        }

    main = alpha(list(table.comparison), table.winner)
    per_question = []
    for q in questions:
        key = q.get("key")
        pairs = [(c, a[key]) for c, a in zip(table.comparison, table.answers, strict=True) if a.get(key)]
        result = alpha([c for c, _ in pairs], [str(v) for _, v in pairs])
        per_question.append({"key": key, "text": q.get("text", key), **result})
    return {"choice": main, "questions": per_question}


def rater_reliability(table: VoteTable, threshold: float = TRUSTED_ACCURACY) -> RaterReliability:
    """Dawid-Skene accuracy and left share per rater (live votes only: imported votes have no rater)."""
    live = table.rater >= 0
    if not live.any():
        return {"raters": [], "note": "No live raters: imported votes carry no rater identity.", "threshold": threshold}
    rater_ids = np.unique(table.rater[live])
    r_index = {r: i for i, r in enumerate(rater_ids)}
    comps = np.unique(table.comparison[live])
    c_index = {c: i for i, c in enumerate(comps)}
    idx = np.nonzero(live)[0]
    fit = dawid_skene(
        np.array([c_index[table.comparison[i]] for i in idx]),
        np.array([r_index[table.rater[i]] for i in idx]),
        np.array([LABELS[table.winner[i]] for i in idx]),
        3,
    )
    rows = []
    for r, i in r_index.items():
        mine = idx[table.rater[idx] == r]
        decisive = [j for j in mine if table.winner[j] in (Winner.A, Winner.B)]
        left_won = np.array([(table.winner[j] == Winner.A) == table.left_is_a[j] for j in decisive], dtype=bool)
        share = left_share(left_won)
        rows.append(
            {
                "rater": int(r),
                "votes": int(len(mine)),
                "accuracy": json_float(fit.accuracy[i]),
                "trusted": bool(fit.accuracy[i] >= threshold),
                "left_share": json_float(share.left_share),
                "decisive": share.decisive,
            }
        )
    rows.sort(key=lambda row: -(row["accuracy"] or 0))
    return {"raters": rows, "note": "", "threshold": threshold}


def position_bias(table: VoteTable) -> dict:
    decisive = np.array([w in (Winner.A, Winner.B) for w in table.winner], dtype=bool)
    if not decisive.any():
        return {"decisive": 0, "left_share": None, "ci": None}
    is_a = np.array(table.winner)[decisive] == Winner.A
    share = left_share(is_a == table.left_is_a[decisive])
    return {
        "decisive": share.decisive,
        "left_share": json_float(share.left_share),
        "ci": [json_float(share.lower), json_float(share.upper)],
    }


def analyse(
    table: VoteTable, reference_name: str | None = None, questions: list[dict] | None = None
) -> AnalysisPayload:
    """Everything the dashboard shows, as one JSON-safe payload."""
    names = [m.name for m in table.models]
    reference = names.index(reference_name) if reference_name in names else None
    board = leaderboard(table, reference=None)
    ratings = {row["model"]: row["rating"] for row in board["models"]}
    substance = substance_scores(names)
    payload = {
        "n_votes": table.n_votes,
        "leaderboard": board,
        # The study's reference, whether or not the votes so far involve it (none yet: an empty snapshot).
        "reference": reference_name,
        "against_reference": against_reference(table, reference, substance),
        "substance_available": bool(substance),
        "lineage": lineage(names),
        "categories": categories(table) if table.n_votes else [],
        "timeline": timeline(table),
        "agreement": agreement(table, questions or []) if table.n_votes else None,
        "position": position_bias(table) if table.n_votes else None,
        "raters": rater_reliability(table) if table.n_votes else {"raters": [], "note": "No votes yet."},
        "imported_votes": int((table.rater < 0).sum()) if table.rater is not None else 0,
    }
    payload["win_matrix"] = win_matrix(table, ratings) if table.n_votes else None
    return payload


def trusted_subset(table: VoteTable, threshold: float = TRUSTED_ACCURACY) -> VoteTable:
    """Votes of raters whose Dawid-Skene accuracy reaches the threshold, plus imported votes."""
    quality = rater_reliability(table, threshold)
    trusted = {row["rater"] for row in quality["raters"] if row["trusted"]}
    keep = np.array([r < 0 or int(r) in trusted for r in table.rater], dtype=bool)
    return table.subset(keep)
