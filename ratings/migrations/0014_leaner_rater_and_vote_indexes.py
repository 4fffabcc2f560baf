"""Fewer index entries for every rater and vote, which a million-battle import writes (a rater per judge).

- A rater's token is unique by a constraint, without the second (LIKE) index that ``unique=True`` adds
  on Postgres; nothing looks tokens up by prefix.
- A rater's study has no index of its own: ``rater_arrivals_per_study`` (study, created_at) leads with it.
- A vote's assignment is unique only where there is one (a partial unique index): an imported vote has
  none, and each used to add a NULL entry to the one-to-one field's unique index. The field becomes a
  foreign key with that constraint; lookups by assignment use the partial index.

The new unique constraints are added before the old ones go, so the rules hold at every step.
"""

import django.db.models.deletion
from django.db import migrations, models

import ratings.models


class Migration(migrations.Migration):
    dependencies = [
        ("ratings", "0013_fewer_checks_for_imports"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="rater",
            constraint=models.UniqueConstraint(fields=("token",), name="rater_token_unique"),
        ),
        migrations.AddConstraint(
            model_name="vote",
            constraint=models.UniqueConstraint(
                condition=models.Q(("assignment__isnull", False)),
                fields=("assignment",),
                name="one_vote_per_assignment",
            ),
        ),
        migrations.AlterField(
            model_name="rater",
            name="study",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="raters", to="ratings.study"
            ),
        ),
        migrations.AlterField(
            model_name="rater",
            name="token",
            field=models.CharField(default=ratings.models.new_token, editable=False, max_length=32),
        ),
        migrations.AlterField(
            model_name="vote",
            name="assignment",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="vote",
                to="ratings.assignment",
            ),
        ),
    ]
