"""The embedded default's workers (bin/workers, which bin/run starts): housekeeping never waits behind generation.

Issue 14, finding 8: ``release_expired_leases`` shared worker slots with multi-minute generation tasks,
so expired leases stayed claimed for minutes. Here the real workers of bin/workers run on the test
database while two long local generations keep the CPU-heavy queue busy; the lease must be released
while both generations are still unfinished. On the old layout (one worker, ``-Q default,gpu,api
--concurrency 2``) both slots decode and the release waits until one of them ends: this test fails there.
"""

import os
import signal
import subprocess
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from inference_workers.actions import decoding_config_for, do_cancel_generation_job, do_start_generation_job
from inference_workers.models import GenerationJob, ModelKind, ModelRole
from ratings.engine.assignment import lease_next_comparison
from ratings.models import Assignment, AssignmentStatus
from tests import factories
from tests.conftest import ARTIFACTS, REPO, database_url
from tests.inference_workers.conftest import build_tiny_llama
from tests.ratings.rating_setup import rating_study

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Only bounds for a wedged machine: every wait ends as soon as the rows say so.
GIVE_UP_S = 600
# Long enough that a generation outlasts a worker's pick-up of a short task many times over.
LONG_ANSWER_TOKENS = 3500


@pytest.fixture
def embedded_workers(broker, tmp_path):
    """bin/workers on the test database and broker; stopped (with every child) at the end."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(settings.DATABASES["default"]),
        "STYLEGAP_VAR_DIR": str(tmp_path / "var"),
        "PYTHONUNBUFFERED": "1",
    }
    ARTIFACTS.mkdir(exist_ok=True)
    with open(ARTIFACTS / "embedded-workers.log", "a") as log:
        proc = subprocess.Popen(
            ["bin/workers"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wanted = {"gpu", "stylegap", "housekeeping"}
        deadline = time.monotonic() + GIVE_UP_S
        while True:
            assert proc.poll() is None, f"bin/workers exited with {proc.returncode}; see {ARTIFACTS}"
            answered = {name.split("@")[0] for reply in broker.control.ping(timeout=1.0) for name in reply}
            if wanted <= answered:
                break
            assert time.monotonic() < deadline, f"only {sorted(answered)} answered a ping"
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture
def slow_llama(tmp_path, smollm2_tokenizer_dir):
    """The tiny Llama of conftest.py with a seed that never says end-of-sequence: a long answer decodes for long."""
    folder = build_tiny_llama(tmp_path / "slow-llama", smollm2_tokenizer_dir, seed=1, max_position_embeddings=4096)
    return factories.model(kind=ModelKind.HF_CHECKPOINT, role=ModelRole.IMITATION, server_path=str(folder))


def long_job(model) -> GenerationJob:
    ps = factories.prompt_set()
    for i in range(2):
        factories.prompt(ps, text=f"Tell a very long story, number {i}.")
    config = decoding_config_for(temperature=0, top_p=1, max_new_tokens=LONG_ANSWER_TOKENS)
    return do_start_generation_job(model, ps, config)


def test_expired_leases_are_released_while_long_generations_hold_the_cpu_queue(embedded_workers, broker, slow_llama):
    from webapp.celery import app

    study = rating_study(n_prompts=2)
    lease = lease_next_comparison(factories.rater(study))
    now = timezone.now()
    Assignment.objects.filter(pk=lease.pk).update(
        leased_at=now - timedelta(hours=2), lease_expires_at=now - timedelta(hours=1)
    )

    # Two long generations: more than the CPU-heavy queue's one slot, as many as the old worker's two.
    jobs = [long_job(slow_llama), long_job(slow_llama)]
    try:
        deadline = time.monotonic() + GIVE_UP_S
        while not GenerationJob.objects.filter(pk__in=[j.pk for j in jobs], tokens_in_flight__gt=0).exists():
            assert time.monotonic() < deadline, "no generation started decoding"
            time.sleep(0.2)

        # What beat sends every minute, sent now by name, so the route decides the queue.
        app.send_task("ratings.tasks.release_expired_leases")
        while True:
            finished = [j.pk for j in GenerationJob.objects.filter(pk__in=[j.pk for j in jobs]) if j.is_finished]
            assert not finished, f"generation job(s) {finished} ended before the expired lease was released"
            if Assignment.objects.get(pk=lease.pk).status != AssignmentStatus.LEASED:
                break
            assert time.monotonic() < deadline, "the expired lease was never released"
            time.sleep(0.2)
    finally:
        for job in jobs:
            do_cancel_generation_job(job)
    assert Assignment.objects.get(pk=lease.pk).status == AssignmentStatus.EXPIRED
