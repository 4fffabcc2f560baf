"""ratings.engine.bulk.BulkWriter: an import's COPYs run by a background thread, in order, inside the
caller's transaction, while the caller builds the next rows; their foreign keys checked in bulk at the
writer's end where the database allows it, else row by row."""

import gc
import json
import re
import uuid

import psycopg2
import pytest
from django.db import DataError, IntegrityError, connection, transaction

from inference_workers.models import Prompt, PromptSet
from ratings.actions import battles
from ratings.actions.battles import do_import_battles
from ratings.analysis.battles import BattleFormatError, read_battles
from ratings.engine.bulk import IN_BULK, BulkWriter, _reserve_ids, check_references_now
from ratings.models import Study, Vote, new_shuffle_key, new_token
from tests.analysis.test_battles import battle as text_battle

pytestmark = pytest.mark.django_db(transaction=True)

COLUMNS = ("prompt_set_id", "external_id", "text")


def rows(prompt_set, batch, n=200):
    return [(prompt_set.pk, f"b{batch}-{i}", f"Question {batch}-{i}\twith a tab\\and a backslash") for i in range(n)]


def test_rows_are_written_in_order_with_the_ids_given_and_then_runs_after_them():
    prompt_set = PromptSet.objects.create(name="bulk", title="Bulk")
    reported, given = [], []
    with transaction.atomic(), BulkWriter(depth=1) as writer:
        for batch in range(6):
            given += writer.insert(Prompt, COLUMNS, rows(prompt_set, batch), ids=True)
            # Runs in the writer's thread once this batch is in the table.
            writer.then(lambda batch=batch: reported.append(batch))
        writer.wait()
        assert Prompt.objects.filter(prompt_set=prompt_set).count() == 6 * 200
    assert reported == list(range(6))
    stored = dict(Prompt.objects.filter(prompt_set=prompt_set).values_list("pk", "external_id"))
    assert [stored[pk] for pk in given] == [f"b{batch}-{i}" for batch in range(6) for i in range(200)]
    assert Prompt.objects.get(pk=given[0]).text == "Question 0-0\twith a tab\\and a backslash"


def test_an_error_in_a_background_copy_is_raised_and_nothing_of_the_transaction_stays():
    prompt_set = PromptSet.objects.create(name="bulk", title="Bulk")
    reported = []
    with pytest.raises(IntegrityError, match="comparison"), transaction.atomic():
        check_references_now()
        with BulkWriter(bulk_checks=False) as writer:  # each row checked as it arrives
            assert writer.references == "per row (asked for)"
            writer.insert(Prompt, COLUMNS, rows(prompt_set, 0), ids=True)
            # A vote on a comparison that does not exist: the foreign key fails inside the thread's COPY.
            writer.insert(Vote, ("comparison_id", "source", "winner"), [(2**40, "imported", "a")])
            writer.then(lambda: reported.append("after the bad copy"))
            writer.wait()
    assert reported == []  # nothing queued after the failed COPY ran
    assert not Prompt.objects.filter(prompt_set=prompt_set).exists()


def test_an_error_in_the_callers_thread_stops_the_queued_copies_and_rolls_back():
    prompt_set = PromptSet.objects.create(name="bulk", title="Bulk")
    with pytest.raises(ValueError, match="a bad battle"), transaction.atomic(), BulkWriter() as writer:
        for batch in range(3):
            writer.insert(Prompt, COLUMNS, rows(prompt_set, batch), ids=True)
        raise ValueError("a bad battle")
    assert not Prompt.objects.filter(prompt_set=prompt_set).exists()


# Foreign keys checked in bulk: the COPYs skip the per-row checks, and the writer checks every foreign
# key of the new rows at its end, inside the transaction (ratings.engine.bulk.check_in_bulk).


def other_session():
    """A second connection to the test database, outside the test's transaction."""
    other = connection.get_new_connection(connection.get_connection_params())
    other.autocommit = True
    return other


