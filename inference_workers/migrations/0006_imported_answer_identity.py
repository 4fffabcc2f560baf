"""Imported answers are told apart by their text (issue 16): different texts by one model to one
question and turn become different responses instead of merging into the first one."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("inference_workers", "0005_job_tokens_in_flight"),
    ]

    operations = [
        migrations.AddField(
            model_name="response",
            name="text_digest",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
        migrations.AddField(
            model_name="response",
            name="turns",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.RemoveConstraint(
            model_name="response",
            name="one_response_per_model_prompt_config",
        ),
        migrations.AddConstraint(
            model_name="response",
            constraint=models.UniqueConstraint(
                fields=("model", "prompt", "decoding_config", "text_digest"),
                name="one_response_per_model_prompt_config",
            ),
        ),
    ]
