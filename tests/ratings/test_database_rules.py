"""The database itself refuses comparisons, assignments and votes that break the study's rules."""

import pytest
from django.db import IntegrityError, connection, transaction

from ratings.engine.bulk import check_references_now
from ratings.models import Comparison, Rater, Study, Vote, VoteSource, Winner
from tests import factories

pytestmark = pytest.mark.django_db


def refused(write):
    with pytest.raises(IntegrityError), transaction.atomic():
        write()


def test_comparison_responses_must_differ():
    c = factories.comparison_setup()
    refused(
        lambda: Comparison.objects.create(
            study=c.study, prompt=c.prompt, response_a=c.response_a, response_b=c.response_a
        )
    )


def test_comparison_responses_must_answer_its_prompt():
    c = factories.comparison_setup()
    other_prompt = factories.prompt(c.prompt.prompt_set)
    other = factories.response(c.response_b.model, other_prompt, "Answer to another question.")
    # Response B answers a different prompt than the comparison's.
    refused(
        lambda: Comparison.objects.create(study=c.study, prompt=c.prompt, response_a=c.response_a, response_b=other)
    )
    # Nor can an existing comparison be moved onto another prompt.
    refused(lambda: Comparison.objects.filter(pk=c.pk).update(prompt=other_prompt))


def test_a_comparison_needs_its_responses_and_keeps_them():
    """The composite keys alone (the comparison has no single-column keys to its responses and prompt)
    refuse a missing response and the delete of a shown one, below Django's PROTECT."""
    c = factories.comparison_setup()
    refused(
        lambda: Comparison.objects.create(
            study=c.study, prompt=c.prompt, response_a=c.response_a, response_b_id=c.response_b.pk + 10**9
        )
    )
    refused(lambda: type(c.response_b).objects.filter(pk=c.response_b.pk)._raw_delete("default"))

    def delete_the_prompt():
        check_references_now()  # the responses' own key to their prompt is checked at commit otherwise
        type(c.prompt).objects.filter(pk=c.prompt.pk)._raw_delete("default")

    refused(delete_the_prompt)


def test_one_vote_per_assignment():
    c = factories.comparison_setup()
    a = factories.assignment(c, factories.rater(c.study))
    Vote.objects.create(comparison=c, assignment=a, rater=a.rater, winner=Winner.A)
    refused(lambda: Vote.objects.create(comparison=c, assignment=a, rater=a.rater, winner=Winner.B))
    # By the assignment alone (another rater, so one_vote_per_rater_comparison does not apply).
    other = factories.rater(c.study)
    refused(lambda: Vote.objects.create(comparison=c, assignment=a, rater=other, winner=Winner.B))


def test_rater_tokens_are_unique():
    study = factories.comparison_setup().study
    first = factories.rater(study)
    refused(lambda: Rater.objects.create(study=study, token=first.token))


def test_imported_rows_add_no_needless_index_entries():
    """A million-battle import writes a rater per judge and a vote per battle: no index is spent on them
    that nothing reads (a LIKE index on the rater token, one on the rater's study alone, which the
    arrivals index leads with) and the vote's assignment index holds only votes that have one."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, indexdef FROM pg_indexes WHERE tablename IN ('ratings_rater', 'ratings_vote')"
        )
        indexes = cursor.fetchall()
    rater = [d for t, d in indexes if t == "ratings_rater"]
    assert not [d for d in rater if "pattern_ops" in d or d.endswith("(study_id)")], rater
    assert [d for d in rater if d.endswith("(study_id, created_at)")], rater
    on_assignment = [d for t, d in indexes if t == "ratings_vote" and "assignment_id" in d]
    assert on_assignment and all(d.endswith("WHERE (assignment_id IS NOT NULL)") for d in on_assignment), on_assignment


def test_a_rater_gets_a_comparison_at_most_once():
    c = factories.comparison_setup()
    r = factories.rater(c.study)
    factories.assignment(c, r)
    refused(lambda: factories.assignment(c, r))


def test_a_rater_votes_at_most_once_per_comparison():
    c = factories.comparison_setup()
    r = factories.rater(c.study)
    a = factories.assignment(c, r)
    Vote.objects.create(comparison=c, assignment=a, rater=r, winner=Winner.TIE)
    # Even through a second assignment row (were one to exist), the vote table refuses it.
    refused(lambda: Vote.objects.create(comparison=c, rater=r, winner=Winner.A, source=VoteSource.IMPORTED))


def test_live_vote_needs_an_assignment_but_imported_votes_do_not():
    c = factories.comparison_setup()
    refused(lambda: Vote.objects.create(comparison=c, winner=Winner.A, source=VoteSource.LIVE))
    Vote.objects.create(comparison=c, winner=Winner.A, source=VoteSource.IMPORTED)
    Vote.objects.create(comparison=c, winner=Winner.B, source=VoteSource.IMPORTED)
    assert c.votes.count() == 2


def test_gold_item_needs_its_expected_answer():
    c = factories.comparison_setup()
    refused(lambda: Comparison.objects.filter(pk=c.pk).update(is_gold=True))


def test_study_settings_are_in_range():
    c = factories.comparison_setup()
    s = c.study
    refused(lambda: Study.objects.filter(pk=s.pk).update(votes_per_comparison=0))
    refused(lambda: Study.objects.filter(pk=s.pk).update(attention_check_rate=1.5))
    refused(lambda: Study.objects.filter(pk=s.pk).update(pairing="vs_reference", reference_model=None))


def test_returning_rater_is_one_row_per_platform_id():
    c = factories.comparison_setup()
    factories.rater(c.study, platform="prolific", external_id="5f1a")
    refused(lambda: factories.rater(c.study, platform="prolific", external_id="5f1a"))
    # Anonymous raters have no external id and are never merged.
    factories.rater(c.study)
    factories.rater(c.study)


def test_lease_must_end_after_it_starts():
    c = factories.comparison_setup()
    a = factories.assignment(c, factories.rater(c.study))
    refused(lambda: type(a).objects.filter(pk=a.pk).update(lease_expires_at=a.leased_at))
