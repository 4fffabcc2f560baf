"""The substance benchmarks' items, read from data/ (see each folder's SOURCE.md)."""

import csv
import json
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.conf import settings

DATA_DIR = Path(settings.BASE_DIR) / "data"


@dataclass(frozen=True)
class QAItem:
    """A short-answer question with every acceptable answer."""

    item_id: str
    question: str
    answers: tuple[str, ...]


@dataclass(frozen=True)
class MCItem:
    """A multiple-choice question with exactly one true choice."""

    item_id: str
    question: str
    choices: tuple[str, ...]
    correct_index: int


@dataclass(frozen=True)
class OpenTruthItem:
    """A TruthfulQA question for generation: true and false reference answers."""

    item_id: str
    question: str
    best_answer: str
    correct_answers: tuple[str, ...]
    incorrect_answers: tuple[str, ...]


@cache
def nq_open_dev() -> tuple[QAItem, ...]:
    with (DATA_DIR / "nq-open" / "NQ-open.dev.jsonl").open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return tuple(QAItem(f"nq-dev-{i:04d}", r["question"], tuple(r["answer"])) for i, r in enumerate(rows))


@dataclass(frozen=True)
class RatedQAItem:
    """An EfficientQA test question: its NQ answers, and system answers that human annotators rated.

    ``rated`` holds (answer, rating) with rating "correct" (definitely correct), "possibly" (possibly
    correct) or "incorrect" (definitely incorrect), as the EfficientQA annotators judged them.
    """

    item_id: str
    question: str
    answers: tuple[str, ...]
    rated: tuple[tuple[str, str], ...]


EFFICIENTQA_RATINGS = (
    ("def_correct_predictions", "correct"),
    ("poss_correct_predictions", "possibly"),
    ("def_incorrect_predictions", "incorrect"),
)


@cache
def efficientqa_test_rated() -> tuple[RatedQAItem, ...]:
    with (DATA_DIR / "nq-open" / "NQ-open.efficientqa.test.1.1.jsonl").open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return tuple(
        RatedQAItem(
            f"efficientqa-test-{i:04d}",
            r["question"],
            tuple(r["answer"]),
            tuple((answer, rating) for key, rating in EFFICIENTQA_RATINGS for answer in r[key]),
        )
        for i, r in enumerate(rows)
    )


@cache
def truthfulqa_mc1() -> tuple[MCItem, ...]:
    with (DATA_DIR / "truthfulqa" / "mc_task.json").open(encoding="utf-8") as fh:
        rows = json.load(fh)
    items = []
    for i, row in enumerate(rows):
        choices = tuple(row["mc1_targets"])
        correct = [j for j, c in enumerate(choices) if row["mc1_targets"][c] == 1]
        if len(correct) != 1:
            raise ValueError(f"TruthfulQA item {i} has {len(correct)} true MC1 answers")
        items.append(MCItem(f"tqa-{i:03d}", row["question"], choices, correct[0]))
    return tuple(items)


@cache
def truthfulqa_open() -> tuple[OpenTruthItem, ...]:
    with (DATA_DIR / "truthfulqa" / "TruthfulQA.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))

    def split(cell: str) -> tuple[str, ...]:
        return tuple(a.strip() for a in cell.split(";") if a.strip())

    return tuple(
        OpenTruthItem(
            f"tqa-{i:03d}", r["Question"], r["Best Answer"], split(r["Correct Answers"]), split(r["Incorrect Answers"])
        )
        for i, r in enumerate(rows)
    )


def seeded_subset(items, size: int | None, seed: int):
    """``size`` items drawn without replacement by ``seed``, in their original order; all when size is None."""
    if size is None or size >= len(items):
        return list(items)
    chosen = set(random.Random(seed).sample(range(len(items)), size))  # noqa: S311 - sampling, not security
    return [item for i, item in enumerate(items) if i in chosen]


def random_guess_accuracy(items) -> float:
    """Expected MC accuracy of picking a choice uniformly at random: mean of 1 / number of choices."""
    return sum(1 / len(item.choices) for item in items) / len(items)
