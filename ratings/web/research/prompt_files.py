"""Reading an uploaded prompt file (JSONL or CSV), line by line, with every error named by its line.

Uploads are hostile: the file is capped in bytes and lines before it is parsed, must be UTF-8 (a byte
that is not names its line) with no NUL, and each field is capped in length. Nothing here writes: the
set-up view passes the records to ``ratings.actions.setup.do_upload_prompts`` only when there is no error.

JSONL: one object a line, ``{"id": "q1", "text": "...", "category": "...", "reference_answers": [...]}``
(``prompt_id`` for ``id`` and ``prompt`` for ``text`` also accepted). CSV: a header row naming ``id`` and
``text`` (and optionally ``category`` and ``reference_answers``, several separated by ``|``).
"""

import csv
import io
import json

MAX_BYTES = 5 * 1024 * 1024
MAX_LINES = 10_000
MAX_ID_CHARS = 100  # Prompt.external_id
MAX_TEXT_CHARS = 20_000
MAX_CATEGORY_CHARS = 100
MAX_REFERENCES = 20
MAX_REFERENCE_CHARS = 1_000
MAX_ERRORS_SHOWN = 20

ID_KEYS = ("id", "prompt_id")
TEXT_KEYS = ("text", "prompt")


class PromptFileInvalid(Exception):
    """The file cannot be used; ``errors`` are the messages, each naming its line where there is one."""

    def __init__(self, errors: list[str]):
        shown = errors[:MAX_ERRORS_SHOWN]
        if len(errors) > MAX_ERRORS_SHOWN:
            shown.append(f"... and {len(errors) - MAX_ERRORS_SHOWN} more errors.")
        super().__init__(" ".join(shown))
        self.errors = shown


def _first(record: dict, keys: tuple[str, ...]):
    for key in keys:
        if key in record:
            return record[key]
    return None


def _check_record(line: int, raw_id, text, category, references) -> tuple[dict | None, list[str]]:
    """One prompt as ``do_import_prompts`` takes it, or the errors of its line."""
    errors = []
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    if not isinstance(raw_id, str) or not raw_id.strip():
        errors.append(f'Line {line}: no id (give each prompt an "id").')
    elif len(raw_id) > MAX_ID_CHARS:
        errors.append(f"Line {line}: the id is longer than {MAX_ID_CHARS} characters.")
    if not isinstance(text, str) or not text.strip():
        errors.append(f'Line {line}: no prompt text ("text").')
    elif len(text) > MAX_TEXT_CHARS:
        errors.append(f"Line {line}: the text is longer than {MAX_TEXT_CHARS:,} characters.")
    if category is None:
        category = ""
    if not isinstance(category, str) or len(category) > MAX_CATEGORY_CHARS:
        errors.append(f"Line {line}: the category must be text of at most {MAX_CATEGORY_CHARS} characters.")
    if references is None:
        references = []
    if (
        not isinstance(references, list)
        or len(references) > MAX_REFERENCES
        or not all(isinstance(r, str) and 0 < len(r) <= MAX_REFERENCE_CHARS for r in references)
    ):
        errors.append(
            f"Line {line}: reference_answers must be a list of at most {MAX_REFERENCES} texts "
            f"of 1-{MAX_REFERENCE_CHARS} characters."
        )
    if errors:
        return None, errors
    record = {"external_id": raw_id.strip(), "text": text, "category": category, "reference_answers": references}
    return record, []


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PromptFileInvalid([f"Line {line}: not UTF-8 text (byte {exc.start + 1} of the file)."]) from exc
    if "\0" in text:
        line = text[: text.index("\0")].count("\n") + 1
        raise PromptFileInvalid([f"Line {line}: a NUL byte; this is not a text file."])
    return text


def _jsonl(text: str) -> list[tuple[int, tuple]]:
    rows, errors = [], []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors.append(f"Line {line}: not valid JSON ({exc.msg}, column {exc.colno}).")
            continue
        if not isinstance(obj, dict):
            errors.append(f"Line {line}: not a JSON object.")
            continue
        rows.append(
            (line, (_first(obj, ID_KEYS), _first(obj, TEXT_KEYS), obj.get("category"), obj.get("reference_answers")))
        )
    if errors:
        raise PromptFileInvalid(errors)
    return rows


def _csv(text: str) -> list[tuple[int, tuple]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if "id" not in header or "text" not in header:
        raise PromptFileInvalid(["Line 1: the CSV header must name the columns id and text."])
    reader.fieldnames = header
    rows = []
    try:
        for record in reader:
            refs = record.get("reference_answers") or ""
            references = [r.strip() for r in refs.split("|") if r.strip()]
            rows.append((reader.line_num, (record.get("id"), record.get("text"), record.get("category"), references)))
    except csv.Error as exc:
        raise PromptFileInvalid([f"Line {reader.line_num}: {exc}."]) from exc
    return rows


def read_prompt_file(name: str, data: bytes) -> list[dict]:
    """The file's prompts as records for ``do_import_prompts``; PromptFileInvalid names every bad line."""
    if len(data) > MAX_BYTES:
        raise PromptFileInvalid([f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB."])
    text = _decode(data)
    if len(text.splitlines()) > MAX_LINES:
        raise PromptFileInvalid([f"The file has more than {MAX_LINES:,} lines."])
    lower = name.lower()
    if lower.endswith((".jsonl", ".json", ".ndjson")):
        rows = _jsonl(text)
    elif lower.endswith(".csv"):
        rows = _csv(text)
    else:
        raise PromptFileInvalid(["Upload a .jsonl file (one JSON object a line) or a .csv file."])
    records, errors, seen = [], [], {}
    for line, fields in rows:
        record, problems = _check_record(line, *fields)
        errors += problems
        if record is None:
            continue
        first = seen.setdefault(record["external_id"], line)
        if first != line:
            errors.append(f"Line {line}: the id {record['external_id']!r} is used on line {first} too.")
            continue
        records.append(record)
    if errors:
        raise PromptFileInvalid(errors)
    if not records:
        raise PromptFileInvalid(["The file holds no prompts."])
    return records
