"""Row locks of the rating path, taken only through this module, always in one order.

Order (Zulip's and Saleor's rule: one helper per aggregate, a fixed order, short transactions):
Assignment rows first, then Comparison rows, each set by ascending primary key. Two transactions
that lock overlapping rows therefore queue behind each other instead of deadlocking.

- ``lock_assignments``: leased assignments about to change state (expiry, a pause);
- ``lock_comparisons``: comparisons whose counts change;
- ``lock_clause``: the same locks in the hot path's plain SQL (``FOR UPDATE [SKIP LOCKED]``).

On SQLite ``select_for_update`` does nothing; the embedded default opens every transaction with
BEGIN IMMEDIATE, which serialises writers instead.
"""

from django.db import connection
from django.db.models import QuerySet

from ratings.models import Assignment, Comparison


def lock_assignments(assignments: QuerySet[Assignment], skip_locked: bool = False) -> list[Assignment]:
    """Lock these assignments in primary-key order (inside a transaction); ``skip_locked`` passes over busy rows."""
    return list(assignments.select_for_update(skip_locked=skip_locked).order_by("pk"))


def lock_comparisons(pks) -> list[Comparison]:
    """Lock the comparisons with these ids in primary-key order (inside a transaction)."""
    return list(Comparison.objects.select_for_update().filter(pk__in=list(pks)).order_by("pk"))


def lock_clause(skip_locked: bool = False) -> str:
    """``FOR UPDATE [SKIP LOCKED]`` for the hot path's plain SQL on Postgres; nothing on SQLite."""
    if not connection.features.has_select_for_update:
        return ""
    return " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"
