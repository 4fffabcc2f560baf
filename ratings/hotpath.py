"""Model loading for the rater's per-request lookups, without the ORM's per-query compilation.

Every rater request starts by loading its rater and study; through the ORM that costs more
Python time than the database does. ``rater_by_token`` runs one constant statement (built once
from the models' fields, so it follows the schema) and builds the instances with the same field
converters the ORM applies.
"""

from functools import cache

from django.db import connection

from ratings.models import Rater, Study


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
        cursor.execute(sql, [token])
        row = cursor.fetchone()
    if row is None:
        return None
    n = len(rater_conv)
    rater = _build(Rater, rater_conv, row[:n])
    rater.study = _build(Study, study_conv, row[n:])
    return rater
