"""Imported raters (issue 16): the judges named in a battle file become Rater rows of the study."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ratings", "0010_rater_arrivals_and_follow_up_checks"),
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
                    ("imported", "Imported (judges of a battle file)"),
                ],
                default="open_link",
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="study",
            name="recruitment",
            field=models.CharField(
                choices=[
                    ("open_link", "Open link"),
                    ("invite", "Invite tokens"),
                    ("prolific", "Prolific"),
                    ("mturk", "Amazon Mechanical Turk"),
                    ("imported", "Imported (judges of a battle file)"),
                ],
                default="open_link",
                max_length=20,
            ),
        ),
    ]
