"""The one import / export path for battles in the Chatbot Arena "clean battle" convention.

Reading (JSON arrays and JSONL, gzip or plain, ``conv_metadata``, turns) is ``battle_files.py``,
which needs no database; this module adds the names the rest of ``ratings`` uses and the export.
Storing battles as a study's votes is ``ratings.actions.battles.do_import_battles`` (one
transaction, so nothing is half-imported).
"""

import json
from typing import IO

from ratings.analysis.battle_files import (  # noqa: F401 - the reading API, re-exported
    STYLE_COLUMNS,
    WINNER_TO_OUTCOME,
    Battle,
    BattleArrays,
    BattleFormatError,
    answer_digest,
    parse_battle,
    read_battle_arrays,
    read_battles,
)
from ratings.models import Study, Vote, Winner

WINNER_TO_VOTE = {"model_a": Winner.A, "model_b": Winner.B, "tie": Winner.TIE, "tie (bothbad)": Winner.BOTH_BAD}
VOTE_TO_WINNER = {v: k for k, v in WINNER_TO_VOTE.items()}
TURN_SUFFIX = "#turn"


def prompt_external_id(question_id: str, turn: int) -> str:
    """A prompt per question and turn: turn 1 keeps the question id, later turns add ``#turn<N>``."""
    return question_id if turn <= 1 else f"{question_id}{TURN_SUFFIX}{turn}"


def question_id_and_turn(external_id: str, turns: list | None) -> tuple[str, int]:
    """The inverse of ``prompt_external_id``."""
    head, sep, tail = external_id.rpartition(TURN_SUFFIX)
    if sep and tail.isdigit() and turns and len(turns) == int(tail):
        return head, int(tail)
    return external_id, 1


def battles_to_arrays(battles) -> BattleArrays:
    """Battles (``Battle`` objects) as arrays, with per-battle style features where known."""
    return read_battle_arrays(list(battles))


def _conversation(prompt, response) -> list[dict]:
    """The conversation as the battle file had it: user and assistant turns alternating."""
    questions = [t["content"] for t in prompt.turns] if prompt.turns else [prompt.text]
    answers = response.turns if response.turns else [response.text]
    out = []
    for question, answer in zip(questions, answers, strict=False):
        out += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return out


def _metadata(response_a, response_b) -> dict | None:
    """conv_metadata from the stored counts when both answers came without a text (FastChat's key names)."""
    if not (response_a.text_digest.startswith("m") and response_b.text_digest.startswith("m")):
        return None
    meta = {}
    for side, r in (("a", response_a), ("b", response_b)):
        meta.update(
            {
                f"sum_assistant_{side}_tokens": r.length_words,
                f"header_count_{side}": r.n_headers,
                f"list_count_{side}": r.n_list_items,
                f"bold_count_{side}": r.n_bold,
            }
        )
    return meta


def export_battles(study: Study, out: IO[str], with_conversations: bool = True) -> int:
    """Write the study's votes (excluded raters' too, as stored) as clean-battle lines. Returns the count.

    Attention checks are not battles between models and are left out, nor are fact-check verdicts.
    An answer imported without its text is written as ``conv_metadata`` counts, not as an empty text.
    """
    votes = (
        Vote.objects.filter(comparison__study=study, comparison__is_gold=False)
        .exclude(winner="")
        .select_related(
            "rater",
            "comparison__prompt",
            "comparison__response_a__model",
            "comparison__response_b__model",
        )
        .order_by("pk")
    )
    count = 0
    for vote in votes.iterator(chunk_size=2000):
        c = vote.comparison
        question_id, turn = question_id_and_turn(c.prompt.external_id, c.prompt.turns)
        record = {
            "question_id": question_id,
            "model_a": c.response_a.model.name,
            "model_b": c.response_b.model.name,
            "winner": VOTE_TO_WINNER[vote.winner],
            "judge": vote.judge or (f"rater-{vote.rater_id}" if vote.rater_id else ""),
            "turn": turn,
            "tstamp": vote.created_at.timestamp(),
        }
        if c.prompt.category:
            record["category"] = c.prompt.category
        if with_conversations:
            meta = _metadata(c.response_a, c.response_b)
            if meta is not None:
                record["conv_metadata"] = meta
            else:
                record["conversation_a"] = _conversation(c.prompt, c.response_a)
                record["conversation_b"] = _conversation(c.prompt, c.response_b)
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count
