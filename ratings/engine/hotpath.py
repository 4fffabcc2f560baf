"""The rating path's statements: run as prepared statements on Postgres, and rater loading.

Every rating page and every vote runs the same dozen constant statements (ratings/engine/assignment.py
and ratings/engine/rendering.py). Through the ORM their Python cost was larger than the
database's; as plain SQL, Postgres then spent most of its time planning them again on every call.
``run`` prepares each statement once per database connection (``PREPARE`` / ``EXECUTE``) so it
is planned once; on SQLite it is a plain ``execute``.

``rater_by_token`` loads a rater and its study in one such statement (built from the models'
fields, so it follows the schema) and builds the instances with the converters the ORM applies.
"""

import hashlib
from functools import cache

from django.conf import settings
from django.db import connection
from django.db.backends.signals import connection_created

from ratings.models import Rater, Study

PREPARED = "stylegap_prepared"


def run(cursor, sql: str, params=()) -> None:
    """Execute a constant statement (``%s`` placeholders only), prepared once per Postgres connection."""
    db = cursor.db
    if db.vendor != "postgresql" or not settings.PREPARED_STATEMENTS:
        cursor.execute(sql, params)
        return
    name = _statement_name(sql)
    prepared = db.__dict__.setdefault(PREPARED, set())
    if name not in prepared:
        cursor.execute(f"PREPARE {name} AS {_numbered(sql)}")
        prepared.add(name)
    args = f"({', '.join(['%s'] * len(params))})" if params else ""
    cursor.execute(f"EXECUTE {name}{args}", params)


@cache
def _statement_name(sql: str) -> str:
    return "sg_" + hashlib.sha1(sql.encode(), usedforsecurity=False).hexdigest()[:20]


@cache
def _numbered(sql: str) -> str:
    """``%s`` placeholders as Postgres's ``$1``, ``$2``, ..."""
    parts = sql.split("%s")
    if "%" in "".join(parts):
        raise ValueError("only %s placeholders, no other %, in a prepared statement")
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], 1)) + parts[-1]


def _forget_prepared(sender, connection, **kwargs):
    # A new session has no prepared statements.
    connection.__dict__[PREPARED] = set()


connection_created.connect(_forget_prepared)


@cache
def _plan(vendor: str) -> tuple[str, list, list]:
    qn = connection.ops.quote_name
    rater_fields = list(Rater._meta.concrete_fields)
    study_fields = list(Study._meta.concrete_fields)
    columns = [f"r.{qn(f.column)}" for f in rater_fields] + [f"s.{qn(f.column)}" for f in study_fields]
    sql = (
        f"SELECT {', '.join(columns)} FROM {qn(Rater._meta.db_table)} r"  # noqa: S608 - names from the models
        f" JOIN {qn(Study._meta.db_table)} s ON s.{qn('id')} = r.{qn('study_id')} WHERE r.{qn('token')} = %s"
    )
    return sql, _converters(rater_fields, "r"), _converters(study_fields, "s")


def _converters(fields, alias: str) -> list:
    out = []
    for field in fields:
        col = field.get_col(alias)
        out.append((field.attname, col, connection.ops.get_db_converters(col) + field.get_db_converters(connection)))
    return out


def _build(model, converters, values):
    converted = []
    for (_, col, funcs), value in zip(converters, values, strict=True):
        for func in funcs:
            value = func(value, col, connection)
        converted.append(value)
    return model.from_db(connection.alias, [name for name, _, _ in converters], converted)


def rater_by_token(token: str) -> Rater | None:
    """The rater with this token, its ``study`` loaded too; None when there is none."""
    sql, rater_conv, study_conv = _plan(connection.vendor)
    with connection.cursor() as cursor:
        run(cursor, sql, [token])
        row = cursor.fetchone()
    if row is None:
        return None
    n = len(rater_conv)
    rater = _build(Rater, rater_conv, row[:n])
    rater.study = _build(Study, study_conv, row[n:])
    return rater


@cache
def _insert_plan(model, vendor: str) -> tuple[str, list]:
    qn = connection.ops.quote_name
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    sql = (
        f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(qn(f.column) for f in fields)})"  # noqa: S608 - names from the model
        f" VALUES ({', '.join(['%s'] * len(fields))})"
    )
    return sql, fields


def insert(cursor, instance) -> None:
    """INSERT a new model instance as ``save()`` would (defaults, ``auto_now_add``, each field's own
    conversion), through one prepared statement; no signals, and the primary key is not read back."""
    sql, fields = _insert_plan(type(instance), connection.vendor)
    run(cursor, sql, [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields])
