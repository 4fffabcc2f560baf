"""Judge verdict files in and out: PRD reviewer files, FastChat MT-bench pairwise judgments, Arena battles.

Every reader is strict and names the file and line of a malformed record (``JudgementFormatError``);
every verdict comes out as an ``ImportedVerdict`` in terms of the order shown (``first`` / ``second`` /
``tie`` / ``unparsed``), the models by name and the question by its id.

- PRD (bcdnlp/PRD, ``data/vicuna80-llm-judges/SOURCE.md``): files
  ``answer_<A>-vs-answer_<B>-<judge>-reviewer[_threeclass].jsonl[.gz]``, one
  ``{review_id, question_id, answer1_id, answer2_id, text, score}`` a line; A was shown first;
  ``score`` 1 = A better, 2 = B better, 3 = tie (the published parse of the text's last line).
  A judge that judged the same item in the same order again (gpt35's dash-named files) gets
  ``repeat`` 1 for its second verdict.
- FastChat MT-bench pairwise (``gpt-4_pair.jsonl``): ``{question_id, model_1, model_2, g1_winner,
  g2_winner, judge, turn}`` (optional ``g1_judgment``, ``g2_judgment``); game 1 shows model_1 first,
  game 2 model_2 first; winners are ``model_1`` | ``model_2`` | ``tie`` | ``error`` (unparsed) in
  model terms for both games. Only turn 1 (single-turn studies) is read; other turns are counted and skipped.
- Arena battles (ratings/analysis/battles.py, the clean-battle convention) whose records name a ``judge``:
  one order each, ``model_a`` shown first.
"""

import gzip
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from ratings.analysis.battles import BattleFormatError, parse_battle

PRD_SCORE = {1: "first", 2: "second", 3: "tie"}
PRD_OUTCOME_SCORE = {"first": 1, "second": 2, "tie": 3}
MTBENCH_WINNERS = ("model_1", "model_2", "tie", "error")
ARENA_WINNER = {"model_a": "first", "model_b": "second", "tie": "tie", "tie (bothbad)": "tie"}


class JudgementFormatError(ValueError):
    """A malformed judgment file; the message names the file and the line."""


