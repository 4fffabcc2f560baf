"""Imported outputs: answers produced elsewhere, one JSON object a line.

Each line names its prompt by ``prompt_id`` (the prompt's external id; ``question_id`` also
accepted) or by its exact ``prompt`` text, and carries the ``answer`` (``output`` or ``text`` also
accepted). Matching is against one prompt set.
"""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from inference_workers.backends.base import Answer, Backend, Batch, Refused
from inference_workers.models import DecodingConfig, LanguageModel, ModelKind, Prompt

ID_KEYS = ("prompt_id", "question_id", "id")
TEXT_KEYS = ("prompt", "instruction", "question")
ANSWER_KEYS = ("answer", "output", "text", "response")


class ImportRefused(Refused):
    """An imported-outputs file that cannot be used; the message is shown as is."""


@dataclass(frozen=True)
class ImportedAnswer:
    line: int
    prompt_id: str | None
    prompt_text: str | None
    answer: str


def _first(record: dict, keys: tuple[str, ...]):
    for key in keys:
        if record.get(key) not in (None, ""):
            return record[key]
    return None


def parse_outputs(lines: Iterable[bytes | str]) -> list[ImportedAnswer]:
    answers = []
    for number, raw in enumerate(lines, start=1):
        line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportRefused(f"Line {number} is not valid JSON ({exc.msg}).") from exc
        if not isinstance(record, dict):
            raise ImportRefused(f"Line {number} is not a JSON object.")
        answer = _first(record, ANSWER_KEYS)
        prompt_id = _first(record, ID_KEYS)
        prompt_text = _first(record, TEXT_KEYS)
        if not isinstance(answer, str):
            raise ImportRefused(f"Line {number} has no answer (one of {', '.join(ANSWER_KEYS)}).")
        if prompt_id is None and not isinstance(prompt_text, str):
            raise ImportRefused(f"Line {number} names no prompt (prompt_id, or the prompt text).")
        answers.append(
            ImportedAnswer(
                line=number,
                prompt_id=None if prompt_id is None else str(prompt_id),
                prompt_text=prompt_text if isinstance(prompt_text, str) else None,
                answer=answer,
            )
        )
    if not answers:
        raise ImportRefused("The file holds no answers.")
    return answers


def match_prompts(answers: list[ImportedAnswer], by_id: dict, by_text: dict) -> dict:
    """{prompt: answer text} for the answers whose prompt is in the set (by id first, then exact text)."""
    matched = {}
    for item in answers:
        prompt = by_id.get(item.prompt_id) if item.prompt_id is not None else None
        if prompt is None and item.prompt_text is not None:
            prompt = by_text.get(item.prompt_text.strip())
        if prompt is not None and prompt not in matched:
            matched[prompt] = item.answer
    return matched


class ImportedBackend(Backend):
    kinds = (ModelKind.IMPORTED,)
    # Imported answers only need a file read: no GPU to hold up.
    queue = "default"
    task = "inference_workers.tasks.import_outputs_job"
    imported = True

    def validate(self, model: LanguageModel) -> str:
        if not model.checkpoint:
            raise ImportRefused("Upload the answers as a JSONL file (one object a line: prompt_id or prompt, answer).")
        with model.checkpoint.open("rb") as fh:
            answers = parse_outputs(fh)
        return f"Ready: the file holds {len(answers)} answers."

    def generate(self, model: LanguageModel, config: DecodingConfig, prompts: list[Prompt]) -> Iterator[Batch]:
        with model.checkpoint.open("rb") as fh:
            answers = parse_outputs(fh)
        by_id = {p.external_id: p for p in prompts}
        by_text = {p.text.strip(): p for p in prompts}
        yield Batch([Answer(p, text) for p, text in match_prompts(answers, by_id, by_text).items()])

    def answer(self, model: LanguageModel, questions: list[str], max_new_tokens: int):
        raise Refused("Imported outputs cannot answer new questions: enter a published result instead.")
