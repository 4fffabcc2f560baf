"""Judging jobs through the real worker against an OpenAI-protocol judge served over HTTP by the test.

The judge prefers the longer answer (tests/judges/judge_server.py). The study plants a quality order that
length contradicts: the best model writes the shortest answers.
"""

import os
import random
import time
import uuid
from decimal import Decimal

import pytest
from django.conf import settings

from inference_workers.models import JobStatus, ModelKind, ModelRole
from judges.actions import (
    do_cancel_judging_job,
    do_create_judge,
    do_resume_stalled_judging_jobs,
    do_retry_judging_job,
    do_start_judging_job,
    ensure_builtin_prompts,
)
from judges.models import JudgeVerdict, JudgingJob, Outcome
from ratings.actions.snapshots import do_compute_snapshots
from ratings.actions.studies import do_create_comparisons
from ratings.models import Vote
from tests import factories
from tests.conftest import WorkerProcess, database_url
from tests.inference_workers.conftest import TEST_API_KEY_ENV

from .judge_server import JudgeServer

KEY = os.environ[TEST_API_KEY_ENV]
pytestmark = pytest.mark.django_db(transaction=True)
# Planted quality, best first; the lengths they write run the other way.
QUALITY = ["careful", "middling", "verbose"]
BASE_WORDS = {"careful": 30, "middling": 50, "verbose": 70}


def wait_until(predicate, timeout: float, what: str):
    """Wait while the job advances (a stored verdict resets the clock), up to ``timeout`` s without progress."""
    last, deadline = None, time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        now = JudgeVerdict.objects.count()
        if now != last:
            last, deadline = now, time.monotonic() + timeout
        time.sleep(0.3)
    raise AssertionError(f"no progress for {timeout} s waiting for {what}")


def planted_study(n_prompts: int = 18, garbled_every: int = 6):
    rng = random.Random(12)
    ps = factories.prompt_set()
    prompts = []
    for i in range(n_prompts):
        ending = "?!" if i % garbled_every == 0 else "?"
        prompts.append(factories.prompt(ps, external_id=f"q{i}", text=f"How does thing {i} work{ending}"))
    models = [factories.model(name=name, role=ModelRole.BASE) for name in QUALITY]
    for m in models:
        for p in prompts:
            n = max(5, BASE_WORDS[m.name] + rng.randint(-25, 25))
            factories.response(m, p, " ".join(f"word{k}" for k in range(n)))
    study = factories.study(ps, models)
    do_create_comparisons(study)
    return study


def api_judge(server, name="length-judge"):
    model = factories.model(
        name=f"{name}-model",
        kind=ModelKind.OPENAI_API,
        role=ModelRole.PROPRIETARY,
        api_base_url=server.base_url,
        api_model_id="judge-test",
        api_key_env=TEST_API_KEY_ENV,
        prompt_price_per_mtok=Decimal("3"),
        completion_price_per_mtok=Decimal("15"),
    )
    (template,) = [p for p in ensure_builtin_prompts() if p.name == "mt-bench-pairwise"]
    return do_create_judge(name, model, template, temperature=0, max_new_tokens=256)


def finished(job):
    return JudgingJob.objects.get(pk=job.pk).is_finished


