"""A comparison's two responses must answer the comparison's own prompt.

Postgres: composite foreign keys (response_x_id, prompt_id) -> response (id, prompt_id).
SQLite cannot add constraints to an existing table, so it gets triggers instead.
Django rebuilds SQLite tables on some schema changes, which drops triggers: a later
migration that alters ratings_comparison must recreate them (tests check the rule on
both databases).
"""

from django.db import migrations

SIDES = ("a", "b")

POSTGRES_FORWARD = [
    f"""ALTER TABLE ratings_comparison ADD CONSTRAINT comparison_response_{side}_same_prompt
        FOREIGN KEY (response_{side}_id, prompt_id)
        REFERENCES inference_workers_response (id, prompt_id)"""
    for side in SIDES
]
POSTGRES_BACKWARD = [
    f"ALTER TABLE ratings_comparison DROP CONSTRAINT comparison_response_{side}_same_prompt" for side in SIDES
]

SQLITE_CHECK = """
    SELECT RAISE(ABORT, 'comparison responses must answer the comparison prompt')
    WHERE (SELECT prompt_id FROM inference_workers_response WHERE id = NEW.response_a_id) IS NOT NEW.prompt_id
       OR (SELECT prompt_id FROM inference_workers_response WHERE id = NEW.response_b_id) IS NOT NEW.prompt_id;
"""
SQLITE_FORWARD = [
    f"CREATE TRIGGER comparison_same_prompt_{event.lower()} BEFORE {event} ON ratings_comparison "
    f"BEGIN {SQLITE_CHECK} END"
    for event in ("INSERT", "UPDATE")
]
SQLITE_BACKWARD = [f"DROP TRIGGER comparison_same_prompt_{event}" for event in ("insert", "update")]


def forward(apps, schema_editor):
    statements = POSTGRES_FORWARD if schema_editor.connection.vendor == "postgresql" else SQLITE_FORWARD
    if schema_editor.connection.vendor not in ("postgresql", "sqlite"):
        raise RuntimeError("stylegap supports PostgreSQL and SQLite")
    for sql in statements:
        schema_editor.execute(sql)


def backward(apps, schema_editor):
    statements = POSTGRES_BACKWARD if schema_editor.connection.vendor == "postgresql" else SQLITE_BACKWARD
    for sql in statements:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("ratings", "0001_initial"),
        ("inference_workers", "0001_initial"),
    ]
    operations = [migrations.RunPython(forward, backward)]
