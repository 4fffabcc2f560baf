"""Reading Chatbot Arena battle files, as they are distributed: no database, no Django models.

A file is a JSON array of battle objects (FastChat's ``clean_battle_*.json``) or one object a line
(JSONL), plain or gzip-compressed; which is decided from the content (the gzip magic bytes, then the
first non-space character: ``[`` or ``{``), never from the name. Each battle:
``question_id, model_a, model_b, winner`` (``model_a`` | ``model_b`` | ``tie`` | ``tie (bothbad)``),
optional ``judge, tstamp, turn, category, conversation_a, conversation_b`` (lists of
``{role, content}``) and ``conv_metadata`` (FastChat's style counts: ``sum_assistant_a_tokens``,
``header_count_a`` {h1..h6}, ``list_count_a`` {ordered, unordered}, ``bold_count_a`` {"**", "__"}
and the ``_b`` twins; a dict's values are summed, as FastChat does). ``model_a`` is the answer
shown first. ``turn`` N means the vote judged the conversation up to its N-th answer (MT-bench's
turn 1 and turn 2 votes share a question id and a four-message conversation).

Style features of a battle (length, headers, list items, bold) come from the texts when both
answers are there (counted by ``inference_workers.style_features``), else from ``conv_metadata``
when it holds both sides, else the battle has none and is left out of the style fit only. An
empty answer counts as zero-length, not as missing. The length is words from texts and tokens
from ``conv_metadata``; style control uses (a - b) / (a + b) per battle, which has no unit.

Reading is strict: a malformed record raises ``BattleFormatError`` naming its line (JSONL) or its
record number (array). Large files are parsed and counted in worker processes, chunk by chunk.
"""

import gzip
import hashlib
import io
import json
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice

import numpy as np

try:  # several times faster than the standard library on answer-sized strings
    import orjson

    _loads = orjson.loads
    _DecodeError = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - orjson is in requirements.txt
    _loads = json.loads
    _DecodeError = json.JSONDecodeError

from inference_workers.style_features import style_counts, style_counts_many

WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
# The outcome for model_a: a tie, and "both bad", count half a win for each side.
WINNER_TO_OUTCOME = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
STYLE_COLUMNS = ("length_words", "n_headers", "n_list_items", "n_bold")
METADATA_KEYS = ("sum_assistant_{}_tokens", "header_count_{}", "list_count_{}", "bold_count_{}")
# Where a battle's style features came from.
FROM_TEXTS, FROM_METADATA, MISSING = "texts", "conv_metadata", "missing"
CHUNK_RECORDS = 2000
# What the database holds (an import would fail on longer values): model names, question ids (a
# later turn adds "#turn<N>"), judges and categories.
MAX_MODEL, MAX_QUESTION_ID, MAX_JUDGE, MAX_CATEGORY = 100, 90, 200, 100


class BattleFormatError(ValueError):
    def __init__(self, position: int, message: str, unit: str = "line"):
        super().__init__(f"{unit} {position}: {message}")
        self.line_no = position
        self.unit = unit
        self.message = message

    def __reduce__(self):  # raised in a worker process, re-raised here
        return BattleFormatError, (self.line_no, self.message, self.unit)


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ is slow, and a million are made
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
    turn: int = 1
    category: str = ""
    # The user turns and each side's answers up to ``turn`` (one each for a single-turn battle).
    questions: tuple[str, ...] = ()
    turns_a: tuple[str, ...] | None = None
    turns_b: tuple[str, ...] | None = None
    # conv_metadata counts per side: (tokens, headers, list items, bold), or None.
    meta_a: tuple[int, int, int, int] | None = None
    meta_b: tuple[int, int, int, int] | None = None

    def style(self) -> tuple[list[int] | None, list[int] | None, str]:
        """(features of A, features of B, source): texts win over conv_metadata; (None, None, MISSING) without."""
        if self.answer_a is not None and self.answer_b is not None:
            return list(style_counts(self.answer_a)), list(style_counts(self.answer_b)), FROM_TEXTS
        if self.meta_a is not None and self.meta_b is not None:
            return list(self.meta_a), list(self.meta_b), FROM_METADATA
        return None, None, MISSING


