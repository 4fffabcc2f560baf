"""Fewer index entries for every imported answer and prompt: the single-column indexes on
``response.model`` and ``prompt.prompt_set`` were each the prefix of a unique index; ``response.job``
is indexed only where set (imported answers have no job)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("inference_workers", "0013_job_shards"),
    ]

    operations = [
        migrations.AlterField(
            model_name="prompt",
            name="prompt_set",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="prompts",
                to="inference_workers.promptset",
            ),
        ),
        migrations.AlterField(
            model_name="response",
            name="job",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="responses",
                to="inference_workers.generationjob",
            ),
        ),
        migrations.AlterField(
            model_name="response",
            name="model",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="responses",
                to="inference_workers.languagemodel",
            ),
        ),
        migrations.AddIndex(
            model_name="response",
            index=models.Index(condition=models.Q(("job__isnull", False)), fields=["job"], name="response_by_job"),
        ),
    ]
