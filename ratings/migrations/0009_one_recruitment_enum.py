"""One enum for how raters arrive: Rater.platform takes Study.recruitment's values ("anonymous" was
the open link's rater-side name)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ratings", "0008_fact_check_verdicts"),
    ]

    operations = [
        migrations.AlterField(
            model_name="rater",
            name="platform",
            field=models.CharField(
                choices=[
                    ("open_link", "Open link"),
                    ("invite", "Invite tokens"),
                    ("prolific", "Prolific"),
                    ("mturk", "Amazon Mechanical Turk"),
                ],
                default="open_link",
                max_length=20,
            ),
        ),
        migrations.RunSQL(
            "UPDATE ratings_rater SET platform = 'open_link' WHERE platform = 'anonymous'",
            "UPDATE ratings_rater SET platform = 'anonymous' WHERE platform = 'open_link'",
        ),
    ]