def test_copied_rows_are_checked_in_bulk_and_a_reference_to_nothing_is_refused_with_nothing_kept():
    prompt_set = PromptSet.objects.create(name="bulk", title="Bulk")
    with pytest.raises(IntegrityError) as refused, transaction.atomic(), BulkWriter() as writer:
        assert writer.references == IN_BULK
        writer.insert(Prompt, COLUMNS, rows(prompt_set, 0), ids=True)
        writer.insert(Vote, ("comparison_id", "source", "winner"), [(2**40, "imported", "a")])
        writer.wait()  # the COPY itself passes: the check comes at the writer's end
    assert 'violates foreign key constraint "ratings_vote_comparison_id' in str(refused.value)
    assert f'Key (comparison_id)=({2**40}) is not present in table "ratings_comparison"' in str(refused.value)
    assert not Prompt.objects.filter(prompt_set=prompt_set).exists()
    assert not Vote.objects.exists()


def test_rows_that_existed_before_and_are_referenced_stay_locked_until_the_transaction_ends():
    referenced = PromptSet.objects.create(name="referenced", title="Referenced")
    untouched = PromptSet.objects.create(name="untouched", title="Untouched")
    other = other_session()
    lock = "SELECT 1 FROM inference_workers_promptset WHERE id = %s FOR UPDATE NOWAIT"
    try:
        with transaction.atomic():
            with BulkWriter() as writer:
                writer.insert(Prompt, COLUMNS, rows(referenced, 0), ids=True)
            # As a per-row check would: no one may delete the referenced row before this commits.
            with pytest.raises(psycopg2.errors.LockNotAvailable), other.cursor() as cursor:
                cursor.execute(lock, [referenced.pk])
            with other.cursor() as cursor:
                cursor.execute(lock, [untouched.pk])
                assert cursor.fetchone() == (1,)
        with other.cursor() as cursor:
            cursor.execute(lock, [referenced.pk])
            assert cursor.fetchone() == (1,)
    finally:
        other.close()


def test_an_earlier_row_of_a_table_the_import_also_writes_is_locked_when_new_rows_reference_it():
    do_import_battles("arena", read_battles([json.dumps(text_battle("q0", "x", "y", "model_a"))]))
    study = Study.objects.get(slug="arena")
    asked_before = Prompt.objects.create(prompt_set=study.prompt_set, external_id="q9", text="Question q9?")
    other = other_session()
    try:
        with transaction.atomic():
            lines = [json.dumps(text_battle(q, "x", "y", "tie")) for q in ("q9", "q1")]
            assert do_import_battles("arena", read_battles(lines)).references == IN_BULK
            with pytest.raises(psycopg2.errors.LockNotAvailable), other.cursor() as cursor:
                cursor.execute(
                    "SELECT 1 FROM inference_workers_prompt WHERE id = %s FOR UPDATE NOWAIT", [asked_before.pk]
                )
    finally:
        other.close()


def test_a_referenced_row_deleted_by_another_session_during_the_import_fails_the_import(tmp_path, monkeypatch):
    monkeypatch.setattr(battles, "CHUNK", 2)
    first = [text_battle("q0", "x", "y", "model_a")]
    do_import_battles("arena", read_battles([json.dumps(b) for b in first]))
    study = Study.objects.get(slug="arena")
    # A question the next file asks again: its answers and comparison will point at this prompt.
    asked_before = Prompt.objects.create(prompt_set=study.prompt_set, external_id="q9", text="Question q9?")
    other = other_session()

    def delete_it(done: int) -> None:  # after the first chunk is written, before the import ends
        if done == 2:
            with other.cursor() as cursor:
                cursor.execute("DELETE FROM inference_workers_prompt WHERE id = %s", [asked_before.pk])
                assert cursor.rowcount == 1  # nothing of this import locks it: no per-row check ran

    second = [text_battle(q, "x", "y", "model_b") for q in ("q9", "q1", "q2", "q3")]
    try:
        with pytest.raises(IntegrityError) as refused:
            do_import_battles("arena", read_battles([json.dumps(b) for b in second]), progress=delete_it)
    finally:
        other.close()
    assert f"Key (prompt_id)=({asked_before.pk}) is not present" in str(refused.value)
    assert Vote.objects.count() == 1  # the first import's, and nothing of the second
    assert not Prompt.objects.filter(external_id__in=["q1", "q2", "q3"]).exists()


