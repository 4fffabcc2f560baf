"""Fewer checks for every comparison row, which a million-battle import writes a million of.

The comparison's own foreign keys to its prompt and its two responses go: the composite keys of
migration 0002 (``comparison_response_x_same_prompt``: (response_x, prompt) -> response (id,
prompt)) already refuse a missing response or prompt. The token is unique by a constraint, without
the second (LIKE) index that ``unique=True`` adds on Postgres.

On SQLite, altering the foreign keys rebuilds the table, which drops migration 0002's triggers: they
are recreated here (as in 0004). SQLite has no composite keys, so a trigger there refuses deleting a
response that a comparison still shows, which the dropped keys used to refuse (a later migration
that rebuilds inference_workers_response must recreate it).
"""

import importlib

import django.db.models.deletion
from django.db import migrations, models

import ratings.models

SAME_PROMPT = importlib.import_module("ratings.migrations.0004_rater_queue_and_quality")
SQLITE_KEEP_RESPONSES = """
    CREATE TRIGGER comparison_keeps_its_responses BEFORE DELETE ON inference_workers_response
    WHEN EXISTS (SELECT 1 FROM ratings_comparison WHERE response_a_id = OLD.id OR response_b_id = OLD.id)
    BEGIN SELECT RAISE(ABORT, 'a comparison still shows this response'); END
"""


def sqlite_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    SAME_PROMPT.recreate_sqlite_triggers(apps, schema_editor)
    schema_editor.execute("DROP TRIGGER IF EXISTS comparison_keeps_its_responses")
    schema_editor.execute(SQLITE_KEEP_RESPONSES)


class Migration(migrations.Migration):
    dependencies = [
        ("inference_workers", "0014_leaner_indexes_for_imports"),
        ("ratings", "0012_study_set_up_in_the_site"),
    ]

    operations = [
        migrations.AlterField(
            model_name="comparison",
            name="prompt",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="comparisons",
                to="inference_workers.prompt",
            ),
        ),
        migrations.AlterField(
            model_name="comparison",
            name="response_a",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="comparisons_as_a",
                to="inference_workers.response",
            ),
        ),
        migrations.AlterField(
            model_name="comparison",
            name="response_b",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="comparisons_as_b",
                to="inference_workers.response",
            ),
        ),
        migrations.AlterField(
            model_name="comparison",
            name="token",
            field=models.CharField(default=ratings.models.new_token, editable=False, max_length=32),
        ),
        migrations.AddConstraint(
            model_name="comparison",
            constraint=models.UniqueConstraint(fields=("token",), name="comparison_token_unique"),
        ),
        migrations.RunPython(sqlite_triggers, migrations.RunPython.noop),
    ]
