"""One generation job, two real workers: both answer its prompts, and when one is killed mid-shard the other
takes that shard over once its lease lapses and finishes the job, every prompt answered exactly once."""

import json
import re

import pytest
from django.urls import reverse

from inference_workers.actions import decoding_config_for, do_start_generation_job
from inference_workers.models import GenerationJob, JobStatus, Response, ShardStatus
from tests import factories
from tests.inference_workers.test_local_generation import QUESTIONS
from tests.sharding import (
    SHARD_SETTINGS,
    assert_taken_over,
    held_by,
    kill_one_mid_shard,
    two_workers,
    wait_advancing,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

N_PROMPTS = 40


def test_two_workers_share_a_job_and_one_takes_over_the_shard_of_the_other_when_it_is_killed(
    broker, settings, researcher_client
):
    for name, value in SHARD_SETTINGS.items():
        setattr(settings, name, value)
    ps = factories.prompt_set()
    for i in range(N_PROMPTS):
        factories.prompt(ps, external_id=f"q{i}", text=f"{QUESTIONS[i % len(QUESTIONS)]} (question {i})")
    model = factories.smollm2()
    config = decoding_config_for(temperature=0, top_p=1, max_new_tokens=6, seed=0)
    answered = Response.objects.filter(model=model, decoding_config=config)

    with two_workers("gpu-many", {"STYLEGAP_GENERATION_BATCH_SIZE": "2"}) as (queue, workers):
        job = do_start_generation_job(model, ps, config, queue=queue)
        assert job.total == N_PROMPTS
        victim, shard = kill_one_mid_shard(workers, lambda: job.shards.order_by("index"))
        (survivor,) = [w for w in workers if w is not victim]
        before_kill = set(answered.values_list("pk", flat=True))

        job = wait_advancing(
            lambda: GenerationJob.objects.get(pk=job.pk),
            lambda j: j.is_finished,
            "the survivor to finish the job",
        )

    assert job.status == JobStatus.SUCCEEDED, job.error
    responses = list(answered)
    assert len(responses) == N_PROMPTS == job.done == job.total
    assert len({r.prompt_id for r in responses}) == N_PROMPTS
    assert before_kill <= {r.pk for r in responses}, "answers stored before the kill are kept, not redone"

    shards = list(job.shards.order_by("index"))
    assert [s.size for s in shards] == [5] * 8 and all(s.status == ShardStatus.DONE for s in shards)
    # Both workers stored answers: the victim part of the shard it was killed on, the survivor whole shards.
    killed_shard_answers = answered.filter(prompt_id__in=shard.keys, pk__in=before_kill)
    assert killed_shard_answers.count() >= 1
    assert any(s.pk != shard.pk for s in held_by(survivor, shards))
    seconds = assert_taken_over(shard, victim, survivor)
    print(f"shard {shard.index} taken over {seconds:.1f} s after the killed worker's last heartbeat")

    # The job's page adds up the shards and says who worked on them.
    progress = json.loads(researcher_client.get(reverse("inference:job-progress", args=[job.pk])).content)
    assert progress["shards"] == {"total": 8, "done": 8, "running": 0}
    by_node = {w["worker"].split("/")[0]: w for w in progress["workers"]}
    assert set(by_node) == {victim.name, survivor.name}
    assert by_node[victim.name]["shards_lost"] == 1 and by_node[survivor.name]["shards_done"] >= 2
    page = researcher_client.get(reverse("inference:job-detail", args=[job.pk])).content.decode()
    text = re.sub(r"<[^>]+>", "", page)
    assert "8 of 8 shards done" in text and f"{survivor.name}/" in text and "1 lost (taken over)" in text