def answer_digest(text: str | None, meta: tuple[int, ...] | None) -> str:
    """An answer's identity within (model, question, turn): "t" + a hash of its text (empty included),
    "m" + a hash of its conv_metadata counts when the file had no text, "n" when it had neither."""
    if text is not None:
        return "t" + hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=15).hexdigest()
    if meta is not None:
        counts = repr(meta if type(meta) is tuple else tuple(meta))
        return "m" + hashlib.blake2b(counts.encode(), digest_size=15).hexdigest()
    return "n" + "0" * 30


def _conversation(record: dict, key: str, turn: int | None, where: tuple[int, str]):
    """(user turns, assistant turns) up to ``turn``, or ((), None) when the conversation is absent."""
    turns = record.get(key)
    if turns is None:
        return (), None
    if not isinstance(turns, list) or not all(
        isinstance(t, dict) and isinstance(t.get("role"), str) and isinstance(t.get("content"), str) for t in turns
    ):
        raise BattleFormatError(*where[:1], f"{key} must be a list of {{role, content}} strings", where[1])
    users = [t["content"] for t in turns if t["role"] == "user"]
    answers = [t["content"] for t in turns if t["role"] == "assistant"]
    if turn is not None and len(answers) > turn:
        users, answers = users[:turn], answers[:turn]
    return tuple(users), tuple(answers)


_SIDE_KEYS = tuple(tuple(k.format(side) for k in METADATA_KEYS) for side in "ab")


def _metadata(record: dict, where: tuple[int, str]):
    """(counts of A, counts of B) from conv_metadata, a side None where a key is missing; plain loops (a
    million battles pass here)."""
    meta = record.get("conv_metadata")
    if meta is None:
        return None, None
    if not isinstance(meta, dict):
        raise BattleFormatError(where[0], "conv_metadata must be an object", where[1])
    sides = []
    for keys in _SIDE_KEYS:
        row = []
        for key in keys:
            value = meta.get(key)
            if value is None:
                row = None
                break
            if type(value) is dict:
                total = 0
                for v in value.values():
                    if type(v) is not int or v < 0:
                        total = -1
                        break
                    total += v
                value = total
            if type(value) is not int or value < 0:
                raise BattleFormatError(where[0], f"conv_metadata.{key} must be a count or a dict of counts", where[1])
            row.append(value)
        sides.append(None if row is None else tuple(row))
    return sides[0], sides[1]


