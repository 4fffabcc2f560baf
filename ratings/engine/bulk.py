"""Bulk inserts for imports: Postgres ``COPY ... FROM STDIN`` (psycopg2's ``copy_expert``), and
``bulk_create`` on other databases (the SQLite embedded default).

``insert_rows(model, columns, rows)`` takes plain tuples in ``columns`` order (attribute names, so
``prompt_id`` for a foreign key); every other column gets the model field's default, as
``bulk_create`` would give it (a callable default is called once a row; ``auto_now_add`` is now).
With ``ids=True`` it returns the new primary keys in row order: on Postgres they are reserved from
the table's sequence first (one ``nextval`` query), so the COPY carries them. It runs on the
caller's connection, inside the caller's transaction.

``BulkWriter`` (a long import) checks the foreign keys of the rows it copies **in bulk** where it may:
the COPYs run with ``session_replication_role = replica`` (no per-row check triggers), and at the end,
inside the same transaction, one statement per foreign key locks the rows that existed before and are
referenced (``FOR KEY SHARE``, as the per-row checks do), and one looks for a reference to nothing (as
``ALTER TABLE ... VALIDATE CONSTRAINT`` does): the same guarantee as the per-row triggers, at a
fraction of Postgres's CPU. It may where the role is a superuser or was granted ``SET`` on that
setting (Postgres 15+), and for a table without triggers of its own; otherwise the database checks
each row as it arrives (``PER_ROW``), and ``BulkWriter.references`` says why.
"""

import io
import json
import queue
import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal

from django.db import IntegrityError, connection
from django.db.models import DateField, JSONField, Model
from django.utils import timezone

# Bytes handed to libpq per call: the writer's thread needs the GIL back for each block it reads, which
# a busy caller's thread gives up only every few milliseconds, so small blocks (psycopg2's 8 KB) starve it.
COPY_BLOCK = 1 << 20