def test_a_length_hungry_judge_judged_in_both_orders_through_the_worker(worker, researcher_client):
    study = planted_study()
    comparisons = list(study.comparisons.all())
    with JudgeServer(KEY, delay_s=0.01) as server:
        judge = api_judge(server)
        job = do_start_judging_job(judge, study)
        wait_until(lambda: finished(job), 120, "the judging job")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.total == job.done == 2 * len(comparisons) == len(server.requests)

    # Every comparison in both orders, each verdict with the judge's full text.
    verdicts = JudgeVerdict.objects.filter(job=job)
    orders = set(verdicts.values_list("response_first_id", "response_second_id"))
    for c in comparisons:
        assert {(c.response_a_id, c.response_b_id), (c.response_b_id, c.response_a_id)} <= orders
    assert verdicts.count() == 2 * len(comparisons)
    assert all("Longer is better" in v.text or "rather not choose" in v.text for v in verdicts)

    # Unparsed verdicts are counted, never turned into ties.
    garbled = [c for c in comparisons if c.prompt.text.endswith("?!")]
    assert job.unparsed == verdicts.filter(outcome=Outcome.UNPARSED).count() == 2 * len(garbled) > 0
    assert not verdicts.filter(outcome=Outcome.UNPARSED, text__contains="[[").exists()

    # Tokens and cost at the model's prices.
    assert job.prompt_tokens > 0 and job.completion_tokens > 0 and job.api_requests == job.total
    expected = (Decimal(job.prompt_tokens) * 3 + Decimal(job.completion_tokens) * 15) / 10**6
    assert job.cost_usd == expected.quantize(Decimal("0.000001"))

    # The job's page shows its progress, cost and the unparsed texts.
    page = researcher_client.get(f"/studies/{study.slug}/judges/jobs/{job.pk}/").content.decode()
    assert f"{job.done} / {job.total}" in page and "Unparsed verdicts" in page and "rather not choose" in page
    assert f"<dt>Cost (USD)</dt><dd>{job.cost_usd}</dd>" in page and job.cost_usd > 0
    assert f"<dt>Unparsed</dt><dd>{job.unparsed}</dd>" in page

    # The snapshot the job queued (or one computed now) carries the judge; no human vote was made.
    assert Vote.objects.filter(comparison__study=study).count() == 0
    (snap, _) = do_compute_snapshots(study)
    assert snap.payload["leaderboard"]["n_votes"] == 0
    (entry,) = snap.payload["judges"]["judges"]
    assert entry["unparsed"] == job.unparsed and entry["pairs_both_orders"] == len(comparisons)
    assert entry["combined"]["unparsed"] == len(garbled)
    lo, hi = entry["style_coefficient_ci"]["length"]
    assert entry["style_coefficients"]["length"] > 1.0 and lo > 0, entry["style_coefficients"]

    # Raw, the judge ranks by length (the planted order reversed); with length held equal, the ranking moves
    # toward the planted quality order.
    board = entry["leaderboard"]["models"]
    raw = {r["model"]: r["rating"] for r in board}
    controlled = {r["model"]: r["style_controlled"]["rating"] for r in board}
    assert sorted(raw, key=raw.get, reverse=True) == QUALITY[::-1]
    assert controlled["careful"] - controlled["verbose"] > raw["careful"] - raw["verbose"] + 100
    assert controlled["careful"] - controlled["middling"] > raw["careful"] - raw["middling"]


def test_a_killed_worker_resumes_with_only_the_missing_verdicts_and_cancel_and_retry(broker):
    study = planted_study(n_prompts=12, garbled_every=100)
    total = 2 * study.comparisons.count()
    queue = f"api-judges-{uuid.uuid4().hex[:6]}"  # only this test's workers listen here
    db_url = database_url(settings.DATABASES["default"])
    slow = {"STYLEGAP_API_CONCURRENCY": "2"}
    with JudgeServer(KEY, delay_s=0.25) as server:
        judge = api_judge(server)
        first = WorkerProcess(db_url, queues=queue, env=slow)
        first.start()
        try:
            job = do_start_judging_job(judge, study, queue=queue)
            stored = JudgeVerdict.objects.filter(job=job)
            wait_until(lambda: stored.count() >= 8, 120, "the first verdicts")
        finally:
            first.kill()
        job.refresh_from_db()
        assert job.status == JobStatus.RUNNING
        before = set(stored.values_list("pk", flat=True))
        assert 8 <= len(before) < total
        asked_before = len(server.requests)

        assert do_resume_stalled_judging_jobs(stale_after_s=0) == [job.pk]
        second = WorkerProcess(db_url, queues=queue, env=slow)
        second.start()
        try:
            wait_until(lambda: finished(job), 120, "the resumed job")
            # Only the missing verdicts were asked for again.
            assert len(server.requests) - asked_before == total - len(before)
            job.refresh_from_db()
            assert job.status == JobStatus.SUCCEEDED and job.done == job.total == total == stored.count()
            assert before <= set(stored.values_list("pk", flat=True))

            # Cancel a second judge mid-run, then retry it: it finishes with what was missing.
            other = api_judge(server, name="second-judge")
            job2 = do_start_judging_job(other, study, queue=queue)
            mine = JudgeVerdict.objects.filter(judge=other)
            wait_until(lambda: mine.count() >= 4, 120, "the second judge's first verdicts")
            do_cancel_judging_job(job2)
            wait_until(lambda: finished(job2), 120, "the cancel")
            job2.refresh_from_db()
            assert job2.status == JobStatus.CANCELLED
            kept = mine.count()
            assert kept < total
            asked = len(server.requests)
            do_retry_judging_job(job2)
            wait_until(lambda: finished(job2), 120, "the retried job")
            job2.refresh_from_db()
            assert job2.status == JobStatus.SUCCEEDED and mine.count() == total
            assert len(server.requests) - asked == total - kept
        finally:
            second.stop()