def parse_record(record, position: int, unit: str = "line") -> Battle:
    """One decoded battle object as a ``Battle``; anything malformed raises ``BattleFormatError``."""
    where = (position, unit)
    if not isinstance(record, dict):
        raise BattleFormatError(position, "not a JSON object", unit)
    for key in ("question_id", "model_a", "model_b", "winner"):
        if key not in record:
            raise BattleFormatError(position, f"missing {key}", unit)
    model_a, model_b = record["model_a"], record["model_b"]
    if not (isinstance(model_a, str) and isinstance(model_b, str) and model_a and model_b):
        raise BattleFormatError(position, "model_a and model_b must be non-empty strings", unit)
    if model_a == model_b:
        raise BattleFormatError(position, f"a model cannot battle itself ({model_a})", unit)
    if len(model_a) > MAX_MODEL or len(model_b) > MAX_MODEL:
        raise BattleFormatError(position, f"a model name is longer than {MAX_MODEL} characters", unit)
    if record["winner"] not in WINNER_TO_OUTCOME:
        raise BattleFormatError(position, f"winner must be one of {', '.join(WINNERS)}, not {record['winner']!r}", unit)
    qid = record["question_id"]
    if isinstance(qid, bool) or not isinstance(qid, str | int) or str(qid) == "":
        raise BattleFormatError(position, "question_id must be a string or an integer", unit)
    if len(str(qid)) > MAX_QUESTION_ID:
        raise BattleFormatError(position, f"question_id is longer than {MAX_QUESTION_ID} characters", unit)
    tstamp = record.get("tstamp")
    if tstamp is not None and (isinstance(tstamp, bool) or not isinstance(tstamp, int | float)):
        raise BattleFormatError(position, "tstamp must be a number (seconds since the epoch)", unit)
    turn = record.get("turn")
    if turn is not None and (isinstance(turn, bool) or not isinstance(turn, int) or turn < 1):
        raise BattleFormatError(position, "turn must be a positive integer", unit)
    category = record.get("category")
    if category is not None and (not isinstance(category, str) or len(category) > MAX_CATEGORY):
        raise BattleFormatError(position, f"category must be a string of at most {MAX_CATEGORY} characters", unit)
    questions_a, turns_a = _conversation(record, "conversation_a", turn, where)
    questions_b, turns_b = _conversation(record, "conversation_b", turn, where)
    meta_a, meta_b = _metadata(record, where)
    questions = questions_a or questions_b
    judge = record.get("judge")
    judge = "" if judge is None else str(judge)
    if len(judge) > MAX_JUDGE:
        raise BattleFormatError(position, f"judge is longer than {MAX_JUDGE} characters", unit)
    return Battle(
        question_id=str(qid),
        model_a=model_a,
        model_b=model_b,
        winner=record["winner"],
        judge=judge,
        tstamp=tstamp,
        question=questions[0] if questions else "",
        answer_a=None if turns_a is None else "\n\n".join(turns_a),
        answer_b=None if turns_b is None else "\n\n".join(turns_b),
        turn=turn or max(len(turns_a or ()), len(turns_b or ()), 1),
        category=category or "",
        questions=questions,
        turns_a=turns_a,
        turns_b=turns_b,
        meta_a=meta_a,
        meta_b=meta_b,
    )


def parse_battle(line: str | bytes, line_no: int) -> Battle:
    """One JSONL line as a ``Battle``."""
    try:
        record = _loads(line)
    except _DecodeError as exc:
        raise BattleFormatError(line_no, f"not JSON ({str(exc).split(':')[0]})") from exc
    return parse_record(record, line_no)


# --- Files: format detection and streaming -------------------------------------------------------


def open_binary(path: str) -> io.BufferedIOBase:
    """The file's bytes, decompressed when it starts with the gzip magic bytes."""
    raw = open(path, "rb")  # noqa: SIM115 - handed to the caller
    if raw.peek(2)[:2] == b"\x1f\x8b":
        return io.BufferedReader(gzip.GzipFile(fileobj=raw))
    return raw


def detect_format(stream: io.BufferedIOBase) -> str:
    """ "array" or "jsonl" from the first non-space character (a UTF-8 byte-order mark is skipped)."""
    head = stream.peek(4096).lstrip(b"\xef\xbb\xbf").lstrip()
    while not head:
        # Only whitespace so far: read past it (peek shows what is buffered, at least one byte).
        chunk = stream.read1(4096)
        if not chunk:
            return "jsonl"  # empty file: no battles
        head = stream.peek(4096).lstrip()
    if head[:1] == b"[":
        return "array"
    if head[:1] == b"{":
        return "jsonl"
    raise BattleFormatError(1, f"not a battle file: it starts with {head[:20]!r}, not [ or {{")


def _jsonl_records(stream) -> Iterator[tuple[int, bytes]]:
    for line_no, line in enumerate(stream, start=1):
        if line.strip():
            yield line_no, line


def _array_records(stream, chunk_size: int = 1 << 22) -> Iterator[tuple[int, dict]]:
    """Elements of a JSON array read incrementally (memory bounded by the largest element, not the file)."""
    decoder = json.JSONDecoder()
    text = io.TextIOWrapper(stream, encoding="utf-8-sig")
    buf, pos, eof, n = text.read(chunk_size), 0, False, 0

    def refill():
        nonlocal buf, pos, eof
        more = text.read(chunk_size)
        eof = not more
        buf, pos = buf[pos:] + more, 0

    def skip_space():
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf) or eof:
                return
            refill()

    skip_space()
    pos += 1  # the opening "[" (checked by detect_format)
    while True:
        skip_space()
        if pos >= len(buf):
            raise BattleFormatError(n + 1, "the JSON array is not closed", "record")
        if buf[pos] == "]":
            return
        if n:
            if buf[pos] != ",":
                raise BattleFormatError(n + 1, f"expected , between records, found {buf[pos]!r}", "record")
            pos += 1
            skip_space()
        while True:
            try:
                record, end = decoder.raw_decode(buf, pos)
                break
            except json.JSONDecodeError as exc:
                if eof:
                    raise BattleFormatError(n + 1, f"not JSON ({exc.msg})", "record") from exc
                refill()
        n += 1
        pos = end
        yield n, record
        if pos > chunk_size:
            buf, pos = buf[pos:], 0


