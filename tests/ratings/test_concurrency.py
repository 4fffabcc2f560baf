"""32 raters at once on Postgres: every comparison ends with exactly k votes, none lost, none doubled."""

import threading
from collections import Counter

import pytest
from django.db import connection

from ratings.actions.raters import do_pause
from ratings.actions.votes import VoteOutcome, do_record_vote
from ratings.engine.assignment import lease_next_comparison
from ratings.models import Comparison, Rater, Vote
from tests import factories
from tests.ratings.rating_setup import rating_study

N_RATERS = 32
K = 3


@pytest.mark.django_db(transaction=True)
def test_32_raters_in_parallel_drain_a_study_with_k_3():
    # 3 models, all pairs: 3 comparisons a prompt.
    study = rating_study(n_prompts=20, n_models=3, votes_per_comparison=K, comparisons_per_rater=200)
    n_comparisons = Comparison.objects.filter(study=study).count()
    raters = [factories.rater(study) for _ in range(N_RATERS)]
    start = threading.Barrier(N_RATERS)
    recorded: list[list[int]] = [[] for _ in raters]
    errors: list[BaseException] = []

    def rate(i: int, rater: Rater) -> None:
        try:
            start.wait()
            step = 0
            while (lease := lease_next_comparison(rater)) is not None:
                step += 1
                if i % 8 == 0 and step % 5 == 0:
                    # Some raters walk away mid-item: their claim must go back to the pool.
                    do_pause(rater)
                    continue
                if do_record_vote(rater, lease.token, ("left", "right", "tie")[step % 3]) == VoteOutcome.RECORDED:
                    recorded[i].append(lease.comparison_id)
                # A double click: the second submission records nothing.
                assert do_record_vote(rater, lease.token, "left") == VoteOutcome.ALREADY_RECORDED
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=rate, args=(i, r)) for i, r in enumerate(raters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors

    votes = Counter(Vote.objects.filter(comparison__study=study).values_list("comparison_id", flat=True))
    assert len(votes) == n_comparisons and set(votes.values()) == {K}
    for comparison in Comparison.objects.filter(study=study):
        assert comparison.vote_count == K and comparison.claim_count == K
    # No vote lost: every vote a rater was told is recorded is in the table, and nothing else is.
    assert sum(len(r) for r in recorded) == K * n_comparisons == Vote.objects.filter(comparison__study=study).count()
    for i, rater in enumerate(raters):
        mine = list(Vote.objects.filter(rater=rater).values_list("comparison_id", flat=True))
        assert sorted(mine) == sorted(recorded[i])
        assert len(mine) == len(set(mine))
    # The work was shared, not taken by a few.
    assert sum(1 for r in recorded if r) >= N_RATERS // 2
