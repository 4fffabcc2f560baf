import numpy as np

from stats.reliability import dawid_skene


def test_dawid_skene_tells_careful_raters_from_random_clickers():
    rng = np.random.default_rng(41)
    n_items, truth = 120, rng.integers(0, 3, 120)
    careful, clickers = [0, 1, 2, 3], [4, 5]
    items, raters, labels = [], [], []
    for r in careful + clickers:
        for u in range(n_items):
            honest = r in careful and rng.random() < 0.85
            label = truth[u] if honest else rng.integers(0, 3)
            items.append(u), raters.append(r), labels.append(label)
    fit = dawid_skene(np.array(items), np.array(raters), np.array(labels), 3)
    assert fit.accuracy[careful].min() > 0.75
    assert fit.accuracy[clickers].max() < 0.5
    assert (fit.posterior.argmax(axis=1) == truth).mean() > 0.95
