"""Short-answer scoring for NQ-open, normalised as the NQ / SQuAD evaluation does.

    normalize(s) = collapse_spaces(drop_articles(drop_punctuation(lower(s))))

with articles ``a | an | the``. A prediction is correct when any gold answer matches:

- ``exact``: ``normalize(prediction) == normalize(gold)``, the upstream convention for
  extractive systems that output just the span;
- ``contains``: ``normalize(gold)`` occurs in ``normalize(prediction)`` as a run of whole
  words, for chat models that answer in a sentence ("The capital is Canberra.").

Accuracy intervals are Wilson score intervals (``stats.intervals``).
"""

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
