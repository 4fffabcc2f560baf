r"""Rater reliability by Dawid-Skene (1979), fitted with EM.

Each item u has an unknown true label t_u in K classes with prior pi; rater r reports class l
for true class c with probability Theta_r[c, l]. EM alternates

    E: q_u(c) proportional to pi_c * prod_{(r, l) on u} Theta_r[c, l]
    M: pi_c = mean_u q_u(c),  Theta_r[c, l] proportional to sum_{u rated l by r} q_u(c) + alpha

(alpha = 1 smoothing). A rater's reliability is their expected accuracy sum_c pi_c Theta_r[c, c];
a rater is trusted when it is at least a threshold.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DawidSkene:
    accuracy: np.ndarray  # per rater
    confusion: np.ndarray  # rater x true x reported
    prior: np.ndarray
    posterior: np.ndarray  # item x class
    judgements: np.ndarray  # per rater


def dawid_skene(
    item: np.ndarray, rater: np.ndarray, label: np.ndarray, n_classes: int, iterations: int = 50, alpha: float = 1.0
) -> DawidSkene:
    """EM estimates from one (item, rater, label) triple per judgement (all integer indices)."""
    item = np.asarray(item, dtype=np.int64)
    rater = np.asarray(rater, dtype=np.int64)
    label = np.asarray(label, dtype=np.int64)
    n_items, n_raters = int(item.max()) + 1, int(rater.max()) + 1
    # Start from the vote shares per item (majority vote, softly).
    q = np.zeros((n_items, n_classes))
    np.add.at(q, (item, label), 1.0)
    q = (q + 1e-9) / (q + 1e-9).sum(axis=1, keepdims=True)
    for _ in range(iterations):
        prior = q.mean(axis=0)
        confusion = np.full((n_raters, n_classes, n_classes), alpha)
        for c in range(n_classes):
            np.add.at(confusion[:, c, :], (rater, label), q[item, c])
        confusion /= confusion.sum(axis=2, keepdims=True)
        log_q = np.tile(np.log(prior + 1e-12), (n_items, 1))
        for c in range(n_classes):
            np.add.at(log_q[:, c], item, np.log(confusion[rater, c, label]))
        log_q -= log_q.max(axis=1, keepdims=True)
        q = np.exp(log_q)
        q /= q.sum(axis=1, keepdims=True)
    prior = q.mean(axis=0)
    accuracy = np.einsum("c,rcc->r", prior, confusion)
    return DawidSkene(accuracy, confusion, prior, q, np.bincount(rater, minlength=n_raters))
