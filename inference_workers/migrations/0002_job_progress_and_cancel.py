from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("inference_workers", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="generationjob",
            name="api_requests",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="generationjob",
            name="api_retries",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="generationjob",
            name="cancel_requested",
            field=models.BooleanField(default=False, help_text="Checked by the worker between batches."),
        ),
        migrations.AddField(
            model_name="generationjob",
            name="eta_seconds",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="generationjob",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="generationjob",
            name="queue",
            field=models.CharField(blank=True, help_text="Celery queue; empty: the model's own.", max_length=100),
        ),
        migrations.AddConstraint(
            model_name="generationjob",
            constraint=models.CheckConstraint(condition=models.Q(("cost_usd__gte", 0)), name="job_cost_non_negative"),
        ),
    ]
