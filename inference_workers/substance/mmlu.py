"""MMLU (Hendrycks et al. 2021): 57 subjects of four-option questions, 5-shot, scored by the answer letter.

The prompt is the standard one of the original ``evaluate.py`` (see data/mmlu/SOURCE.md):

    The following are multiple choice questions (with answers) about <subject>.

    <dev question 1>
    A. <option>
    B. <option>
    C. <option>
    D. <option>
    Answer: <letter>

    ... (the subject's first five dev rows, in file order) ...
    <test question>
    A. ...
    Answer:

with **one** space after "about" (the original has two, by a quirk of how it joins words; most
re-implementations use one). The prediction is the letter whose token (" A", " B", " C", " D")
has the highest next-token log-probability after the prompt. The score is the mean over all
questions (question-weighted, as upstream), also given per subject and per category.

The five exemplars are the same for every question of a subject, so their keys and values are
computed once per subject (``PrefixCache``) and questions are scored in batches.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from stats.intervals import wilson_interval

DATA = Path(__file__).resolve().parents[2] / "data" / "mmlu"
LETTERS = ("A", "B", "C", "D")
SHOTS = 5

MMLU_CATEGORIES = {
    "abstract_algebra": "STEM",
    "anatomy": "Other",
    "astronomy": "STEM",
    "business_ethics": "Other",
    "clinical_knowledge": "Other",
    "college_biology": "STEM",
    "college_chemistry": "STEM",
    "college_computer_science": "STEM",
    "college_mathematics": "STEM",
    "college_medicine": "Other",
    "college_physics": "STEM",
    "computer_security": "STEM",
    "conceptual_physics": "STEM",
    "econometrics": "Social sciences",
    "electrical_engineering": "STEM",
    "elementary_mathematics": "STEM",
    "formal_logic": "Humanities",
    "global_facts": "Other",
    "high_school_biology": "STEM",
    "high_school_chemistry": "STEM",
    "high_school_computer_science": "STEM",
    "high_school_european_history": "Humanities",
    "high_school_geography": "Social sciences",
    "high_school_government_and_politics": "Social sciences",
    "high_school_macroeconomics": "Social sciences",
    "high_school_mathematics": "STEM",
    "high_school_microeconomics": "Social sciences",
    "high_school_physics": "STEM",
    "high_school_psychology": "Social sciences",
    "high_school_statistics": "STEM",
    "high_school_us_history": "Humanities",
    "high_school_world_history": "Humanities",
    "human_aging": "Other",
    "human_sexuality": "Social sciences",
    "international_law": "Humanities",
    "jurisprudence": "Humanities",
    "logical_fallacies": "Humanities",
    "machine_learning": "STEM",
    "management": "Other",
    "marketing": "Other",
    "medical_genetics": "Other",
    "miscellaneous": "Other",
    "moral_disputes": "Humanities",
    "moral_scenarios": "Humanities",
    "nutrition": "Other",
    "philosophy": "Humanities",
    "prehistory": "Humanities",
    "professional_accounting": "Other",
    "professional_law": "Humanities",
    "professional_medicine": "Other",
    "professional_psychology": "Social sciences",
    "public_relations": "Social sciences",
    "security_studies": "Social sciences",
    "sociology": "Social sciences",
    "us_foreign_policy": "Social sciences",
    "virology": "Other",
    "world_religions": "Humanities",
}


@dataclass(frozen=True)
class MMLUItem:
    item_id: str
    subject: str
    question: str
    choices: tuple[str, str, str, str]
    correct_index: int

    @property
    def category(self) -> str:
        return MMLU_CATEGORIES[self.subject]


def _rows(text: str) -> list[list[str]]:
    # Fields hold newlines and some files use CRLF: a real CSV parser, every field a string.
    return [row for row in csv.reader(io.StringIO(text, newline="")) if row]


def _item(subject: str, index: int, row: list[str]) -> MMLUItem:
    question, a, b, c, d, answer = row
    return MMLUItem(f"mmlu-{subject}-{index:04d}", subject, question, (a, b, c, d), LETTERS.index(answer.strip()))


@cache
def test_items() -> tuple[MMLUItem, ...]:
    """All 14,042 test questions, subject by subject in alphabetical order."""
    items = []
    for subject in sorted(MMLU_CATEGORIES):
        with gzip.open(DATA / "test" / f"{subject}_test.csv.gz", "rb") as fh:
            text = fh.read().decode("utf-8")
        items.extend(_item(subject, i, row) for i, row in enumerate(_rows(text)))
    return tuple(items)


@cache
def dev_items(subject: str) -> tuple[MMLUItem, ...]:
    text = (DATA / "dev" / f"{subject}_dev.csv").read_bytes().decode("utf-8")
    return tuple(_item(subject, i, row) for i, row in enumerate(_rows(text)))


def format_question(item: MMLUItem, answer: bool) -> str:
    options = "".join(f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, item.choices, strict=True))
    tail = f" {LETTERS[item.correct_index]}\n\n" if answer else ""
    return f"{item.question}{options}\nAnswer:{tail}"


def subject_prefix(subject: str, shots: int = SHOTS) -> str:
    """The header and the subject's first ``shots`` dev questions with their answers."""
    header = f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"
    if shots == 0:
        return header
    return header + "".join(format_question(item, answer=True) for item in dev_items(subject)[:shots])


def cached_prefix(subject: str, shots: int = SHOTS) -> str:
    """The part of every prompt of a subject whose keys and values are computed once.

    It stops before the blank line that ends the last exemplar: a BPE tokenizer writes a lone
    trailing "\n\n" as one token but splits it before the next question's first word, so a prefix
    ending in it would never match the start of a full prompt's tokens.
    """
    return subject_prefix(subject, shots).rstrip("\n")


def prompt(item: MMLUItem, shots: int = SHOTS) -> str:
    return subject_prefix(item.subject, shots) + format_question(item, answer=False)


def letter_token_ids(tokenizer) -> list[int]:
    """The token of " A" ... " D" (the first token where a tokenizer splits one)."""
    return [tokenizer(" " + letter, add_special_tokens=False)["input_ids"][0] for letter in LETTERS]


def by_subject(items: Iterable[MMLUItem]) -> dict[str, list[MMLUItem]]:
    groups: dict[str, list[MMLUItem]] = defaultdict(list)
    for item in items:
        groups[item.subject].append(item)
    return dict(groups)


@dataclass(frozen=True)
class Breakdown:
    name: str
    n: int
    correct: int
    accuracy: float
    ci: tuple[float, float]


def breakdown(results: Sequence[tuple[str, bool]]) -> dict[str, list[Breakdown]]:
    """Accuracy with Wilson intervals per subject and per category, from (item_id, correct) pairs."""
    per_subject: dict[str, list[bool]] = defaultdict(list)
    per_category: dict[str, list[bool]] = defaultdict(list)
    for item_id, correct in results:
        subject = item_id.removeprefix("mmlu-").rsplit("-", 1)[0]
        per_subject[subject].append(bool(correct))
        per_category[MMLU_CATEGORIES[subject]].append(bool(correct))

    def rows(groups: dict[str, list[bool]]) -> list[Breakdown]:
        return [
            Breakdown(name, len(v), sum(v), sum(v) / len(v), wilson_interval(sum(v), len(v)))
            for name, v in sorted(groups.items())
        ]

    return {"subject": rows(per_subject), "category": rows(per_category)}
