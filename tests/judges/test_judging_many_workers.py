"""One judging job, two real workers against the local OpenAI-protocol judge: both store verdicts, and when one
is killed mid-shard the other takes that shard over once its lease lapses, every order judged exactly once."""

import os
import re

import pytest

from inference_workers.models import JobStatus, ShardStatus
from judges.actions import do_start_judging_job
from judges.models import JudgeVerdict, JudgingJob
from tests.inference_workers.conftest import TEST_API_KEY_ENV
from tests.sharding import SHARD_SETTINGS, assert_taken_over, held_by, kill_one_mid_shard, two_workers, wait_advancing

from .judge_server import JudgeServer
from .test_judging_job import api_judge, planted_study

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_workers_share_a_judging_job_and_one_takes_over_the_shard_of_the_other_when_it_is_killed(
    broker, settings, researcher_client
):
    for name, value in SHARD_SETTINGS.items():
        setattr(settings, name, value)
    study = planted_study(n_prompts=8, garbled_every=100)
    total = 2 * study.comparisons.count()
    # One request at a time, half a second each: a shard of 6 orders is stored 2 at a time over 3 s.
    with JudgeServer(os.environ[TEST_API_KEY_ENV], delay_s=0.5) as server:
        judge = api_judge(server)
        with two_workers("api-many-judges", {"STYLEGAP_API_CONCURRENCY": "1"}) as (queue, workers):
            job = do_start_judging_job(judge, study, queue=queue)
            victim, shard = kill_one_mid_shard(workers, lambda: job.shards.order_by("index"))
            (survivor,) = [w for w in workers if w is not victim]
            stored = JudgeVerdict.objects.filter(judge=judge, study=study)
            before_kill = set(stored.values_list("pk", flat=True))
            job = wait_advancing(
                lambda: JudgingJob.objects.get(pk=job.pk), lambda j: j.is_finished, "the survivor to finish the job"
            )

    assert job.status == JobStatus.SUCCEEDED, job.error
    verdicts = list(stored)
    assert len(verdicts) == total == job.done == job.total
    assert len({(v.response_first_id, v.response_second_id) for v in verdicts}) == total
    assert before_kill <= {v.pk for v in verdicts}, "verdicts stored before the kill are kept, not asked again"

    shards = list(job.shards.order_by("index"))
    assert sum(s.size for s in shards) == total and all(s.status == ShardStatus.DONE for s in shards)
    killed_orders = {tuple(k) for k in shard.keys}
    assert any((v.response_first_id, v.response_second_id) in killed_orders for v in verdicts if v.pk in before_kill)
    assert any(s.pk != shard.pk for s in held_by(survivor, shards))
    seconds = assert_taken_over(shard, victim, survivor)
    page = researcher_client.get(f"/studies/{study.slug}/judges/jobs/{job.pk}/").content.decode()
    text = re.sub(r"<[^>]+>", "", page)
    assert f"{len(shards)} of {len(shards)} shards done" in text and "1 lost (taken over)" in text
    print(f"judging shard {shard.index} taken over {seconds:.1f} s after the killed worker's last heartbeat")
