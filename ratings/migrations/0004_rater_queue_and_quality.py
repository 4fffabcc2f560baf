"""The rater queue (claim count, shuffle key), MTurk's submit address, and the quality rules.

Adding NOT NULL columns rebuilds the table on SQLite, which drops the same-prompt triggers
of migration 0002: they are recreated here.
"""

import importlib
import secrets

from django.db import migrations, models

import ratings.models

SAME_PROMPT = importlib.import_module("ratings.migrations.0002_comparison_same_prompt")


def recreate_sqlite_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for event in ("insert", "update"):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS comparison_same_prompt_{event}")
    for sql in SAME_PROMPT.SQLITE_FORWARD:
        schema_editor.execute(sql)


def fill_queue_fields(apps, schema_editor):
    """Every existing comparison gets its own random tie-break and its claims (votes + live leases)."""
    Comparison = apps.get_model("ratings", "Comparison")
    for comparison in Comparison.objects.only("pk").iterator():
        live = comparison.assignments.filter(status__in=["leased", "voted"]).count()
        Comparison.objects.filter(pk=comparison.pk).update(shuffle_key=secrets.randbelow(2**31), claim_count=live)


class Migration(migrations.Migration):
    dependencies = [
        ("inference_workers", "0002_job_progress_and_cancel"),
        ("ratings", "0003_analysis_snapshot"),
    ]

    operations = [
        migrations.AddField(
            model_name="comparison",
            name="claim_count",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="comparison",
            name="shuffle_key",
            field=models.IntegerField(default=ratings.models.new_shuffle_key, editable=False),
        ),
        migrations.AddField(
            model_name="rater",
            name="exclusion_overridden",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="rater",
            name="platform_submit_to",
            field=models.URLField(blank=True),
        ),
        migrations.AddField(
            model_name="study",
            name="exclude_after_failed_checks",
            field=models.PositiveSmallIntegerField(
                default=2, help_text="Exclude a rater after this many failed attention checks (0: never)."
            ),
        ),
        migrations.AddField(
            model_name="study",
            name="exclude_below_median_seconds",
            field=models.FloatField(
                default=0, help_text="Exclude a rater whose median seconds per vote is below this (0: never)."
            ),
        ),
        migrations.AddIndex(
            model_name="comparison",
            index=models.Index(fields=["study", "is_gold", "claim_count", "shuffle_key"], name="comparison_queue"),
        ),
        migrations.RunPython(fill_queue_fields, migrations.RunPython.noop),
        migrations.RunPython(recreate_sqlite_triggers, migrations.RunPython.noop),
    ]