def iter_records(path: str) -> Iterator[tuple[int, bytes | dict, str]]:
    """(position, raw line or decoded object, unit) for every record of the file, whichever format."""
    with open_binary(path) as stream:
        if detect_format(stream) == "array":
            for n, record in _array_records(stream):
                yield n, record, "record"
        else:
            for n, line in _jsonl_records(stream):
                yield n, line, "line"


def _battle(item: tuple[int, bytes | dict | Battle, str]) -> Battle:
    position, raw, unit = item
    if unit == "parsed":
        return raw
    return parse_battle(raw, position) if unit == "line" else parse_record(raw, position, unit)


def read_battles(source) -> Iterator[Battle]:
    """Battles from a path (any format above), or from an iterable of JSONL lines; strict."""
    if isinstance(source, str | os.PathLike):
        for item in iter_records(os.fspath(source)):
            yield _battle(item)
        return
    for line_no, line in enumerate(source, start=1):
        if line.strip():
            yield parse_battle(line, line_no)


# --- Arrays for the statistics -------------------------------------------------------------------


@dataclass
class BattleArrays:
    """Battles as arrays for ratings/stats.

    ``style_a``/``style_b`` are (N, 4) in STYLE_COLUMNS order with NaN rows for battles without
    features (None when no battle has any); ``style_sources`` counts battles by where their
    features came from (texts, conv_metadata, missing).
    """

    models: list[str]
    model_a: np.ndarray
    model_b: np.ndarray
    outcome: np.ndarray
    question: list[str]
    style_a: np.ndarray | None
    style_b: np.ndarray | None
    style_sources: dict[str, int] = field(default_factory=dict)
    category: list[str] = field(default_factory=list)
    judge: list[str] = field(default_factory=list)


_SOURCE_CODE = {FROM_TEXTS: 0, FROM_METADATA: 1, MISSING: 2}


def _compact_chunk(items: list) -> dict:
    """Worker: parse a chunk of records and count their style features (texts counted together); the
    chunk as columns (lists of strings, arrays of numbers), cheap to send back and to join."""
    battles = [_battle(item) for item in items]
    n = len(battles)
    style_a = np.full((n, len(STYLE_COLUMNS)), np.nan)
    style_b = np.full((n, len(STYLE_COLUMNS)), np.nan)
    source = np.full(n, _SOURCE_CODE[MISSING], dtype=np.int8)
    with_texts = [k for k, b in enumerate(battles) if b.answer_a is not None and b.answer_b is not None]
    if with_texts:
        counts = style_counts_many(
            [battles[k].answer_a for k in with_texts] + [battles[k].answer_b for k in with_texts]
        )
        style_a[with_texts], style_b[with_texts] = counts[: len(with_texts)], counts[len(with_texts) :]
        source[with_texts] = _SOURCE_CODE[FROM_TEXTS]
    for k, b in enumerate(battles):
        if source[k] != _SOURCE_CODE[FROM_TEXTS] and b.meta_a is not None and b.meta_b is not None:
            style_a[k], style_b[k], source[k] = b.meta_a, b.meta_b, _SOURCE_CODE[FROM_METADATA]
    return {
        "question": [b.question_id for b in battles],
        "model_a": [b.model_a for b in battles],
        "model_b": [b.model_b for b in battles],
        "outcome": np.fromiter((WINNER_TO_OUTCOME[b.winner] for b in battles), dtype=np.float64, count=n),
        "category": [b.category for b in battles],
        "judge": [b.judge for b in battles],
        "style_a": style_a,
        "style_b": style_b,
        "source": source,
    }


