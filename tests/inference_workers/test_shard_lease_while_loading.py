"""A worker loads its model before it claims a shard: loading (seconds for SmolLM2 on a busy machine, minutes for
a large checkpoint) renews no lease, so a worker that claimed first and loaded after lost its first shard to any
other worker whose look came after the lease: the job's page then counted a shard lost by a live worker (this
failed CI's two-worker test, where the model load outlasted the test's 10 s lease)."""

import types
from datetime import timedelta

import pytest
from django.utils import timezone

from inference_workers import claims, jobs
from inference_workers.actions import decoding_config_for, do_start_generation_job
from inference_workers.backends import local
from inference_workers.models import JobStatus, Response, ShardStatus
from tests import factories

LEASE_S = 5


@pytest.mark.django_db
def test_no_shard_lease_can_lapse_while_the_worker_loads_its_model(settings, monkeypatch):
    settings.STYLEGAP_SHARD_PROMPTS = 2
    settings.STYLEGAP_SHARD_LEASE_SECONDS = LEASE_S
    ps = factories.prompt_set()
    for i in range(4):
        factories.prompt(ps, external_id=f"q{i}", text=f"Name a colour. ({i})")
    model = factories.smollm2()
    job = do_start_generation_job(model, ps, decoding_config_for(temperature=0, top_p=1, max_new_tokens=4))

    # A fresh model cache, so this worker loads the model; the load looks at the shards as another worker would
    # once the lease has passed (its clock moved on by more than the lease, so nothing need sleep).
    monkeypatch.setattr(local, "_MODEL_CACHE", None)
    real_load, seen = local.load_model, []

    def load_model_while_another_worker_looks(spec, device=None):
        later = timezone.now() + timedelta(seconds=LEASE_S + 1)
        monkeypatch.setattr(claims, "timezone", types.SimpleNamespace(now=lambda: later))
        try:
            taken = claims.claim_shard(job.shards.all(), "another-worker/1", LEASE_S, 3)
        finally:
            monkeypatch.setattr(claims, "timezone", timezone)
        seen.append(taken and (taken.index, taken.previous_worker))
        if taken is not None:  # the other worker was only looking: put what it took back as it was
            type(taken).objects.filter(pk=taken.pk).update(
                status=ShardStatus.OPEN, worker="", attempts=0, claimed_at=None, lease_expires_at=None
            )
        return real_load(spec, device)

    monkeypatch.setattr(local, "load_model", load_model_while_another_worker_looks)

    assert jobs.run_job(job.pk) == JobStatus.SUCCEEDED
    assert len(seen) == 1, f"the model is loaded once for the job: {seen}"
    assert seen[0] in (None, (0, "")), f"another worker took shard {seen[0][0]} from {seen[0][1]}"
    shards = list(job.shards.order_by("index"))
    assert all(s.status == ShardStatus.DONE and s.previous_worker == "" and s.attempts == 1 for s in shards), [
        (s.index, s.status, s.worker, s.previous_worker, s.attempts) for s in shards
    ]
    assert Response.objects.filter(job=job).count() == 4
