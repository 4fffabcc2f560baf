"""The rating path's statements run prepared on Postgres: planned once per connection, not per call."""

import pytest
from django.db import connection

from ratings.engine.hotpath import _numbered, _statement_name, rater_by_token, run
from tests import factories
from tests.ratings.rating_setup import rating_study

SQL = "SELECT COUNT(*) FROM ratings_rater WHERE study_id = %s AND token <> %s"


def prepared_names() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return [name for (name,) in cursor.fetchall()]


def test_placeholders_become_numbered_parameters():
    assert _numbered(SQL) == "SELECT COUNT(*) FROM ratings_rater WHERE study_id = $1 AND token <> $2"
    with pytest.raises(ValueError):
        _numbered("SELECT 1 WHERE 'a' LIKE '%x' AND 1 = %s")


@pytest.mark.django_db(transaction=True)
def test_a_statement_is_prepared_once_per_connection_and_again_on_a_new_one():
    study = rating_study(n_prompts=1)
    factories.rater(study)
    name = _statement_name(SQL)
    for _ in range(3):
        with connection.cursor() as cursor:
            run(cursor, SQL, [study.pk, "x"])
            assert cursor.fetchone() == (1,)
    assert prepared_names().count(name) == 1
    # A new session starts with none, and the statement is prepared again on first use.
    connection.close()
    assert name not in prepared_names()
    with connection.cursor() as cursor:
        run(cursor, SQL, [study.pk, "x"])
        assert cursor.fetchone() == (1,)
    assert prepared_names().count(name) == 1


@pytest.mark.django_db
def test_rater_by_token_loads_the_rater_and_its_study_as_the_orm_does():
    study = rating_study(n_prompts=1, follow_up_questions=[{"key": "factual", "text": "Which is more accurate?"}])
    rater = factories.rater(study, external_id="PID-1")
    loaded = rater_by_token(rater.token)
    assert loaded == rater and loaded.study == study
    from ratings.models import Rater

    expected = Rater.objects.select_related("study").get(pk=rater.pk)
    for field in Rater._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(expected, field.attname), field.name
    for field in type(study)._meta.concrete_fields:
        assert getattr(loaded.study, field.attname) == getattr(expected.study, field.attname), field.name
    assert loaded.study.follow_up_questions == [{"key": "factual", "text": "Which is more accurate?"}]
    assert rater_by_token("no-such-token") is None


@pytest.mark.django_db
def test_prepared_statements_can_be_turned_off_for_a_transaction_pooler(settings):
    settings.PREPARED_STATEMENTS = False
    study = rating_study(n_prompts=1)
    with connection.cursor() as cursor:
        run(cursor, SQL + " AND 1 = %s", [study.pk, "x", 1])
        assert cursor.fetchone() == (0,)
    assert _statement_name(SQL + " AND 1 = %s") not in prepared_names()
