"""ratings.engine.bulk.BulkWriter: an import's COPYs run by a background thread, in order, inside the
caller's transaction, while the caller builds the next rows."""

import pytest
from django.db import IntegrityError, transaction

from inference_workers.models import Prompt, PromptSet
from ratings.engine.bulk import BulkWriter, check_references_now
from ratings.models import Vote

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
        with BulkWriter() as writer:
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
