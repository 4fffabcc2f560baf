"""The one import / export path for battles in the Chatbot Arena "clean battle" convention.

One JSON object a line: ``question_id, model_a, model_b, winner`` (``model_a`` | ``model_b`` |
``tie`` | ``tie (bothbad)``), optional ``judge, tstamp, conversation_a, conversation_b`` (lists of
``{role, content}``). ``model_a`` is the answer shown first (on the left).

Reading is strict: a malformed line raises ``BattleFormatError`` naming its line number. Storing
battles as a study's votes is ``ratings.actions.battles.do_import_battles`` (one transaction, so
nothing is half-imported).
"""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np

from inference_workers.style_features import style_features
from ratings.models import Study, Vote, Winner

WINNER_TO_VOTE = {"model_a": Winner.A, "model_b": Winner.B, "tie": Winner.TIE, "tie (bothbad)": Winner.BOTH_BAD}
VOTE_TO_WINNER = {v: k for k, v in WINNER_TO_VOTE.items()}
# The outcome for model_a: a tie, and "both bad", count half a win for each side.
WINNER_TO_OUTCOME = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}


class BattleFormatError(ValueError):
    def __init__(self, line_no: int, message: str):
        super().__init__(f"line {line_no}: {message}")
        self.line_no = line_no


@dataclass(frozen=True)
class Battle:
    question_id: str
    model_a: str
    model_b: str
    winner: str
    judge: str = ""
    tstamp: float | None = None
    question: str = ""
    answer_a: str | None = None
    answer_b: str | None = None


def _conversation(record: dict, key: str, line_no: int) -> tuple[str, str | None]:
    """(first user turn, assistant turns joined) of a conversation, or ("", None) when absent."""
    turns = record.get(key)
    if turns is None:
        return "", None
    if not isinstance(turns, list) or not all(
        isinstance(t, dict) and isinstance(t.get("role"), str) and isinstance(t.get("content"), str) for t in turns
    ):
        raise BattleFormatError(line_no, f"{key} must be a list of {{role, content}} strings")
    user = next((t["content"] for t in turns if t["role"] == "user"), "")
    answer = "\n\n".join(t["content"] for t in turns if t["role"] == "assistant")
    return user, answer


def parse_battle(line: str, line_no: int) -> Battle:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BattleFormatError(line_no, f"not JSON ({exc.msg})") from exc
    if not isinstance(record, dict):
        raise BattleFormatError(line_no, "not a JSON object")
    for key in ("question_id", "model_a", "model_b", "winner"):
        if key not in record:
            raise BattleFormatError(line_no, f"missing {key}")
    model_a, model_b = record["model_a"], record["model_b"]
    if not (isinstance(model_a, str) and isinstance(model_b, str) and model_a and model_b):
        raise BattleFormatError(line_no, "model_a and model_b must be non-empty strings")
    if model_a == model_b:
        raise BattleFormatError(line_no, f"a model cannot battle itself ({model_a})")
    if record["winner"] not in WINNER_TO_VOTE:
        raise BattleFormatError(line_no, f"winner must be one of {', '.join(WINNER_TO_VOTE)}, not {record['winner']!r}")
    if not isinstance(record["question_id"], str | int) or str(record["question_id"]) == "":
        raise BattleFormatError(line_no, "question_id must be a string or an integer")
    tstamp = record.get("tstamp")
    if tstamp is not None and not isinstance(tstamp, int | float):
        raise BattleFormatError(line_no, "tstamp must be a number (seconds since the epoch)")
    question, answer_a = _conversation(record, "conversation_a", line_no)
    question_b, answer_b = _conversation(record, "conversation_b", line_no)
    return Battle(
        question_id=str(record["question_id"]),
        model_a=model_a,
        model_b=model_b,
        winner=record["winner"],
        judge=str(record.get("judge") or ""),
        tstamp=tstamp,
        question=question or question_b,
        answer_a=answer_a,
        answer_b=answer_b,
    )


def read_battles(lines: Iterable[str]) -> Iterator[Battle]:
    """Parse clean-battle lines; blank lines are skipped, anything else malformed raises."""
    for line_no, line in enumerate(lines, start=1):
        if line.strip():
            yield parse_battle(line, line_no)


@dataclass(frozen=True)
class BattleArrays:
    """Battles as arrays for ratings/stats: model indices, outcomes, and style features when texts came along."""

    models: list[str]
    model_a: np.ndarray
    model_b: np.ndarray
    outcome: np.ndarray
    question: list[str]
    style_a: np.ndarray | None
    style_b: np.ndarray | None


STYLE_COLUMNS = ("length_words", "n_headers", "n_list_items", "n_bold")


def style_row(text: str) -> list[int]:
    features = style_features(text).as_dict()
    return [features[c] for c in STYLE_COLUMNS]


def battles_to_arrays(battles: Iterable[Battle]) -> BattleArrays:
    """Index the models (by name, sorted) and compute style features from the answers when every battle has both."""
    battles = list(battles)
    names = sorted({b.model_a for b in battles} | {b.model_b for b in battles})
    index = {name: i for i, name in enumerate(names)}
    with_texts = bool(battles) and all(b.answer_a is not None and b.answer_b is not None for b in battles)
    return BattleArrays(
        models=names,
        model_a=np.array([index[b.model_a] for b in battles], dtype=np.int64),
        model_b=np.array([index[b.model_b] for b in battles], dtype=np.int64),
        outcome=np.array([WINNER_TO_OUTCOME[b.winner] for b in battles], dtype=np.float64),
        question=[b.question_id for b in battles],
        style_a=np.array([style_row(b.answer_a) for b in battles], dtype=np.float64) if with_texts else None,
        style_b=np.array([style_row(b.answer_b) for b in battles], dtype=np.float64) if with_texts else None,
    )


def export_battles(study: Study, out: IO[str], with_conversations: bool = True) -> int:
    """Write the study's votes (excluded raters' too, as stored) as clean-battle lines. Returns the count.

    Attention checks are not battles between models and are left out, nor are fact-check verdicts.
    """
    votes = (
        Vote.objects.filter(comparison__study=study, comparison__is_gold=False)
        .exclude(winner="")
        .select_related(
            "comparison__prompt",
            "comparison__response_a__model",
            "comparison__response_b__model",
        )
        .order_by("pk")
    )
    count = 0
    for vote in votes.iterator(chunk_size=2000):
        c = vote.comparison
        record = {
            "question_id": c.prompt.external_id,
            "model_a": c.response_a.model.name,
            "model_b": c.response_b.model.name,
            "winner": VOTE_TO_WINNER[vote.winner],
            "judge": vote.judge or (f"rater-{vote.rater_id}" if vote.rater_id else ""),
            "tstamp": vote.created_at.timestamp(),
        }
        if with_conversations:
            question = {"role": "user", "content": c.prompt.text}
            record["conversation_a"] = [question, {"role": "assistant", "content": c.response_a.text}]
            record["conversation_b"] = [question, {"role": "assistant", "content": c.response_b.text}]
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count
