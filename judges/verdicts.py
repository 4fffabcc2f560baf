"""Prompt templates and verdict parsers: pure functions, no database.

A template's user text holds ``{question}``, ``{answer_1}`` and ``{answer_2}`` (the answer shown first and
second); any other brace is literal. A parser reads the judge's text and says which answer it preferred,
in terms of the order shown: ``first``, ``second``, ``tie``, or ``unparsed`` when the text names no
verdict (never taken for a tie).

- ``threeclass`` (the Vicuna / PRD reviewer prompt): the last non-empty line is ``1``, ``2`` or ``3``
  (3 = the two are equivalent); a last line such as ``Assistant 1`` or ``1.`` counts, anything else not.
- ``brackets`` (the MT-bench pairwise prompt): the text contains ``[[A]]``, ``[[B]]`` or ``[[C]]`` (C = tie);
  when it contains more than one of them, the verdict is ambiguous and unparsed.
"""

import re

from django.db import models

SLOTS = ("{question}", "{answer_1}", "{answer_2}")


class VerdictParser(models.TextChoices):
    THREECLASS = "threeclass", "Last line 1, 2 or 3 (Vicuna reviewer)"
    BRACKETS = "brackets", "[[A]], [[B]] or [[C]] (MT-bench pairwise)"


def template_problem(system: str, user: str) -> str:
    """Why a template cannot be used, in words; empty when it can."""
    missing = [slot for slot in ("{answer_1}", "{answer_2}") if slot not in (user or "")]
    if missing:
        return (
            f"The user template must contain both answer slots {{answer_1}} and {{answer_2}}; "
            f"it lacks {' and '.join(missing)}."
        )
    if "{question}" not in user:
        return "The user template must contain the {question} slot."
    for slot in SLOTS:
        if slot in (system or ""):
            return f"The system text must not contain {slot}: the question and answers go in the user template."
    return ""


def fill(user: str, question: str, first: str, second: str) -> str:
    """The user message: the slots replaced once each, in one pass (an answer containing a slot stays as is)."""
    values = {"{question}": question, "{answer_1}": first, "{answer_2}": second}
    return re.sub(r"\{question\}|\{answer_1\}|\{answer_2\}", lambda m: values[m.group(0)], user)


def messages(system: str, user: str, question: str, first: str, second: str) -> list[dict]:
    text = fill(user, question, first, second)
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]


_LAST_LINE = re.compile(r"^\W*(?:assistant\s*)?([123])\W*$", re.IGNORECASE)
_BRACKETS = re.compile(r"\[\[([ABC])\]\]")
_THREECLASS = {"1": "first", "2": "second", "3": "tie"}
_BRACKET = {"A": "first", "B": "second", "C": "tie"}


def parse_threeclass(text: str) -> str:
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    if not lines:
        return "unparsed"
    match = _LAST_LINE.match(lines[-1])
    return _THREECLASS[match.group(1)] if match else "unparsed"


def parse_brackets(text: str) -> str:
    found = set(_BRACKETS.findall(text or ""))
    return _BRACKET[found.pop()] if len(found) == 1 else "unparsed"


PARSERS = {VerdictParser.THREECLASS: parse_threeclass, VerdictParser.BRACKETS: parse_brackets}


def parse(parser: str, text: str) -> str:
    return PARSERS[parser](text)
