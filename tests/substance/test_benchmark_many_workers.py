"""One NQ-open run, two real workers: both score its items, and when one is killed mid-shard the other takes
that shard over once its lease lapses and finishes the run, every item scored exactly once."""

import json

import pytest
from django.urls import reverse

from inference_workers.models import Benchmark, BenchmarkItem, BenchmarkRun, JobStatus, ShardStatus
from inference_workers.substance import datasets
from inference_workers.substance.actions import do_start_benchmark_run
from tests.sharding import SHARD_SETTINGS, assert_taken_over, held_by, kill_one_mid_shard, two_workers, wait_advancing

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

N_ITEMS = 20


def test_two_workers_share_an_nq_run_and_one_takes_over_the_shard_of_the_other_when_it_is_killed(
    broker, settings, smollm2, researcher_client
):
    for name, value in SHARD_SETTINGS.items():
        setattr(settings, name, value)
    # The model's own queue (gpu) is the session worker's too: this run goes to the two workers' queue.
    with two_workers("gpu-many-nq", {"STYLEGAP_GENERATION_BATCH_SIZE": "2"}) as (queue, workers):
        run = do_start_benchmark_run(smollm2, Benchmark.NQ_OPEN, subset_size=N_ITEMS, subset_seed=4, queue=queue)
        victim, shard = kill_one_mid_shard(workers, lambda: run.shards.order_by("index"))
        (survivor,) = [w for w in workers if w is not victim]
        before_kill = set(BenchmarkItem.objects.filter(run=run).values_list("pk", flat=True))
        run = wait_advancing(
            lambda: BenchmarkRun.objects.get(pk=run.pk),
            lambda r: r.status in {JobStatus.SUCCEEDED, JobStatus.FAILED},
            "the survivor to finish the run",
        )

    assert run.status == JobStatus.SUCCEEDED, run.error
    items = list(BenchmarkItem.objects.filter(run=run))
    expected = {q.item_id for q in datasets.seeded_subset(datasets.nq_open_dev(), N_ITEMS, 4)}
    assert len(items) == N_ITEMS == run.n_items and {i.item_id for i in items} == expected
    assert before_kill <= {i.pk for i in items}, "items scored before the kill are kept, not redone"
    assert run.accuracy == run.n_correct / N_ITEMS

    shards = list(run.shards.order_by("index"))
    assert [s.size for s in shards] == [5] * 4 and all(s.status == ShardStatus.DONE for s in shards)
    assert BenchmarkItem.objects.filter(run=run, item_id__in=shard.keys, pk__in=before_kill).exists()
    assert any(s.pk != shard.pk for s in held_by(survivor, shards))
    seconds = assert_taken_over(shard, victim, survivor)
    progress = json.loads(researcher_client.get(reverse("substance:run-progress", args=[run.pk])).content)
    assert progress["shards"] == {"total": 4, "done": 4, "running": 0}
    assert {w["worker"].split("/")[0] for w in progress["workers"]} == {victim.name, survivor.name}
    print(f"NQ shard {shard.index} taken over {seconds:.1f} s after the killed worker's last heartbeat")
