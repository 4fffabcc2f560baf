"""Benchmark: the full leaderboard on 1,000,000 simulated votes over 50 models, against a baseline.

Ours: ratings.analysis.leaderboard (Bradley-Terry raw ratings with a 100-round bootstrap, style-
controlled ratings with sandwich intervals) plus the win-fraction and predicted matrices.
Baseline, measured in the same run: the straightforward per-battle fit as FastChat does it: a
dense design matrix with one row per vote, logistic regression by L-BFGS, and a bootstrap that
resamples the votes and refits, for raw and for style-controlled ratings. The baseline's rounds
are measured on a few rounds and scaled linearly to 100 (each round is an independent refit).

    .venv/bin/python bench/analysis.py [--votes 1000000] [--models 50] [--baseline-rounds 2]
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

import django  # noqa: E402

django.setup()

from ratings.analysis.payload import leaderboard, win_matrix  # noqa: E402
from ratings.analysis.votes import ModelInfo, VoteTable  # noqa: E402
from stats.style_control import bootstrap_style_controlled, normalized_style_differences  # noqa: E402
from tests.stats.simulate import simulate_votes  # noqa: E402


def per_battle_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Logistic regression on one row per vote (ties as y = 0.5), L-BFGS with the analytic gradient."""

    def loss(w):
        eta = x @ w
        p = 1 / (1 + np.exp(-eta))
        nll = np.sum(np.logaddexp(0, eta) - y * eta) + 0.5e-6 * w @ w
        return nll, x.T @ (p - y) + 1e-6 * w

    return minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B").x


def baseline_round(a, b, y, z, k, rng, style: bool) -> float:
    t0 = time.perf_counter()
    idx = rng.integers(0, len(y), len(y))
    x = np.zeros((len(y), k + (z.shape[1] if style else 0)))
    rows = np.arange(len(y))
    x[rows, a[idx]] = 1.0
    x[rows, b[idx]] = -1.0
    if style:
        x[:, k:] = z[idx]
    per_battle_fit(x, y[idx])
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--baseline-rounds", type=int, default=2)
    parser.add_argument(
        "--style-bootstrap-rounds",
        type=int,
        default=0,
        help="Also time the optional bootstrap of style-controlled ratings on this many rounds.",
    )
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    print(f"simulating {args.votes:,} votes over {args.models} models with style features ...", flush=True)
    sim = simulate_votes(args.models, args.votes, rng, length_bias=2.0, tie_rate=0.1)
    table = VoteTable(
        models=[ModelInfo(f"model-{i}", f"model-{i}") for i in range(args.models)],
        model_a=sim.model_a,
        model_b=sim.model_b,
        outcome=sim.outcome,
        style_a=sim.features_a,
        style_b=sim.features_b,
    )

    print("ours: leaderboard (raw + 100-round bootstrap, style-controlled + sandwich) and win matrices ...", flush=True)
    t0 = time.perf_counter()
    board = leaderboard(table)
    matrix = win_matrix(table, {row["model"]: row["rating"] for row in board["models"]})
    ours = time.perf_counter() - t0
    assert len(board["models"]) == args.models and len(matrix["observed"]) == args.models
    planted = [sim.true_rating[int(row["model"].split("-")[1])] for row in board["models"]]
    fitted = [row["style_controlled"]["rating"] for row in board["models"]]
    corr = np.corrcoef(planted, fitted)[0, 1]
    print(f"ours: {ours:.2f} s (style-controlled ratings vs planted: correlation {corr:.4f})")

    z = normalized_style_differences(sim.features_a, sim.features_b)
    if args.style_bootstrap_rounds:
        t0 = time.perf_counter()
        bootstrap_style_controlled(
            sim.model_a, sim.model_b, sim.outcome, z, args.models, rounds=args.style_bootstrap_rounds
        )
        took = time.perf_counter() - t0
        print(
            f"optional style-controlled bootstrap: {took:.1f} s for {args.style_bootstrap_rounds} rounds "
            f"({took / args.style_bootstrap_rounds:.2f} s a round)"
        )
    n = args.baseline_rounds
    raw_times, style_times = [], []
    for r in range(n):
        raw_times.append(baseline_round(sim.model_a, sim.model_b, sim.outcome, z, args.models, rng, style=False))
        print(f"baseline raw round {r + 1}/{n}: {raw_times[-1]:.2f} s", flush=True)
    for r in range(n):
        style_times.append(baseline_round(sim.model_a, sim.model_b, sim.outcome, z, args.models, rng, style=True))
        print(f"baseline style-controlled round {r + 1}/{n}: {style_times[-1]:.2f} s", flush=True)
    baseline = 100 * (np.mean(raw_times) + np.mean(style_times))
    print(
        f"baseline (per-battle L-BFGS, 100 bootstrap rounds each for raw and style-controlled, "
        f"scaled from {n} measured rounds each): {baseline:.1f} s"
    )
    print(f"speed-up: {baseline / ours:.0f}x ({baseline:.1f} s / {ours:.2f} s)")


if __name__ == "__main__":
    main()
