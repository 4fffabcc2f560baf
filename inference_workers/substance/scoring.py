"""Short-answer scoring for NQ-open, normalised as the NQ / SQuAD evaluation does.

    normalize(s) = collapse_spaces(drop_articles(drop_punctuation(lower(s))))

with articles ``a | an | the``. A prediction is correct when any gold answer matches:

- ``exact``: ``normalize(prediction) == normalize(gold)``, the upstream convention for
  extractive systems that output just the span;
- ``contains``: ``normalize(gold)`` occurs in ``normalize(prediction)`` as a run of whole
  words, for chat models that answer in a sentence ("The capital is Canberra.").

Accuracy intervals are Wilson score intervals:

    centre = (p + z²/2n) / (1 + z²/n),  half = z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n)
"""

import math
import re
import string
from collections.abc import Iterable

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    text = text.lower().translate(_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, golds: Iterable[str]) -> bool:
    pred = normalize(prediction)
    return any(pred == normalize(g) for g in golds)


def contains_match(prediction: str, golds: Iterable[str]) -> bool:
    padded = f" {normalize(prediction)} "
    return any(gold and f" {gold} " in padded for gold in (normalize(g) for g in golds))


MATCHERS = {"exact": exact_match, "contains": contains_match}


def wilson_interval(correct: int, total: int, z: float = 1.959963984540054) -> tuple[float, float]:
    if total == 0:
        return (0.0, 1.0)
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
