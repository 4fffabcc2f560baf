"""Fewer indexes to maintain on every lease and vote.

- ``comparison_fewest_votes`` (study, vote_count) served no query; without it, a vote's
  ``vote_count + 1`` no longer touches an index, so Postgres can update the row in place (HOT).
- The single-column foreign-key indexes on Comparison.study, Assignment.rater, Vote.comparison and
  Vote.rater are dropped: each is the leading column of another index (the queue and
  unique_pair_per_study; one_assignment_per_rater_comparison; vote_by_comparison;
  one_vote_per_rater_comparison), which serves the same lookups.

The foreign-key indexes are dropped by the exact name Django gave them, not with AlterField: on
Postgres AlterField finds "the index on rater_id" by introspection and would also drop the partial
unique index ``one_live_lease_per_rater``, which is on that one column too.
"""

import django.db.models.deletion
from django.db import migrations, models

UNINDEXED = [("comparison", "study_id"), ("assignment", "rater_id"), ("vote", "comparison_id"), ("vote", "rater_id")]


def _index_names(apps, schema_editor):
    for model_name, column in UNINDEXED:
        table = apps.get_model("ratings", model_name)._meta.db_table
        yield table, column, schema_editor._create_index_name(table, [column], suffix="")


def drop_fk_indexes(apps, schema_editor):
    for _, _, name in _index_names(apps, schema_editor):
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def restore_fk_indexes(apps, schema_editor):
    for table, column, name in _index_names(apps, schema_editor):
        q = schema_editor.quote_name
        schema_editor.execute(f"CREATE INDEX {q(name)} ON {q(table)} ({q(column)})")


class Migration(migrations.Migration):
    dependencies = [
        ("ratings", "0005_one_live_lease_per_rater"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="comparison",
            name="comparison_fewest_votes",
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(drop_fk_indexes, restore_fk_indexes)],
            state_operations=[
                migrations.AlterField(
                    model_name="assignment",
                    name="rater",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="assignments",
                        to="ratings.rater",
                    ),
                ),
                migrations.AlterField(
                    model_name="comparison",
                    name="study",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="comparisons",
                        to="ratings.study",
                    ),
                ),
                migrations.AlterField(
                    model_name="vote",
                    name="comparison",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="votes",
                        to="ratings.comparison",
                    ),
                ),
                migrations.AlterField(
                    model_name="vote",
                    name="rater",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="votes",
                        to="ratings.rater",
                    ),
                ),
            ],
        ),
    ]