def test_a_table_with_triggers_of_its_own_is_checked_per_row_and_its_triggers_run(tmp_path):
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION sg_test_mark_vote() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN NEW.judge := 'seen by the trigger'; RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER sg_test_mark BEFORE INSERT ON ratings_vote FOR EACH ROW "
            "EXECUTE FUNCTION sg_test_mark_vote()"
        )
    try:
        battle_lines = [json.dumps(text_battle(q, "x", "y", "tie")) for q in ("q1", "q2")]
        result = do_import_battles("arena", read_battles(battle_lines))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER sg_test_mark ON ratings_vote")
            cursor.execute("DROP FUNCTION sg_test_mark_vote()")
    assert result.references == "per row for ratings_vote (ratings_vote has triggers (sg_test_mark))"
    assert list(Vote.objects.values_list("judge", flat=True)) == ["seen by the trigger"] * 2


def test_a_role_that_may_not_set_the_replication_role_gets_per_row_checks_until_granted():
    role = f"sg_plain_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} NOLOGIN")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        cursor.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        cursor.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
    prompt_set = PromptSet.objects.create(name="bulk", title="Bulk")
    try:
        for granted in (False, True):
            if granted:
                with connection.cursor() as cursor:
                    cursor.execute(f"GRANT SET ON PARAMETER session_replication_role TO {role}")
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL ROLE {role}")
                with BulkWriter() as writer:
                    writer.insert(Prompt, COLUMNS, rows(prompt_set, int(granted)), ids=True)
                expected = IN_BULK if granted else "per row (the database role may not SET session_replication_role)"
                assert writer.references == expected
        assert Prompt.objects.filter(prompt_set=prompt_set).count() == 2 * 200
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP OWNED BY {role}")
            cursor.execute(f"DROP ROLE {role}")


def test_columns_encoded_a_column_at_a_time_round_trip_through_copy():
    prompt_set = PromptSet.objects.create(name="bulk", title="Bulk")
    texts = ["plain", "tab\there", "new\nline", "carriage\rreturn", "back\\slash \\N", "all\t\n\r\\", " ", "é ✓ 中"]
    given = [
        (prompt_set.pk, f"e{i}", text, None if i % 2 else [{"role": "user", "content": text}], "same")
        for i, text in enumerate(texts)
    ]
    with transaction.atomic(), BulkWriter() as writer:
        ids = writer.insert(Prompt, (*COLUMNS, "turns", "category"), given, ids=True)
    stored = {p.pk: (p.external_id, p.text, p.turns, p.category) for p in Prompt.objects.filter(pk__in=ids)}
    assert [stored[pk] for pk in ids] == [row[1:] for row in given]
    # A value Postgres text cannot hold is refused, not split into two.
    with pytest.raises(DataError), transaction.atomic(), BulkWriter() as writer:
        writer.insert(Prompt, COLUMNS, [(prompt_set.pk, "n1", "a\x00b"), (prompt_set.pk, "n2", "c")], ids=True)


def test_defaults_made_many_at_once_look_like_those_made_one_at_a_time():
    tokens, keys = new_token.many(1000), new_shuffle_key.many(1000)
    one = new_token()
    assert len(set(tokens)) == 1000
    assert {len(t) for t in tokens} == {len(one)} == {22}
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", t) for t in tokens)
    assert all(0 <= k < 2**31 for k in keys) and len(set(keys)) > 990


def test_reserved_ids_are_the_sequences_values_whether_or_not_they_run_without_a_gap():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY SEQUENCE sg_test_ids START 10")
        assert _reserve_ids(cursor, Prompt, 5, "sg_test_ids") == [10, 11, 12, 13, 14]
        # Values with gaps (here a step of 3; or another session's nextval meanwhile) come back one by one.
        cursor.execute("ALTER SEQUENCE sg_test_ids INCREMENT BY 3")
        assert _reserve_ids(cursor, Prompt, 4, "sg_test_ids") == [17, 20, 23, 26]
        assert _reserve_ids(cursor, Prompt, 1, "sg_test_ids") == [29]
        cursor.execute("DROP SEQUENCE sg_test_ids")


def test_the_cycle_collector_is_paused_during_an_import_and_back_on_after_it_even_when_it_fails():
    seen = []
    lines = [json.dumps(text_battle(q, "x", "y", "tie")) for q in ("q1", "q2")]
    do_import_battles("arena", read_battles(lines), progress=lambda done: seen.append(gc.isenabled()))
    assert seen == [False] and gc.isenabled()
    with pytest.raises(BattleFormatError):
        do_import_battles("arena", read_battles([*lines, "not json"]))
    assert gc.isenabled()