def _escape(text: str) -> str:
    """COPY's text format escapes backslash, tab, newline and carriage return (str.replace: C speed)."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\t" in text:
        text = text.replace("\t", "\\t")
    if "\n" in text:
        text = text.replace("\n", "\\n")
    if "\r" in text:
        text = text.replace("\r", "\\r")
    return text


def _text(value, is_json: bool) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if is_json:
        return _escape(json.dumps(value, ensure_ascii=False))
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return _escape(str(value))


def _defaults(model: type[Model], columns: Sequence[str]):
    """The other columns: (column, is_json, constant or callable, is_callable)."""
    now = timezone.now()
    out = []
    for f in model._meta.concrete_fields:
        if f.primary_key or f.attname in columns:
            continue
        if isinstance(f, DateField) and (f.auto_now or f.auto_now_add):
            out.append((f.column, False, now, False))
        elif f.has_default() and callable(f.default) and f.default not in _EMPTY_CONTAINERS:
            out.append((f.column, isinstance(f, JSONField), f.default, True))
        else:
            out.append((f.column, isinstance(f, JSONField), f.get_default(), False))
    return out


# Defaults such as ``list`` give every row a new but equal value: one encoded text serves them all.
_EMPTY_CONTAINERS = (list, dict, tuple, str)


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _encoder(field) -> Callable[[object], str]:
    """A function from one value of ``field`` to COPY's text, chosen once a column rather than a value:
    integers (keys, counts) go through ``str`` alone, text through ``_escape``."""
    if isinstance(field, JSONField):
        return lambda v: "\\N" if v is None else _escape(json.dumps(v, ensure_ascii=False))
    internal = field.get_internal_type()
    if internal in _INTEGER_TYPES:
        return (lambda v: "\\N" if v is None else str(v)) if field.null else str
    if internal in ("CharField", "TextField", "SlugField"):
        return lambda v: _escape(v) if type(v) is str else _text(v, False)
    if internal == "DateTimeField":
        return lambda v: v.isoformat() if type(v) is datetime else _text(v, False)
    return lambda v: _text(v, False)


def _encode_column(field, values: list) -> list[str]:
    """``values`` of ``field`` in COPY's text format, a column at a time (C loops where they serve): one
    value throughout (a key every row shares) is encoded once; integers without NULLs through ``str``;
    text without NULLs escaped in one pass over the joined column."""
    n = len(values)
    if n > 1 and values.count(values[0]) == n:
        return [_encoder(field)(values[0])] * n
    internal = field.get_internal_type()
    if internal in _INTEGER_TYPES and None not in values:
        return list(map(str, values))
    if internal in ("CharField", "TextField", "SlugField") and None not in values:
        try:
            # Postgres text cannot hold NUL, so NUL can part the values (a value holding one is left to
            # the encoder below, and to Postgres's refusal).
            joined = "\x00".join(values)
        except TypeError:  # not all strings
            joined = None
        if joined is not None and joined.count("\x00") == n - 1:
            return _escape(joined).split("\x00")
    return list(map(_encoder(field), values))


_INTEGER_TYPES = {
    "AutoField",
    "BigAutoField",
    "IntegerField",
    "BigIntegerField",
    "SmallIntegerField",
    "PositiveIntegerField",
    "PositiveBigIntegerField",
    "PositiveSmallIntegerField",
    "ForeignKey",
}


def insert_rows(model: type[Model], columns: Sequence[str], rows: Sequence[tuple], ids: bool = False) -> list[int]:
    """Insert ``rows`` into ``model``'s table; the new ids in row order when ``ids`` (else [])."""
    if not rows:
        return []
    if not is_postgres():
        objs = model._default_manager.bulk_create(
            [model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=500
        )
        return [o.pk for o in objs] if ids else []
    with connection.cursor() as cursor:
        new_ids = _reserve_ids(cursor, model, len(rows)) if ids else []
        statement, data = _copy_data(model, columns, rows, new_ids)
        cursor.cursor.copy_expert(statement, data, size=COPY_BLOCK)
    return new_ids


def _reserve_ids(cursor, model: type[Model], n: int, sequence: str | None = None) -> list[int]:
    """``n`` new primary keys from the table's sequence (not transactional: a rollback leaves a gap).
    The sequence's name is looked up first (``sequence`` when known): as a literal the name is resolved
    once, where ``nextval(pg_get_serial_sequence(...))`` would look it up again for every id."""
    # Unless another session took some meanwhile, the ids run without a gap: then only the first and the
    # last come back, not n rows.
    cursor.execute(
        "WITH taken AS (SELECT nextval(%s::regclass) AS id FROM generate_series(1, %s)) "
        "SELECT CASE WHEN max(id) - min(id) + 1 = count(*) THEN ARRAY[min(id), max(id)] "
        "ELSE array_agg(id ORDER BY id) END FROM taken",
        [sequence or _sequence(cursor, model), n],
    )
    ids = cursor.fetchone()[0]
    return ids if len(ids) == n else list(range(ids[0], ids[1] + 1))


def _copy_data(model: type[Model], columns: Sequence[str], rows: Sequence[tuple], new_ids: list[int]):
    """The ``COPY ... FROM STDIN`` statement and its data (bytes) for ``rows``, with ``new_ids`` as the
    primary keys when given."""
    table = model._meta.db_table
    pk = model._meta.pk.column
    field_of = {f.attname: f for f in model._meta.concrete_fields}
    others = _defaults(model, columns)
    # Column by column: each given column (``_encode_column``), then the defaults (a constant tail shared
    # by every row, and the callables: once a row, or once for all where they make many at once).
    encoded = [
        _encode_column(field_of[c], list(column)) for c, column in zip(columns, zip(*rows, strict=True), strict=True)
    ]
    if new_ids:
        encoded.insert(0, list(map(str, new_ids)))
    static = [_text(value, is_json) for _, is_json, value, is_callable in others if not is_callable]
    if static:
        encoded.append(["\t".join(static)] * len(rows))
    field_by_column = {f.column: f for f in model._meta.concrete_fields}
    for column, _, make, is_callable in others:
        if is_callable:
            # A default that makes many at once (``make.many(n)``: tokens from one read of the random
            # source) is asked once for the lot.
            many = getattr(make, "many", None)
            values = many(len(rows)) if many else [make() for _ in range(len(rows))]
            encoded.append(_encode_column(field_by_column[column], values))
    names = ([pk] if new_ids else []) + [field_of[c].column for c in columns]
    names += [name for name, _, _, is_callable in others if not is_callable]
    names += [name for name, _, _, is_callable in others if is_callable]
    lines = list(map("\t".join, zip(*encoded, strict=True)))
    del encoded
    lines.append("")
    # Bytes, not a StringIO (which holds four bytes a character): a chunk of answers is large.
    data = io.BytesIO("\n".join(lines).encode("utf-8", "surrogatepass"))
    del lines
    quoted = ", ".join(connection.ops.quote_name(name) for name in names)
    return f"COPY {connection.ops.quote_name(table)} ({quoted}) FROM STDIN", data


class BulkWriter:
    """``insert_rows`` for a long import, with the database's work overlapped with the caller's.

    On Postgres each ``insert`` encodes its rows and hands the COPY to one background thread, which
    runs the COPYs in order on the caller's connection, inside the caller's transaction, while the
    caller reads and builds the next rows. Meanwhile the caller must not use that connection itself:
    it calls ``wait()`` first (a COPY in progress owns the connection). New ids come from a second
    connection, so reserving them never waits for a COPY (a sequence is not transactional: a
    rollback leaves a gap, as before). At most ``depth`` COPYs wait, so memory stays a few chunks.
    ``then(fn)`` runs ``fn`` once everything queued before it is written (progress reports). The
    first error, here or in the thread, stops the rest and is raised from ``insert``, ``then``,
    ``wait`` or the ``with`` block, so the caller's transaction rolls back whole. Elsewhere (SQLite)
    each call is plain ``insert_rows`` in the caller's thread.
    """

    def __init__(self, depth: int = 2, bulk_checks: bool = True, checking: Callable[[int], None] | None = None):
        self.depth = depth
        self.checking = checking  # called with the number of rows to check in bulk, before the check
        self.rows_to_check = 0
        self.postgres = is_postgres()
        self.bulk_checks = bulk_checks
        # How the foreign keys of the copied rows are checked: IN_BULK, or PER_ROW with the reason.
        self.references = PER_ROW
        self._error: BaseException | None = None
        self._stop = False
        # Tables whose rows are checked in bulk: {table: (model, its largest id before this writer's rows)}.
        self._bulk: dict[str, tuple[type[Model], int]] = {}
        self._per_row: dict[str, str] = {}  # table: why its rows are checked as they arrive
        self._sequences: dict[str, str] = {}

    def __enter__(self) -> "BulkWriter":
        if self.postgres:
            connection.ensure_connection()
            self._raw = connection.connection
            self._ids = connection.get_new_connection(connection.get_connection_params())
            self._ids.autocommit = True
            refused = "asked for" if not self.bulk_checks else _bulk_checks_refused()
            self.references = IN_BULK if refused is None else f"{PER_ROW} ({refused})"
            self._tasks: queue.Queue = queue.Queue(maxsize=self.depth)
            self._thread = threading.Thread(target=self._run, name="bulk-copy", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if not self.postgres:
            return
        self._stop = error is not None
        self._tasks.put(None)
        self._thread.join()
        self._ids.close()
        if error is None:
            self._raise()
            if self._bulk and self.checking:
                self.checking(self.rows_to_check)
            check_in_bulk(self._bulk)

    def _run(self) -> None:
        while (task := self._tasks.get()) is not None:
            if self._error is None and not self._stop:
                try:
                    task()
                except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
                    self._error = e
            self._tasks.task_done()

    def wait(self) -> None:
        """Return once everything queued so far is written: the caller may use the connection again."""
        if self.postgres:
            self._tasks.join()
            self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _copy(self, statement: str, data, in_bulk: bool) -> None:
        with connection.wrap_database_errors, self._raw.cursor() as cursor:  # Django's IntegrityError etc.
            if in_bulk:  # this COPY alone: the statements between COPYs are checked as usual
                cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.copy_expert(statement, data, size=COPY_BLOCK)
            if in_bulk:
                cursor.execute("SET LOCAL session_replication_role = origin")

    def _sequence(self, model: type[Model], cursor) -> str:
        table = model._meta.db_table
        if table not in self._sequences:
            self._sequences[table] = _sequence(cursor, model)
        return self._sequences[table]

    def _in_bulk(self, model: type[Model], cursor) -> bool:
        """Whether ``model``'s rows are checked in bulk: decided at its first rows, when its largest id
        so far is noted (every row this writer adds has a larger one)."""
        table = model._meta.db_table
        if table in self._bulk:
            return True
        if self.references != IN_BULK or table in self._per_row:
            return False
        refused = _table_refuses_bulk_checks(cursor, table)
        if refused:
            self._per_row[table] = refused
            self.references = f"{PER_ROW} for {', '.join(sorted(self._per_row))} ({'; '.join(self._per_row.values())})"
            return False
        # pg_get_serial_sequence's name comes quoted where it needs quotes.
        cursor.execute(
            f"SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {self._sequence(model, cursor)}"  # noqa: S608
        )
        self._bulk[table] = (model, cursor.fetchone()[0])
        return True

    def insert(self, model: type[Model], columns: Sequence[str], rows: Sequence[tuple], ids: bool = False) -> list[int]:
        """As ``insert_rows``: the new ids in row order when ``ids``; the rows are written later, in order."""
        if not self.postgres:
            return insert_rows(model, columns, rows, ids)
        self._raise()
        if not rows:
            return []
        with self._ids.cursor() as cursor:
            in_bulk = self._in_bulk(model, cursor)
            self.rows_to_check += len(rows) if in_bulk else 0
            new_ids = _reserve_ids(cursor, model, len(rows), self._sequence(model, cursor)) if ids else []
        statement, data = _copy_data(model, columns, rows, new_ids)
        self._tasks.put(lambda: self._copy(statement, data, in_bulk))
        return new_ids

    def then(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` once everything queued so far is written (at once where nothing is queued)."""
        if not self.postgres:
            fn()
            return
        self._raise()
        self._tasks.put(fn)


def check_references_now() -> None:
    """Postgres: check foreign keys at each statement of this transaction, not all at its COMMIT (Django
    makes them deferred): an import's time is then spent, and shown, chunk by chunk, and Postgres does
    not queue millions of pending checks in memory. Elsewhere nothing."""
    if is_postgres():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


IN_BULK = "in bulk"
PER_ROW = "per row"


def _bulk_checks_refused() -> str | None:
    """Why this connection may not skip the per-row checks of its COPYs (None when it may)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('session_replication_role'), current_setting('is_superuser')")
        role, superuser = cursor.fetchone()
        if role != "origin":
            return f"session_replication_role is {role}"
        if superuser == "on":
            return None
        if connection.pg_version < 150000:
            return "the database role is not a superuser"
        cursor.execute("SELECT has_parameter_privilege('session_replication_role', 'SET')")
        if cursor.fetchone()[0]:
            return None
    return "the database role may not SET session_replication_role"


def _table_refuses_bulk_checks(cursor, table: str) -> str | None:
    """Why ``table``'s rows must be checked as they arrive: triggers of its own (replica mode would skip
    them) or a foreign key that is not MATCH SIMPLE."""
    cursor.execute(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal AND tgenabled <> 'D'",
        [table],
    )
    triggers = [r[0] for r in cursor.fetchall()]
    if triggers:
        return f"{table} has triggers ({', '.join(triggers)})"
    cursor.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f' AND confmatchtype <> 's'",
        [table],
    )
    full = [r[0] for r in cursor.fetchall()]
    return f"{table} has foreign keys other than MATCH SIMPLE ({', '.join(full)})" if full else None


def _sequence(cursor, model: type[Model]) -> str:
    cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [model._meta.db_table, model._meta.pk.column])
    return cursor.fetchone()[0]


# The foreign keys of a table: (name, parent table, the table's columns, the parent's columns).
_FOREIGN_KEYS = """
SELECT c.conname, c.confrelid::regclass::text,
       ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.n),
       ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.n)
FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid = %s::regclass ORDER BY c.conname
"""


def check_in_bulk(tables: dict[str, tuple[type[Model], int]]) -> None:
    """Check every foreign key of the rows added to ``tables`` ({table: (model, largest id before)}),
    inside the caller's transaction: first lock the referenced rows that existed before (so that no one
    deletes them before this transaction ends), then look for a row that references nothing. Raises
    IntegrityError, worded as Postgres words it, at the first such row."""
    if not tables:
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table, (model, before) in tables.items():
            cursor.execute(_FOREIGN_KEYS, [table])
            pk = quote(model._meta.pk.column)
            for name, parent, columns, keys in cursor.fetchall():
                ours = ", ".join(f"t.{quote(c)}" for c in columns)
                theirs = ", ".join(f"p.{quote(k)}" for k in keys)
                present = " AND ".join(f"t.{quote(c)} IS NOT NULL" for c in columns)
                # Rows this transaction added to the parent need no lock: no one else sees them. Where the
                # key holds the parent's id, the new rows that point at older ones are picked out first.
                older, referencing_older, args = "", "", [before]
                if parent in tables:
                    parent_model, parent_before = tables[parent]
                    parent_pk = parent_model._meta.pk.column
                    if parent_pk in keys:
                        referencing_older = f" AND t.{quote(columns[keys.index(parent_pk)])} <= %s"
                        args.append(parent_before)
                    older = f" AND p.{quote(parent_pk)} <= %s"
                    args.append(parent_before)
                # Identifiers from the catalog and the models, quoted; values as parameters.
                cursor.execute(
                    f"SELECT count(*) FROM (SELECT 1 FROM {parent} p WHERE ({theirs}) IN "  # noqa: S608
                    f"(SELECT {ours} FROM {table} t WHERE t.{pk} > %s AND {present}{referencing_older}){older} "
                    "FOR KEY SHARE OF p) AS locked",
                    args,
                )
                match = " AND ".join(f"p.{quote(k)} = t.{quote(c)}" for c, k in zip(columns, keys, strict=True))
                cursor.execute(
                    f"SELECT {ours} FROM {table} t WHERE t.{pk} > %s AND {present} "  # noqa: S608
                    f"AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {match}) LIMIT 1",
                    [before],
                )
                missing = cursor.fetchone()
                if missing is not None:
                    raise IntegrityError(
                        f'insert or update on table "{table}" violates foreign key constraint "{name}"\n'
                        f"DETAIL:  Key ({', '.join(columns)})=({', '.join(map(str, missing))}) "
                        f'is not present in table "{parent}".'
                    )