def _compact_battles(battles: list[Battle]) -> dict:
    return _compact_chunk([(0, b, "parsed") for b in battles])


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    while chunk := list(islice(items, size)):
        yield chunk


def _fork_pool(workers: int):
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    return context.Pool(workers)


def compact_battles(
    items: Iterator, workers: int | None = None, progress: Callable[[int], None] | None = None
) -> Iterator[dict]:
    """Column chunks (see ``_compact_chunk``) for records, in file order. The first chunk is done here;
    when a second one follows, the rest go to ``workers`` processes (default: one per CPU)."""
    workers = workers or os.cpu_count() or 1
    chunks = _chunks(iter(items), CHUNK_RECORDS)
    first = next(chunks, None)
    if first is None:
        return
    done = len(first)
    yield _compact_chunk(first)
    if progress:
        progress(done)
    second = next(chunks, None)
    if second is None:
        return
    pending: deque = deque()
    pool = _fork_pool(workers) if workers > 1 else None
    try:
        for chunk in chain([second], chunks):
            # At most two chunks a worker in flight: memory stays flat in the file's size.
            pending.append(pool.apply_async(_compact_chunk, (chunk,)) if pool else chunk)
            while len(pending) > 2 * workers or (pool is None and pending):
                done, columns = _drain(pending, done, progress)
                yield columns
        while pending:
            done, columns = _drain(pending, done, progress)
            yield columns
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def _drain(pending: deque, done: int, progress) -> tuple[int, dict]:
    head = pending.popleft()
    columns = _compact_chunk(head) if isinstance(head, list) else head.get()
    done += len(columns["outcome"])
    if progress:
        progress(done)
    return done, columns


def read_battle_arrays(
    source, workers: int | None = None, progress: Callable[[int], None] | None = None
) -> BattleArrays:
    """A battle file (a path) or battles (an iterable of ``Battle``) as ``BattleArrays``."""
    if isinstance(source, str | os.PathLike):
        chunks = compact_battles(iter_records(os.fspath(source)), workers, progress)
    else:
        chunks = (_compact_battles(chunk) for chunk in _chunks(iter(source), CHUNK_RECORDS))
    index: dict[str, int] = {}
    cols: dict[str, list] = {key: [] for key in ("a", "b", "outcome", "style_a", "style_b", "source")}
    questions, categories, judges = [], [], []
    for chunk in chunks:
        cols["a"].append(np.array([index.setdefault(m, len(index)) for m in chunk["model_a"]], dtype=np.int64))
        cols["b"].append(np.array([index.setdefault(m, len(index)) for m in chunk["model_b"]], dtype=np.int64))
        for key in ("outcome", "style_a", "style_b", "source"):
            cols[key].append(chunk[key])
        questions += chunk["question"]
        categories += chunk["category"]
        judges += chunk["judge"]
    # Models are indexed by name, sorted.
    names = sorted(index)
    remap = np.empty(len(names), dtype=np.int64)
    for new, name in enumerate(names):
        remap[index[name]] = new

    def joined(key: str, empty: np.ndarray) -> np.ndarray:
        return np.concatenate(cols[key]) if cols[key] else empty

    counts = np.bincount(joined("source", np.zeros(0, dtype=np.int8)).astype(np.int64), minlength=3)
    with_style = bool(counts[0] + counts[1])
    no_style = np.zeros((0, len(STYLE_COLUMNS)))
    return BattleArrays(
        models=names,
        model_a=remap[joined("a", np.zeros(0, dtype=np.int64))],
        model_b=remap[joined("b", np.zeros(0, dtype=np.int64))],
        outcome=joined("outcome", np.zeros(0)),
        question=questions,
        style_a=joined("style_a", no_style) if with_style else None,
        style_b=joined("style_b", no_style) if with_style else None,
        style_sources={FROM_TEXTS: int(counts[0]), FROM_METADATA: int(counts[1]), MISSING: int(counts[2])},
        category=categories,
        judge=judges,
    )
