"""Simulated votes from a known Bradley-Terry model, for the statistics tests and the benchmark."""

from dataclasses import dataclass

import numpy as np

from stats.bradley_terry import ELO_SCALE


@dataclass
class SimulatedVotes:
    model_a: np.ndarray
    model_b: np.ndarray
    outcome: np.ndarray
    features_a: np.ndarray
    features_b: np.ndarray
    true_rating: np.ndarray  # Elo scale, mean 1000


def simulate_votes(
    n_models: int, n_votes: int, rng: np.random.Generator, length_bias: float = 0.0, tie_rate: float = 0.0
) -> SimulatedVotes:
    """Votes between random model pairs; logit P(A wins) = theta_a - theta_b + length_bias * d_length.

    d_length = (len_a - len_b) / (len_a + len_b), and each model has its own typical answer length,
    so a length bias makes wordy models look stronger than they are.
    """
    theta = rng.normal(0, 0.8, n_models)
    verbosity = np.linspace(-0.8, 0.8, n_models)
    rng.shuffle(verbosity)
    a = rng.integers(0, n_models, n_votes)
    b = (a + rng.integers(1, n_models, n_votes)) % n_models

    def features(m):
        length = rng.lognormal(5.5 + verbosity[m], 0.3)
        return np.stack([length, rng.poisson(1, n_votes), rng.poisson(3, n_votes), rng.poisson(2, n_votes)], axis=1)

    fa, fb = features(a), features(b)
    d_length = (fa[:, 0] - fb[:, 0]) / (fa[:, 0] + fb[:, 0])
    p = 1 / (1 + np.exp(-(theta[a] - theta[b] + length_bias * d_length)))
    y = (rng.random(n_votes) < p).astype(float)
    if tie_rate:
        y[rng.random(n_votes) < tie_rate] = 0.5
    return SimulatedVotes(a, b, y, fa, fb, 1000 + ELO_SCALE * (theta - theta.mean()))
