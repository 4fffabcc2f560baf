"""The assignment engine: who sees which comparison next, leases, and votes taken once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from ratings.actions.votes import VoteOutcome, do_record_vote, do_release_expired_leases
from ratings.engine.assignment import gold_is_due, lease_next_comparison
from ratings.models import AssignmentStatus, Comparison, Vote
from tests import factories
from tests.ratings.rating_setup import rating_study

pytestmark = pytest.mark.django_db


def test_fewest_claims_first_spreads_raters_over_comparisons():
    study = rating_study(n_prompts=6, votes_per_comparison=3)
    raters = [factories.rater(study) for _ in range(6)]
    leased = [lease_next_comparison(r).comparison_id for r in raters]
    # Six raters, six comparisons: each gets a different one before any gets a second claim.
    assert len(set(leased)) == 6


def test_a_reload_returns_the_same_lease():
    study = rating_study(n_prompts=3)
    rater = factories.rater(study)
    first = lease_next_comparison(rater)
    assert lease_next_comparison(rater) == first
    assert Comparison.objects.get(pk=first.comparison_id).claim_count == 1


def test_a_rater_never_sees_a_comparison_twice_even_after_an_expired_lease():
    study = rating_study(n_prompts=2, votes_per_comparison=5)
    rater = factories.rater(study)
    first = lease_next_comparison(rater)
    do_release_expired_leases(now=first.lease_expires_at)
    second = lease_next_comparison(rater)
    assert second.comparison_id != first.comparison_id
    do_record_vote(rater, second.token, "left")
    assert lease_next_comparison(rater) is None


def test_live_leases_count_against_k_until_they_expire():
    study = rating_study(n_prompts=1, votes_per_comparison=2)
    holders = [factories.rater(study) for _ in range(2)]
    leases = [lease_next_comparison(r) for r in holders]
    latecomer = factories.rater(study)
    assert lease_next_comparison(latecomer) is None
    assert do_release_expired_leases(now=leases[0].lease_expires_at + timedelta(seconds=1)) == 2
    assert Comparison.objects.get().claim_count == 0
    assert lease_next_comparison(latecomer) is not None


def test_a_vote_is_taken_once():
    study = rating_study(n_prompts=1)
    rater = factories.rater(study)
    lease = lease_next_comparison(rater)
    assert do_record_vote(rater, lease.token, "left") == VoteOutcome.RECORDED
    assert do_record_vote(rater, lease.token, "right") == VoteOutcome.ALREADY_RECORDED
    comparison = Comparison.objects.get()
    assert comparison.vote_count == 1 and Vote.objects.count() == 1
    assert Vote.objects.get().winner == ("a" if lease.left_is_a else "b")


def test_a_vote_on_an_expired_lease_is_recorded_when_the_comparison_is_not_full():
    study = rating_study(n_prompts=1, votes_per_comparison=2)
    slow = factories.rater(study)
    lease = lease_next_comparison(slow)
    do_release_expired_leases(now=lease.lease_expires_at)
    assert do_record_vote(slow, lease.token, "tie") == VoteOutcome.RECORDED
    comparison = Comparison.objects.get()
    assert (comparison.vote_count, comparison.claim_count) == (1, 1)


def test_a_vote_on_an_expired_lease_is_refused_when_others_filled_the_comparison():
    study = rating_study(n_prompts=1, votes_per_comparison=1)
    slow, quick = factories.rater(study), factories.rater(study)
    lease = lease_next_comparison(slow)
    do_release_expired_leases(now=lease.lease_expires_at)
    quick_lease = lease_next_comparison(quick)
    do_record_vote(quick, quick_lease.token, "left")
    assert do_record_vote(slow, lease.token, "right") == VoteOutcome.COMPARISON_FULL
    assert Vote.objects.count() == 1
    assert lease.__class__.objects.get(pk=lease.pk).status == AssignmentStatus.EXPIRED


def test_a_vote_on_a_lease_past_its_deadline_but_not_yet_released_still_counts():
    study = rating_study(n_prompts=1, votes_per_comparison=1)
    rater = factories.rater(study)
    lease = lease_next_comparison(rater)
    late = lease.lease_expires_at + timedelta(minutes=5)
    assert do_record_vote(rater, lease.token, "left", now=late) == VoteOutcome.RECORDED


def test_left_and_right_are_drawn_per_assignment():
    study = rating_study(n_prompts=40, votes_per_comparison=1, comparisons_per_rater=40)
    rater = factories.rater(study)
    sides = []
    for _ in range(40):
        lease = lease_next_comparison(rater)
        sides.append(lease.left_is_a)
        do_record_vote(rater, lease.token, "tie")
    # 40 fair coin flips all alike: probability 2 ** -39.
    assert 0 < sum(sides) < 40


def test_qualification_items_come_first_then_checks_at_the_study_rate():
    study = rating_study(
        n_prompts=30, n_gold=8, qualification_items=2, attention_check_rate=0.25, comparisons_per_rater=22
    )
    rater = factories.rater(study)
    gold_positions = []
    for position in range(22):
        lease = lease_next_comparison(rater)
        good = "left" if lease.left_is_a else "right"
        if lease.comparison.is_gold:
            gold_positions.append(position)
        # Gold answers are A; passing the qualification round lets the rater go on.
        do_record_vote(rater, lease.token, good)
    assert gold_positions[:2] == [0, 1]
    # After qualification, 20 items at rate 1/4: exactly 5 checks, one in each run of 4.
    later = [p - 2 for p in gold_positions[2:]]
    assert len(later) == 5
    assert sorted({p // 4 for p in later}) == [0, 1, 2, 3, 4]
    assert lease_next_comparison(rater) is None


def test_gold_schedule_differs_between_raters():
    study = rating_study(n_prompts=2, attention_check_rate=0.1)
    schedules = set()
    for _ in range(12):
        r = factories.rater(study)
        schedules.add(tuple(i for i in range(10) if gold_is_due(study, r, i)))
    assert all(len(s) == 1 for s in schedules)
    assert len(schedules) > 1


def test_gold_items_pair_a_good_answer_with_an_off_topic_one_for_the_same_prompt():
    study = rating_study(n_prompts=6, n_gold=3)
    gold = list(Comparison.objects.filter(study=study, is_gold=True).select_related("response_a", "response_b"))
    assert len(gold) == 3
    for c in gold:
        assert c.gold_answer == "a"
        assert c.response_a.prompt_id == c.response_b.prompt_id == c.prompt_id
        assert c.response_b.model.name == "attention-check"
        # The off-topic answer is another question's answer, word for word.
        assert f"to question {c.prompt.text.split(':')[0].split()[-1]}." not in c.response_b.text


def test_expired_leases_go_back_through_the_beat_task(settings):
    from ratings.tasks import release_expired_leases

    study = rating_study(n_prompts=1)
    rater = factories.rater(study)
    lease = lease_next_comparison(rater)
    lease.__class__.objects.filter(pk=lease.pk).update(
        leased_at=timezone.now() - timedelta(hours=2), lease_expires_at=timezone.now() - timedelta(hours=1)
    )
    assert release_expired_leases() == {"released": 1}
    assert Comparison.objects.get().claim_count == 0


def test_each_rater_walks_the_comparisons_in_a_different_order():
    study = rating_study(n_prompts=10, votes_per_comparison=5, comparisons_per_rater=10)
    orders = []
    for _ in range(3):
        rater = factories.rater(study)
        order = []
        while (lease := lease_next_comparison(rater)) is not None:
            order.append(lease.comparison_id)
            do_record_vote(rater, lease.token, "tie")
        orders.append(tuple(order))
    assert all(sorted(o) == sorted(orders[0]) for o in orders)
    # Three raters in one shared order of ten: probability (1 / 10!) ** 2.
    assert len(set(orders)) > 1


def test_the_database_refuses_a_second_live_lease_for_one_rater():
    from django.db import IntegrityError, transaction

    study = rating_study(n_prompts=2)
    rater = factories.rater(study)
    first, second = Comparison.objects.filter(study=study)[:2]
    factories.assignment(first, rater)
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.assignment(second, rater)
    # An expired lease does not count.
    factories.assignment(second, rater, status=AssignmentStatus.EXPIRED)


def test_a_rater_whose_own_lease_ran_out_gets_a_fresh_one():
    study = rating_study(n_prompts=2, votes_per_comparison=1)
    rater = factories.rater(study)
    first = lease_next_comparison(rater)
    second = lease_next_comparison(rater, now=first.lease_expires_at)
    assert second.comparison_id != first.comparison_id
    assert Comparison.objects.get(pk=first.comparison_id).claim_count == 0