@dataclass(frozen=True)
class ImportedVerdict:
    judge: str
    question_id: str
    model_first: str
    model_second: str
    outcome: str
    text: str = ""
    external_id: str = ""
    repeat: int = 0


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _records(lines: Iterable[str], where: str) -> Iterator[tuple[int, dict]]:
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise JudgementFormatError(f"{where} line {line_no}: not JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise JudgementFormatError(f"{where} line {line_no}: not a JSON object")
        yield line_no, record


def _require(record: dict, keys: tuple[str, ...], where: str, line_no: int) -> None:
    missing = [k for k in keys if k not in record]
    if missing:
        raise JudgementFormatError(f"{where} line {line_no}: missing {', '.join(missing)}")


def with_repeats(verdicts: list[ImportedVerdict]) -> list[ImportedVerdict]:
    """Number the verdicts of one judge on the same question and order: 0, 1, ... in the order read."""
    seen: Counter = Counter()
    out = []
    for v in verdicts:
        key = (v.judge, v.question_id, v.model_first, v.model_second)
        out.append(replace(v, repeat=seen[key]))
        seen[key] += 1
    return out


# --- PRD reviewer files --------------------------------------------------------------------------


def prd_file_models(name: str, judge: str) -> tuple[str, str]:
    """(model shown first, model shown second) from a PRD file name (JudgementFormatError if not one)."""
    judge_part = re.escape(judge)
    pattern = rf"^answer[_-](?P<a>.+?)-vs-answer[_-](?P<b>.+)-{judge_part}-reviewer([_-]threeclass)?\.jsonl(\.gz)?$"
    match = re.match(pattern, name)
    if not match:
        raise JudgementFormatError(
            f"{name}: not a PRD reviewer file name for judge {judge!r} "
            "(answer_<A>-vs-answer_<B>-<judge>-reviewer_threeclass.jsonl[.gz])"
        )
    return match["a"], match["b"]


def prd_files(path: Path, judge: str | None = None) -> list[tuple[str, Path]]:
    """(judge, file) for a PRD file, a ``ratings-<judge>/`` folder, or a folder of such folders.

    Underscore-named files come before dash-named ones, so a judge's second run of an item is repeat 1.
    """
    if path.is_file():
        if not judge:
            judge = path.parent.name.removeprefix("ratings-")
        return [(judge, path)]
    if not path.is_dir():
        raise JudgementFormatError(f"{path}: no such file or folder")
    folders = sorted(p for p in path.iterdir() if p.is_dir() and p.name.startswith("ratings-"))
    if not folders:
        folders = [path]
    out = []
    for folder in folders:
        name = judge or folder.name.removeprefix("ratings-")
        files = sorted(
            (p for p in folder.iterdir() if p.name.endswith((".jsonl", ".jsonl.gz"))),
            key=lambda p: (p.name.startswith("answer-"), p.name),
        )
        out += [(name, f) for f in files]
    if not out:
        raise JudgementFormatError(f"{path}: no PRD reviewer files (*.jsonl, *.jsonl.gz) found")
    return out


def read_prd(path: Path, judge: str | None = None) -> list[ImportedVerdict]:
    verdicts = []
    for name, file in prd_files(Path(path), judge):
        first, second = prd_file_models(file.name, name)
        with _open(file) as fh:
            for line_no, record in _records(fh, file.name):
                _require(record, ("question_id", "score"), file.name, line_no)
                score = record["score"]
                if score not in PRD_SCORE:
                    raise JudgementFormatError(f"{file.name} line {line_no}: score must be 1, 2 or 3, not {score!r}")
                verdicts.append(
                    ImportedVerdict(
                        judge=name,
                        question_id=str(record["question_id"]),
                        model_first=first,
                        model_second=second,
                        outcome=PRD_SCORE[score],
                        text=str(record.get("text") or ""),
                        external_id=str(record.get("review_id") or ""),
                    )
                )
    return with_repeats(verdicts)


def write_prd(verdicts: Iterable[ImportedVerdict], folder: Path) -> list[Path]:
    """One ``ratings-<judge>/answer_<A>-vs-answer_<B>-<judge>-reviewer_threeclass.jsonl`` per judge and order.

    Unparsed verdicts have no PRD score and are left out; a repeat goes to a file with a ``-repeatN`` suffix
    in its judge name's folder, so that reading the folder back gives the same verdicts.
    """
    groups: dict[tuple[str, str, str, int], list[ImportedVerdict]] = defaultdict(list)
    for v in verdicts:
        if v.outcome in PRD_OUTCOME_SCORE:
            groups[(v.judge, v.model_first, v.model_second, v.repeat)].append(v)
    written = []
    for (judge, first, second, repeat), items in sorted(groups.items()):
        sub = folder / f"ratings-{judge}"
        sub.mkdir(parents=True, exist_ok=True)
        prefix = "answer-" if repeat else "answer_"
        path = sub / f"{prefix}{first}-vs-{prefix}{second}-{judge}-reviewer_threeclass.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for v in items:
                record = {
                    "review_id": v.external_id,
                    "question_id": _question_id(v.question_id),
                    "text": v.text,
                    "score": PRD_OUTCOME_SCORE[v.outcome],
                }
                fh.write(json.dumps(record) + "\n")
        written.append(path)
    return written


def _question_id(value: str):
    return int(value) if value.isdigit() else value


# --- FastChat MT-bench pairwise judgments --------------------------------------------------------


def _judge_name(value) -> str:
    """FastChat writes the judge as [model, prompt name]: the model's name is the judge's."""
    if isinstance(value, list) and value:
        return str(value[0])
    return str(value or "")


def read_mtbench(lines: Iterable[str], where: str = "judgments", judge: str | None = None) -> tuple[list, int]:
    """(verdicts, records of other turns skipped) from MT-bench pairwise judgment lines."""
    verdicts, skipped = [], 0
    for line_no, record in _records(lines, where):
        _require(record, ("question_id", "model_1", "model_2", "g1_winner", "g2_winner"), where, line_no)
        for key in ("g1_winner", "g2_winner"):
            if record[key] not in MTBENCH_WINNERS:
                raise JudgementFormatError(
                    f"{where} line {line_no}: {key} must be one of {', '.join(MTBENCH_WINNERS)}, not {record[key]!r}"
                )
        m1, m2 = record["model_1"], record["model_2"]
        if not (isinstance(m1, str) and isinstance(m2, str) and m1 and m2) or m1 == m2:
            raise JudgementFormatError(f"{where} line {line_no}: model_1 and model_2 must be two different names")
        if int(record.get("turn", 1) or 1) != 1:
            skipped += 1
            continue
        name = judge or _judge_name(record.get("judge"))
        if not name:
            raise JudgementFormatError(f"{where} line {line_no}: no judge named (give one with --judge)")
        qid = str(record["question_id"])
        # Game 1 shows model_1 first; game 2 shows model_2 first. Both winners are in model terms.
        g1 = {"model_1": "first", "model_2": "second", "tie": "tie", "error": "unparsed"}[record["g1_winner"]]
        g2 = {"model_1": "second", "model_2": "first", "tie": "tie", "error": "unparsed"}[record["g2_winner"]]
        verdicts.append(ImportedVerdict(name, qid, m1, m2, g1, str(record.get("g1_judgment") or "")))
        verdicts.append(ImportedVerdict(name, qid, m2, m1, g2, str(record.get("g2_judgment") or "")))
    return with_repeats(verdicts), skipped


def write_mtbench(verdicts: Iterable[ImportedVerdict], fh: IO[str]) -> int:
    """One record per judge, question and model pair with both orders (repeat 0); returns the records written."""
    by_order = {(v.judge, v.question_id, v.model_first, v.model_second): v for v in verdicts if v.repeat == 0}
    game = {"first": "model_1", "second": "model_2", "tie": "tie", "unparsed": "error"}
    swapped = {"first": "model_2", "second": "model_1", "tie": "tie", "unparsed": "error"}
    written = 0
    for (judge, qid, m1, m2), g1 in sorted(by_order.items()):
        g2 = by_order.get((judge, qid, m2, m1))
        if g2 is None or m1 > m2:
            continue  # a pair with both orders is written once, from the order whose first model sorts first
        record = {
            "question_id": _question_id(qid),
            "model_1": m1,
            "model_2": m2,
            "g1_winner": game[g1.outcome],
            "g2_winner": swapped[g2.outcome],
            "judge": [judge, "pair"],
            "g1_judgment": g1.text,
            "g2_judgment": g2.text,
            "turn": 1,
        }
        fh.write(json.dumps(record) + "\n")
        written += 1
    return written


# --- Arena battles naming a judge ------------------------------------------------------------------


def read_arena(lines: Iterable[str], where: str = "battles", judge: str | None = None) -> list[ImportedVerdict]:
    verdicts = []
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            battle = parse_battle(line, line_no)
        except BattleFormatError as exc:
            raise JudgementFormatError(f"{where} {exc}") from exc
        name = judge or battle.judge
        if not name:
            raise JudgementFormatError(f"{where} line {line_no}: the record names no judge")
        verdicts.append(
            ImportedVerdict(name, battle.question_id, battle.model_a, battle.model_b, ARENA_WINNER[battle.winner])
        )
    return with_repeats(verdicts)


def write_arena(verdicts: Iterable[ImportedVerdict], fh: IO[str]) -> int:
    """One battle per parsed verdict (model_a shown first); unparsed verdicts have no winner and are left out."""
    winner = {"first": "model_a", "second": "model_b", "tie": "tie"}
    written = 0
    for v in verdicts:
        if v.outcome not in winner:
            continue
        record = {
            "question_id": _question_id(v.question_id),
            "model_a": v.model_first,
            "model_b": v.model_second,
            "winner": winner[v.outcome],
            "judge": v.judge,
        }
        fh.write(json.dumps(record) + "\n")
        written += 1
    return written
